/*
 * check_cache.c - unit tests of the page cache (cache.c, cache_view.c) with
 * a fake in-memory loader, so no bundle file is involved.
 *
 * The cache is driven by random workloads and compared step by step with a
 * small reference model written the obvious (O(n)) way over refpol.h; its
 * eviction order is observed through the on_evict hook.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "refpol.h"
#include "refqueue.h"
#include "testutil.h"

/* ---- fake loader ---- */

typedef struct fake {
	uint64_t sizes[8];
	uint32_t page_size;
	int calls, pages_loaded;
	int fail_model;          /* -1: none */
	uint64_t fail_page;
	int fail_code;
	useconds_t delay;
	bool check_budget;
	apbi_cache *c;
	uint64_t max_memory;
	uint32_t max_n_seen;
} fake;

static uint8_t pattern(uint32_t m, uint64_t off)
{
	return (uint8_t)(m * 131u + off * 7u + (off >> 9));
}

static ssize_t fake_load(void *ctx, uint32_t m, uint64_t first, uint32_t n,
                         uint8_t *const dst[], int res[])
{
	fake *f = ctx;
	uint64_t bytes = 0;
	__atomic_add_fetch(&f->calls, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&f->pages_loaded, (int)n, __ATOMIC_RELAXED);
	if (n > __atomic_load_n(&f->max_n_seen, __ATOMIC_RELAXED))
		__atomic_store_n(&f->max_n_seen, n, __ATOMIC_RELAXED);
	if (f->delay)
		usleep(f->delay);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = (first + i) * f->page_size, len = f->sizes[m] - off;
		if (len > f->page_size)
			len = f->page_size;
		ck_assert_uint_lt(off, f->sizes[m]);
		for (uint64_t j = 0; j < len; j++)
			dst[i][j] = pattern(m, off + j);
		bytes += len;
		if ((int)m == f->fail_model && first + i == f->fail_page)
			res[i] = f->fail_code;
	}
	return (ssize_t)bytes;
}

static void check_page(uint32_t m, uint64_t page, uint32_t ps, const uint8_t *d, uint32_t len)
{
	for (uint32_t j = 0; j < len; j++)
		if (d[j] != pattern(m, page * ps + j))
			ck_abort_msg("model %u page %lu byte %u wrong", m, (unsigned long)page, j);
}

typedef struct evlog {
	int n;
	uint32_t m[4096];
	uint64_t p[4096];
} evlog;

static void log_evict(void *ctx, uint32_t m, uint64_t p)
{
	evlog *l = ctx;
	if (l->n < 4096) {
		l->m[l->n] = m;
		l->p[l->n] = p;
	}
	l->n++;
}

static const uint32_t *test_align;

static apbi_cache *make_cache(fake *f, uint64_t max_memory, const apbi_policy_ops *pol,
                              uint32_t nm, evlog *log)
{
	apbi_cache_config cfg = {
		.model_align = test_align,
		.max_memory = max_memory, .page_size = f->page_size, .policy = pol,
		.n_models = nm, .model_sizes = f->sizes, .load = fake_load, .load_ctx = f,
		.on_evict = log ? log_evict : NULL, .evict_ctx = log,
	};
	apbi_cache *c = NULL;
	ck_assert_int_eq(apbi_cache_new(&cfg, &c), 0);
	f->c = c;
	f->max_memory = max_memory;
	return c;
}

static void fake_init(fake *f, uint32_t ps)
{
	memset(f, 0, sizeof *f);
	f->page_size = ps;
	f->fail_model = -1;
}

/* ---- the cache against a reference model ---- */

#define MAXP 16   /* pages per model in the reference test (4 models * 16 = NN) */

typedef struct ref_cache {
	ref_pol pol;          /* node id = m * MAXP + p; pol.in: resident */
	int kind;             /* -1: pol (LRU, LFU); else queue policy q of refqueue.h */
	rpol q;
	uint32_t len[NN];
	uint64_t used, max, hits, misses, evictions;
	evlog expect;
} ref_cache;

static int rc_victim(ref_cache *r)
{
	return r->kind < 0 ? ref_victim(&r->pol) : rp_victim(&r->q);
}

static void rc_insert(ref_cache *r, int x)
{
	if (r->kind < 0) {
		ref_insert(&r->pol, x, false);
		return;
	}
	rp_insert(&r->q, x, false);
	r->pol.in[x] = true;
}

