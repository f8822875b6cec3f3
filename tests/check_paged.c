/*
 * check_paged.c - the PagedBundle API (paged.c, prefetch.c) on real bundle
 * files written with the builder: upstream's behaviours made exact,
 * integrity, pins and views, fault injection, prefetch and many threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "apbundle.h"
#include "internal.h"
#include "testutil.h"

#define MAXM 8

typedef struct tb {
	char *path;
	int n;
	char names[MAXM][16];
	uint8_t *data[MAXM];
	size_t size[MAXM];
} tb;

/* Builds a bundle of n models with the given sizes (block_size 0: default). */
static void tb_build(tb *t, int n, const size_t *sizes, uint32_t block_size)
{
	apb_builder *bb;
	memset(t, 0, sizeof *t);
	t->path = tu_path("t.apbundle");
	t->n = n;
	bb = apb_builder_new(t->path);
	ck_assert_ptr_nonnull(bb);
	if (block_size)
		ck_assert_int_eq(apb_builder_set_block_size(bb, block_size), 0);
	for (int i = 0; i < n; i++) {
		snprintf(t->names[i], sizeof t->names[i], "%c", 'A' + i);
		t->size[i] = sizes[i];
		t->data[i] = malloc(sizes[i] ? sizes[i] : 1);
		tu_fill_random(t->data[i], sizes[i], (uint64_t)i + 1);
		ck_assert_int_eq(apb_builder_add_model(bb, t->names[i], t->data[i], sizes[i]), 0);
	}
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
}

static void tb_free(tb *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->data[i]);
	free(t->path);
}

static apb_paged *tb_open(const tb *t, uint64_t max_memory, uint32_t page_size,
                          apb_eviction ev, bool prefetch)
{
	apb_paging_config cfg;
	apb_paged *pb = NULL;
	apb_paging_config_init(&cfg);
	cfg.max_memory = max_memory;
	cfg.page_size = page_size;
	cfg.eviction = ev;
	cfg.prefetch = prefetch;
	ck_assert_msg(apb_paged_open(t->path, &cfg, &pb) == 0, "open: %s", apb_last_error());
	return pb;
}

/* Reads model i whole through apb_paged_read and checks every byte. */
static void read_whole(apb_paged *pb, const tb *t, int i)
{
	uint8_t *buf = malloc(t->size[i] + 1);
	ssize_t r = apb_paged_read(pb, t->names[i], buf, t->size[i] + 1, 0);
	ck_assert_msg(r == (ssize_t)t->size[i], "read %s: %zd (%s)", t->names[i], r, apb_last_error());
	ck_assert_mem_eq(buf, t->data[i], t->size[i]);
	free(buf);
}

/* get_model + check + release. */
static void get_whole(apb_paged *pb, const tb *t, int i)
{
	const void *d;
	size_t sz;
	ck_assert_msg(apb_paged_get_model(pb, t->names[i], &d, &sz) == 0, "get %s: %s",
	              t->names[i], apb_last_error());
	ck_assert_uint_eq(sz, t->size[i]);
	ck_assert_mem_eq(d, t->data[i], sz);
	apb_paged_release(pb, d);
}

static void check_budget(apb_paged *pb, uint64_t max)
{
	apb_paging_stats st;
	apb_paged_stats(pb, &st);
	ck_assert_uint_le(st.memory_used, max);
}

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

/* Polls (bounded) until the worker is done with model name. */
static bool wait_cached(apb_paged *pb, const char *name)
{
	for (int i = 0; i < 400; i++) {
		if (apb_paged_is_cached(pb, name))
			return true;
		usleep(5000);
	}
	return false;
}

START_TEST(prefetch_hint_makes_next_get_all_hits)
{
	size_t sizes[2] = { 20000, 3000 };
	apb_paging_stats a, b;
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 0);
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LRU, true);
	ck_assert_int_eq(apb_paged_prefetch_hint(pb, "A"), 0);
	ck_assert(wait_cached(pb, "A"));
	apb_paged_stats(pb, &a);
	ck_assert_uint_eq(a.prefetches, 20);
	ck_assert_uint_eq(a.misses, 0);
	get_whole(pb, &t, 0);
	apb_paged_stats(pb, &b);
	ck_assert_uint_eq(b.misses, 0);
	ck_assert_uint_eq(b.hits, 20);
	ck_assert_uint_eq(b.prefetch_hits, 20);
	apb_paged_close(pb);
	/* prefetch off: the hint is refused */
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LRU, false);
	ck_assert_int_eq(apb_paged_prefetch_hint(pb, "A"), -EAGAIN);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

