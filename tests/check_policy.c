/*
 * check_policy.c - the eviction policies (policy_lru.c, policy_lfu.c) driven
 * by random operation sequences and compared step by step with the
 * reference models of refpol.h; LFU aging.
 */
#include <string.h>

#include "policy.h"
#include "refpol.h"
#include "testutil.h"

static void policy_random(const apbi_policy_ops *ops, bool lfu, uint64_t seed)
{
	apbi_pol_node nodes[NN];
	ref_pol ref;
	void *pol = ops->create(NN);
	uint64_t s = seed;
	memset(&ref, 0, sizeof ref);
	memset(nodes, 0, sizeof nodes);
	ref.lfu = lfu;
	ck_assert_ptr_nonnull(pol);
	for (int step = 0; step < 20000; step++) {
		int i = (int)(tu_rand(&s) % NN), op = (int)(tu_rand(&s) % 10);
		apbi_pol_node *v = ops->victim(pol);
		int rv = ref_victim(&ref);
		if (rv < 0 ? v != NULL : v != &nodes[rv])
			ck_abort_msg("%s step %d: victim %ld, reference %d", ops->name, step,
			             v ? (long)(v - nodes) : -1L, rv);
		if (!ref.in[i]) {
			bool pf = op < 2;
			ops->insert(pol, &nodes[i], pf ? APBI_POL_PREFETCH : APBI_POL_DEMAND);
			ref_insert(&ref, i, pf);
		} else if (op < 6) {
			ops->touch(pol, &nodes[i]);
			ref_touch(&ref, i);
		} else if (op < 9 && rv >= 0) {
			ops->remove(pol, &nodes[rv], true);
			ref_evict(&ref, rv);
		} else {
			ops->remove(pol, &nodes[i], false);
			ref.in[i] = false;
		}
	}
	ops->destroy(pol);
}

START_TEST(lru_matches_reference)
{
	policy_random(&apbi_policy_lru, false, 1 + (uint64_t)_i);
}
END_TEST

START_TEST(lfu_matches_reference)
{
	policy_random(&apbi_policy_lfu, true, 7 + (uint64_t)_i);
}
END_TEST

START_TEST(lfu_ages_out_early_popularity)
{
	apbi_pol_node hot, fresh[8];
	void *pol = apbi_policy_lfu.create(16);
	int evicted_at = -1;
	apbi_policy_lfu.insert(pol, &hot, APBI_POL_DEMAND);
	for (int i = 0; i < 100; i++)
		apbi_policy_lfu.touch(pol, &hot);
	/* a stream of new pages, each used twice: the cache holds hot + 8 */
	for (int i = 0; i < 8; i++)
		apbi_policy_lfu.insert(pol, &fresh[i], APBI_POL_DEMAND);
	for (int step = 0; step < 1000 && evicted_at < 0; step++) {
		apbi_pol_node *v = apbi_policy_lfu.victim(pol);
		apbi_policy_lfu.remove(pol, v, true);
		if (v == &hot) {
			evicted_at = step;
			break;
		}
		apbi_policy_lfu.insert(pol, v, APBI_POL_DEMAND);
		apbi_policy_lfu.touch(pol, v);
	}
	ck_assert_msg(evicted_at > 0, "hot page never aged out");
	ck_assert_int_lt(evicted_at, 1000);
	apbi_policy_lfu.destroy(pol);
}
END_TEST

START_TEST(policy_lookup_by_enum)
{
	ck_assert_ptr_eq(apbi_policy_get(APB_EVICT_LRU), &apbi_policy_lru);
	ck_assert_ptr_eq(apbi_policy_get(APB_EVICT_LFU), &apbi_policy_lfu);
	ck_assert_ptr_null(apbi_policy_get((apb_eviction)APB_EVICT_COUNT));
	ck_assert_str_eq(apbi_policy_lru.name, "lru");
	ck_assert_str_eq(apbi_policy_lfu.name, "lfu");
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");
	tcase_add_loop_test(tc, lru_matches_reference, 0, 4);
	tcase_add_loop_test(tc, lfu_matches_reference, 0, 4);
	tcase_add_test(tc, lfu_ages_out_early_popularity);
	tcase_add_test(tc, policy_lookup_by_enum);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
