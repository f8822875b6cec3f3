/*
 * block.c - the one place where stored bytes become verified bytes: the
 * page cache's loader for every object (models, block tables, indexes)
 * and the uncached block reads of apb_paged_stream.
 *
 * Invariants: a unit's bytes are used (left in a cache page, copied, handed
 * to a stream) only after their XXH3-64 matched the unit's checksum, which
 * comes from the manifest (an index, a block-less model) or from a cache
 * page of the object above it (a table chunk, an index), itself loaded by
 * this same code; so trust flows from the manifest down, one level per
 * object, and never skips one.  Units no larger than a page are read
 * straight into the cache's pages with one vectored read; larger units go
 * through a load buffer (SCRATCH_N kept buffers of SCRATCH_SIZE; a unit
 * over that gets a one-off buffer, outside the budget, as long as the
 * load).  A failed unit marks only the pages it covers.  Verified stored
 * ranges are offered to the source (apbi_commit_add: adjacent blocks as
 * one range of up to 1 MiB) for a disk tier.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <xxhash.h>

#include "block_priv.h"
#include "internal.h"



static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- load buffers ---- */

/** See block_priv.h. */
uint8_t *apbi_scratch_get(apbi_blocks *bl, uint64_t len, bool *kept)
{
	uint8_t *p = NULL;
	*kept = false;
	if (len <= SCRATCH_SIZE) {
		pthread_mutex_lock(&bl->lock);
		for (unsigned i = 0; i < SCRATCH_N && !p; i++) {
			if (bl->busy[i])
				continue;
			if (!bl->scratch[i]) {
				void *m = mmap(NULL, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
				               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				if (m == MAP_FAILED)
					break;
				bl->scratch[i] = m;
			}
			bl->busy[i] = true;
			p = bl->scratch[i];
		}
		pthread_mutex_unlock(&bl->lock);
		if (p) {
			*kept = true;
			return p;
		}
	}
	if (len > SIZE_MAX || !(p = malloc((size_t)len)))
		apbi_set_error(-ENOMEM, "no memory for a %llu-byte load buffer",
		               (unsigned long long)len);
	return p;
}

/** See block_priv.h. */
void apbi_scratch_put(apbi_blocks *bl, uint8_t *p, bool kept)
{
	if (!kept) {
		free(p);
		return;
	}
	pthread_mutex_lock(&bl->lock);
	for (unsigned i = 0; i < SCRATCH_N; i++)
		if (bl->scratch[i] == p)
			bl->busy[i] = false;
	pthread_mutex_unlock(&bl->lock);
}

/* ---- verification ---- */

static const char *what(const extent *e)
{
	return e->kind == OBJ_DATA ? "block" : e->kind == OBJ_TABLE ? "block table chunk" :
	       "block table index";
}

/** See block_priv.h. */
int apbi_unit_failed(apbi_blocks *bl, const extent *e, uint64_t u, int code, unit_bad_fn bad,
                     void *ctx)
{
	const apbi_model *mod = &bl->m->models[e->model];
	uint64_t a = u * e->unit, b = min64(a + e->unit, e->size);
	char why[300];
	snprintf(why, sizeof why, "%s", code == APB_E_CHECKSUM ? "checksum mismatch" : apb_last_error());
	apbi_blocks_note_bad(bl, e->model, e->kind == OBJ_DATA ? APB_WHERE_BLOCK : APB_WHERE_TABLE,
	                     u, code);
	apbi_set_error(code, "model \"%.200s\": %s %llu (bytes %llu-%llu): %s", mod->name,
	               what(e), (unsigned long long)u, (unsigned long long)a,
	               (unsigned long long)(b - 1), why);
	return bad ? bad(ctx, u, code) : 0;
}

/* The checksum of unit u of e. */
static int unit_sum(const extent *e, cursor *cur, uint64_t u, uint64_t *sum)
{
	const uint8_t *ent;
	uint64_t v;
	int r;
	if (e->sums_obj == APBI_NO_OBJ) {
		*sum = e->sum;
		return 0;
	}
	if ((r = apbi_cursor_entry(cur, u, &ent)) < 0)
		return r;
	memcpy(&v, ent, 8);
	*sum = le64toh(v);
	return 0;
}

/*
 * Reads units [u0, u1) of e, stored from byte u0 * unit on, into the
 * segments of iov (each holding whole units, together exactly the units'
 * bytes), then checks every unit; *stored is set to the bytes read from
 * the source.  Returns 0, a bad() value that stopped it, or a negative
 * code for the whole run (I/O, or the checksums could not be loaded: that
 * failure was recorded where it happened).
 */
static int read_units(apbi_blocks *bl, const extent *e, uint64_t u0, uint64_t u1,
                      const struct iovec *iov, int niov, unit_bad_fn bad, void *ctx,
                      uint64_t *stored)
{
	uint64_t u = u0;
	cursor cur;
	apbi_commit_run run = { 0 };
	int r;
	if (e->coded)
		return apbi_read_coded(bl, e, u0, u1, iov, niov, bad, ctx, stored);
	*stored = min64(u1 * e->unit, e->size) - u0 * e->unit;
	r = apbi_source_readv(bl->src, iov, niov, e->base + u0 * e->unit);
	if (r < 0) {
		char why[300];
		snprintf(why, sizeof why, "%s", apb_last_error());
		return apbi_set_error(r, "model \"%.200s\": reading its %s %llu: %s",
		                      bl->m->models[e->model].name, what(e),
		                      (unsigned long long)u0, why);
	}
	apbi_cursor_init(&cur, bl, e->sums_obj, e->entry_size);
	for (int i = 0; i < niov && r == 0; i++) {
		const uint8_t *p = iov[i].iov_base;
		uint64_t left = iov[i].iov_len;
		while (left && r == 0 && u < u1) {
			uint64_t len = min64(e->unit, e->size - u * e->unit), sum;
			if ((r = unit_sum(e, &cur, u, &sum)) < 0)
				break;
			if (apbi_xxh3(p, (size_t)len) == sum)
				apbi_commit_add(bl->src, &run, e->base + u * e->unit, p, (size_t)len);
			else
				r = apbi_unit_failed(bl, e, u, APB_E_CHECKSUM, bad, ctx);
			p += len;
			left -= len < left ? len : left;
			u++;
		}
	}
	apbi_commit_flush(bl->src, &run);
	apbi_cursor_done(&cur);
	return r;
}

/* ---- the cache's loader ---- */

typedef struct page_marks {
	uint64_t first, unit;
	uint32_t n, shift;
	int *res;
} page_marks;

/* Marks the pages that unit u covers as failed with code. */
static int mark_pages(void *ctx, uint64_t u, int code)
{
	page_marks *pm = ctx;
	uint64_t a = (u * pm->unit) >> pm->shift, b = (u * pm->unit + pm->unit - 1) >> pm->shift;
	for (uint64_t p = a; p <= b; p++)
		if (p >= pm->first && p - pm->first < pm->n)
			pm->res[p - pm->first] = code;
	return 0;
}

/* Pages hold whole units (or need no checks): one vectored read into them. */
static ssize_t load_direct(apbi_blocks *bl, const extent *e, uint64_t first, uint32_t n,
                           uint8_t *const dst[], int res[])
{
	struct iovec iov[APBI_CACHE_MAX_RUN];
	uint64_t off = first << bl->shift, end = min64((first + n) << bl->shift, e->size);
	page_marks pm = { first, e->unit, n, bl->shift, res };
	uint64_t stored = end - off;
	int r;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t ps = (first + i) << bl->shift;
		iov[i].iov_base = dst[i];
		iov[i].iov_len = (size_t)min64(bl->page_size, end - ps);
	}
	if (!e->verify)
		r = apbi_source_readv(bl->src, iov, (int)n, e->base + off);
	else
		r = read_units(bl, e, off / e->unit, (end + e->unit - 1) / e->unit, iov, (int)n,
		               mark_pages, &pm, &stored);
	return r < 0 ? r : (ssize_t)stored;
}