START_TEST(open_starts_no_thread)
{
	size_t sizes[2] = { 9000, 9000 };
	tb t;
	apb_paged *pb;
	int before, started;
	tb_build(&t, 2, sizes, 0);
	before = thread_count();
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LRU, true);
	ck_assert_int_eq(thread_count(), before);
	ck_assert_int_eq(apb_paged_start_worker(pb), 0);
	started = thread_count();   /* TSan may add its own helper thread here */
	ck_assert_int_gt(started, before);
	ck_assert_int_eq(apb_paged_start_worker(pb), 0);
	ck_assert_int_eq(thread_count(), started);
	apb_paged_close(pb);
	ck_assert_int_eq(thread_count(), started - 1);
	tb_free(&t);
}
END_TEST

START_TEST(sequential_reads_trigger_readahead)
{
	size_t sizes[1] = { 64 * 1024 };
	apb_paging_stats st;
	uint8_t buf[2048];
	tb t;
	apb_paged *pb;
	tb_build(&t, 1, sizes, 0);
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LRU, true);
	for (size_t off = 0; off < sizes[0]; off += sizeof buf) {
		ck_assert_int_eq(apb_paged_read(pb, "A", buf, sizeof buf, off), (int)sizeof buf);
		ck_assert_mem_eq(buf, t.data[0] + off, sizeof buf);
		if (off == 8 * 1024)
			usleep(50000);   /* let the worker get ahead once */
	}
	apb_paged_stats(pb, &st);
	ck_assert_uint_gt(st.prefetches, 8);
	ck_assert_uint_gt(st.prefetch_hits, 4);
	ck_assert_uint_le(st.prefetch_hits, st.prefetches);
	ck_assert_uint_eq(st.hits + st.misses, 64);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

/* Waits (bounded) until the prefetch counter stops moving. */
static void wait_quiet(apb_paged *pb)
{
	apb_paging_stats st;
	uint64_t last = UINT64_MAX;
	for (int i = 0; i < 100; i++) {
		apb_paged_stats(pb, &st);
		if (st.prefetches == last)
			return;
		last = st.prefetches;
		usleep(20000);
	}
}

START_TEST(predictor_prefetches_successor)
{
	size_t sizes[3] = { 3000, 5000, 4000 };
	apb_paging_stats st;
	uint64_t p0;
	tb t;
	apb_paged *pb;
	tb_build(&t, 3, sizes, 0);
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LRU, true);
	/* learn A -> B (twice) and A -> C (once) */
	read_whole(pb, &t, 0);
	read_whole(pb, &t, 1);
	read_whole(pb, &t, 0);
	read_whole(pb, &t, 2);
	read_whole(pb, &t, 0);
	read_whole(pb, &t, 1);
	wait_quiet(pb);
	apb_paged_clear_cache(pb);
	apb_paged_stats(pb, &st);
	p0 = st.prefetches;
	read_whole(pb, &t, 0);   /* B is A's most likely successor */
	ck_assert(wait_cached(pb, "B"));
	apb_paged_stats(pb, &st);
	ck_assert_uint_ge(st.prefetches - p0, 5);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

/* ---- integrity ---- */

