/*
 * block.h - the block layer: stored bytes from a source (source.h) become
 * verified bytes, one verification unit at a time (block.c, block_meta.c).
 *
 * The page cache (cache.h) holds "objects", numbered for the cache like
 * models: objects [0, n) are the n models' bytes; the t-th model that has a
 * block table (in model order) owns object n + 2t, its table, and object
 * n + 2t + 1, the table's index (docs/FORMAT.md 4.2).  Every object is
 * verified in units: a model in its blocks (checksums in its table), a
 * table in 64 KiB chunks (checksums in its index), an index as a whole
 * (checksum in the manifest).  So the checksums a model's block needs are
 * themselves cached pages: counted in memory_used, evictable, never read
 * again while resident, and a 1 TiB model costs no more resident metadata
 * than the table pages its reads touch.
 *
 * Invariants: no byte reaches a caller or the cache before its unit
 * matched its checksum (legacy bundles, which have none, excepted); a unit
 * that fails is reported (res[] / the bad_fn) and its bytes are dropped,
 * while good units of the same read stay usable; every failure is
 * remembered (model, where, block) in a small ring so the reader that sees
 * the error names the block without reading it again.
 */
#ifndef APB_BLOCK_H
#define APB_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "apbundle.h"
#include "cache.h"
#include "format.h"
#include "source.h"

typedef struct apbi_blocks apbi_blocks;

/**
 * Creates the block layer of a bundle: src and m are borrowed and must
 * outlive it.  page_size is the cache's (a power of two >= 512).
 * Errors: -ENOMEM, -EINVAL (more objects than the cache can number).
 */
int apbi_blocks_new(apbi_source *src, const apbi_manifest *m, uint32_t page_size,
                    apbi_blocks **out);

/** Frees bl (not the source, manifest or cache).  NULL allowed. */
void apbi_blocks_free(apbi_blocks *bl);

/** Number of cache objects (models, tables and indexes). */
uint32_t apbi_blocks_nobjects(const apbi_blocks *bl);

/** Sizes of every object, for apbi_cache_config.model_sizes (owned by bl). */
const uint64_t *apbi_blocks_sizes(const apbi_blocks *bl);

/** Pages per verification unit of every object (model_align; owned by bl). */
const uint32_t *apbi_blocks_units(const apbi_blocks *bl);

/**
 * Gives bl the cache its tables are read through (the cache whose loader
 * is apbi_blocks_load with ctx bl) and the cache's id of each of its
 * objects (gid, borrowed, outlives bl; NULL: object i is id i).  Call
 * once, before any load.
 */
void apbi_blocks_attach(apbi_blocks *bl, apbi_cache *c, const uint32_t *gid);

/**
 * The cache's loader (apbi_cache_load_fn, ctx = bl): fills pages
 * first..first+n-1 of object obj with verified bytes.  res[i] is 0 or the
 * code of page i (APB_E_CHECKSUM: a unit under it failed).  Returns the
 * stored bytes read (tables and indexes it needed are loaded through the
 * cache and counted there), or a negative code for every page.
 */
ssize_t apbi_blocks_load(void *bl, uint32_t obj, uint64_t first, uint32_t n,
                         uint8_t *const dst[], int res[]);

/** Called for each unit that failed during apbi_blocks_read. */
typedef int (*apbi_bad_fn)(void *ctx, const apb_block_error *e);

/**
 * Reads blocks [b0, b0 + nb) of model m, verified, into buf (their bytes,
 * contiguous), without caching them (the table is read through the
 * cache).  For each bad block bad(ctx, e) is called; a non-zero return
 * stops and is returned.  Returns 0 when every block was good, the code of
 * the first bad block when bad() accepted all, or a negative code (I/O, a
 * bad table: nothing in buf can be trusted).  nb * block size must fit in
 * buf.
 */
int apbi_blocks_read(apbi_blocks *bl, uint32_t m, uint64_t b0, uint64_t nb, uint8_t *buf,
                     apbi_bad_fn bad, void *ctx);

/**
 * Reads model bytes [off, off + len) of a model without checksums (legacy
 * bundles: apbi_blocks_block_size is 0) into buf, unverified.  Errors:
 * -EINVAL (outside the model), the source's codes.
 */
int apbi_blocks_read_raw(apbi_blocks *bl, uint32_t m, uint64_t off, uint64_t len, uint8_t *buf);

/** Verification unit of model m's bytes: its block size (0: unverifiable). */
uint64_t apbi_blocks_block_size(const apbi_blocks *bl, uint32_t m);

/** Bytes of compressed blocks decoded since open, and the time it took. */
void apbi_blocks_decode_stats(const apbi_blocks *bl, uint64_t *bytes, uint64_t *ns);

/**
 * Loader calls since open, their total time in microseconds and how many
 * fell in each latency bucket (apb_latency_bound_us).
 */
void apbi_blocks_load_stats(const apbi_blocks *bl, uint64_t *loads, uint64_t *us_sum,
                            uint64_t lat[APB_LATENCY_BUCKETS]);

/** Units that failed their checksum since open (blocks, chunks, indexes). */
uint64_t apbi_blocks_failures(const apbi_blocks *bl);

/**
 * Finds the most recent failure recorded for model m that touches model
 * bytes [lo, hi) (or its table): true and *out filled, else false.
 */
bool apbi_blocks_find_bad(apbi_blocks *bl, uint32_t m, uint64_t lo, uint64_t hi,
                          apb_block_error *out);

#endif
