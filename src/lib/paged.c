/*
 * paged.c - the PagedBundle API (apb_paged_*): a validated bundle served
 * through the page cache (cache.c), the block layer (block.c) that fills
 * it with verified bytes, and the prefetcher (prefetch.c).
 *
 * Invariants: the source (source.h) and the manifest are opened and
 * validated once at open and are immutable afterwards; every byte that
 * reaches a caller came out of the block layer, so it was verified (legacy
 * bundles, which carry no checksums, excepted).  The cache's objects are
 * the models and, after them, their block tables and table indexes
 * (block.h): those are budgeted and evicted like model pages, but their
 * lookups are not counted in the statistics.  A failed read names its
 * block from what the failed load recorded (apb_last_block_error), never
 * by reading again.  open() starts no thread.  What this file keeps
 * outside the budget: the manifest, the object map (block_meta.c, 12 bytes
 * per object), up to four 1 MiB load buffers, and one page-sized buffer
 * per thread in the rare uncached paths (everything pinned).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "paged_priv.h"
#include "trace.h"


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
	cfg->eviction = APB_EVICT_TINYLFU;
	cfg->huge_pages = true;
}

/** The cache of pb, for the trace recorder (paged_trace.c, trace.h). */
apbi_cache *apbi_paged_cache(apb_paged *pb)
{
	return pb->cache;
}

/** hits / (hits + misses), 0.0 without lookups. */
double apb_paging_stats_hit_rate(const apb_paging_stats *s)
{
	uint64_t n = s ? s->hits + s->misses : 0;
	return n ? (double)s->hits / (double)n : 0.0;
}

/* The cache bytes of the first n bytes (n <= size) of an object of size bytes. */
static uint64_t charge(uint64_t n, uint64_t size, uint64_t page)
{
	uint64_t pages = (n + page - 1) / page * page;

	return pages < size ? pages : size;   /* an object's last page is short */
}

/*
 * The cache bytes one read of model mod needs at once: its verification
 * unit (a block, at most the model, in whole pages) and, when it has a
 * block table, the table chunk and the index that verify that block.
 */
static uint64_t load_unit(const apbi_model *mod, uint64_t page)
{
	uint64_t block = mod->size < mod->block_size ? mod->size : mod->block_size;
	uint64_t need = charge(block, mod->size, page), table = apbi_table_bytes(mod);

	if (mod->has_block_table)
		need += charge(table < APBI_TABLE_CHUNK ? table : APBI_TABLE_CHUNK, table, page) +
		        charge(apbi_index_bytes(mod), apbi_index_bytes(mod), page);
	return need;
}

/*
 * Checks the config alone (m NULL) or against the bundle: max_memory must
 * hold one read's pages (load_unit) of every model.  A smaller budget
 * caches a block only in part, so every page miss reads and verifies the
 * whole block again (a 64 KiB block read 16 times for 4 KiB pages): it is
 * refused with the minimum instead.
 */
/** See paged_priv.h. */
int apbi_paged_check_config(const apb_paging_config *c, const apbi_manifest *m)
{
	uint64_t need = 0, at = 0;
	char h1[32], h2[32];

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
	for (uint64_t i = 0; m && i < m->n_models; i++) {
		uint64_t u = m->models[i].block_size ? load_unit(&m->models[i], c->page_size) : 0;
		if (u > need)
			need = u, at = i;
	}
	if (c->max_memory >= need)
		return 0;
	apb_format_size(c->max_memory, h1, sizeof h1);
	apb_format_size(need, h2, sizeof h2);
	return apbi_set_error(-EINVAL, "paging config: max_memory %s cannot hold one load of "
	                      "model \"%.200s\" (%u-byte checksum blocks in %u-byte pages%s): "
	                      "the minimum for this bundle is %s (%llu bytes)", h1,
	                      m->models[at].name, m->models[at].block_size, c->page_size,
	                      m->models[at].has_block_table ? ", with their block table" : "",
	                      h2, (unsigned long long)need);
}

/* Whether the bundle comes from a source with network latency (not a local file). */
static bool remote(const apb_paged *pb)
{
	return strcmp(pb->src->ops->kind, "file") != 0;
}

/*
 * Pages one load reads at most: RUN_BYTES (RUN_BYTES_REMOTE from a remote
 * source), and at most a quarter of the budget, so one read never replaces
 * the whole cache (the block-table page it needs would be the oldest page
 * each time and be read again per load).
 */
