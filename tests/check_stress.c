/*
 * check_stress.c - many threads on one PagedBundle with a tiny budget.
 *
 * 8 reader threads read random ranges (and now and then whole pinned
 * views) of 50 models through a cache of 16 pages, while a chaos thread
 * keeps calling evict, clear_cache and prefetch_hint, with the prefetch
 * worker on.  Every byte returned is compared with the model's content,
 * and every thread checks after each call that memory_used never exceeds
 * max_memory.  Afterwards every model reads back exactly and clear_cache
 * empties the cache (no pin leaked).  Runs APB_STRESS_SECONDS per policy
 * (default 2); prints the bytes verified as a TAP comment.
 * Worker threads never call ck_assert: they record the first failure and
 * stop, and the test thread reports it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apbundle.h"
#include "testutil.h"

#define N_MODELS 50
#define N_READERS 8
#define PAGE 4096u
#define BUDGET (16u * PAGE)

static char names[N_MODELS][32];
static size_t sizes[N_MODELS];
static unsigned char *content[N_MODELS];

static struct {
	apb_paged *pb;
	double deadline;
	atomic_bool stop;
	atomic_bool failed;
	char why[512];
	pthread_mutex_t why_lock;
	atomic_ullong bytes, reads, views, chaos_ops;
} S;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Records the first failure (thread-safe) and stops every thread. */
static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&S.why_lock);
	if (!atomic_load(&S.failed)) {
		va_start(ap, fmt);
		vsnprintf(S.why, sizeof S.why, fmt, ap);
		va_end(ap);
		atomic_store(&S.failed, true);
	}
	pthread_mutex_unlock(&S.why_lock);
	atomic_store(&S.stop, true);
}

static void check_budget(const char *where)
{
	apb_paging_stats st;

	apb_paged_stats(S.pb, &st);
	if (st.memory_used > BUDGET)
		failf("%s: memory_used %llu > max_memory %u", where,
		      (unsigned long long)st.memory_used, BUDGET);
}

/* Sizes: a few empty, mostly up to 12 pages, some beyond the budget. */
static void make_models(void)
{
	uint64_t s = 42;

	for (int i = 0; i < N_MODELS; i++) {
		snprintf(names[i], sizeof names[i], "%s/model-%02d", i % 3 ? "grp" : "top", i);
		if (i % 17 == 0)
			sizes[i] = i == 0 ? 0 : 1;
		else if (i % 10 == 3)
			sizes[i] = BUDGET + 1 + tu_rand(&s) % (3 * BUDGET);
		else
			sizes[i] = tu_rand(&s) % (12 * PAGE);
		content[i] = malloc(sizes[i] + 1);
		ck_assert_ptr_nonnull(content[i]);
		tu_fill_random(content[i], sizes[i], 1000 + (uint64_t)i);
	}
}

static void build_bundle(const char *path)
{
	apb_builder *bb = apb_builder_new(path);

	ck_assert_ptr_nonnull(bb);
	ck_assert_int_eq(apb_builder_set_block_size(bb, PAGE), 0);
	for (int i = 0; i < N_MODELS; i++)
		ck_assert_int_eq(apb_builder_add_model(bb, names[i], content[i], sizes[i]), 0);
	ck_assert_msg(apb_builder_build(bb) == 0, "build: %s", apb_last_error());
	apb_builder_free(bb);
}

/* One random range read of model m, verified. */
static void random_read(uint64_t *rs, int m, unsigned char *buf, size_t cap)
{
	uint64_t off = tu_rand(rs) % (sizes[m] + 1);
	size_t len = 1 + tu_rand(rs) % cap;
	size_t want = sizes[m] - off < len ? sizes[m] - off : len;
	ssize_t n = (tu_rand(rs) & 1)
	            ? apb_paged_read(S.pb, names[m], buf, len, off)
	            : apb_paged_read_index(S.pb, (size_t)m, buf, len, off);

	if (n < 0)
		return failf("read %s [%llu,+%zu): %s", names[m], (unsigned long long)off, len,
		             apb_strerror((int)n));
	if ((size_t)n != want)
		return failf("read %s [%llu,+%zu): %zd bytes, expected %zu", names[m],
		             (unsigned long long)off, len, n, want);
	if (memcmp(buf, content[m] + off, want) != 0)
		return failf("WRONG BYTES from %s [%llu,+%zu)", names[m], (unsigned long long)off, want);
	atomic_fetch_add(&S.bytes, want);
	atomic_fetch_add(&S.reads, 1);
}

/* A pinned whole-model view, verified; ENOBUFS and EFBIG are legitimate. */
static void view_once(int m)
{
	const void *v;
	size_t n;
	int rc = apb_paged_get_model(S.pb, names[m], &v, &n);

	if (rc == -ENOBUFS || (rc == -EFBIG && sizes[m] > BUDGET))
		return;
	if (rc != 0)
		return failf("get_model %s (%zu bytes): %s", names[m], sizes[m], apb_strerror(rc));
	if (n != sizes[m] || (n && memcmp(v, content[m], n) != 0))
		failf("WRONG BYTES in the view of %s", names[m]);
	else
		atomic_fetch_add(&S.bytes, n);
	atomic_fetch_add(&S.views, 1);
	apb_paged_release(S.pb, v);
}

