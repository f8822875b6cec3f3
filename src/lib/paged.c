/*
 * paged.c - the PagedBundle API (apb_paged_*): a validated bundle file
 * served through the page cache (cache.c) and the prefetcher (prefetch.c).
 *
 * Invariants: the manifest is decoded and validated once at open and is
 * immutable afterwards; every byte that reaches a caller or the cache was
 * read through apbi_pread_full and, unless the bundle is legacy (no
 * checksums), verified block by block first: a page is loaded together
 * with the whole blocks covering it, and a page touching a bad block is
 * refused with APB_E_CHECKSUM and never cached, while its neighbours stay
 * usable.  Block tables are loaded lazily, the first time a model is read,
 * and checked against the manifest's table_checksum when it has one (a
 * table that fails is never kept: the next load reads it again); at most
 * SUMS_KEEP bytes of them stay resident (beyond that a table is reloaded
 * per load), so metadata stays bounded for any bundle.  A model without a
 * table is one block, verified against the model checksum.  open() starts
 * no thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache.h"
#include "format.h"
#include "internal.h"
#include "prefetch.h"

#define SUMS_KEEP (8u << 20)
#define RUN 64u
#define SCRATCH_N 4u            /* load buffers kept for coalesced reads */
#define SCRATCH_SIZE (1u << 20) /* ... of this size; also the coalescing limit */
#define LOAD_MAX 64u            /* pages one load_pages call takes (cache: MAX_RUN) */

struct apb_paged {
	int fd;
	apbi_manifest *man;
	apb_paging_config cfg;
	uint64_t *sizes;
	uint32_t *align;          /* pages per checksum block (load unit) */
	uint64_t **sums;          /* per model, published once with a CAS */
	uint64_t sums_bytes;      /* bytes of kept tables */
	uint64_t checksum_failures;
	apbi_cache *cache;
	apbi_prefetch *pf;        /* NULL when prefetch is off */
	pthread_mutex_t scratch_lock;
	uint8_t *scratch[SCRATCH_N]; /* mmap'ed on first use */
	bool scratch_busy[SCRATCH_N];
};

struct apb_pinned {
	uint32_t n;
	apbi_page *pages[];
};

/** Fills cfg with the documented defaults. */
void apb_paging_config_init(apb_paging_config *cfg)
{
	cfg->max_memory = APB_DEFAULT_MAX_MEMORY;
	cfg->page_size = APB_DEFAULT_PAGE_SIZE;
	cfg->prefetch = true;
	cfg->prefetch_count = APB_DEFAULT_PREFETCH_COUNT;
	cfg->eviction = APB_EVICT_LRU;
}

/** hits / (hits + misses), 0.0 without lookups. */
double apb_paging_stats_hit_rate(const apb_paging_stats *s)
{
	uint64_t n = s ? s->hits + s->misses : 0;
	return n ? (double)s->hits / (double)n : 0.0;
}

/*
 * Block table of model m: the kept one, or a fresh copy (*owned set, the
 * caller frees it) once SUMS_KEEP is used up.  NULL with 0: no table.  A
 * table that fails its manifest checksum is neither kept nor used: the
 * load fails with APB_E_CHECKSUM (counted as a checksum failure) and the
 * next load reads the table again, so one bad read does not outlive itself.
 */
