/*
 * check_cache_shed.c - the hit path's shedding (cache_hit.c): a thread
 * alone shows every hit to the policy; a thread that finds the cache's lock
 * held when it comes to apply its hits shows one in SHED_EVERY (8) of them
 * for a while, and every hit is still counted exactly once.  The lock is
 * held by the test itself, so the contention is certain, not timed.
 */
#include <pthread.h>
#include <stdlib.h>

#include "cache_priv.h"
#include "testutil.h"

#define PAGES 64u
#define PS 4096u

static ssize_t noop_load(void *ctx, uint32_t m, uint64_t first, uint32_t n,
                         uint8_t *const dst[], int res[])
{
	(void)ctx; (void)m; (void)first; (void)dst; (void)res;
	return (ssize_t)n;
}

/* An LRU cache of PAGES pages holding pages 0..PAGES-1 (loaded in that
 * order) of its one model of 2 * PAGES pages. */
static apbi_cache *full_cache(void)
{
	static uint64_t sizes[1] = { 2ull * PAGES * PS };
	apbi_cache_config cfg = {
		.max_memory = (uint64_t)PAGES * PS, .page_size = PS, .policy = &apbi_policy_lru,
		.n_models = 1, .model_sizes = sizes, .load = noop_load,
	};
	apbi_cache *c;
	apbi_page *p;
	uint32_t n;
	ck_assert_int_eq(apbi_cache_new(&cfg, &c), 0);
	for (uint64_t i = 0; i < PAGES; i++) {
		ck_assert_int_eq(apbi_cache_get_run(c, 0, i, 1, &p, &n), 0);
		apbi_cache_unpin(c, &p, n);
	}
	return c;
}

/* k brief hits on pages 0, 1, ... (mod PAGES), as apb_paged_read takes them. */
static void brief_hits(apbi_cache *c, uint32_t k)
{
	for (uint32_t i = 0; i < k; i++) {
		apbi_page *p;
		uint32_t n;
		bool brief;
		ck_assert_int_eq(apbi_cache_get_brief(c, 0, i % PAGES, 1, &p, &n, &brief), 0);
		ck_assert(brief);   /* resident: taken without the lock */
		apbi_cache_put_brief(c, &p, n, brief);
	}
}

static void *forty_hits(void *arg)
{
	brief_hits(arg, 40);   /* tries the lock at its 32nd and 40th hit */
	return NULL;
}

START_TEST(a_thread_alone_sheds_nothing)
{
	apbi_cache *c = full_cache();
	apbi_cache_counters st;
	brief_hits(c, 1000);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.hits, 1000);
	ck_assert_uint_eq(st.misses, PAGES);
	ck_assert_uint_eq(st.hits_shed, 0);
	apbi_cache_free(c);
}
END_TEST

/*
 * A thread records 40 hits while the lock is held: its tries at 32 and 40
 * fail, so its slot sheds; applied afterwards, hits 0, 8, ..., 32 reach
 * the policy and the other 35 only the counters.  The 5 touched pages
 * are then the most recent: 5 new pages evict pages 1..5 (with every hit
 * touched they would evict 40..44; with none, 0..4).
 */
START_TEST(a_thread_that_finds_the_lock_held_sheds)
{
	apbi_cache *c = full_cache();
	apbi_cache_counters st;
	pthread_t t;
	pthread_mutex_lock(&c->lock);
	ck_assert_int_eq(pthread_create(&t, NULL, forty_hits, c), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	pthread_mutex_unlock(&c->lock);
	apbi_cache_stats(c, &st);   /* applies the records the thread left */
	ck_assert_uint_eq(st.hits, 40);
	ck_assert_uint_eq(st.hits_shed, 35);
	for (uint64_t i = PAGES; i < PAGES + 5; i++) {
		apbi_page *p;
		uint32_t n;
		ck_assert_int_eq(apbi_cache_get_run(c, 0, i, 1, &p, &n), 0);
		apbi_cache_unpin(c, &p, n);
	}
	for (uint64_t i = 0; i <= 32; i += 8)
		ck_assert_uint_eq(apbi_cache_first_absent(c, 0, i, i + 1), i + 1);   /* kept */
	for (uint64_t i = 1; i <= 5; i++)
		ck_assert_uint_eq(apbi_cache_first_absent(c, 0, i, i + 1), i);       /* evicted */
	ck_assert_uint_eq(apbi_cache_first_absent(c, 0, 40, 45), 45);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.evictions, 5);
	apbi_cache_free(c);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("cache_shed");
	TCase *tc = tcase_create("shed");
	tu_add_fixture(tc);
	tcase_add_test(tc, a_thread_alone_sheds_nothing);
	tcase_add_test(tc, a_thread_that_finds_the_lock_held_sheds);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
