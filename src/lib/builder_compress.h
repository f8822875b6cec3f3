/*
 * builder_compress.h - the builder's block compression (builder_compress.c):
 * a two-thread pool that compresses a model's blocks in parallel and hands
 * them back in block order, and the choice of filter per model.
 *
 * Use: apbi_cpool_new once per build; per model apbi_cpool_pick (for
 * APB_FILTER_AUTO), then apbi_cpool_begin, apbi_cpool_feed with the
 * model's bytes in any split, apbi_cpool_end.  All calls from one thread.
 */
#ifndef APB_BUILDER_COMPRESS_H
#define APB_BUILDER_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct apbi_cpool apbi_cpool;

/** Writes a block's n stored bytes at stored offset off (relative to the model). */
typedef int (*apbi_cpool_write_fn)(void *ctx, const void *p, size_t n, uint64_t off);

/**
 * A pool of 2 zstd workers at level (0: 3) for blocks of block_size bytes.
 * Errors: -EINVAL, -ENOMEM, -errno from pthread_create.
 */
int apbi_cpool_new(int level, uint32_t block_size, apbi_cpool **out);
/** Stops the workers and frees everything; NULL is fine. */
void apbi_cpool_free(apbi_cpool *p);

/**
 * Picks the filter that gives the fewest bytes on up to 4 evenly spread
 * blocks (at most 256 KiB of each) of a model of size bytes, read from
 * data (when not NULL) or from the file at path; ties keep none, then
 * bytegroup4.  Errors: -errno or APB_E_TRUNCATED reading path.
 */
int apbi_cpool_pick(apbi_cpool *p, const char *path, const uint8_t *data, uint64_t size,
                    enum apbi_filter *out);

/** Starts a model of size bytes with filter f; write receives its frames in order. */
int apbi_cpool_begin(apbi_cpool *p, enum apbi_filter f, uint64_t size,
                     apbi_cpool_write_fn write, void *ctx);
/** Feeds the model's next n bytes (waits for and writes finished blocks as needed). */
int apbi_cpool_feed(apbi_cpool *p, const uint8_t *data, size_t n);
/**
 * Ends the model once all size bytes were fed: writes the blocks still in
 * flight, gives the stored size and the stored offset of every block
 * (owned by the pool until the next begin).  Errors: as the write function,
 * -EIO when bytes are missing, a block's compression error.
 */
int apbi_cpool_end(apbi_cpool *p, uint64_t *stored_size, const uint64_t **offsets);

#endif
