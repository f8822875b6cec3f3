/*
 * check_prefetch.c - prefetching of the PagedBundle (prefetch.c through
 * paged.c): hints, readahead, the next-model predictor, the lazily started
 * worker, and many threads reading while it runs.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "apbundle.h"
#include "tbundle.h"
#include "testutil.h"

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

/* Reads 4 KiB of model A at off through the model's shared window. */
static void read_4k(apb_paged *pb, const tb *t, uint64_t off)
{
	uint8_t buf[4096];
	ck_assert_int_eq(apb_paged_read(pb, "A", buf, sizeof buf, off), (int)sizeof buf);
	ck_assert_mem_eq(buf, t->data[0] + off, sizeof buf);
}

static void *read_far(void *arg)
{
	void **a = arg;
	read_4k(a[0], a[1], 3u << 20);
	return NULL;
}

/*
 * The model's shared window starts where the same thread's last read
 * ended, whatever other threads read meanwhile (random readers on other
 * threads keep their positions to themselves, so they write nothing the
 * others read).
 */
START_TEST(shared_window_starts_where_the_thread_left_off)
{
	size_t sizes[1] = { 4u << 20 };
	apb_paging_stats st;
	pthread_t th;
	tb t;
	apb_paged *pb;
	void *arg[2];
	uint64_t before;
	tb_build(&t, 1, sizes, 0);
	pb = tb_open(&t, 8u << 20, 4096, APB_EVICT_LRU, true);
	arg[0] = pb;
	arg[1] = &t;
	read_4k(pb, &t, 1u << 20);                  /* a seek: no window */
	ck_assert_int_eq(pthread_create(&th, NULL, read_far, arg), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);   /* another thread reads elsewhere */
	wait_quiet(pb);
	apb_paged_stats(pb, &st);
	before = st.prefetches;   /* the rest of each read's checksum block */
	read_4k(pb, &t, (1u << 20) + 4096);         /* where this thread left off */
	read_4k(pb, &t, (1u << 20) + 8192);
	for (int i = 0; i < 500; i++) {   /* the worker starts now: wait for it (5 s at most) */
		apb_paged_stats(pb, &st);
		if (st.prefetches >= before + 128)
			break;
		usleep(10000);
	}
	ck_assert_uint_ge(st.prefetches, before + 128);   /* a window read ahead */
	ck_assert_uint_ge(st.sequential_reads, 1);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

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
		ck_assert_msg(r == 0 || r == -ENOBUFS || r == -EFBIG, "get_model: %d", r);
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

/* ---- one sequential pass of a model larger than the budget ---- */

typedef struct seq_arg {
	apb_paged *pb;
	const tb *t;
	size_t chunk;
	bool pin;            /* pin_range (the mount's direct_io path), else read */
	uint64_t *next;      /* shared: next chunk offset to take */
	pthread_mutex_t *lock;
} seq_arg;

/* Pins a->chunk bytes from off as the mount does (pieces of up to 64 pages). */
static void pin_chunk(const seq_arg *a, uint64_t off)
{
	uint64_t end = off + a->chunk < a->t->size[0] ? off + a->chunk : a->t->size[0];
	while (off < end) {
		struct iovec iov[64];
		apb_pinned *pins;
		int n;
		ssize_t r = apb_paged_pin_range(a->pb, 0, off, end - off, iov, 64, &n, &pins);
		ck_assert_msg(r > 0, "pin_range at %lu: %zd", (unsigned long)off, r);
		check_iov(iov, n, a->t->data[0] + off, r);
		apb_paged_unpin(a->pb, pins);
		off += (uint64_t)r;
	}
}


/* Takes the next chunk in order (several threads: slightly out of order, as
 * FUSE hands a kernel's reads to its threads) and checks its bytes. */
static void *seq_reader(void *arg)
{
	seq_arg *a = arg;
	uint8_t *buf = malloc(a->chunk);
	for (;;) {
		uint64_t off;
		ssize_t r;
		pthread_mutex_lock(a->lock);
		off = *a->next;
		*a->next += a->chunk;
		pthread_mutex_unlock(a->lock);
		if (off >= a->t->size[0])
			break;
		if (a->pin) {
			pin_chunk(a, off);
		} else {
			r = apb_paged_read(a->pb, "A", buf, a->chunk, off);
			ck_assert_msg(r > 0, "read at %lu: %zd", (unsigned long)off, r);
			ck_assert_mem_eq(buf, a->t->data[0] + off, (size_t)r);
		}
		usleep(300);   /* the consumer's own work: room for the worker */
	}
	free(buf);
	return NULL;
}

/*
 * Issue 14: a sequential pass over a model 8x the budget loads each byte
 * once (bytes_loaded <= 1.02x), its prefetches are used (>= 95%), and
 * readahead did run (a quarter of the pages came from it at least).  _i:
 * 0 one reader of 128 KiB reads, 1 two of them, 2 one reader pinning 1 MiB
 * at a time (the mount's direct_io path); with W-TinyLFU and LRU.  Before
 * readahead entered the policy as demand, LRU evicted the pages it had
 * just read ahead (1.35x the model loaded, 25% of prefetches used), and
 * loads that stopped mid-block read blocks twice (1.09x with W-TinyLFU).
 */
START_TEST(sequential_pass_loads_each_byte_once)
{
	static const apb_eviction ev[] = { APB_EVICT_TINYLFU, APB_EVICT_LRU };
	size_t sizes[1] = { 32u << 20 };
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	uint64_t next = 0;
	apb_paging_stats st;
	pthread_t th[2];
	seq_arg a;
	int nth = _i == 1 ? 2 : 1;
	tb t;
	apb_paged *pb;
	tb_build(&t, 1, sizes, 0);
	for (unsigned e = 0; e < sizeof ev / sizeof ev[0]; e++) {
		next = 0;
		pb = tb_open(&t, 4u << 20, 4096, ev[e], true);
		a = (seq_arg){ .pb = pb, .t = &t, .chunk = _i >= 2 ? 1u << 20 : 128u << 10,
		               .pin = _i >= 2, .next = &next, .lock = &lock };
		for (int i = 0; i < nth; i++)
			ck_assert_int_eq(pthread_create(&th[i], NULL, seq_reader, &a), 0);
		for (int i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		apb_paged_stats(pb, &st);
		ck_assert_msg(st.bytes_loaded * 100 <= sizes[0] * 102,
		              "policy %u: %llu bytes loaded for a %zu-byte model (%llu prefetches, "
		              "%llu used, %llu wasted)", e, (unsigned long long)st.bytes_loaded,
		              sizes[0], (unsigned long long)st.prefetches,
		              (unsigned long long)st.prefetch_hits,
		              (unsigned long long)st.prefetch_wasted);
		ck_assert_msg(st.prefetches * 4 >= st.hits + st.misses,
		              "policy %u: readahead barely ran: %llu prefetches for %llu lookups", e,
		              (unsigned long long)st.prefetches,
		              (unsigned long long)(st.hits + st.misses));
		ck_assert_msg(st.prefetch_hits * 100 >= st.prefetches * 95,
		              "policy %u: prefetch accuracy %llu / %llu", e,
		              (unsigned long long)st.prefetch_hits, (unsigned long long)st.prefetches);
		check_budget(pb, 4u << 20);
		apb_paged_close(pb);
	}
	tb_free(&t);
}
END_TEST

/* ---- per-reader read windows (apb_reader) ---- */

static uint64_t reader_window(apb_reader *r)
{
	apb_reader_stats rs;
	apb_reader_info(r, &rs);
	return rs.window;
}

static void reader_read(apb_reader *r, const tb *t, int m, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	ssize_t got = apb_reader_read(r, buf, len, off);
	ck_assert_msg(got == (ssize_t)len, "reader read at %lu: %zd (%s)", (unsigned long)off, got,
	              apb_last_error());
	ck_assert_mem_eq(buf, t->data[m] + off, len);
	free(buf);
}

/*
 * Issue 13: a reader's window opens at 1 MiB, doubles while its reads stay
 * sequential, is capped by a quarter of the budget (4 MiB of 16) shared
 * among the readers streaming, and resets on a seek.
 */
START_TEST(reader_window_grows_resets_and_is_capped)
{
	size_t sizes[2] = { 32u << 20, 8u << 20 };
	const uint64_t K64 = 64u << 10, MiB = 1u << 20;
	apb_reader *r1, *r2;
	apb_reader_stats rs;
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 0);
	pb = tb_open(&t, 16u << 20, 4096, APB_EVICT_TINYLFU, true);
	ck_assert_int_eq(apb_reader_open(pb, 0, &r1), 0);
	ck_assert_uint_eq(reader_window(r1), 0);
	reader_read(r1, &t, 0, 0, K64);
	ck_assert_uint_eq(reader_window(r1), MiB);
	reader_read(r1, &t, 0, K64, K64);
	ck_assert_uint_eq(reader_window(r1), 2 * MiB);
	reader_read(r1, &t, 0, 2 * K64, K64);
	ck_assert_uint_eq(reader_window(r1), 4 * MiB);
	reader_read(r1, &t, 0, 3 * K64, K64);
	ck_assert_uint_eq(reader_window(r1), 4 * MiB);    /* a quarter of the budget */
	/* a second streaming reader (of another model: the start of this one
	 * is cached, and a stream starts only where there is something to
	 * read ahead): the quarter is shared */
	ck_assert_int_eq(apb_reader_open(pb, 1, &r2), 0);
	reader_read(r2, &t, 1, 0, K64);
	ck_assert_uint_eq(reader_window(r2), MiB);
	ck_assert_uint_eq(reader_window(r1), 2 * MiB);
	/* a seek resets r1's window; reading on from there opens it again */
	reader_read(r1, &t, 0, 20 * MiB, K64);
	apb_reader_info(r1, &rs);
	ck_assert_uint_eq(rs.window, 0);
	ck_assert_uint_eq(rs.seeks, 1);
	ck_assert_uint_eq(rs.sequential_reads, 3);
	reader_read(r1, &t, 0, 20 * MiB + K64, K64);
	ck_assert_uint_eq(reader_window(r1), MiB);
	apb_reader_close(r2);
	reader_read(r1, &t, 0, 20 * MiB + 2 * K64, K64);
	ck_assert_uint_eq(reader_window(r1), 2 * MiB);
	apb_reader_close(r1);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

/* Readers are bounded in number, refuse bad arguments, and read plainly without prefetch. */
START_TEST(reader_limits_and_no_prefetch)
{
	size_t sizes[2] = { 100000, 5000 };
	static apb_reader *rs[APB_MAX_READERS];
	apb_reader *r;
	uint8_t buf[3000];
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 0);
	pb = tb_open(&t, 1 << 20, 4096, APB_EVICT_LRU, false);
	ck_assert_int_eq(apb_reader_open(pb, 2, &r), -ENOENT);
	ck_assert_int_eq(apb_reader_open(NULL, 0, &r), -EINVAL);
	ck_assert_int_eq(apb_reader_read(NULL, buf, 1, 0), -EINVAL);
	for (unsigned i = 0; i < APB_MAX_READERS; i++)
		ck_assert_int_eq(apb_reader_open(pb, i % 2, &rs[i]), 0);
	ck_assert_int_eq(apb_reader_open(pb, 0, &r), -EMFILE);
	ck_assert_ptr_null(r);
	apb_reader_close(rs[0]);
	ck_assert_int_eq(apb_reader_open(pb, 1, &rs[0]), 0);
	ck_assert_int_eq(apb_reader_read(rs[0], buf, sizeof buf, 4000), 1000);
	ck_assert_mem_eq(buf, t.data[1] + 4000, 1000);
	ck_assert_uint_eq(reader_window(rs[0]), 0);   /* prefetch off: no window */
	for (unsigned i = 0; i < APB_MAX_READERS; i++)
		apb_reader_close(rs[i]);
	apb_reader_close(NULL);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

/* Reads model m backwards in len-byte steps (each a seek: no readahead). */
static void read_backwards(apb_paged *pb, const tb *t, int m, size_t len)
{
	uint8_t *buf = malloc(len);
	for (uint64_t end = t->size[m]; end >= len; end -= len)
		ck_assert_int_eq(apb_paged_read(pb, t->names[m], buf, len, end - len), (ssize_t)len);
	free(buf);
}

/*
 * Issue 14: the window cap halves when read-ahead pages are evicted unused
 * and grows back while prefetches are used.  A reads 1 MiB sequentially
 * (4 MiB read ahead), B then fills the budget without readahead, evicting
 * A's unused pages; A's next sequential reads find the cap halved, and a
 * long sequential pass restores it.
 */
START_TEST(window_shrinks_when_wasted_and_grows_back)
{
	size_t sizes[2] = { 32u << 20, 16u << 20 };
	apb_paging_stats st;
	apb_reader *r;
	tb t;
	apb_paged *pb;
	tb_build(&t, 2, sizes, 0);
	pb = tb_open(&t, 16u << 20, 4096, APB_EVICT_LRU, true);
	ck_assert_int_eq(apb_reader_open(pb, 0, &r), 0);
	for (uint64_t off = 0; off < (1u << 20); off += 128u << 10)
		reader_read(r, &t, 0, off, 128u << 10);
	wait_quiet(pb);
	read_backwards(pb, &t, 1, 256u << 10);
	apb_paged_stats(pb, &st);
	ck_assert_uint_gt(st.prefetch_wasted, 0);
	for (uint64_t off = 1u << 20; off < (2u << 20); off += 128u << 10)
		reader_read(r, &t, 0, off, 128u << 10);
	wait_quiet(pb);
	apb_paged_stats(pb, &st);
	ck_assert_uint_ge(st.readahead_shrinks, 1);
	ck_assert_uint_lt(st.readahead_window, 4u << 20);
	for (uint64_t off = 2u << 20; off < sizes[0] - (1u << 20); off += 128u << 10) {
		reader_read(r, &t, 0, off, 128u << 10);
		usleep(200);
	}
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.readahead_window, 4u << 20);
	apb_reader_close(r);
	apb_paged_close(pb);
	tb_free(&t);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("prefetch");
	TCase *tc = tcase_create("prefetch");
	tu_add_fixture(tc);
	tcase_add_test(tc, prefetch_hint_makes_next_get_all_hits);
	tcase_add_test(tc, open_starts_no_thread);
	tcase_add_test(tc, sequential_reads_trigger_readahead);
	tcase_add_test(tc, predictor_prefetches_successor);
	tcase_add_test(tc, shared_window_starts_where_the_thread_left_off);
	suite_add_tcase(s, tc);
	tc = tcase_create("threads");
	tu_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, threads_read_random_ranges, 0, 2);
	tcase_add_loop_test(tc, sequential_pass_loads_each_byte_once, 0, 3);
	tcase_add_test(tc, window_shrinks_when_wasted_and_grows_back);
	suite_add_tcase(s, tc);
	tc = tcase_create("reader");
	tu_add_fixture(tc);
	tcase_add_test(tc, reader_window_grows_resets_and_is_capped);
	tcase_add_test(tc, reader_limits_and_no_prefetch);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
