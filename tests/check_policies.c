/*
 * check_policies.c - the queue-based eviction policies (SIEVE, S3-FIFO,
 * 2Q, W-TinyLFU) driven by random operation sequences and compared step by
 * step with the array models of refqueue.h; their scan resistance; the
 * ghost FIFO and the frequency sketch; the policy registry (policy.c).
 */
#include <errno.h>
#include <string.h>

#include "ghost.h"
#include "policy.h"
#include "refqueue.h"
#include "sketch.h"
#include "testutil.h"

static const apbi_policy_ops *const queue_ops[] = {
	&apbi_policy_sieve, &apbi_policy_s3fifo, &apbi_policy_2q, &apbi_policy_tinylfu,
};

static void queue_random(int kind, int cap, uint64_t seed)
{
	const apbi_policy_ops *ops = queue_ops[kind];
	static rpol ref;
	apbi_pol_node nodes[RQ_N];
	bool in[RQ_N] = { false };
	void *pol = ops->create((size_t)cap);
	uint64_t s = seed;
	memset(&ref, 0, sizeof ref);
	memset(nodes, 0, sizeof nodes);
	ref.kind = kind;
	ref.cap = cap;
	ref.hand = -1;
	ref.sk = apbi_sketch_new((size_t)cap);
	ck_assert_ptr_nonnull(pol);
	ck_assert_ptr_nonnull(ref.sk);
	for (int i = 0; i < RQ_N; i++)
		ref.ids[i] = nodes[i].id = APBI_POL_ID(i % 3, 1000 + i * 7);
	for (int step = 0; step < 20000; step++) {
		/* a skewed choice, so that some entries come back often */
		int i = (int)(tu_rand(&s) % (tu_rand(&s) % 2 ? 16 : RQ_N));
		int op = (int)(tu_rand(&s) % 10);
		apbi_pol_node *v = ops->victim(pol);
		int rv = rp_victim(&ref);
		if (rv < 0 ? v != NULL : v != &nodes[rv])
			ck_abort_msg("%s step %d: victim %ld, reference %d", ops->name, step,
			             v ? (long)(v - nodes) : -1L, rv);
		if (!in[i]) {
			bool pf = op < 2;
			ops->insert(pol, &nodes[i], pf ? APBI_POL_PREFETCH : APBI_POL_DEMAND);
			rp_insert(&ref, i, pf);
			in[i] = true;
		} else if (op < 6) {
			ops->touch(pol, &nodes[i]);
			rp_touch(&ref, i);
		} else if (op < 9 && rv >= 0) {
			ops->remove(pol, &nodes[rv], true);
			rp_remove(&ref, rv, true);
			in[rv] = false;
		} else {
			ops->remove(pol, &nodes[i], false);
			rp_remove(&ref, i, false);
			in[i] = false;
		}
	}
	ops->destroy(pol);
	apbi_sketch_free(ref.sk);
}

START_TEST(sieve_matches_reference)
{
	queue_random(0, RQ_N, 11 + (uint64_t)_i);
}
END_TEST

START_TEST(s3fifo_matches_reference)
{
	queue_random(1, _i % 2 ? 8 : RQ_N, 21 + (uint64_t)_i);
}
END_TEST

START_TEST(twoq_matches_reference)
{
	queue_random(2, _i % 2 ? 8 : RQ_N, 31 + (uint64_t)_i);
}
END_TEST

START_TEST(tinylfu_matches_reference)
{
	queue_random(3, RQ_N, 41 + (uint64_t)_i);
}
END_TEST

/*
 * A cache of 100 entries: a hot set of 50, a first scan of 75 pages (so
 * part of the hot set is evicted once, as 2Q needs to see reuse), the hot
 * set three times, a scan of 1000 pages used once, then the hot set again.
 * Hits in that last pass: LRU keeps none of it; the scan-resistant
 * policies keep most.
 */
static int hot_hits_after_scan(const apbi_policy_ops *ops)
{
	enum { CAP = 100, HOT = 50, SCAN = 1150 };
	static const int passes[][2] = {
		{ 0, HOT }, { HOT, HOT + 75 }, { 0, HOT }, { 0, HOT }, { 0, HOT },
		{ HOT + 75, HOT + SCAN }, { 0, HOT },
	};
	static apbi_pol_node nodes[HOT + SCAN];
	static bool in[HOT + SCAN];
	void *pol = ops->create(CAP);
	int n = 0, hits = 0;
	memset(nodes, 0, sizeof nodes);
	memset(in, 0, sizeof in);
	for (int i = 0; i < HOT + SCAN; i++)
		nodes[i].id = APBI_POL_ID(0, i);
	for (int pass = 0; pass < 7; pass++) {
		for (int i = passes[pass][0]; i < passes[pass][1]; i++) {
			if (in[i]) {
				hits += pass == 6;
				ops->touch(pol, &nodes[i]);
				continue;
			}
			if (n == CAP) {
				apbi_pol_node *v = ops->victim(pol);
				ops->remove(pol, v, true);
				in[v - nodes] = false;
				n--;
			}
			ops->insert(pol, &nodes[i], APBI_POL_DEMAND);
			in[i] = true;
			n++;
		}
	}
	ops->destroy(pol);
	return hits;
}