static void rc_touch(ref_cache *r, int x)
{
	if (r->kind < 0)
		ref_touch(&r->pol, x);
	else
		rp_touch(&r->q, x);
}

/* Takes x out of the reference (evicted or dropped). */
static void rc_remove(ref_cache *r, int x, bool evicted)
{
	if (r->kind < 0 && evicted)
		ref_evict(&r->pol, x);
	else if (r->kind >= 0)
		rp_remove(&r->q, x, evicted);
	r->pol.in[x] = false;
}

static bool ref_reserve(ref_cache *r, uint32_t len)
{
	while (r->used + len > r->max) {
		int v = rc_victim(r);
		if (v < 0)
			return false;
		rc_remove(r, v, true);
		r->used -= r->len[v];
		r->evictions++;
		log_evict(&r->expect, (uint32_t)v / MAXP, (uint64_t)v % MAXP);
	}
	r->used += len;
	return true;
}

/* Reference get_run: returns pages obtained or -ENOBUFS. */
static int ref_get_run(ref_cache *r, const fake *f, uint32_t m, uint64_t p, uint32_t max_n)
{
	uint64_t np = (f->sizes[m] + f->page_size - 1) / f->page_size;
	uint32_t k = 0;
	int base = (int)(m * MAXP);
	if (max_n > np - p)
		max_n = (uint32_t)(np - p);
	if (r->pol.in[base + (int)p]) {
		while (k < max_n && r->pol.in[base + (int)(p + k)]) {
			rc_touch(r, base + (int)(p + k));
			r->hits++;
			k++;
		}
		return (int)k;
	}
	while (k < max_n && (k == 0 || !r->pol.in[base + (int)(p + k)])) {
		uint64_t off = (p + k) * f->page_size;
		uint32_t len = (uint32_t)(f->sizes[m] - off < f->page_size ? f->sizes[m] - off : f->page_size);
		if (!ref_reserve(r, len))
			break;
		r->len[base + (int)(p + k)] = len;
		k++;
	}
	for (uint32_t i = 0; i < k; i++)
		rc_insert(r, base + (int)(p + i));
	r->misses += k;
	return k ? (int)k : -ENOBUFS;
}

static void ref_compare(apbi_cache *c, const ref_cache *r, const evlog *got, int step)
{
	apbi_cache_counters st;
	uint64_t pages = 0;
	apbi_cache_stats(c, &st);
	for (int i = 0; i < NN; i++)
		pages += r->pol.in[i];
	ck_assert_msg(st.hits == r->hits && st.misses == r->misses && st.evictions == r->evictions,
	              "step %d: hits %lu/%lu misses %lu/%lu evictions %lu/%lu", step,
	              (unsigned long)st.hits, (unsigned long)r->hits, (unsigned long)st.misses,
	              (unsigned long)r->misses, (unsigned long)st.evictions, (unsigned long)r->evictions);
	ck_assert_uint_eq(st.memory_used, r->used);
	ck_assert_uint_le(st.memory_used, r->max);
	ck_assert_uint_eq(st.cached_pages, pages);
	ck_assert_int_eq(got->n, r->expect.n);
	for (int i = 0; i < got->n && i < 4096; i++)
		if (got->m[i] != r->expect.m[i] || got->p[i] != r->expect.p[i])
			ck_abort_msg("step %d: eviction %d was %u/%lu, reference %u/%lu", step, i,
			             got->m[i], (unsigned long)got->p[i], r->expect.m[i],
			             (unsigned long)r->expect.p[i]);
}