static int get_sums(apb_paged *pb, uint32_t m, uint64_t **out, bool *owned)
{
	uint64_t *t = __atomic_load_n(&pb->sums[m], __ATOMIC_ACQUIRE), *expect = NULL;
	uint64_t bytes = pb->man->models[m].n_blocks * 8;
	int r;
	*owned = false;
	*out = t;
	if (t || !pb->man->models[m].has_block_table)
		return 0;
	if ((r = apbi_load_block_sums(pb->fd, pb->man, m, &t)) < 0) {
		if (r == APB_E_CHECKSUM)
			__atomic_add_fetch(&pb->checksum_failures, 1, __ATOMIC_RELAXED);
		return r;
	}
	*out = t;
	if (__atomic_add_fetch(&pb->sums_bytes, bytes, __ATOMIC_RELAXED) > SUMS_KEEP) {
		__atomic_sub_fetch(&pb->sums_bytes, bytes, __ATOMIC_RELAXED);
		*owned = true;
	} else if (!__atomic_compare_exchange_n(&pb->sums[m], &expect, t, false,
	                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		__atomic_sub_fetch(&pb->sums_bytes, bytes, __ATOMIC_RELAXED);
		free(t);
		*out = expect;   /* another thread published first */
	}
	return 0;
}

/*
 * Verifies buf = model bytes [lo, hi) (whole blocks) against sums; marks
 * res[i] of the pages first..first+n that touch a bad block.
 */
static void verify_with(apb_paged *pb, uint32_t m, const uint64_t *sums, const uint8_t *buf,
                        uint64_t lo, uint64_t hi, uint64_t first, uint32_t n, int res[])
{
	const apbi_model *mod = &pb->man->models[m];
	uint64_t bs = mod->has_block_table ? mod->block_size : mod->size;
	uint64_t shift = (uint64_t)__builtin_ctz(pb->cfg.page_size);
	for (uint64_t b = lo; b < hi; b += bs) {
		uint64_t blen = hi - b < bs ? hi - b : bs;
		if (apbi_verify_blocks(mod, sums, buf + (b - lo), b, blen, NULL) == 0)
			continue;
		__atomic_add_fetch(&pb->checksum_failures, 1, __ATOMIC_RELAXED);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t ps = (first + i) << shift, pe = ps + pb->cfg.page_size;
			if (ps < b + blen && pe > b)
				res[i] = APB_E_CHECKSUM;
		}
	}
}

/* Verifies buf = model bytes [lo, hi) block by block; marks pages of bad blocks. */
static int verify_range(apb_paged *pb, uint32_t m, const uint8_t *buf, uint64_t lo,
                        uint64_t hi, uint64_t first, uint32_t n, int res[])
{
	uint64_t *sums;
	bool owned;
	int r = get_sums(pb, m, &sums, &owned);
	if (r < 0)
		return r;
	verify_with(pb, m, sums, buf, lo, hi, first, n, res);
	if (owned)
		free(sums);
	return 0;
}

/*
 * A load buffer of len bytes: one of the SCRATCH_N kept buffers when len
 * fits and one is free (no allocation, no page faults once warm), a fresh
 * allocation for an oversized block, or NULL when all are busy (the caller
 * then allocates a one-off buffer).  Kept buffers bound the memory used
 * for I/O.
 */
static uint8_t *scratch_get(apb_paged *pb, uint64_t len, bool *kept)
{
	uint8_t *p = NULL;
	*kept = len <= SCRATCH_SIZE;
	if (!*kept)
		return malloc(len);
	pthread_mutex_lock(&pb->scratch_lock);
	for (unsigned i = 0; i < SCRATCH_N && !p; i++) {
		if (pb->scratch_busy[i])
			continue;
		if (!pb->scratch[i]) {
			void *m = mmap(NULL, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
			               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED)
				break;
			pb->scratch[i] = m;
		}
		pb->scratch_busy[i] = true;
		p = pb->scratch[i];
	}
	pthread_mutex_unlock(&pb->scratch_lock);
	return p;
}

static void scratch_put(apb_paged *pb, uint8_t *p, bool kept)
{
	if (!kept) {
		free(p);
		return;
	}
	pthread_mutex_lock(&pb->scratch_lock);
	for (unsigned i = 0; i < SCRATCH_N; i++)
		if (pb->scratch[i] == p)
			pb->scratch_busy[i] = false;
	pthread_mutex_unlock(&pb->scratch_lock);
}

/* Reads and verifies model bytes [lo, hi) into buf (0 or an error). */
static int read_verified(apb_paged *pb, uint32_t m, uint8_t *buf, uint64_t lo, uint64_t hi,
                         uint64_t first, uint32_t n, int res[])
{
	const apbi_model *mod = &pb->man->models[m];
	int r = apbi_pread_full(pb->fd, buf, hi - lo, pb->man->data_start + mod->offset + lo);
	if (r == 0 && mod->block_size)
		r = verify_range(pb, m, buf, lo, hi, first, n, res);
	return r;
}

/*
 * Loads pages first..first+n of model m, which hold whole checksum blocks,
 * straight into dst with one vectored read, then verifies each page on its
 * own: no load buffer and no copy.  The bytes stay in the kernel's page
 * cache too: dropping them (POSIX_FADV_DONTNEED) gained nothing on cold
 * reads and cost the Zipf benchmark 5x the disk reads (docs/BENCHMARKS.md).
 */
