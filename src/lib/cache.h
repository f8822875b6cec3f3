/*
 * cache.h - the byte-budgeted page cache under the PagedBundle (cache.c).
 *
 * Pages are keyed by (model index, page index); page i of a model holds
 * bytes [i*page_size, (i+1)*page_size) of it (the last page is shorter).
 * The cache knows nothing about files: it calls a loader callback to fill
 * pages, so it can be unit-tested with a fake one.
 *
 * Guarantees: memory_used (resident payload, pinned and in-flight pages
 * included) never exceeds max_memory; a pinned page is never evicted nor
 * freed; concurrent misses on one page call the loader once; the loader
 * and every memcpy run without the cache lock held; a page whose load
 * failed is never cached.  All functions are thread-safe.
 */
#ifndef APB_CACHE_H
#define APB_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "apbundle.h"
#include "policy.h"

/** Pages one loader call or one apbi_cache_get_run returns at most. */
#define APBI_CACHE_MAX_RUN 64u

typedef struct apbi_cache apbi_cache;
typedef struct apbi_page apbi_page;

/**
 * Loader: fill pages first..first+n-1 of model (n >= 1, all inside the
 * model) into dst[i] (page lengths as the cache computes them).  Sets
 * res[i] to 0 or a negative code per page.  Returns the number of bytes it
 * read from the backing store, or a negative code that applies to every
 * page (then res[] is ignored).  Called without the cache lock held.
 */
typedef ssize_t (*apbi_cache_load_fn)(void *ctx, uint32_t model, uint64_t first,
                                      uint32_t n, uint8_t *const dst[], int res[]);

/** Test hook: called (under the cache lock) for each page evicted to make room. */
typedef void (*apbi_cache_evict_fn)(void *ctx, uint32_t model, uint64_t page);

typedef struct apbi_cache_config {
	uint64_t max_memory;             /* > 0 */
	uint32_t page_size;              /* power of two >= 512 */
	const apbi_policy_ops *policy;
	uint32_t n_models;
	const uint64_t *model_sizes;     /* borrowed, n_models entries, outlives the cache */
	apbi_cache_load_fn load;
	void *load_ctx;
	uint32_t max_run;                /* pages per coalesced load (0 or > 64: 64) */
	/* Per model (borrowed, may be NULL): pages per load unit (its checksum
	 * block).  A miss also loads the unit's other absent pages, as cold
	 * "prefetched" pages, since the loader reads the whole unit anyway. */
	const uint32_t *model_align;
	/* Objects from first_meta on (0: none) are the loader's metadata (block
	 * tables): cached and budgeted like any page, but their lookups are
	 * not counted in hits, misses and prefetches, which describe what the
	 * cache's users asked for. */
	uint32_t first_meta;
	apbi_cache_evict_fn on_evict;    /* may be NULL */
	void *evict_ctx;
	bool huge_pages;                 /* MADV_HUGEPAGE on a slab of >= 2 MiB */
} apbi_cache_config;

typedef struct apbi_cache_counters {
	uint64_t hits, misses, evictions, bytes_loaded, memory_used;
	uint64_t prefetches, prefetch_hits, cached_pages;
	uint64_t prefetch_wasted;        /* prefetched pages evicted before any use */
	uint64_t hits_shed;              /* hits counted but not shown to the policy
	                                  * (shed under contention, cache_hit.c) */
} apbi_cache_counters;

/**
 * Most entries (descriptors) a cache of max_memory bytes in pages of
 * page_size holds at once: one per full page of budget plus a fixed reserve
 * for short pages.  The simulator (simulate.c) applies the same bound.
 */
uint64_t apbi_cache_max_entries(uint64_t max_memory, uint32_t page_size);

/** Creates a cache.  Errors: -EINVAL (bad config), -ENOMEM. */
int apbi_cache_new(const apbi_cache_config *cfg, apbi_cache **out);

/** Frees the cache and every page; outstanding pins become invalid.  NULL ok. */
void apbi_cache_free(apbi_cache *c);

/** Number of pages of model m. */
uint64_t apbi_cache_npages(const apbi_cache *c, uint32_t m);

/**
 * Returns in pages[0..*n) up to max_n consecutive pages of model m starting
 * at page, each pinned (release with apbi_cache_unpin).  On a hit the run
 * is the resident pages that follow; on a miss the missing pages that
 * follow are loaded with one loader call.  Every page returned counts as
 * one lookup (hit or miss).  Errors: -ENOBUFS when the first page can be
 * neither found nor cached (everything pinned: read it with
 * apbi_cache_read_uncached), -EINVAL (page out of range), loader codes.
 * -ENOBUFS means "everything is pinned" in every cache and PagedBundle
 * function, and nothing else.
 */
int apbi_cache_get_run(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                       apbi_page **pages, uint32_t *n);

/** Unpins n pages returned by apbi_cache_get_run. */
void apbi_cache_unpin(apbi_cache *c, apbi_page *const *pages, uint32_t n);

/**
 * apbi_cache_get_run for a caller that copies the pages out and puts them
 * back with apbi_cache_put_brief on the same thread, with no other cache
 * call between: up to 4 resident pages are then held without writing to
 * them, so threads hitting the same pages do not contend (*brief true);
 * a miss, or a run it cannot hold, is apbi_cache_get_run's (*brief false).
 * Same results and errors as apbi_cache_get_run.
 */
int apbi_cache_get_brief(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                         apbi_page **pages, uint32_t *n, bool *brief);

/** Releases the pages of apbi_cache_get_brief (brief as it returned it). */
void apbi_cache_put_brief(apbi_cache *c, apbi_page *const *pages, uint32_t n, bool brief);