/* kind: -1 for ops LRU/LFU (lfu says which), else refqueue.h's kind. */
static void cache_random(const apbi_policy_ops *ops, bool lfu, int kind, uint64_t seed)
{
	static evlog got;
	static ref_cache ref;
	apbi_page *pages[64];
	fake f;
	uint64_t s = seed;
	apbi_cache *c;
	fake_init(&f, 512);
	memset(&ref, 0, sizeof ref);
	memset(&got, 0, sizeof got);
	ref.pol.lfu = lfu;
	for (int m = 0; m < 4; m++)
		f.sizes[m] = 1 + tu_rand(&s) % (MAXP * 512);
	ref.max = 300 + tu_rand(&s) % 4000;
	c = make_cache(&f, ref.max, ops, 4, &got);
	ref.kind = kind;
	ref.q.kind = kind;
	ref.q.hand = -1;
	ref.q.cap = (int)(ref.max / 512 + 1024);   /* the cache's descriptor pool */
	ref.q.sk = kind == 3 ? apbi_sketch_new((size_t)ref.q.cap) : NULL;
	for (int i = 0; i < NN; i++)
		ref.q.ids[i] = APBI_POL_ID(i / MAXP, i % MAXP);
	for (int step = 0; step < 3000; step++) {
		uint32_t m = (uint32_t)(tu_rand(&s) % 4), n = 0, max_n = 1 + (uint32_t)(tu_rand(&s) % 5);
		uint64_t np = (f.sizes[m] + 511) / 512, p = tu_rand(&s) % np;
		if (tu_rand(&s) % 50 == 0) {
			apbi_cache_drop(c, m);
			for (int i = 0; i < MAXP; i++) {
				int x = (int)(m * MAXP) + i;
				if (!ref.pol.in[x])
					continue;
				ref.used -= ref.len[x];
				rc_remove(&ref, x, false);
			}
		} else {
			int want = ref_get_run(&ref, &f, m, p, max_n);
			int r = apbi_cache_get_run(c, m, p, max_n, pages, &n);
			ck_assert_int_eq(r < 0 ? r : (int)n, want);
			for (uint32_t i = 0; i < n; i++)
				check_page(m, p + i, 512, apbi_page_data(pages[i]), apbi_page_len(pages[i]));
			apbi_cache_unpin(c, pages, n);
		}
		ref_compare(c, &ref, &got, step);
	}
	apbi_cache_free(c);
	apbi_sketch_free(ref.q.sk);
}

START_TEST(cache_lru_matches_reference)
{
	cache_random(&apbi_policy_lru, false, -1, 11 + (uint64_t)_i * 31);
}
END_TEST

START_TEST(cache_lfu_matches_reference)
{
	cache_random(&apbi_policy_lfu, true, -1, 13 + (uint64_t)_i * 37);
}
END_TEST

/* SIEVE, S3-FIFO, 2Q, W-TinyLFU (loop index / 4 picks it, as in refqueue.h) */
START_TEST(cache_queue_policies_match_reference)
{
	static const apbi_policy_ops *const ops[] = {
		&apbi_policy_sieve, &apbi_policy_s3fifo, &apbi_policy_2q, &apbi_policy_tinylfu,
	};
	cache_random(ops[_i / 4], false, _i / 4, 17 + (uint64_t)_i * 41);
}
END_TEST

/* ---- pins, failures, single flight, views, prefetch ---- */

START_TEST(pinned_pages_are_never_evicted)
{
	fake f;
	evlog log = { 0 };
	apbi_page *held[4], *p;
	uint32_t n;
	uint8_t buf[512];
	apbi_cache *c;
	apbi_cache_counters st;
	fake_init(&f, 512);
	f.sizes[0] = 8 * 512;
	c = make_cache(&f, 4 * 512, &apbi_policy_lru, 1, &log);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(apbi_cache_get_run(c, 0, (uint64_t)i, 1, &held[i], &n), 0);
		ck_assert_uint_eq(n, 1);
	}
	/* everything pinned: the next page cannot be cached */
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 5, 1, &p, &n), -ENOBUFS);
	ck_assert_int_eq(log.n, 0);
	ck_assert_int_eq((int)apbi_cache_read_uncached(c, 0, 5, buf), 512);
	check_page(0, 5, 512, buf, 512);
	for (int i = 0; i < 4; i++)
		check_page(0, (uint64_t)i, 512, apbi_page_data(held[i]), 512);
	/* unpin page 2 only: it is the one that goes */
	apbi_cache_unpin(c, &held[2], 1);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 6, 1, &p, &n), 0);
	ck_assert_int_eq(log.n, 1);
	ck_assert_uint_eq(log.p[0], 2);
	apbi_cache_unpin(c, &p, 1);
	apbi_cache_unpin(c, held, 2);
	apbi_cache_unpin(c, &held[3], 1);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.memory_used, 4 * 512);
	/* the parked pages came back into the policy: they can be evicted now */
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 7, 1, &p, &n), 0);
	apbi_cache_unpin(c, &p, 1);
	ck_assert_int_eq(log.n, 2);
	apbi_cache_free(c);
}
END_TEST