/* Units larger than pages: read the covering units into a buffer, copy good pages. */
static ssize_t load_buffered(apbi_blocks *bl, const extent *e, uint64_t first, uint32_t n,
                             uint8_t *const dst[], int res[])
{
	uint64_t off = first << bl->shift, end = min64((first + n) << bl->shift, e->size);
	uint64_t u0 = off / e->unit, u1 = (end + e->unit - 1) / e->unit;
	uint64_t lo = u0 * e->unit, hi = min64(u1 * e->unit, e->size);
	page_marks pm = { first, e->unit, n, bl->shift, res };
	bool kept;
	uint8_t *buf = apbi_scratch_get(bl, hi - lo, &kept);
	struct iovec iov;
	int r;
	if (!buf)
		return -ENOMEM;
	iov.iov_base = buf;
	iov.iov_len = (size_t)(hi - lo);
	uint64_t stored = 0;
	r = read_units(bl, e, u0, u1, &iov, 1, mark_pages, &pm, &stored);
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		uint64_t ps = (first + i) << bl->shift;
		if (!res[i])
			memcpy(dst[i], buf + (ps - lo), (size_t)min64(bl->page_size, end - ps));
	}
	apbi_scratch_put(bl, buf, kept);
	return r < 0 ? r : (ssize_t)stored;
}