/** Payload of a pinned page (valid while pinned) and its length. */
const uint8_t *apbi_page_data(const apbi_page *p);
uint32_t apbi_page_len(const apbi_page *p);

/**
 * Loads page of model m into buf (apbi_page_len bytes: the page length)
 * through the loader without caching it; counts a miss.  Returns the page
 * length or a negative loader code.
 */
ssize_t apbi_cache_read_uncached(apbi_cache *c, uint32_t m, uint64_t page, uint8_t *buf);

/** Length of page of model m. */
uint32_t apbi_cache_page_len(const apbi_cache *c, uint32_t m, uint64_t page);

/**
 * Prefetches the missing pages among [page, page+n) of model m.  Space is
 * taken from free budget or from victims last used before stamp (an
 * apbi_cache_now() value taken when the prefetch was decided) that are not
 * unused prefetches themselves; it stops at the first page that does not
 * fit.  Prefetched pages enter the policy at its cold end.  Returns the
 * number of pages loaded (>= 0).
 */
uint64_t apbi_cache_prefetch(apbi_cache *c, uint32_t m, uint64_t page, uint64_t n,
                             uint64_t stamp);

/**
 * apbi_cache_prefetch for a sequential reader's readahead: the pages are
 * the ones it reads next, so they enter the policy as its demand reads
 * would (not at the cold end, where the reader's own next misses would
 * evict them unused); still unused prefetches until read (counted in
 * prefetches, prefetch_hits, prefetch_wasted; never evicted by another
 * prefetch).  Returns the first page it did not load: page + n (clamped to
 * the model) when every page is now resident or loading, less when one
 * did not fit (or failed).
 */
uint64_t apbi_cache_readahead(apbi_cache *c, uint32_t m, uint64_t page, uint64_t n,
                              uint64_t stamp);

/**
 * The first page of m in [from, to) that is not resident (to: all are), by
 * a glance at the hash without the lock: it may be stale when it returns,
 * so it only saves work (readahead not queued for pages already here).
 */
uint64_t apbi_cache_first_absent(apbi_cache *c, uint32_t m, uint64_t from, uint64_t to);

/** The cache's logical clock (advances on every lookup). */
uint64_t apbi_cache_now(apbi_cache *c);

/**
 * Whole model m as one contiguous pinned view in *data, released with
 * apbi_cache_release(c, *data).  A single-page model is its page; larger
 * models get a buffer that replaces their pages (one policy entry, pages
 * counted per page).  Errors: -EFBIG (larger than max_memory; nothing
 * changed), -ENOBUFS (no room: too much is pinned), -ENOMEM, loader codes.
 */
int apbi_cache_get_model(apbi_cache *c, uint32_t m, const uint8_t **data);

/** Releases a view from apbi_cache_get_model; false if data is not one. */
bool apbi_cache_release(apbi_cache *c, const void *data);

/** True when every page of model m is resident. */
bool apbi_cache_model_resident(apbi_cache *c, uint32_t m);

/** Drops model m's unpinned pages (m == UINT32_MAX: every model's). */
void apbi_cache_drop(apbi_cache *c, uint32_t m);

/** Snapshot of the counters. */
void apbi_cache_stats(apbi_cache *c, apbi_cache_counters *out);

struct apbi_trace;

/**
 * Starts feeding every counted lookup (exactly what hits and misses count,
 * in that order) to t, which the cache then owns: apbi_cache_free closes
 * it.  Errors: -EBUSY (a trace is already set; t not taken).
 */
int apbi_cache_set_trace(apbi_cache *c, struct apbi_trace *t);

/** Stops tracing; returns the trace (the caller closes it) or NULL. */
struct apbi_trace *apbi_cache_take_trace(apbi_cache *c);

/* A set of objects one loader serves, for apbi_cache_bind_objects. */
typedef struct apbi_cache_objects {
	void *ctx;                 /* the loader's ctx for all of them */
	uint32_t n;
	const uint64_t *sizes;     /* n entries */
	const uint32_t *units;     /* n entries or NULL (as model_align) */
	uint32_t first_meta;       /* as in apbi_cache_config */
} apbi_cache_objects;

/**
 * Gives the n objects of o cache ids, loaded by cfg.load with o->ctx and
 * their index in o as the model number.  On entry ids[i] is UINT32_MAX
 * (a new id) or the id of a live object with the same bytes (size, units
 * and kind checked): that object keeps its pages and counters and is
 * loaded through o->ctx from now on.  The cache's own objects (cfg) are
 * ids 0..n_models-1, bound to cfg.load_ctx.  Errors: -EINVAL (a reused
 * id does not match; nothing changed), -ENOMEM (nothing changed).  Every
 * id handed out here is the caller's until apbi_cache_unbind_objects.
 */
int apbi_cache_bind_objects(apbi_cache *c, const apbi_cache_objects *o, uint32_t *ids);

/**
 * Objects ids[0..n) (ids NULL: ids 0..n-1) that are loaded through from
 * are loaded through to from now on, as number i: for a bundle that is
 * closing, so that another bundle using the same objects loads them.
 * Waits for the loader calls in flight through from on them.
 */
void apbi_cache_rebind_from(apbi_cache *c, void *from, void *to, uint32_t n, const uint32_t *ids);

/**
 * Frees the ids among ids[0..n) (NULL: 0..n-1) still loaded through ctx
 * (those rebound stay), after their loader calls in flight, dropping
 * their pages.  Call only when none of ctx's own readers pins or loads
 * anything (its readers and prefetcher are done).
 */
void apbi_cache_unbind_objects(apbi_cache *c, void *ctx, uint32_t n, const uint32_t *ids);

/** Per-model counters of model m. */
void apbi_cache_model_stats(apbi_cache *c, uint32_t m, apb_model_stats *out);

#endif