static void corrupt(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

START_TEST(corrupted_block_is_refused_not_cached)
{
	static const uint32_t page_sizes[3] = { 1024, 4096, 16384 };
	size_t sizes[2] = { 40000, 1000 };
	uint32_t ps = page_sizes[_i];
	apb_paging_stats st, st2;
	apb_model_info info;
	apb_model_stats ms;
	uint64_t bad_lo, bad_hi, good = 0;
	uint8_t *buf = malloc(40000);
	const void *d;
	size_t sz;
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 4096);
	pb = tb_open(&t, 1 << 20, ps, APB_EVICT_LRU, false);
	ck_assert_int_eq(apb_paged_model_info(pb, 0, &info), 0);
	ck_assert_uint_eq(info.block_size, 4096);
	corrupt(t.path, info.file_offset + 2 * 4096 + 100);   /* block 2 of A */
	ck_assert_int_eq(apb_paged_model_info(pb, 1, &info), 0);
	corrupt(t.path, info.file_offset + 999);               /* B: one block, no table */
	apb_paged_close(pb);
	pb = tb_open(&t, 1 << 20, ps, APB_EVICT_LRU, false);
	bad_lo = 8192 / ps * ps;
	bad_hi = (12288 + ps - 1) / ps * ps;
	ck_assert_int_eq(apb_paged_read(pb, "A", buf, 10, 8192 + 50), APB_E_CHECKSUM);
	ck_assert_int_eq(apb_errno(APB_E_CHECKSUM), EIO);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "\"A\""));
	for (uint64_t off = 0; off < 40000; off += 500) {
		ssize_t r = apb_paged_read(pb, "A", buf, 500, off);
		if (off + 500 > bad_lo && off < bad_hi) {
			ck_assert_int_eq(r, APB_E_CHECKSUM);
		} else {
			ck_assert_int_eq(r, 500);
			ck_assert_mem_eq(buf, t.data[0] + off, 500);
		}
	}
	ck_assert_int_eq(apb_paged_model_stats(pb, 0, &ms), 0);
	for (uint64_t p = 0; p * ps < 40000; p++)
		if (p * ps >= bad_hi || (p + 1) * ps <= bad_lo)
			good += (p + 1) * ps < 40000 ? ps : 40000 - p * ps;
	ck_assert_uint_eq(ms.cached_bytes, good);   /* nothing of the bad block */
	ck_assert(!apb_paged_is_cached(pb, "A"));
	apb_paged_stats(pb, &st);
	ck_assert_uint_ge(st.checksum_failures, 1);
	ck_assert_uint_eq(st.memory_used, good);
	ck_assert_int_eq(apb_paged_get_model(pb, "A", &d, &sz), APB_E_CHECKSUM);
	ck_assert_int_eq(apb_paged_get_model(pb, "B", &d, &sz), APB_E_CHECKSUM);
	ck_assert_int_eq(apb_paged_read(pb, "B", buf, 10, 0), APB_E_CHECKSUM);
	apb_paged_stats(pb, &st2);
	ck_assert_uint_eq(st2.memory_used, good);
	ck_assert_uint_eq(st2.cached_pages, st.cached_pages);
	apb_paged_close(pb);
	free(buf);
	tb_free(&t);
}
END_TEST

START_TEST(small_pages_load_whole_blocks)
{
	size_t sizes[1] = { 10000 };
	apb_paging_stats st;
	uint8_t buf[10];
	tb t;
	apb_paged *pb;
	tb_build(&t, 1, sizes, 4096);
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LRU, false);
	ck_assert_int_eq(apb_paged_read(pb, "A", buf, 10, 1500), 10);
	ck_assert_mem_eq(buf, t.data[0] + 1500, 10);
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.bytes_loaded, 4096);   /* one block, read once */
	ck_assert_uint_eq(st.misses, 1);
	ck_assert_uint_eq(st.cached_pages, 4);
	for (uint64_t off = 0; off < 4096; off += 1024)
		ck_assert_int_eq(apb_paged_read(pb, "A", buf, 10, off), 10);
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.bytes_loaded, 4096);
	ck_assert_uint_eq(st.hits, 4);
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
	tb_build(&t, 2, sizes, 0);
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
	ck_assert_int_eq(apb_paged_get_model(pb, "B", &d, &sz), -EBUSY);
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

static void check_iov(const struct iovec *iov, int n, const uint8_t *want, ssize_t len)
{
	ssize_t at = 0;
	for (int i = 0; i < n; i++) {
		ck_assert_mem_eq(iov[i].iov_base, want + at, iov[i].iov_len);
		at += (ssize_t)iov[i].iov_len;
	}
	ck_assert_int_eq(at, len);
}