static uint32_t run_pages(const apb_paged *pb)
{
	const apb_paging_config *cfg = &pb->cfg;
	uint64_t bytes = remote(pb) ? RUN_BYTES_REMOTE : RUN_BYTES;
	uint64_t run = bytes / cfg->page_size, quarter = cfg->max_memory / cfg->page_size / 4;
	if (run > quarter)
		run = quarter;
	return run ? (uint32_t)run : 1;
}

/*
 * Readahead loads in flight at once: one for a local file (the reader's
 * own loads run beside it; more would only compete for the CPU that
 * verifies), APBI_PREFETCH_MAX_WORKERS for a source with network latency,
 * where a read window is worth only what is in flight.
 */
static uint32_t prefetch_workers(const apb_paged *pb)
{
	return remote(pb) ? APBI_PREFETCH_MAX_WORKERS : 1;
}

static int open_cache(apb_paged *pb)
{
	uint64_t n = pb->man->n_models;
	apbi_cache_config cc = {
		.max_memory = pb->cfg.max_memory, .page_size = pb->cfg.page_size,
		.policy = apbi_policy_get(pb->cfg.eviction),
		.huge_pages = pb->cfg.huge_pages,
		.n_models = apbi_blocks_nobjects(pb->bl), .first_meta = (uint32_t)n,
		.model_sizes = apbi_blocks_sizes(pb->bl), .model_align = apbi_blocks_units(pb->bl),
		.load = apbi_blocks_load, .load_ctx = pb->bl,
		.max_run = run_pages(pb),
	};
	int r;
	if ((r = apbi_cache_new(&cc, &pb->cache)) < 0)
		return apbi_set_error(r, "cannot create a %llu-byte page cache",
		                      (unsigned long long)pb->cfg.max_memory);
	if ((r = apbi_share_new(pb)) < 0) {
		apbi_cache_free(pb->cache);
		pb->cache = NULL;
		return apbi_set_error(r, "out of memory");
	}
	apbi_blocks_attach(pb->bl, pb->cache, NULL);
	return apbi_paged_start_prefetch(pb);
}

/** See paged_priv.h. */
int apbi_paged_start_prefetch(apb_paged *pb)
{
	int r;
	if (pb->cfg.prefetch) {
		apbi_prefetch_config pc = {
			.n_models = (uint32_t)pb->man->n_models, .prefetch_count = pb->cfg.prefetch_count,
			.max_memory = pb->cfg.max_memory, .page_size = pb->cfg.page_size,
			.run_pages = run_pages(pb), .model_align = apbi_blocks_units(pb->bl),
			.workers = prefetch_workers(pb), .gid = pb->gid,
		};
		if ((r = apbi_prefetch_new(pb->cache, &pc, &pb->pf)) < 0)
			return apbi_set_error(r, "out of memory for the prefetcher");
	}
	return 0;
}

/** See apbundle.h. */
int apb_paged_open(const char *path, const apb_paging_config *cfg, apb_paged **out)
{
	return apb_paged_open_with(path, cfg, NULL, out);
}