START_TEST(failed_load_is_not_cached)
{
	fake f;
	apbi_page *pages[8];
	uint32_t n;
	apbi_cache *c;
	apbi_cache_counters st;
	fake_init(&f, 512);
	f.sizes[0] = 8 * 512;
	f.fail_model = 0;
	f.fail_page = 3;
	f.fail_code = APB_E_CHECKSUM;
	c = make_cache(&f, 64 * 512, &apbi_policy_lru, 1, NULL);
	/* a run over the bad page: the good prefix comes back */
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 1, 6, pages, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(f.calls, 1);
	apbi_cache_unpin(c, pages, n);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 3, 1, pages, &n), APB_E_CHECKSUM);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.cached_pages, 5);   /* 1, 2, 4, 5, 6 */
	ck_assert_uint_eq(st.memory_used, 5 * 512);
	ck_assert(!apbi_cache_model_resident(c, 0));
	/* neighbours are hits */
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 4, 2, pages, &n), 0);
	ck_assert_uint_eq(n, 2);
	check_page(0, 4, 512, apbi_page_data(pages[0]), 512);
	apbi_cache_unpin(c, pages, n);
	/* a whole-run failure */
	f.fail_model = -1;
	apbi_cache_drop(c, UINT32_MAX);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.memory_used, 0);
	ck_assert_uint_eq(st.cached_pages, 0);
	apbi_cache_free(c);
}
END_TEST

typedef struct sf_arg {
	apbi_cache *c;
	uint32_t ps;
	int r;
} sf_arg;

static void *sf_thread(void *arg)
{
	sf_arg *a = arg;
	apbi_page *p;
	uint32_t n;
	a->r = apbi_cache_get_run(a->c, 0, 3, 1, &p, &n);
	if (a->r == 0) {
		check_page(0, 3, a->ps, apbi_page_data(p), apbi_page_len(p));
		apbi_cache_unpin(a->c, &p, 1);
	}
	return NULL;
}

START_TEST(concurrent_misses_load_once)
{
	fake f;
	pthread_t t[6];
	sf_arg a[6];
	apbi_cache_counters st;
	fake_init(&f, 4096);
	f.sizes[0] = 16 * 4096;
	f.delay = 50000;
	/* each a[i] from c, not from a[0]: thread 0 already writes a[0].r */
	apbi_cache *c = make_cache(&f, 1 << 20, &apbi_policy_lru, 1, NULL);
	for (int i = 0; i < 6; i++) {
		a[i] = (sf_arg){ .c = c, .ps = 4096 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, sf_thread, &a[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(a[i].r, 0);
	}
	ck_assert_int_eq(f.calls, 1);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.bytes_loaded, 4096);
	ck_assert_uint_eq(st.hits + st.misses, 6);
	apbi_cache_free(c);
}
END_TEST

START_TEST(adjacent_misses_use_one_load)
{
	fake f;
	apbi_page *pages[16];
	uint32_t n;
	apbi_cache *c;
	fake_init(&f, 512);
	f.sizes[0] = 10 * 512 + 17;
	c = make_cache(&f, 1 << 20, &apbi_policy_lru, 1, NULL);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 4, 2, pages, &n), 0);
	apbi_cache_unpin(c, pages, n);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 0, 16, pages, &n), 0);
	ck_assert_uint_eq(n, 4);                 /* stops at resident page 4 */
	ck_assert_int_eq(f.calls, 2);
	apbi_cache_unpin(c, pages, n);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 6, 16, pages, &n), 0);
	ck_assert_uint_eq(n, 5);                 /* to the short last page */
	ck_assert_int_eq(f.calls, 3);
	ck_assert_uint_eq(apbi_page_len(pages[4]), 17);
	check_page(0, 10, 512, apbi_page_data(pages[4]), 17);
	apbi_cache_unpin(c, pages, n);
	ck_assert(apbi_cache_model_resident(c, 0));
	apbi_cache_free(c);
}
END_TEST

