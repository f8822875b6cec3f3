/*
 * check_paged.c - the PagedBundle API (paged.c over cache.c) on real bundle
 * files written with the builder: upstream's behaviours made exact, views
 * and pins, open errors, configuration and metadata.  Integrity (corrupted
 * blocks, block tables bound to the manifest, single-block models, the
 * fuzzers' reproducers, legacy bundles) and fault injection through the I/O
 * seam: check_paged_integrity.c.  Prefetch and threads: check_prefetch.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xxhash.h>

#include "apbundle.h"
#include "format.h"
#include "internal.h"
#include "tbundle.h"
#include "testutil.h"

/* ---- upstream behaviours ---- */

START_TEST(three_models_over_budget_evict)
{
	size_t sizes[3] = { 1000, 1000, 1000 };
	apb_paging_stats st;
	tb t;
	apb_paged *pb;
	tb_build(&t, 3, sizes, 0);
	pb = tb_open(&t, 1500, APB_DEFAULT_PAGE_SIZE, APB_EVICT_LRU, false);
	for (int i = 0; i < 3; i++) {
		get_whole(pb, &t, i);
		check_budget(pb, 1500);
	}
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.misses, 3);
	ck_assert_uint_eq(st.evictions, 2);
	ck_assert_uint_eq(st.memory_used, 1000);
	ck_assert(apb_paged_is_cached(pb, "C"));
	ck_assert(!apb_paged_is_cached(pb, "A"));
	ck_assert(!apb_paged_is_cached(pb, "B"));
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

/* Room for two 4-page models: A, B, A again, C. */
static void two_slot_pattern(apb_eviction ev, int a_uses, bool views)
{
	size_t sizes[3] = { 4096, 4096, 4096 };
	apb_paging_stats st;
	tb t;
	apb_paged *pb;
	tb_build(&t, 3, sizes, 0);
	pb = tb_open(&t, 8192, 1024, ev, false);
	for (int k = 0; k < a_uses; k++)
		views ? get_whole(pb, &t, 0) : read_whole(pb, &t, 0);
	views ? get_whole(pb, &t, 1) : read_whole(pb, &t, 1);
	if (ev == APB_EVICT_LRU)
		views ? get_whole(pb, &t, 0) : read_whole(pb, &t, 0);
	views ? get_whole(pb, &t, 2) : read_whole(pb, &t, 2);
	ck_assert(apb_paged_is_cached(pb, "A"));
	ck_assert(!apb_paged_is_cached(pb, "B"));
	ck_assert(apb_paged_is_cached(pb, "C"));
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.evictions, 4);   /* B's four pages, nothing else */
	ck_assert_uint_eq(st.misses, 12);
	ck_assert_uint_eq(st.memory_used, 8192);
	apb_paged_close(pb);
	tb_free(&t);
}

START_TEST(lru_evicts_exactly_b)
{
	two_slot_pattern(APB_EVICT_LRU, 1, _i);
}
END_TEST

START_TEST(lfu_evicts_exactly_b)
{
	two_slot_pattern(APB_EVICT_LFU, 3, _i);
}
END_TEST

START_TEST(unknown_names)
{
	size_t sizes[1] = { 100 };
	const void *d;
	size_t sz;
	char buf[8];
	tb t;
	apb_paged *pb;
	tb_build(&t, 1, sizes, 0);
	pb = tb_open(&t, 1 << 20, 4096, APB_EVICT_LRU, true);
	ck_assert_int_eq(apb_paged_read(pb, "nope", buf, 8, 0), -ENOENT);
	ck_assert_int_eq(apb_paged_get_model(pb, "nope", &d, &sz), -ENOENT);
	ck_assert_int_eq(apb_paged_prefetch_hint(pb, "nope"), -ENOENT);
	ck_assert_int_eq(apb_paged_find(pb, "nope"), -ENOENT);
	ck_assert(!apb_paged_evict(pb, "nope"));
	ck_assert(!apb_paged_is_cached(pb, "nope"));
	ck_assert(apb_paged_evict(pb, "A"));
	ck_assert_int_eq(apb_paged_read_index(pb, 5, buf, 8, 0), -ENOENT);
	ck_assert_int_eq(apb_paged_read(pb, "A", buf, 8, 100), 0);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

START_TEST(clear_cache_empties)
{
	size_t sizes[3] = { 5000, 7000, 300 };
	apb_paging_stats st;
	tb t;
	apb_paged *pb;
	tb_build(&t, 3, sizes, 0);
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LFU, false);
	for (int i = 0; i < 3; i++)
		read_whole(pb, &t, i);
	ck_assert(apb_paged_is_cached(pb, "B"));
	apb_paged_evict(pb, "B");
	ck_assert(!apb_paged_is_cached(pb, "B"));
	ck_assert(apb_paged_is_cached(pb, "A"));
	apb_paged_clear_cache(pb);
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.memory_used, 0);
	ck_assert_uint_eq(st.cached_pages, 0);
	for (int i = 0; i < 3; i++)
		ck_assert(!apb_paged_is_cached(pb, t.names[i]));
	read_whole(pb, &t, 1);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