/** See apbundle.h. */
int apb_paged_open_with(const char *path, const apb_paging_config *cfg,
                        const apb_open_options *opt, apb_paged **out)
{
	apb_paged *pb;
	int r;
	apbi_clear_error();
	if (!out || !path)
		return apbi_set_error(-EINVAL, "apb_paged_open: NULL argument");
	*out = NULL;
	if (!(pb = calloc(1, sizeof *pb)))
		return apbi_set_error(-ENOMEM, "out of memory");
	if (cfg)
		pb->cfg = *cfg;
	else
		apb_paging_config_init(&pb->cfg);
	pb->shift = (unsigned)__builtin_ctz(pb->cfg.page_size ? pb->cfg.page_size : 1);
	if ((r = apbi_paged_check_config(&pb->cfg, NULL)) < 0)
		goto fail;
	if (!(pb->path = strdup(path))) {
		r = apbi_set_error(-ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = apbi_source_open(path, opt, &pb->src)) < 0 ||
	    (r = apbi_manifest_read_source(pb->src, &pb->man)) < 0)
		goto fail;
	if ((r = apbi_blocks_new(pb->src, pb->man, pb->cfg.page_size, &pb->bl)) < 0)
		goto fail;
	if ((r = apbi_paged_check_config(&pb->cfg, pb->man)) < 0 || (r = open_cache(pb)) < 0)
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
	if (pb->share)
		apbi_share_leave(pb);
	else
		apbi_cache_free(pb->cache);
	apbi_blocks_free(pb->bl);
	free(pb->gid);
	apbi_manifest_free(pb->man);
	apbi_source_close(pb->src);
	free(pb->path);
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
	uint32_t len;
	m = apbi_paged_gid(pb, m);
	len = apbi_cache_page_len(pb->cache, m, p);
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

/** See paged_priv.h. */
int apbi_paged_read_error(apb_paged *pb, int r, uint32_t m, uint64_t lo, uint64_t hi)
{
	const char *name = pb->man->models[m].name;
	apb_block_error be;
	char why[300];
	snprintf(why, sizeof why, "%s", apb_last_error());
	if ((r == APB_E_CHECKSUM || r == APB_E_CORRUPT) &&
	    apbi_blocks_find_bad(pb->bl, m, lo, hi, &be)) {
		apbi_set_block_error(&be);
		if (be.where == APB_WHERE_BLOCK)
			return apbi_set_error(r, "model \"%.200s\": block %llu (bytes %llu-%llu): %s", name,
			                      (unsigned long long)be.block, (unsigned long long)be.offset,
			                      (unsigned long long)(be.offset + be.length - 1), apb_strerror(r));
		return apbi_set_error(r, "model \"%.200s\": its block table does not match the "
		                      "manifest: %s", name, apb_strerror(r));
	}
	if (why[0] && !strstr(why, name))
		return apbi_set_error(r, "model \"%.200s\": bytes from %llu: %s", name,
		                      (unsigned long long)lo, why);
	if (why[0])
		return apbi_set_error(r, "%s", why);
	return apbi_set_error(r, "model \"%.200s\": bytes from %llu: %s", name,
	                      (unsigned long long)lo, apb_strerror(r));
}

/* apbi_paged_read_error for the page holding model byte pos. */
static int page_error(apb_paged *pb, int r, uint32_t m, uint64_t pos)
{
	uint64_t lo = pos >> pb->shift << pb->shift;
	return apbi_paged_read_error(pb, r, m, lo, lo + pb->cfg.page_size);
}

/* Whether page error r came from a bad block of model m outside [pos, stop)
 * of the page (blocks smaller than pages), so the asked bytes may be good. */
static bool bad_block_elsewhere(apb_paged *pb, int r, uint32_t m, uint64_t pos, uint64_t stop)
{
	uint64_t bs = apbi_blocks_block_size(pb->bl, m), ps = pb->cfg.page_size;
	apb_block_error be;
	return (r == APB_E_CHECKSUM || r == APB_E_CORRUPT) && bs && bs < ps &&
	       apbi_blocks_find_bad(pb->bl, m, pos / ps * ps, pos / ps * ps + ps, &be) &&
	       be.where == APB_WHERE_BLOCK && (be.offset >= stop || be.offset + be.length <= pos);
}

/* The end of what one page serves of [pos, end). */
static uint64_t page_stop(const apb_paged *pb, uint64_t pos, uint64_t end)
{
	uint64_t stop = (pos / pb->cfg.page_size + 1) * pb->cfg.page_size;
	return stop < end ? stop : end;
}

/*
 * A page that holds a bad block fails whole, but with blocks smaller than
 * pages the caller's bytes in it may all lie in good blocks.  After page
 * load error r, when the bad block it recorded lies outside [pos, min(end,
 * the page's end)), reads the blocks under that range uncached and verified
 * into dst (through a buffer of one page, outside the budget like
 * read_uncached's): returns the bytes served, or the error naming a bad
 * block among them.  Otherwise (a bad table, or the bad block asked for)
 * returns the page's error without reading again.
 */
static ssize_t read_good_blocks(apb_paged *pb, int r, uint32_t m, uint64_t pos, uint64_t end,
                                uint8_t *dst)
{
	uint64_t bs = apbi_blocks_block_size(pb->bl, m), ps = pb->cfg.page_size;
	uint64_t stop = page_stop(pb, pos, end), b0;
	uint8_t *tmp;
	if (!bad_block_elsewhere(pb, r, m, pos, stop))
		return page_error(pb, r, m, pos);
	b0 = pos / bs;
	if (!(tmp = malloc((size_t)ps)))
		return apbi_set_error(-ENOMEM, "out of memory");
	r = apbi_blocks_read(pb->bl, m, b0, (stop - 1) / bs + 1 - b0, tmp, NULL, NULL);
	if (r == 0)
		memcpy(dst, tmp + (pos - b0 * bs), (size_t)(stop - pos));
	free(tmp);
	return r ? apbi_paged_read_error(pb, r, m, pos, stop) : (ssize_t)(stop - pos);
}

/* A demand read of pages [page, page+n) of model m, for the prefetcher: through
 * the reader's own stream ra, else the model's. */
static void note(apb_paged *pb, apbi_ra *ra, uint32_t m, uint64_t page, uint64_t n)
{
	if (ra)
		apbi_prefetch_note_ra(pb->pf, ra, page, n);
	else
		apbi_prefetch_note(pb->pf, m, page, n);
}

/** See apbundle.h. */
ssize_t apb_paged_read_index(apb_paged *pb, size_t index, void *buf, size_t len, uint64_t offset)
{
	return apbi_paged_read(pb, index, buf, len, offset, NULL);
}

/** See paged_priv.h. */
ssize_t apbi_paged_read(apb_paged *pb, size_t index, void *buf, size_t len, uint64_t offset,
                        apbi_ra *ra)
{
	apbi_page *pages[APBI_CACHE_MAX_RUN];
	uint64_t size, end, pos, first;
	uint32_t m = (uint32_t)index;
	apbi_clear_error();
	if (!pb || (!buf && len))
		return apbi_set_error(-EINVAL, "apb_paged_read: NULL argument");
	if (index >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", index);
	size = pb->man->models[m].size;
	if (offset >= size || !len)
		return 0;
	end = len < size - offset ? offset + len : size;
	first = offset >> pb->shift;
	for (pos = offset; pos < end;) {
		uint64_t p = pos >> pb->shift, last = (end - 1) >> pb->shift;
		uint32_t n = 0;
		bool brief;
		int r = apbi_cache_get_brief(pb->cache, apbi_paged_gid(pb, m), p,
		                             last - p + 1 < APBI_CACHE_MAX_RUN ? (uint32_t)(last - p + 1)
		                                                               : APBI_CACHE_MAX_RUN,
		                             pages, &n, &brief);
		if (r < 0) {
			uint8_t *dst = (uint8_t *)buf + (pos - offset);
			ssize_t k = r == -ENOBUFS ? read_uncached(pb, m, p, pos, end, dst) : r;
			if (k < 0)
				k = read_good_blocks(pb, (int)k, m, pos, end, dst);
			if (k < 0)
				return k;
			pos += (uint64_t)k;
			continue;
		}
		pos += copy_pages(pb, pages, n, p, pos, end, (uint8_t *)buf + (pos - offset));
		apbi_cache_put_brief(pb->cache, pages, n, brief);
	}
	note(pb, ra, m, first, ((end - 1) >> pb->shift) - first + 1);
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
	ssize_t i;
	apbi_clear_error();
	i = apb_paged_find(pb, name);
	int r;
	if (i < 0)
		return (int)i;
	if (!data || !size)
		return apbi_set_error(-EINVAL, "apb_paged_get_model: NULL argument");
	if (pb->man->models[i].size > SIZE_MAX)
		return apbi_set_error(-EFBIG, "model \"%.200s\" does not fit in memory", name);
	r = apbi_cache_get_model(pb->cache, apbi_paged_gid(pb, (uint32_t)i), &d);
	if (r == -EFBIG)
		return apbi_set_error(r, "model \"%.200s\" (%llu bytes) is larger than max_memory "
		                      "(%llu): use apb_paged_read", name,
		                      (unsigned long long)pb->man->models[i].size,
		                      (unsigned long long)pb->cfg.max_memory);
	if (r == -ENOBUFS)
		return apbi_set_error(r, "model \"%.200s\": not enough unpinned memory", name);
	if (r < 0)
		return apbi_paged_read_error(pb, r, (uint32_t)i, 0, pb->man->models[i].size);
	*data = d;
	*size = (size_t)pb->man->models[i].size;
	apbi_prefetch_note(pb->pf, (uint32_t)i, 0,
	                   apbi_cache_npages(pb->cache, apbi_paged_gid(pb, (uint32_t)i)));
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
	return i >= 0 && apbi_cache_model_resident(pb->cache, apbi_paged_gid(pb, (uint32_t)i));
}

/** See apbundle.h. */
bool apb_paged_evict(apb_paged *pb, const char *name)
{
	int64_t i = pb && name ? apbi_manifest_find(pb->man, name) : -1;
	if (i < 0)
		return false;
	apbi_cache_drop(pb->cache, apbi_paged_gid(pb, (uint32_t)i));
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
	apbi_prefetch_counters pc;
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
	out->prefetch_wasted = c.prefetch_wasted;
	out->cached_pages = c.cached_pages;
	out->checksum_failures = apbi_blocks_failures(pb->bl);
	apbi_prefetch_stats(pb->pf, &pc);
	out->readahead_window = pc.window_cap;
	out->sequential_reads = pc.seq_reads;
	out->readahead_seeks = pc.seeks;
	out->readahead_shrinks = pc.shrinks;
	apbi_blocks_decode_stats(pb->bl, &out->bytes_decoded, &out->decode_ns);
}

/** See apbundle.h. */
int apb_paged_model_stats(apb_paged *pb, size_t i, apb_model_stats *out)
{
	if (!pb || !out || i >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", i);
	apbi_cache_model_stats(pb->cache, apbi_paged_gid(pb, (uint32_t)i), out);
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
	uint64_t start = pos, half = pb->cfg.max_memory / 2 / pb->cfg.page_size;
	/* One call pins at most half the budget (and at least one page), so a
	 * reply in flight never starves the loads of the rest (their block
	 * table pages included): the caller copies what is left. */
	if (half < (uint64_t)max_iov)
		max_iov = half ? (int)half : 1;
	while (pos < end && pins->n < (uint32_t)max_iov) {
		uint64_t p = pos / pb->cfg.page_size, last = (end - 1) / pb->cfg.page_size;
		uint32_t want = (uint32_t)(last - p + 1 < APBI_CACHE_MAX_RUN ? last - p + 1 : APBI_CACHE_MAX_RUN), n, i;
		int r;
		if (want > (uint32_t)max_iov - pins->n)
			want = (uint32_t)max_iov - pins->n;
		r = apbi_cache_get_run(pb->cache, apbi_paged_gid(pb, m), p, want, &pins->pages[pins->n], &n);
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
	return apbi_paged_pin(pb, index, offset, len, iov, max_iov, n_iov, pins, NULL);
}

/** See paged_priv.h. */
ssize_t apbi_paged_pin(apb_paged *pb, size_t index, uint64_t offset, size_t len,
                       struct iovec *iov, int max_iov, int *n_iov, apb_pinned **pins,
                       apbi_ra *ra)
{
	apb_pinned *pn;
	uint64_t end;
	ssize_t r;
	apbi_clear_error();
	if (!pb || !iov || max_iov <= 0 || !n_iov || !pins)
		return apbi_set_error(-EINVAL, "apb_paged_pin_range: bad argument");
	*n_iov = 0;
	*pins = NULL;
	if (index >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", index);
	if (offset >= pb->man->models[index].size || !len)
		return 0;
	end = len < pb->man->models[index].size - offset ? offset + len : pb->man->models[index].size;
	pn = malloc(sizeof *pn + (size_t)max_iov * sizeof pn->pages[0]);
	if (!pn)
		return apbi_set_error(-ENOMEM, "out of memory");
	pn->n = 0;
	r = pin_pages(pb, (uint32_t)index, offset, end, iov, max_iov, n_iov, pn);
	if (r <= 0) {
		free(pn);
		*n_iov = 0;
		if (r == -ENOBUFS)
			return apbi_set_error(-ENOBUFS, "model \"%.200s\": nothing can be pinned now",
			                      pb->man->models[index].name);
		/* The first page fails whole for a bad block the caller did not
		 * ask for: copying (apbi_paged_read) serves the good blocks. */
		if (bad_block_elsewhere(pb, (int)r, (uint32_t)index, offset, page_stop(pb, offset, end)))
			return apbi_set_error(-ENOBUFS, "model \"%.200s\": its page at %llu holds a "
			                      "bad block outside the bytes asked for: copy them instead",
			                      pb->man->models[index].name, (unsigned long long)offset);
		return page_error(pb, (int)r, (uint32_t)index, offset);
	}
	*pins = pn;
	note(pb, ra, (uint32_t)index, offset / pb->cfg.page_size,
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