START_TEST(miss_loads_whole_unit)
{
	static const uint32_t align[1] = { 4 };
	fake f;
	apbi_page *pages[2];
	uint32_t n;
	apbi_cache *c;
	apbi_cache_counters st;
	fake_init(&f, 512);
	f.sizes[0] = 10 * 512;
	test_align = align;
	c = make_cache(&f, 1 << 20, &apbi_policy_lru, 1, NULL);
	test_align = NULL;
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 5, 1, pages, &n), 0);
	ck_assert_uint_eq(n, 1);
	check_page(0, 5, 512, apbi_page_data(pages[0]), 512);
	apbi_cache_unpin(c, pages, n);
	ck_assert_int_eq(f.calls, 1);
	ck_assert_int_eq(f.pages_loaded, 4);          /* pages 4..7 */
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.misses, 1);
	ck_assert_uint_eq(st.prefetches, 3);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 6, 2, pages, &n), 0);
	ck_assert_uint_eq(n, 2);
	apbi_cache_unpin(c, pages, n);
	ck_assert_int_eq(f.calls, 1);
	/* the last unit is short: pages 8, 9 */
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 9, 1, pages, &n), 0);
	apbi_cache_unpin(c, pages, n);
	ck_assert_int_eq(f.pages_loaded, 6);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.hits, 2);
	ck_assert_uint_eq(st.prefetch_hits, 2);
	ck_assert_uint_eq(st.cached_pages, 6);
	apbi_cache_free(c);
}
END_TEST

START_TEST(view_replaces_pages)
{
	fake f;
	evlog log = { 0 };
	apbi_page *pages[8];
	const uint8_t *d, *d2;
	uint32_t n;
	apbi_cache *c;
	apbi_cache_counters st, st2;
	fake_init(&f, 512);
	f.sizes[0] = 5 * 512 + 100;   /* 6 pages */
	f.sizes[1] = 3 * 512;
	f.sizes[2] = 20 * 512;
	c = make_cache(&f, 10 * 512, &apbi_policy_lru, 3, &log);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 2, 2, pages, &n), 0);   /* 2 misses */
	apbi_cache_unpin(c, pages, n);
	ck_assert_int_eq(apbi_cache_get_model(c, 0, &d), 0);              /* 2 hits, 4 misses */
	for (int i = 0; i < 6; i++)
		check_page(0, (uint64_t)i, 512, d + i * 512, i == 5 ? 100 : 512);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.memory_used, f.sizes[0]);   /* counted once */
	ck_assert_uint_eq(st.cached_pages, 6);
	ck_assert_uint_eq(st.hits, 2);
	ck_assert_uint_eq(st.misses, 6);
	ck_assert(apbi_cache_model_resident(c, 0));
	/* a second view of the same model is the same buffer, all hits */
	ck_assert_int_eq(apbi_cache_get_model(c, 0, &d2), 0);
	ck_assert_ptr_eq(d, d2);
	/* reads through the view's pages */
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 4, 8, pages, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_eq(apbi_page_data(pages[0]), d + 4 * 512);
	apbi_cache_unpin(c, pages, n);
	/* too large: nothing changes */
	apbi_cache_stats(c, &st);
	ck_assert_int_eq(apbi_cache_get_model(c, 2, &d2), -EFBIG);
	apbi_cache_stats(c, &st2);
	ck_assert_mem_eq(&st, &st2, sizeof st);
	/* pinned view survives pressure: only 4 pages are free */
	ck_assert_int_eq(apbi_cache_get_model(c, 1, &d2), 0);
	ck_assert_int_eq(apbi_cache_get_run(c, 2, 0, 8, pages, &n), 0);
	ck_assert_uint_eq(n, 1);   /* 10*512 - 2660 - 1536 leaves room for 1 */
	apbi_cache_unpin(c, pages, n);
	ck_assert(apbi_cache_release(c, d));
	ck_assert(apbi_cache_release(c, d));
	ck_assert(!apbi_cache_release(c, d));
	ck_assert(apbi_cache_release(c, d2));
	/* now the view goes as a whole, counted per page */
	log.n = 0;
	ck_assert_int_eq(apbi_cache_get_run(c, 2, 1, 8, pages, &n), 0);
	apbi_cache_unpin(c, pages, n);
	n = 0;
	for (int i = 0; i < log.n; i++)
		n += log.m[i] == 0;
	ck_assert_uint_eq(n, 6);   /* the whole view at once */
	apbi_cache_stats(c, &st);
	ck_assert_uint_le(st.memory_used, 10 * 512);
	apbi_cache_drop(c, UINT32_MAX);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.memory_used, 0);
	apbi_cache_free(c);
}
END_TEST