/* Writes chunk j's checksum h into the index pages it falls in, if any. */
static void put_index_entry(const apbi_blocks *bl, uint64_t first, uint32_t n,
                            uint8_t *const dst[], uint64_t j, uint64_t h)
{
	uint64_t at = j * 8, p = at >> bl->shift;
	h = htole64(h);
	if (p >= first && p - first < n)
		memcpy(dst[p - first] + (at & (bl->page_size - 1)), &h, 8);
}

/*
 * The index of a table written without one (an older writer): computed
 * from one pass over the whole table, which is checked against
 * blocks.table_checksum (when the manifest has it) before any entry is
 * used.  A mismatch fails every page: nothing computed is kept.
 */
static ssize_t load_virtual_index(apbi_blocks *bl, const extent *e, uint64_t first, uint32_t n,
                                  uint8_t *const dst[], int res[])
{
	const apbi_model *mod = &bl->m->models[e->model];
	extent t;
	bool kept;
	uint8_t *buf;
	XXH3_state_t *st = XXH3_createState();
	int r = 0;
	apbi_extent_of(bl, e->obj - 1, &t);
	if (!st || !(buf = apbi_scratch_get(bl, SCRATCH_SIZE, &kept))) {
		XXH3_freeState(st);
		return apbi_set_error(-ENOMEM, "out of memory for a block table check");
	}
	XXH3_64bits_reset(st);
	for (uint64_t pos = 0; pos < t.size && r == 0; pos += SCRATCH_SIZE) {
		uint64_t len = min64(SCRATCH_SIZE, t.size - pos);
		if ((r = apbi_source_read(bl->src, buf, (size_t)len, t.base + pos)) < 0)
			break;
		XXH3_64bits_update(st, buf, (size_t)len);
		for (uint64_t c = 0; c < len; c += APBI_TABLE_CHUNK)
			put_index_entry(bl, first, n, dst, (pos + c) / APBI_TABLE_CHUNK,
			                apbi_xxh3(buf + c, (size_t)min64(APBI_TABLE_CHUNK, len - c)));
	}
	if (r == 0 && mod->has_table_checksum && XXH3_64bits_digest(st) != mod->table_checksum) {
		apbi_blocks_note_bad(bl, e->model, APB_WHERE_TABLE, 0, APB_E_CHECKSUM);
		apbi_set_error(APB_E_CHECKSUM, "model \"%.200s\": block table (%llu bytes) does not "
		               "match the manifest's blocks.table_checksum", mod->name,
		               (unsigned long long)t.size);
		for (uint32_t i = 0; i < n; i++)
			res[i] = APB_E_CHECKSUM;
	}
	apbi_scratch_put(bl, buf, kept);
	XXH3_freeState(st);
	return r < 0 ? r : (ssize_t)t.size;
}