/* ---- views and pins ---- */

START_TEST(get_model_too_large_changes_nothing)
{
	size_t sizes[2] = { 10000, 3000 };
	apb_paging_stats a, b;
	apb_model_stats ma, mb;
	const void *d = NULL;
	size_t sz = 7;
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 1024);   /* 1 KiB blocks: the budget holds one (issue 15) */
	pb = tb_open(&t, 8192, 1024, APB_EVICT_LRU, false);
	read_whole(pb, &t, 1);
	apb_paged_stats(pb, &a);
	apb_paged_model_stats(pb, 0, &ma);
	ck_assert_int_eq(apb_paged_get_model(pb, "A", &d, &sz), -EFBIG);
	ck_assert_ptr_null(d);
	ck_assert_uint_eq(sz, 7);
	apb_paged_stats(pb, &b);
	apb_paged_model_stats(pb, 0, &mb);
	ck_assert_mem_eq(&a, &b, sizeof a);
	ck_assert_mem_eq(&ma, &mb, sizeof ma);
	ck_assert(apb_paged_is_cached(pb, "B"));
	read_whole(pb, &t, 0);   /* streaming still works */
	check_budget(pb, 8192);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

START_TEST(view_counts_bytes_once)
{
	size_t sizes[2] = { 6000, 2000 };
	apb_paging_stats st;
	const void *d;
	size_t sz;
	uint8_t buf[100];
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 0);
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LRU, false);
	read_whole(pb, &t, 0);
	ck_assert_int_eq(apb_paged_get_model(pb, "A", &d, &sz), 0);
	ck_assert_mem_eq(d, t.data[0], 6000);
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.memory_used, 6000);
	ck_assert_uint_eq(st.misses, 6);
	ck_assert_uint_eq(st.hits, 6);
	ck_assert_uint_eq(st.cached_pages, 6);
	ck_assert_int_eq(apb_paged_read(pb, "A", buf, 100, 5000), 100);
	ck_assert_mem_eq(buf, t.data[0] + 5000, 100);
	apb_paged_release(pb, d);
	apb_paged_release(pb, NULL);
	ck_assert(apb_paged_evict(pb, "A"));
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.memory_used, 0);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

START_TEST(everything_pinned_reads_uncached)
{
	size_t sizes[2] = { 8192, 4000 };
	apb_paging_stats st;
	const void *d;
	size_t sz;
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 0);
	pb = tb_open(&t, 8192, 1024, APB_EVICT_LRU, false);
	ck_assert_int_eq(apb_paged_get_model(pb, "A", &d, &sz), 0);
	read_whole(pb, &t, 1);
	read_whole(pb, &t, 1);
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.memory_used, 8192);
	ck_assert_uint_eq(st.misses, 8 + 8);   /* B twice, nothing cached */
	ck_assert(!apb_paged_is_cached(pb, "B"));
	ck_assert_mem_eq(d, t.data[0], 8192);
	ck_assert_int_eq(apb_paged_get_model(pb, "B", &d, &sz), -ENOBUFS);
	apb_paged_release(pb, t.data[0]);   /* not a view: ignored */
	ck_assert_mem_eq(d, t.data[0], 8192);
	apb_paged_release(pb, d);
	read_whole(pb, &t, 1);
	ck_assert(apb_paged_is_cached(pb, "B"));
	check_budget(pb, 8192);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