/* LFU: one get_model (or one read call) counts once for a view, not per page */
START_TEST(lfu_counts_a_view_once_per_call)
{
	fake f;
	apbi_page *pages[4];
	const uint8_t *d;
	uint32_t n;
	apbi_cache *c;
	fake_init(&f, 512);
	for (int m = 0; m < 3; m++)
		f.sizes[m] = 4 * 512;
	c = make_cache(&f, 10 * 512, &apbi_policy_lfu, 3, NULL);
	for (int k = 0; k < 2; k++) {          /* view of model 0: key 2 */
		ck_assert_int_eq(apbi_cache_get_model(c, 0, &d), 0);
		ck_assert(apbi_cache_release(c, d));
	}
	for (int k = 0; k < 3; k++) {          /* model 1's pages: key 3 each */
		ck_assert_int_eq(apbi_cache_get_run(c, 1, 0, 4, pages, &n), 0);
		ck_assert_uint_eq(n, 4);
		apbi_cache_unpin(c, pages, n);
	}
	ck_assert_int_eq(apbi_cache_get_run(c, 2, 0, 4, pages, &n), 0);
	ck_assert_uint_eq(n, 4);
	apbi_cache_unpin(c, pages, n);
	ck_assert(!apbi_cache_model_resident(c, 0));
	ck_assert(apbi_cache_model_resident(c, 1));
	apbi_cache_free(c);
}
END_TEST

START_TEST(prefetch_respects_recent_pages)
{
	fake f;
	evlog log = { 0 };
	apbi_page *pages[8];
	uint32_t n;
	uint64_t stamp;
	apbi_cache *c;
	apbi_cache_counters st;
	fake_init(&f, 512);
	f.sizes[0] = 4 * 512;
	f.sizes[1] = 8 * 512;
	c = make_cache(&f, 6 * 512, &apbi_policy_lru, 2, &log);
	stamp = apbi_cache_now(c);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 0, 4, pages, &n), 0);   /* used after stamp */
	apbi_cache_unpin(c, pages, n);
	/* only the free 2 pages may be taken */
	ck_assert_uint_eq(apbi_cache_prefetch(c, 1, 8, 4, stamp), 0);   /* past the end */
	ck_assert_uint_eq(apbi_cache_prefetch(c, 5, 0, 4, stamp), 0);   /* no such model */
	ck_assert_uint_eq(apbi_cache_prefetch(c, 1, 0, 8, stamp), 2);
	ck_assert_int_eq(log.n, 0);
	/* a later prefetch may evict model 0's pages but not the unused prefetches */
	ck_assert_uint_eq(apbi_cache_prefetch(c, 1, 0, 8, apbi_cache_now(c) + 1), 0);
	ck_assert_int_eq(log.n, 0);
	/* reading prefetched pages counts prefetch hits */
	ck_assert_int_eq(apbi_cache_get_run(c, 1, 0, 2, pages, &n), 0);
	ck_assert_uint_eq(n, 2);
	apbi_cache_unpin(c, pages, n);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.prefetches, 2);
	ck_assert_uint_eq(st.prefetch_hits, 2);
	ck_assert_uint_eq(st.hits, 2);
	/* now model 0 is older than a new request: it makes room */
	ck_assert_uint_eq(apbi_cache_prefetch(c, 1, 2, 4, apbi_cache_now(c) + 1), 4);
	ck_assert_int_eq(log.n, 4);
	ck_assert_uint_eq(log.m[0], 0);
	/* an unused prefetch is the first victim of a demand miss */
	log.n = 0;
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 0, 1, pages, &n), 0);
	apbi_cache_unpin(c, pages, n);
	ck_assert_int_eq(log.n, 1);
	ck_assert_uint_eq(log.m[0], 1);
	ck_assert_uint_ge(log.p[0], 2);
	/* that eviction wasted a prefetch; the two read before were not wasted */
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.prefetches, 6);
	ck_assert_uint_eq(st.prefetch_hits, 2);
	ck_assert_uint_eq(st.prefetch_wasted, 1);
	apbi_cache_free(c);
}
END_TEST

/* ---- threads ---- */

typedef struct th_arg {
	apbi_cache *c;
	fake *f;
	uint64_t seed;
	int views;
} th_arg;