static void *reader(void *arg)
{
	uint64_t rs = (uint64_t)(uintptr_t)arg * 7919 + 1;
	size_t cap = 3 * PAGE + 123;
	unsigned char *buf = malloc(cap);

	if (!buf)
		return NULL;
	while (!atomic_load(&S.stop)) {
		int m = (int)(tu_rand(&rs) % N_MODELS);
		if (tu_rand(&rs) % 16 == 0)
			view_once(m);
		else
			random_read(&rs, m, buf, cap);
		check_budget("reader");
		if (now() > S.deadline)
			break;
	}
	free(buf);
	return NULL;
}

static void *chaos(void *arg)
{
	uint64_t rs = 99;
	(void)arg;

	while (!atomic_load(&S.stop) && now() <= S.deadline) {
		int m = (int)(tu_rand(&rs) % N_MODELS);
		switch (tu_rand(&rs) % 8) {
		case 0:
			apb_paged_clear_cache(S.pb);
			break;
		case 1: case 2: case 3: {
			int rc = apb_paged_prefetch_hint(S.pb, names[m]);
			if (rc != 0 && rc != -EAGAIN)
				failf("prefetch_hint %s: %s", names[m], apb_strerror(rc));
			break;
		}
		default:
			if (!apb_paged_evict(S.pb, names[m]))
				failf("evict %s returned false for an existing model", names[m]);
		}
		check_budget("chaos");
		atomic_fetch_add(&S.chaos_ops, 1);
		usleep(200);
	}
	return NULL;
}

/* After the storm: every model exact, and the cache can be emptied. */
static void final_checks(void)
{
	apb_paging_stats st;
	unsigned char *buf = malloc(PAGE * 5);

	ck_assert_ptr_nonnull(buf);
	for (int m = 0; m < N_MODELS; m++)
		for (uint64_t off = 0; off < sizes[m]; off += PAGE * 5) {
			ssize_t n = apb_paged_read(S.pb, names[m], buf, PAGE * 5, off);
			size_t want = sizes[m] - off < PAGE * 5 ? sizes[m] - off : PAGE * 5;
			ck_assert_msg(n == (ssize_t)want, "final read %s at %llu: %zd", names[m],
			              (unsigned long long)off, n);
			ck_assert_msg(memcmp(buf, content[m] + off, want) == 0, "final: WRONG BYTES in %s",
			              names[m]);
		}
	free(buf);
	/* the prefetch worker may still be finishing a hint: give it 2 s */
	for (int k = 0; k < 200; k++) {
		apb_paged_clear_cache(S.pb);
		apb_paged_stats(S.pb, &st);
		if (st.memory_used == 0 && st.cached_pages == 0)
			break;
		usleep(10000);
	}
	ck_assert_msg(st.memory_used == 0 && st.cached_pages == 0,
	              "clear_cache left %llu bytes in %llu pages (a leaked pin?)",
	              (unsigned long long)st.memory_used, (unsigned long long)st.cached_pages);
	ck_assert_uint_le(st.memory_used, BUDGET);
}

START_TEST(storm)
{
	const char *e = getenv("APB_STRESS_SECONDS");
	double secs = e && atof(e) > 0 ? atof(e) : 2.0;
	pthread_t th[N_READERS + 1];
	apb_paging_config cfg;
	char *path = tu_path("stress.apbundle");
	apb_paging_stats st;

	make_models();
	build_bundle(path);
	memset(&S, 0, sizeof S);
	pthread_mutex_init(&S.why_lock, NULL);
	apb_paging_config_init(&cfg);
	cfg.page_size = PAGE;
	cfg.max_memory = BUDGET;
	cfg.prefetch = true;
	cfg.eviction = (apb_eviction)_i;
	ck_assert_msg(apb_paged_open(path, &cfg, &S.pb) == 0, "open: %s", apb_last_error());
	S.deadline = now() + secs;
	for (int t = 0; t < N_READERS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, reader, (void *)(uintptr_t)(t + 1)), 0);
	ck_assert_int_eq(pthread_create(&th[N_READERS], NULL, chaos, NULL), 0);
	for (int t = 0; t <= N_READERS; t++)
		pthread_join(th[t], NULL);
	ck_assert_msg(!atomic_load(&S.failed), "%s", S.why);
	apb_paged_stats(S.pb, &st);
	printf("# %s: %.0f s, %llu bytes verified in %llu reads and %llu views, %llu chaos ops; "
	       "hits %llu misses %llu evictions %llu prefetches %llu\n", apb_eviction_name(cfg.eviction), secs,
	       (unsigned long long)S.bytes, (unsigned long long)S.reads, (unsigned long long)S.views,
	       (unsigned long long)S.chaos_ops, (unsigned long long)st.hits,
	       (unsigned long long)st.misses, (unsigned long long)st.evictions,
	       (unsigned long long)st.prefetches);
	fflush(stdout);
	ck_assert_uint_gt(S.reads, 100);
	final_checks();
	apb_paged_close(S.pb);
	for (int i = 0; i < N_MODELS; i++)
		free(content[i]);
	free(path);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("threads");
	const char *e = getenv("APB_STRESS_SECONDS");

	tu_add_fixture(tc);
	tcase_set_timeout(tc, 60 + (e ? atof(e) : 0) * 2);
	tcase_add_loop_test(tc, storm, 0, APB_EVICT_COUNT);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