START_TEST(pin_range_zero_copy)
{
	size_t sizes[1] = { 10000 };
	struct iovec iov[16];
	apb_pinned *p1, *p2, *p3;
	uint8_t buf[1024];
	int n;
	ssize_t r;
	tb t;
	apb_paged *pb;
	tb_build(&t, 1, sizes, 1024);   /* 1 KiB blocks (80-byte table, 8-byte index) */
	pb = tb_open(&t, 2048 + 88, 1024, APB_EVICT_LRU, false);
	r = apb_paged_pin_range(pb, 0, 1000, 5000, iov, 2, &n, &p1);
	ck_assert_int_eq(r, 24);      /* one call pins at most half the budget: 1 page */
	check_iov(iov, n, t.data[0] + 1000, r);
	r = apb_paged_pin_range(pb, 0, 1024, 5000, iov, 2, &n, &p3);
	ck_assert_int_eq(r, 1024);    /* the caller asks again for the rest */
	check_iov(iov, n, t.data[0] + 1024, r);
	/* the budget is pinned: the caller is told to copy instead */
	ck_assert_int_eq(apb_paged_pin_range(pb, 0, 6000, 10, iov, 16, &n, &p2), -ENOBUFS);
	ck_assert_ptr_null(p2);
	ck_assert_int_eq(apb_paged_read_index(pb, 0, buf, sizeof buf, 6000), (int)sizeof buf);
	ck_assert_mem_eq(buf, t.data[0] + 6000, sizeof buf);
	apb_paged_unpin(pb, p1);
	apb_paged_unpin(pb, p3);
	apb_paged_close(pb);
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LFU, false);
	r = apb_paged_pin_range(pb, 0, 1000, 50000, iov, 16, &n, &p1);
	ck_assert_int_eq(r, 9000);
	check_iov(iov, n, t.data[0] + 1000, r);
	ck_assert_int_eq(apb_paged_pin_range(pb, 0, 10000, 10, iov, 16, &n, &p2), 0);
	ck_assert_ptr_null(p2);
	apb_paged_unpin(pb, p1);
	apb_paged_unpin(pb, NULL);
	apb_paged_clear_cache(pb);
	check_budget(pb, 0);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

/*
 * huge_pages: the cache's pages lie in a mapping the kernel may back with
 * huge pages (smaps "THPeligible: 1") when asked, and never when not
 * (unless THP is "always", where the kernel decides alone, or "never").
 */
static int thp_eligible(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	unsigned long lo, hi, a = (unsigned long)addr;
	int in = 0, r = -1;
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = a >= lo && a < hi;
		else if (in && sscanf(line, "THPeligible: %d", &r) == 1)
			break;
	}
	fclose(f);
	return r;
}

static const char *thp_mode(void)
{
	static char buf[128];
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f || !fgets(buf, sizeof buf, f))
		strcpy(buf, "[never]");
	if (f)
		fclose(f);
	return strstr(buf, "[always]") ? "always" : strstr(buf, "[madvise]") ? "madvise" : "never";
}

START_TEST(huge_pages_option)
{
	size_t sizes[1] = { 4u << 20 };
	struct iovec iov[4];
	apb_paging_config cfg;
	apb_pinned *pin;
	apb_paged *pb;
	int n;
	tb t;
	if (strcmp(thp_mode(), "madvise") != 0)
		return;   /* with "always" or "never" the kernel decides alone */
	tb_build(&t, 1, sizes, 65536);
	for (int on = 0; on <= 1; on++) {
		apb_paging_config_init(&cfg);
		ck_assert(cfg.huge_pages);       /* the default */
		cfg.max_memory = 8u << 20;
		cfg.huge_pages = on;
		ck_assert_int_eq(apb_paged_open(t.path, &cfg, &pb), 0);
		ck_assert_int_eq(apb_paged_pin_range(pb, 0, 0, 65536, iov, 4, &n, &pin), 65536);
		check_iov(iov, n, t.data[0], 65536);
		ck_assert_int_eq(thp_eligible(iov[0].iov_base), on);
		apb_paged_unpin(pb, pin);
		apb_paged_close(pb);
	}
	tb_free(&t);
}
END_TEST