static void *stress_thread(void *arg)
{
	th_arg *a = arg;
	apbi_page *pages[8];
	uint64_t s = a->seed;
	for (int i = 0; i < 3000; i++) {
		uint32_t m = (uint32_t)(tu_rand(&s) % 4), n = 0;
		uint64_t np = apbi_cache_npages(a->c, m), p = tu_rand(&s) % np;
		int r;
		if (tu_rand(&s) % 100 == 0) {
			const uint8_t *d;
			if (apbi_cache_get_model(a->c, m, &d) == 0) {
				check_page(m, 0, a->f->page_size, d, (uint32_t)a->f->sizes[m]);
				a->views++;
				ck_assert(apbi_cache_release(a->c, d));
			}
			continue;
		}
		r = apbi_cache_get_run(a->c, m, p, 1 + (uint32_t)(tu_rand(&s) % 8), pages, &n);
		if (r == -ENOBUFS) {
			uint8_t buf[1024];
			ck_assert_int_eq((int)apbi_cache_read_uncached(a->c, m, p, buf),
			                 (int)apbi_cache_page_len(a->c, m, p));
			check_page(m, p, a->f->page_size, buf, apbi_cache_page_len(a->c, m, p));
			continue;
		}
		ck_assert_int_eq(r, 0);
		for (uint32_t k = 0; k < n; k++)
			check_page(m, p + k, a->f->page_size, apbi_page_data(pages[k]),
			           apbi_page_len(pages[k]));
		if (tu_rand(&s) % 3 == 0)
			usleep(10);
		apbi_cache_unpin(a->c, pages, n);
		if (i % 64 == 0) {
			apbi_cache_counters st;
			apbi_cache_stats(a->c, &st);
			ck_assert_uint_le(st.memory_used, a->f->max_memory);
		}
	}
	return NULL;
}

static void stress(const apbi_policy_ops *ops)
{
	fake f;
	pthread_t t[4];
	th_arg a[4];
	apbi_cache *c;
	apbi_cache_counters st;
	fake_init(&f, 1024);
	f.sizes[0] = 40 * 1024 + 3;
	f.sizes[1] = 3 * 1024;
	f.sizes[2] = 1000;
	f.sizes[3] = 17 * 1024;
	c = make_cache(&f, 6 * 1024, ops, 4, NULL);
	for (int i = 0; i < 4; i++) {
		a[i] = (th_arg){ .c = c, .f = &f, .seed = 100 + (uint64_t)i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, stress_thread, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	apbi_cache_stats(c, &st);
	ck_assert_uint_le(st.memory_used, 6 * 1024);
	ck_assert_uint_gt(st.evictions, 100);
	apbi_cache_drop(c, UINT32_MAX);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.memory_used, 0);   /* no pin or budget leaked */
	ck_assert_uint_eq(st.cached_pages, 0);
	apbi_cache_free(c);
}

START_TEST(threads_lru)
{
	stress(&apbi_policy_lru);
}
END_TEST

START_TEST(threads_lfu)
{
	stress(&apbi_policy_lfu);
}
END_TEST

START_TEST(threads_every_policy)
{
	stress(apbi_policy_get((apb_eviction)_i));
}
END_TEST

/* Hits of hit_thread: pins by CAS and brief holds, on resident pages. */
#define HIT_THREADS 24   /* more than HIT_SLOTS (16): some threads share a slot */
#define HITS_EACH 20000

static void *hit_thread(void *arg)
{
	th_arg *a = arg;
	apbi_page *pages[4];
	uint64_t s = a->seed;
	for (int i = 0; i < HITS_EACH; i++) {
		uint32_t n = 0;
		bool brief = false;
		uint64_t p = tu_rand(&s) % 64;
		int r = i % 2 ? apbi_cache_get_brief(a->c, 0, p, 1, pages, &n, &brief)
		              : apbi_cache_get_run(a->c, 0, p, 1, pages, &n);
		ck_assert_int_eq(r, 0);
		ck_assert_uint_eq(n, 1);
		check_page(0, p, a->f->page_size, apbi_page_data(pages[0]), apbi_page_len(pages[0]));
		if (i % 2)
			apbi_cache_put_brief(a->c, pages, n, brief);
		else
			apbi_cache_unpin(a->c, pages, n);
	}
	return NULL;
}

/*
 * Issue 14: hits taken without the lock by more threads than there are
 * hit slots (threads share slots, slots fill while their other thread
 * drains them) are each counted exactly once, none is lost, and the
 * pages stay whole.
 */
START_TEST(hits_of_more_threads_than_slots_counted_once)
{
	fake f;
	pthread_t t[HIT_THREADS];
	th_arg a[HIT_THREADS];
	apbi_cache_counters st;
	apbi_page *pages[1];
	uint32_t n;
	apbi_cache *c;
	fake_init(&f, 1024);
	f.sizes[0] = 64 * 1024;
	c = make_cache(&f, 64 * 1024, &apbi_policy_tinylfu, 1, NULL);
	for (uint64_t p = 0; p < 64; p++) {
		ck_assert_int_eq(apbi_cache_get_run(c, 0, p, 1, pages, &n), 0);
		apbi_cache_unpin(c, pages, n);
	}
	for (int i = 0; i < HIT_THREADS; i++) {
		a[i] = (th_arg){ .c = c, .f = &f, .seed = 7 + (uint64_t)i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, hit_thread, &a[i]), 0);
	}
	for (int i = 0; i < HIT_THREADS; i++)
		pthread_join(t[i], NULL);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.misses, 64);
	ck_assert_uint_eq(st.hits, (uint64_t)HIT_THREADS * HITS_EACH);
	ck_assert_uint_eq(st.evictions, 0);
	apbi_cache_drop(c, UINT32_MAX);
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.memory_used, 0);   /* no pin or hold left behind */
	apbi_cache_free(c);
}
END_TEST