static ssize_t load_pages(apb_paged *pb, uint32_t m, uint64_t first, uint32_t n,
                          uint8_t *const dst[], uint64_t end, int res[])
{
	const apbi_model *mod = &pb->man->models[m];
	unsigned shift = (unsigned)__builtin_ctz(pb->cfg.page_size);
	uint64_t off = first << shift, *sums = NULL;
	struct iovec iov[LOAD_MAX];
	bool owned = false;
	int r;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t ps = (first + i) << shift, pe = ps + pb->cfg.page_size < end ?
		              ps + pb->cfg.page_size : end;
		iov[i].iov_base = dst[i];
		iov[i].iov_len = pe - ps;
	}
	if ((r = apbi_preadv_full(pb->fd, iov, (int)n, pb->man->data_start + mod->offset + off)) < 0)
		return r;
	if (mod->block_size) {
		if ((r = get_sums(pb, m, &sums, &owned)) < 0)
			return r;
		for (uint32_t i = 0; i < n; i++)
			verify_with(pb, m, sums, dst[i], ((first + i) << shift),
			            ((first + i) << shift) + iov[i].iov_len, first + i, 1, res + i);
		if (owned)
			free(sums);
	}
	return (ssize_t)(end - off);
}

/*
 * The cache's loader.  Pages that hold whole checksum blocks (the default:
 * 64 KiB pages and blocks) are read straight into the cache pages with one
 * preadv (load_pages); pages smaller than a block are filled from one
 * pread of the covering blocks into a load buffer, verified first.
 */
static ssize_t paged_load(void *ctx, uint32_t m, uint64_t first, uint32_t n,
                          uint8_t *const dst[], int res[])
{
	apb_paged *pb = ctx;
	const apbi_model *mod = &pb->man->models[m];
	unsigned shift = (unsigned)__builtin_ctz(pb->cfg.page_size);
	uint64_t off = first << shift, end = (first + n) << shift, lo = off, hi, bs = 0;
	uint8_t *buf;
	bool kept = false;
	int r;
	end = end < mod->size ? end : mod->size;
	hi = end;
	if (mod->block_size) {
		bs = mod->has_block_table ? mod->block_size : mod->size;
		lo = off / bs * bs;
		hi = (end + bs - 1) / bs * bs;
		hi = hi < mod->size ? hi : mod->size;
	}
	if (lo == off && hi == end && n <= LOAD_MAX &&
	    (n == 1 || !bs || pb->cfg.page_size % bs == 0))   /* pages hold whole blocks */
		return load_pages(pb, m, first, n, dst, end, res);
	/* Here blocks are larger than pages (sizes are powers of two, so a
	 * block no larger than a page always divides it and took the path
	 * above): read the covering blocks into a load buffer. */
	buf = scratch_get(pb, hi - lo, &kept);
	if (!buf) {   /* all buffers busy, or a block over 1 MiB: a one-off buffer */
		kept = false;
		if (!(buf = malloc(hi - lo)))
			return apbi_set_error(-ENOMEM, "model \"%.200s\": no memory for a %llu-byte read",
			                      mod->name, (unsigned long long)(hi - lo));
	}
	r = read_verified(pb, m, buf, lo, hi, first, n, res);
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		uint64_t ps = (first + i) << shift;
		if (!res[i])
			memcpy(dst[i], buf + (ps - lo), end - ps < pb->cfg.page_size ?
			       end - ps : pb->cfg.page_size);
	}
	scratch_put(pb, buf, kept);
	return r < 0 ? r : (ssize_t)(hi - lo);
}

static int check_config(const apb_paging_config *c)
{
	if (!c->max_memory)
		return apbi_set_error(-EINVAL, "paging config: max_memory is 0");
	if (c->page_size < 512 || (c->page_size & (c->page_size - 1)) || c->page_size > (1u << 30))
		return apbi_set_error(-EINVAL, "paging config: page_size %u is not a power of two "
		                      "between 512 and 1 GiB", c->page_size);
	if (!apbi_policy_get(c->eviction))
		return apbi_set_error(-EINVAL, "paging config: unknown eviction policy %d",
		                      (int)c->eviction);
	if (c->max_memory / c->page_size > UINT32_MAX)
		return apbi_set_error(-EINVAL, "paging config: max_memory / page_size is too large");
	return 0;
}