/* ---- open ---- */

START_TEST(open_errors)
{
	apb_paging_config cfg;
	apb_paging_stats st;
	apb_paged *pb = (apb_paged *)&cfg;
	char *junk = tu_path("junk"), *missing = tu_path("missing");
	char garbage[200];
	memset(garbage, 'x', sizeof garbage);
	tu_write_file(junk, garbage, sizeof garbage);
	ck_assert_int_eq(apb_paged_open(missing, NULL, &pb), -ENOENT);
	ck_assert_ptr_null(pb);
	ck_assert_int_eq(apb_paged_open(junk, NULL, &pb), APB_E_BADMAGIC);
	apb_paging_config_init(&cfg);
	ck_assert_uint_eq(cfg.max_memory, 100u << 20);
	ck_assert_uint_eq(cfg.page_size, APB_DEFAULT_PAGE_SIZE);
	ck_assert(cfg.prefetch);
	ck_assert_uint_eq(cfg.prefetch_count, 2);
	ck_assert_int_eq(cfg.eviction, APB_EVICT_TINYLFU);
	cfg.page_size = 1000;
	ck_assert_int_eq(apb_paged_open(junk, &cfg, &pb), -EINVAL);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "page_size"));
	cfg.page_size = 4096;
	cfg.max_memory = 0;
	ck_assert_int_eq(apb_paged_open(junk, &cfg, &pb), -EINVAL);
	apb_paged_close(NULL);
	apb_paged_stats(NULL, &st);
	ck_assert_uint_eq(st.hits, 0);
	ck_assert(apb_paging_stats_hit_rate(&st) == 0.0);
	st.hits = 3;
	st.misses = 1;
	ck_assert(apb_paging_stats_hit_rate(&st) == 0.75);
	free(junk);
	free(missing);
}
END_TEST

START_TEST(config_and_metadata)
{
	size_t sizes[2] = { 10, 0 };
	apb_paging_config cfg;
	apb_model_info info;
	const void *d;
	size_t sz = 9;
	uint8_t b;
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 0);
	pb = tb_open(&t, 12345, 2048, APB_EVICT_LFU, false);
	apb_paged_config(pb, &cfg);
	ck_assert_uint_eq(cfg.max_memory, 12345);
	ck_assert_uint_eq(cfg.page_size, 2048);
	ck_assert_int_eq(cfg.eviction, APB_EVICT_LFU);
	ck_assert_uint_eq(apb_paged_model_count(pb), 2);
	ck_assert_int_eq(apb_paged_find(pb, "B"), 1);
	ck_assert_int_eq(apb_paged_model_info(pb, 1, &info), 0);
	ck_assert_str_eq(info.name, "B");
	ck_assert_int_eq(apb_paged_model_info(pb, 2, &info), -ENOENT);
	/* an empty model */
	ck_assert_int_eq(apb_paged_get_model(pb, "B", &d, &sz), 0);
	ck_assert_uint_eq(sz, 0);
	apb_paged_release(pb, d);
	ck_assert_int_eq(apb_paged_read(pb, "B", &b, 1, 0), 0);
	ck_assert(apb_paged_is_cached(pb, "B"));
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("paged");
	TCase *tc = tcase_create("upstream");
	tu_add_fixture(tc);
	tcase_add_test(tc, three_models_over_budget_evict);
	tcase_add_loop_test(tc, lru_evicts_exactly_b, 0, 2);
	tcase_add_loop_test(tc, lfu_evicts_exactly_b, 0, 2);
	tcase_add_test(tc, unknown_names);
	tcase_add_test(tc, clear_cache_empties);
	suite_add_tcase(s, tc);
	tc = tcase_create("paged");
	tu_add_fixture(tc);
	tcase_add_test(tc, get_model_too_large_changes_nothing);
	tcase_add_test(tc, view_counts_bytes_once);
	tcase_add_test(tc, everything_pinned_reads_uncached);
	tcase_add_test(tc, pin_range_zero_copy);
	tcase_add_test(tc, huge_pages_option);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, config_and_metadata);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