START_TEST(pin_range_zero_copy)
{
	size_t sizes[1] = { 10000 };
	struct iovec iov[16];
	apb_pinned *p1, *p2;
	uint8_t buf[1024];
	int n;
	ssize_t r;
	tb t;
	apb_paged *pb;
	tb_build(&t, 1, sizes, 0);
	pb = tb_open(&t, 2048, 1024, APB_EVICT_LRU, false);
	r = apb_paged_pin_range(pb, 0, 1000, 5000, iov, 2, &n, &p1);
	ck_assert_int_eq(r, 24 + 1024);      /* max_iov pages: 2 */
	check_iov(iov, n, t.data[0] + 1000, r);
	/* the budget is pinned: the caller is told to copy instead */
	ck_assert_int_eq(apb_paged_pin_range(pb, 0, 6000, 10, iov, 16, &n, &p2), -ENOBUFS);
	ck_assert_ptr_null(p2);
	ck_assert_int_eq(apb_paged_read_index(pb, 0, buf, sizeof buf, 6000), (int)sizeof buf);
	ck_assert_mem_eq(buf, t.data[0] + 6000, sizeof buf);
	apb_paged_unpin(pb, p1);
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

/* ---- fault injection through the I/O seam ---- */

static int fault_mode;   /* 0 none, 1 EIO, 2 short read then EOF */

static ssize_t faulty_pread(int fd, void *buf, size_t len, off_t off)
{
	if (fault_mode == 1) {
		errno = EIO;
		return -1;
	}
	if (fault_mode == 2) {
		static __thread int calls;
		if (calls++ % 2)
			return 0;
		return pread(fd, buf, len / 2 ? len / 2 : 1, off);
	}
	return pread(fd, buf, len, off);
}

static ssize_t faulty_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

static ssize_t faulty_read(int fd, void *buf, size_t len)
{
	return read(fd, buf, len);
}

static const apbi_io_ops faulty = {
	.pread = faulty_pread, .pwrite = faulty_pwrite, .read = faulty_read, .fsync = fsync,
};

START_TEST(failed_reads_cache_nothing)
{
	size_t sizes[2] = { 9000, 500 };
	apb_paging_stats st;
	const void *d;
	size_t sz;
	uint8_t buf[3000];
	struct iovec iov[4];
	apb_pinned *pins;
	int n;
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 1024);
	pb = tb_open(&t, 1 << 20, 1024, APB_EVICT_LRU, false);
	apbi_io_set(&faulty);
	for (fault_mode = 1; fault_mode <= 2; fault_mode++) {
		ck_assert_int_lt(apb_paged_read(pb, "A", buf, sizeof buf, 100), 0);
		ck_assert_int_lt(apb_paged_read(pb, "B", buf, 10, 0), 0);
		ck_assert_int_lt(apb_paged_get_model(pb, "A", &d, &sz), 0);
		ck_assert_int_lt(apb_paged_pin_range(pb, 0, 0, 10, iov, 4, &n, &pins), 0);
		apb_paged_stats(pb, &st);
		ck_assert_uint_eq(st.memory_used, 0);
		ck_assert_uint_eq(st.cached_pages, 0);
	}
	fault_mode = 0;
	apbi_io_set(NULL);
	ck_assert_int_eq(apb_paged_read(pb, "A", buf, sizeof buf, 100), (int)sizeof buf);
	ck_assert_mem_eq(buf, t.data[0] + 100, sizeof buf);
	read_whole(pb, &t, 1);
	apb_paged_close(pb);
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
	ck_assert_int_eq(cfg.eviction, APB_EVICT_LRU);
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

/* ---- many threads ---- */

typedef struct rd_arg {
	apb_paged *pb;
	const tb *t;
	uint64_t seed;
} rd_arg;

static void thread_op(apb_paged *pb, const tb *t, uint64_t *s, uint8_t *buf)
{
	int m = (int)(tu_rand(s) % (uint64_t)t->n), kind = (int)(tu_rand(s) % 20);
	uint64_t off = tu_rand(s) % (t->size[m] + 10), len = tu_rand(s) % 5000;
	if (kind == 0) {
		const void *d;
		size_t sz;
		int r = apb_paged_get_model(pb, t->names[m], &d, &sz);
		ck_assert_msg(r == 0 || r == -EBUSY || r == -EFBIG, "get_model: %d", r);
		if (r == 0) {
			ck_assert_mem_eq(d, t->data[m], sz);
			apb_paged_release(pb, d);
		}
	} else if (kind == 1) {
		struct iovec iov[8];
		apb_pinned *pins;
		int n;
		ssize_t r = apb_paged_pin_range(pb, (size_t)m, off, len, iov, 8, &n, &pins);
		ck_assert_msg(r >= 0 || r == -ENOBUFS, "pin_range: %zd", r);
		if (r > 0) {
			check_iov(iov, n, t->data[m] + off, r);
			apb_paged_unpin(pb, pins);
		}
	} else {
		ssize_t want = off >= t->size[m] ? 0 :
		               (ssize_t)(len < t->size[m] - off ? len : t->size[m] - off);
		ssize_t r = apb_paged_read(pb, t->names[m], buf, len, off);
		ck_assert_msg(r == want, "read %s %lu+%lu: %zd (%s)", t->names[m],
		              (unsigned long)off, (unsigned long)len, r, apb_last_error());
		if (r > 0 && memcmp(buf, t->data[m] + off, (size_t)r))
			ck_abort_msg("bytes differ: %s %lu+%zd", t->names[m], (unsigned long)off, r);
	}
}

static void *reader(void *arg)
{
	rd_arg *a = arg;
	uint64_t s = a->seed;
	uint8_t *buf = malloc(5000);
	for (int i = 0; i < 2500; i++) {
		thread_op(a->pb, a->t, &s, buf);
		if (i % 50 == 0)
			check_budget(a->pb, 4096);
	}
	free(buf);
	return NULL;
}

START_TEST(threads_read_random_ranges)
{
	size_t sizes[5] = { 50000, 7777, 123, 30000, 3000 };
	apb_paging_stats st;
	pthread_t th[4];
	rd_arg a[4];
	tb t;
	apb_paged *pb;
	tb_build(&t, 5, sizes, 2048);
	pb = tb_open(&t, 4096, 1024, _i ? APB_EVICT_LFU : APB_EVICT_LRU, true);
	for (int i = 0; i < 4; i++) {
		a[i] = (rd_arg){ .pb = pb, .t = &t, .seed = 1000 * (uint64_t)_i + (uint64_t)i + 1 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	apb_paged_stats(pb, &st);
	ck_assert_uint_le(st.memory_used, 4096);
	ck_assert_uint_gt(st.evictions, 100);
	ck_assert_uint_eq(st.checksum_failures, 0);
	apb_paged_close(pb);
	/* no pin or budget leaked: without prefetch, clearing empties */
	pb = tb_open(&t, 4096, 1024, APB_EVICT_LRU, false);
	a[0].pb = pb;
	reader(&a[0]);
	apb_paged_clear_cache(pb);
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.memory_used, 0);
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
	tcase_add_test(tc, prefetch_hint_makes_next_get_all_hits);
	suite_add_tcase(s, tc);
	tc = tcase_create("paged");
	tu_add_fixture(tc);
	tcase_add_test(tc, open_starts_no_thread);
	tcase_add_test(tc, sequential_reads_trigger_readahead);
	tcase_add_test(tc, predictor_prefetches_successor);
	tcase_add_loop_test(tc, corrupted_block_is_refused_not_cached, 0, 3);
	tcase_add_test(tc, small_pages_load_whole_blocks);
	tcase_add_test(tc, get_model_too_large_changes_nothing);
	tcase_add_test(tc, view_counts_bytes_once);
	tcase_add_test(tc, everything_pinned_reads_uncached);
	tcase_add_test(tc, pin_range_zero_copy);
	tcase_add_test(tc, failed_reads_cache_nothing);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, config_and_metadata);
	suite_add_tcase(s, tc);
	tc = tcase_create("threads");
	tu_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, threads_read_random_ranges, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