START_TEST(scan_resistance)
{
	ck_assert_int_eq(hot_hits_after_scan(&apbi_policy_lru), 0);
	ck_assert_int_ge(hot_hits_after_scan(&apbi_policy_s3fifo), 40);
	ck_assert_int_ge(hot_hits_after_scan(&apbi_policy_2q), 40);
	ck_assert_int_ge(hot_hits_after_scan(&apbi_policy_tinylfu), 40);
	ck_assert_int_ge(hot_hits_after_scan(&apbi_policy_sieve), 40);
}
END_TEST

START_TEST(ghost_matches_reference)
{
	static rghost ref;
	apbi_ghost *g = apbi_ghost_new(40);
	uint64_t s = 5;
	memset(&ref, 0, sizeof ref);
	ck_assert_ptr_nonnull(g);
	for (int step = 0; step < 50000; step++) {
		int x = (int)(tu_rand(&s) % 100), limit = 1 + (int)(tu_rand(&s) % 40);
		if (tu_rand(&s) % 2) {
			apbi_ghost_push(g, APBI_POL_ID(x % 5, x), (size_t)limit);
			rg_push(&ref, x, limit);
		} else {
			bool want = rg_take(&ref, x);
			ck_assert_msg(apbi_ghost_take(g, APBI_POL_ID(x % 5, x)) == want,
			              "step %d: take %d", step, x);
		}
	}
	apbi_ghost_free(g);
}
END_TEST

START_TEST(sketch_counts_and_ages)
{
	apbi_sketch *sk = apbi_sketch_new(1024);
	ck_assert_ptr_nonnull(sk);
	ck_assert_uint_eq(apbi_sketch_freq(sk, 42), 0);
	apbi_sketch_add(sk, 42);
	ck_assert_uint_eq(apbi_sketch_freq(sk, 42), 1);   /* doorkeeper only */
	for (int i = 0; i < 5; i++)
		apbi_sketch_add(sk, 42);
	ck_assert_uint_ge(apbi_sketch_freq(sk, 42), 6);
	for (int i = 0; i < 40; i++)
		apbi_sketch_add(sk, 42);
	ck_assert_uint_eq(apbi_sketch_freq(sk, 42), 16);  /* saturated */
	/* 10 * width other accesses: one reset halves it, clears the doorkeeper */
	for (uint64_t i = 0; i < 10 * 1024; i++)
		apbi_sketch_add(sk, 1000000 + i);
	ck_assert_uint_eq(apbi_sketch_freq(sk, 42), 7);
	apbi_sketch_free(sk);
}
END_TEST

START_TEST(registry_round_trip)
{
	apb_eviction e = APB_EVICT_LRU;
	for (int i = 0; i < APB_EVICT_COUNT; i++) {
		const char *name = apb_eviction_name((apb_eviction)i);
		ck_assert_ptr_nonnull(name);
		ck_assert_ptr_nonnull(apb_eviction_describe((apb_eviction)i));
		ck_assert_ptr_nonnull(apbi_policy_get((apb_eviction)i));
		ck_assert_str_eq(apbi_policy_get((apb_eviction)i)->name, name);
		ck_assert_int_eq(apb_eviction_parse(name, &e), 0);
		ck_assert_int_eq((int)e, i);
	}
	ck_assert_ptr_null(apb_eviction_name((apb_eviction)APB_EVICT_COUNT));
	ck_assert_ptr_null(apb_eviction_describe((apb_eviction)-1));
	e = APB_EVICT_LFU;
	ck_assert_int_eq(apb_eviction_parse("LRU", &e), -EINVAL);
	ck_assert_int_eq((int)e, APB_EVICT_LFU);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "\"LRU\""));
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "lru, lfu, sieve, s3fifo, 2q, tinylfu"));
	ck_assert_int_eq(apb_eviction_parse(NULL, &e), -EINVAL);
	ck_assert_int_eq(apb_eviction_parse("", &e), -EINVAL);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("policies");
	TCase *tc = tcase_create("policies");
	tcase_add_loop_test(tc, sieve_matches_reference, 0, 4);
	tcase_add_loop_test(tc, s3fifo_matches_reference, 0, 4);
	tcase_add_loop_test(tc, twoq_matches_reference, 0, 4);
	tcase_add_loop_test(tc, tinylfu_matches_reference, 0, 4);
	tcase_add_test(tc, scan_resistance);
	tcase_add_test(tc, ghost_matches_reference);
	tcase_add_test(tc, sketch_counts_and_ages);
	tcase_add_test(tc, registry_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