/* A broken invariant aborts (CACHE_CHECK, cache_priv.h): a second unpin. */
START_TEST(unpin_without_pin_aborts)
{
	fake f;
	apbi_page *p;
	uint32_t n;
	apbi_cache *c;
	fake_init(&f, 512);
	f.sizes[0] = 4096;
	c = make_cache(&f, 4096, &apbi_policy_lru, 1, NULL);
	ck_assert_int_eq(apbi_cache_get_run(c, 0, 0, 1, &p, &n), 0);
	apbi_cache_unpin(c, &p, 1);
	apbi_cache_unpin(c, &p, 1);   /* pins would go below zero: SIGABRT */
	apbi_cache_free(c);
}
END_TEST

START_TEST(bad_config_is_refused)
{
	fake f;
	apbi_cache *c = (apbi_cache *)&f;
	apbi_cache_config cfg = {
		.max_memory = 4096, .page_size = 1000, .policy = &apbi_policy_lru,
		.n_models = 1, .model_sizes = f.sizes, .load = fake_load, .load_ctx = &f,
	};
	ck_assert_int_eq(apbi_cache_new(&cfg, &c), -EINVAL);
	ck_assert_ptr_null(c);
	cfg.page_size = 256;
	ck_assert_int_eq(apbi_cache_new(&cfg, &c), -EINVAL);
	cfg.page_size = 512;
	cfg.max_memory = 0;
	ck_assert_int_eq(apbi_cache_new(&cfg, &c), -EINVAL);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");
	tcase_add_loop_test(tc, cache_lru_matches_reference, 0, 6);
	tcase_add_loop_test(tc, cache_lfu_matches_reference, 0, 6);
	tcase_add_loop_test(tc, cache_queue_policies_match_reference, 0, 16);
	tcase_add_test(tc, pinned_pages_are_never_evicted);
	tcase_add_test(tc, failed_load_is_not_cached);
	tcase_add_test(tc, concurrent_misses_load_once);
	tcase_add_test(tc, adjacent_misses_use_one_load);
	tcase_add_test(tc, miss_loads_whole_unit);
	tcase_add_test(tc, view_replaces_pages);
	tcase_add_test(tc, prefetch_respects_recent_pages);
	tcase_add_test(tc, lfu_counts_a_view_once_per_call);
	tcase_add_test(tc, bad_config_is_refused);
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	{
		const char *fork = getenv("CK_FORK");
		if (!fork || strcmp(fork, "no"))   /* the abort needs a forked test */
			tcase_add_test_raise_signal(tc, unpin_without_pin_aborts, SIGABRT);
	}
#endif
	suite_add_tcase(s, tc);
	tc = tcase_create("threads");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, threads_lru);
	tcase_add_test(tc, threads_lfu);
	tcase_add_loop_test(tc, threads_every_policy, APB_EVICT_SIEVE, APB_EVICT_COUNT);
	tcase_add_test(tc, hits_of_more_threads_than_slots_counted_once);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