static int open_cache(apb_paged *pb)
{
	uint64_t n = pb->man->n_models;
	apbi_cache_config cc = {
		.max_memory = pb->cfg.max_memory, .page_size = pb->cfg.page_size,
		.policy = apbi_policy_get(pb->cfg.eviction), .n_models = (uint32_t)n,
		.load = paged_load, .load_ctx = pb,
		.max_run = SCRATCH_SIZE / pb->cfg.page_size ? SCRATCH_SIZE / pb->cfg.page_size : 1,
	};
	int r;
	pb->sizes = calloc(n ? n : 1, sizeof *pb->sizes);
	pb->align = calloc(n ? n : 1, sizeof *pb->align);
	pb->sums = calloc(n ? n : 1, sizeof *pb->sums);
	if (!pb->sizes || !pb->sums || !pb->align)
		return apbi_set_error(-ENOMEM, "out of memory for %llu models", (unsigned long long)n);
	for (uint64_t i = 0; i < n; i++) {
		const apbi_model *mod = &pb->man->models[i];
		uint64_t unit = mod->has_block_table ? mod->block_size : mod->size;
		pb->sizes[i] = mod->size;
		pb->align[i] = 1;
		if (mod->block_size && unit > pb->cfg.page_size)
			pb->align[i] = (uint32_t)((unit + pb->cfg.page_size - 1) / pb->cfg.page_size < 64 ?
			                          (unit + pb->cfg.page_size - 1) / pb->cfg.page_size : 64);
	}
	cc.model_sizes = pb->sizes;
	cc.model_align = pb->align;
	if ((r = apbi_cache_new(&cc, &pb->cache)) < 0)
		return apbi_set_error(r, "cannot create a %llu-byte page cache",
		                      (unsigned long long)pb->cfg.max_memory);
	if (pb->cfg.prefetch) {
		apbi_prefetch_config pc = {
			.n_models = (uint32_t)n, .prefetch_count = pb->cfg.prefetch_count,
			.max_memory = pb->cfg.max_memory, .page_size = pb->cfg.page_size,
		};
		if ((r = apbi_prefetch_new(pb->cache, &pc, &pb->pf)) < 0)
			return apbi_set_error(r, "out of memory for the prefetcher");
	}
	return 0;
}

/** See apbundle.h. */
int apb_paged_open(const char *path, const apb_paging_config *cfg, apb_paged **out)
{
	apb_paged *pb;
	int r;
	apbi_clear_error();
	if (!out || !path)
		return apbi_set_error(-EINVAL, "apb_paged_open: NULL argument");
	*out = NULL;
	if (!(pb = calloc(1, sizeof *pb)))
		return apbi_set_error(-ENOMEM, "out of memory");
	pb->fd = -1;
	pthread_mutex_init(&pb->scratch_lock, NULL);
	if (cfg)
		pb->cfg = *cfg;
	else
		apb_paging_config_init(&pb->cfg);
	if ((r = check_config(&pb->cfg)) < 0)
		goto fail;
	pb->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pb->fd < 0) {
		r = apbi_set_error(-errno, "%.400s: %s", path, strerror(errno));
		goto fail;
	}
	if ((r = apbi_manifest_read(pb->fd, &pb->man)) < 0)
		goto fail;
	if (pb->man->n_models >= UINT32_MAX) {
		r = apbi_set_error(APB_E_CORRUPT, "%.400s: too many models", path);
		goto fail;
	}
	if ((r = open_cache(pb)) < 0)
		goto fail;
	*out = pb;
	return 0;
fail:
	apb_paged_close(pb);
	return r;
}

/** See apbundle.h. */
void apb_paged_close(apb_paged *pb)
{
	if (!pb)
		return;
	apbi_prefetch_free(pb->pf);
	apbi_cache_free(pb->cache);
	if (pb->sums && pb->man)
		for (uint64_t i = 0; i < pb->man->n_models; i++)
			free(pb->sums[i]);
	free(pb->sums);
	free(pb->sizes);
	free(pb->align);
	for (unsigned i = 0; i < SCRATCH_N; i++)
		if (pb->scratch[i])
			munmap(pb->scratch[i], SCRATCH_SIZE);
	pthread_mutex_destroy(&pb->scratch_lock);
	apbi_manifest_free(pb->man);
	if (pb->fd >= 0)
		close(pb->fd);
	free(pb);
}