static uint64_t now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* Counts one load of us microseconds in the latency histogram. */
static void count_load(apbi_blocks *bl, uint64_t us)
{
	unsigned b = 0;
	while (b < APB_LATENCY_BUCKETS - 1 && us > apb_latency_bound_us(b))
		b++;
	__atomic_add_fetch(&bl->loads, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bl->load_us_sum, us, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bl->load_lat[b], 1, __ATOMIC_RELAXED);
}

/** See block.h. */
ssize_t apbi_blocks_load(void *ctx, uint32_t obj, uint64_t first, uint32_t n,
                         uint8_t *const dst[], int res[])
{
	apbi_blocks *bl = ctx;
	uint64_t t0 = now_us();
	ssize_t r;
	extent e;
	if (obj >= bl->nobj || n == 0 || n > APBI_CACHE_MAX_RUN)
		return apbi_set_error(-EINVAL, "block load: bad arguments");
	apbi_extent_of(bl, obj, &e);
	if (e.virtual_index)
		r = load_virtual_index(bl, &e, first, n, dst, res);
	else if (!e.verify || e.unit <= bl->page_size)
		r = load_direct(bl, &e, first, n, dst, res);
	else
		r = load_buffered(bl, &e, first, n, dst, res);
	count_load(bl, now_us() - t0);
	return r;
}

/** See block.h. */
void apbi_blocks_load_stats(const apbi_blocks *bl, uint64_t *loads, uint64_t *us_sum,
                            uint64_t lat[APB_LATENCY_BUCKETS])
{
	*loads = __atomic_load_n(&bl->loads, __ATOMIC_RELAXED);
	*us_sum = __atomic_load_n(&bl->load_us_sum, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < APB_LATENCY_BUCKETS; i++)
		lat[i] = __atomic_load_n(&bl->load_lat[i], __ATOMIC_RELAXED);
}

/* ---- uncached block reads (apb_paged_stream) ---- */

typedef struct stream_bad {
	apbi_bad_fn fn;
	void *ctx;
	const apbi_blocks *bl;
	uint32_t m;
	int first;           /* code of the first bad block */
} stream_bad;

static int stream_mark(void *ctx, uint64_t u, int code)
{
	stream_bad *sb = ctx;
	uint64_t bs = apbi_blocks_block_size(sb->bl, sb->m), size = sb->bl->m->models[sb->m].size;
	apb_block_error e = { code, sb->m, APB_WHERE_BLOCK, u, u * bs, min64(bs, size - u * bs) };
	if (!sb->first)
		sb->first = code;
	return sb->fn ? sb->fn(sb->ctx, &e) : code;
}

/** See block.h. */
int apbi_blocks_read(apbi_blocks *bl, uint32_t m, uint64_t b0, uint64_t nb, uint8_t *buf,
                     apbi_bad_fn bad, void *ctx)
{
	stream_bad sb = { bad, ctx, bl, m, 0 };
	uint64_t stored;
	extent e;
	struct iovec iov;
	int r;
	apbi_extent_of(bl, m, &e);
	iov.iov_base = buf;
	iov.iov_len = (size_t)(min64((b0 + nb) * e.unit, e.size) - min64(b0 * e.unit, e.size));
	if (!iov.iov_len)
		return 0;
	if (!e.verify)
		return apbi_set_error(-EINVAL, "block read: the model has no checksums");
	r = read_units(bl, &e, b0, b0 + nb, &iov, 1, stream_mark, &sb, &stored);
	return r ? r : sb.first;
}

/** See block.h. */
int apbi_blocks_read_raw(apbi_blocks *bl, uint32_t m, uint64_t off, uint64_t len, uint8_t *buf)
{
	extent e;
	apbi_extent_of(bl, m, &e);
	if (off > e.size || len > e.size - off)
		return apbi_set_error(-EINVAL, "raw read: range outside the model");
	return apbi_source_read(bl->src, buf, (size_t)len, e.base + off);
}