/** See apbundle.h. */
size_t apb_paged_model_count(apb_paged *pb)
{
	return pb ? (size_t)pb->man->n_models : 0;
}

/** See apbundle.h. */
int apb_paged_model_info(apb_paged *pb, size_t i, apb_model_info *out)
{
	if (!pb || !out || i >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", i);
	apbi_model_info(pb->man, i, out);
	return 0;
}

/** See apbundle.h. */
ssize_t apb_paged_find(apb_paged *pb, const char *name)
{
	int64_t i = pb && name ? apbi_manifest_find(pb->man, name) : -1;
	if (i < 0)
		return apbi_set_error(-ENOENT, "no model named \"%.200s\"", name ? name : "(null)");
	return (ssize_t)i;
}

/* Copies the part of pages[0..n) (from page p on) that overlaps [pos, end). */
static size_t copy_pages(const apb_paged *pb, apbi_page *const *pages, uint32_t n, uint64_t p,
                         uint64_t pos, uint64_t end, uint8_t *dst)
{
	size_t done = 0;
	for (uint32_t i = 0; i < n && pos + done < end; i++) {
		uint64_t base = (p + i) * pb->cfg.page_size, at = pos + done - base;
		uint64_t k = apbi_page_len(pages[i]) - at;
		if (k > end - pos - done)
			k = end - pos - done;
		memcpy(dst + done, apbi_page_data(pages[i]) + at, k);
		done += k;
	}
	return done;
}

/*
 * Serves page p uncached (everything is pinned) into dst: straight into
 * the caller's buffer when it wants the whole page, else through a
 * temporary page buffer.
 */
static ssize_t read_uncached(apb_paged *pb, uint32_t m, uint64_t p, uint64_t pos,
                             uint64_t end, uint8_t *dst)
{
	uint32_t len = apbi_cache_page_len(pb->cache, m, p);
	uint64_t at = pos - p * pb->cfg.page_size, k = len - at;
	uint8_t *tmp;
	ssize_t r;
	if (at == 0 && end - pos >= len)
		return apbi_cache_read_uncached(pb->cache, m, p, dst);
	if (!(tmp = malloc(len)))
		return apbi_set_error(-ENOMEM, "out of memory");
	r = apbi_cache_read_uncached(pb->cache, m, p, tmp);
	if (r >= 0) {
		k = k < end - pos ? k : end - pos;
		memcpy(dst, tmp + at, k);
		r = (ssize_t)k;
	}
	free(tmp);
	return r;
}

static int read_error(apb_paged *pb, int r, uint32_t m, uint64_t p)
{
	return apbi_set_error(r, "model \"%.200s\": page %llu (bytes from %llu): %s",
	                      pb->man->models[m].name, (unsigned long long)p,
	                      (unsigned long long)(p * pb->cfg.page_size), apb_strerror(r));
}

/** See apbundle.h. */
ssize_t apb_paged_read_index(apb_paged *pb, size_t index, void *buf, size_t len, uint64_t offset)
{
	apbi_page *pages[RUN];
	uint64_t size, end, pos, first;
	uint32_t m = (uint32_t)index;
	if (!pb || (!buf && len))
		return apbi_set_error(-EINVAL, "apb_paged_read: NULL argument");
	if (index >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", index);
	size = pb->sizes[m];
	if (offset >= size || !len)
		return 0;
	end = len < size - offset ? offset + len : size;
	first = offset / pb->cfg.page_size;
	for (pos = offset; pos < end;) {
		uint64_t p = pos / pb->cfg.page_size, last = (end - 1) / pb->cfg.page_size;
		uint32_t n = 0;
		int r = apbi_cache_get_run(pb->cache, m, p, last - p + 1 < RUN ? (uint32_t)(last - p + 1) : RUN,
		                           pages, &n);
		if (r == -ENOSPC) {
			ssize_t k = read_uncached(pb, m, p, pos, end, (uint8_t *)buf + (pos - offset));
			if (k < 0)
				return read_error(pb, (int)k, m, p);
			pos += (uint64_t)k;
			continue;
		}
		if (r < 0)
			return read_error(pb, r, m, p);
		pos += copy_pages(pb, pages, n, p, pos, end, (uint8_t *)buf + (pos - offset));
		apbi_cache_unpin(pb->cache, pages, n);
	}
	apbi_prefetch_note(pb->pf, m, first, (end - 1) / pb->cfg.page_size - first + 1);
	return (ssize_t)(end - offset);
}

/** See apbundle.h. */
ssize_t apb_paged_read(apb_paged *pb, const char *name, void *buf, size_t len, uint64_t offset)
{
	ssize_t i = apb_paged_find(pb, name);
	return i < 0 ? i : apb_paged_read_index(pb, (size_t)i, buf, len, offset);
}

/** See apbundle.h. */
int apb_paged_get_model(apb_paged *pb, const char *name, const void **data, size_t *size)
{
	const uint8_t *d;
	ssize_t i = apb_paged_find(pb, name);
	int r;
	if (i < 0)
		return (int)i;
	if (!data || !size)
		return apbi_set_error(-EINVAL, "apb_paged_get_model: NULL argument");
	if (pb->sizes[i] > SIZE_MAX)
		return apbi_set_error(-EFBIG, "model \"%.200s\" does not fit in memory", name);
	r = apbi_cache_get_model(pb->cache, (uint32_t)i, &d);
	if (r == -EFBIG)
		return apbi_set_error(r, "model \"%.200s\" (%llu bytes) is larger than max_memory "
		                      "(%llu): use apb_paged_read", name,
		                      (unsigned long long)pb->sizes[i],
		                      (unsigned long long)pb->cfg.max_memory);
	if (r == -EBUSY)
		return apbi_set_error(r, "model \"%.200s\": not enough unpinned memory", name);
	if (r < 0)
		return apbi_set_error(r, "model \"%.200s\": %s", name, apb_strerror(r));
	*data = d;
	*size = (size_t)pb->sizes[i];
	apbi_prefetch_note(pb->pf, (uint32_t)i, 0, apbi_cache_npages(pb->cache, (uint32_t)i));
	return 0;
}

/** See apbundle.h. */
void apb_paged_release(apb_paged *pb, const void *data)
{
	if (pb && data)
		apbi_cache_release(pb->cache, data);
}

/** See apbundle.h. */
bool apb_paged_is_cached(apb_paged *pb, const char *name)
{
	int64_t i = pb && name ? apbi_manifest_find(pb->man, name) : -1;
	return i >= 0 && apbi_cache_model_resident(pb->cache, (uint32_t)i);
}

/** See apbundle.h. */
bool apb_paged_evict(apb_paged *pb, const char *name)
{
	int64_t i = pb && name ? apbi_manifest_find(pb->man, name) : -1;
	if (i < 0)
		return false;
	apbi_cache_drop(pb->cache, (uint32_t)i);
	return true;
}

/** See apbundle.h. */
void apb_paged_clear_cache(apb_paged *pb)
{
	if (pb)
		apbi_cache_drop(pb->cache, UINT32_MAX);
}

/** See apbundle.h. */
int apb_paged_prefetch_hint(apb_paged *pb, const char *name)
{
	ssize_t i = apb_paged_find(pb, name);
	int r;
	if (i < 0)
		return (int)i;
	if (!pb->pf)
		return apbi_set_error(-EAGAIN, "prefetch is disabled");
	r = apbi_prefetch_hint(pb->pf, (uint32_t)i);
	if (r < 0)
		return apbi_set_error(r, "cannot queue a prefetch of \"%.200s\": %s", name,
		                      apb_strerror(r));
	return 0;
}

/** See apbundle.h. */
void apb_paged_stats(apb_paged *pb, apb_paging_stats *out)
{
	apbi_cache_counters c;
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	if (!pb)
		return;
	apbi_cache_stats(pb->cache, &c);
	out->hits = c.hits;
	out->misses = c.misses;
	out->evictions = c.evictions;
	out->bytes_loaded = c.bytes_loaded;
	out->memory_used = c.memory_used;
	out->prefetches = c.prefetches;
	out->prefetch_hits = c.prefetch_hits;
	out->cached_pages = c.cached_pages;
	out->checksum_failures = __atomic_load_n(&pb->checksum_failures, __ATOMIC_RELAXED);
}

/** See apbundle.h. */
int apb_paged_model_stats(apb_paged *pb, size_t i, apb_model_stats *out)
{
	if (!pb || !out || i >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", i);
	apbi_cache_model_stats(pb->cache, (uint32_t)i, out);
	return 0;
}

/** See apbundle.h. */
void apb_paged_config(apb_paged *pb, apb_paging_config *out)
{
	if (pb && out)
		*out = pb->cfg;
}

/** See apbundle.h. */
int apb_paged_start_worker(apb_paged *pb)
{
	int r = pb && pb->pf ? apbi_prefetch_start(pb->pf) : 0;
	return r < 0 ? apbi_set_error(r, "cannot start the prefetch worker") : 0;
}

/* Appends page data to iov, merging with the previous entry when contiguous. */
static void iov_add(struct iovec *iov, int *n, const uint8_t *p, size_t len)
{
	if (*n && (const uint8_t *)iov[*n - 1].iov_base + iov[*n - 1].iov_len == p) {
		iov[*n - 1].iov_len += len;
		return;
	}
	iov[*n].iov_base = (void *)p;
	iov[*n].iov_len = len;
	(*n)++;
}

/* Pins pages covering [pos, end) into pins/iov; returns bytes covered or an error. */
static ssize_t pin_pages(apb_paged *pb, uint32_t m, uint64_t pos, uint64_t end,
                         struct iovec *iov, int max_iov, int *n_iov, apb_pinned *pins)
{
	uint64_t start = pos;
	while (pos < end && pins->n < (uint32_t)max_iov) {
		uint64_t p = pos / pb->cfg.page_size, last = (end - 1) / pb->cfg.page_size;
		uint32_t want = (uint32_t)(last - p + 1 < RUN ? last - p + 1 : RUN), n, i;
		int r;
		if (want > (uint32_t)max_iov - pins->n)
			want = (uint32_t)max_iov - pins->n;
		r = apbi_cache_get_run(pb->cache, m, p, want, &pins->pages[pins->n], &n);
		if (r < 0)
			return pos > start ? (ssize_t)(pos - start) : r;
		for (i = 0; i < n; i++) {
			apbi_page *pg = pins->pages[pins->n + i];
			uint64_t at = pos - (p + i) * pb->cfg.page_size, k = apbi_page_len(pg) - at;
			k = k < end - pos ? k : end - pos;
			iov_add(iov, n_iov, apbi_page_data(pg) + at, k);
			pos += k;
		}
		pins->n += n;
	}
	return (ssize_t)(pos - start);
}

/** See apbundle.h. */
ssize_t apb_paged_pin_range(apb_paged *pb, size_t index, uint64_t offset, size_t len,
                            struct iovec *iov, int max_iov, int *n_iov, apb_pinned **pins)
{
	apb_pinned *pn;
	uint64_t end;
	ssize_t r;
	if (!pb || !iov || max_iov <= 0 || !n_iov || !pins)
		return apbi_set_error(-EINVAL, "apb_paged_pin_range: bad argument");
	*n_iov = 0;
	*pins = NULL;
	if (index >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", index);
	if (offset >= pb->sizes[index] || !len)
		return 0;
	end = len < pb->sizes[index] - offset ? offset + len : pb->sizes[index];
	pn = malloc(sizeof *pn + (size_t)max_iov * sizeof pn->pages[0]);
	if (!pn)
		return apbi_set_error(-ENOMEM, "out of memory");
	pn->n = 0;
	r = pin_pages(pb, (uint32_t)index, offset, end, iov, max_iov, n_iov, pn);
	if (r <= 0) {
		free(pn);
		*n_iov = 0;
		if (r == -ENOSPC)
			return apbi_set_error(-ENOBUFS, "model \"%.200s\": nothing can be pinned now",
			                      pb->man->models[index].name);
		return read_error(pb, (int)r, (uint32_t)index, offset / pb->cfg.page_size);
	}
	*pins = pn;
	apbi_prefetch_note(pb->pf, (uint32_t)index, offset / pb->cfg.page_size,
	                   (offset + (uint64_t)r - 1) / pb->cfg.page_size - offset / pb->cfg.page_size + 1);
	return r;
}

/** See apbundle.h. */
void apb_paged_unpin(apb_paged *pb, apb_pinned *pins)
{
	if (!pb || !pins)
		return;
	apbi_cache_unpin(pb->cache, pins->pages, pins->n);
	free(pins);
}
