/*
 * block_priv.h - internals shared by block.c (loads and verification) and
 * block_meta.c (the object map, checksum cursors, the failure ring).
 *
 * An extent describes one cache object as the loader sees it: where its
 * stored bytes start, its size, its verification unit (a power of two;
 * an object checked as a whole has one unit, the smallest power of two
 * >= its size) and where each unit's checksum comes from.
 */
#ifndef APB_BLOCK_PRIV_H
#define APB_BLOCK_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block.h"
#include "codec.h"

#define APBI_NO_OBJ UINT32_MAX
#define SCRATCH_N 4u             /* load buffers kept for units larger than pages */
#define SCRATCH_SIZE (1u << 20)  /* ... of this size */
#define RING_N 32u               /* failures remembered */

enum { OBJ_DATA = 0, OBJ_TABLE = 1, OBJ_INDEX = 2 };

typedef struct extent {
	uint32_t obj, model;
	int kind;                /* OBJ_DATA, OBJ_TABLE or OBJ_INDEX */
	uint64_t base;           /* source offset of stored byte 0 */
	uint64_t size;           /* bytes */
	uint64_t unit;           /* verification unit, a power of two */
	uint32_t sums_obj;       /* object holding the units' checksums, or
	                            APBI_NO_OBJ: one unit checked against sum */
	uint32_t entry_size;     /* bytes per entry in sums_obj (8 or more) */
	uint64_t sum;            /* the single unit's checksum */
	bool verify;             /* false: legacy, no checksums at all */
	bool virtual_index;      /* an index computed from a table without one */
	bool coded;              /* a compressed model: entries locate stored blocks
	                            (block_codec.c) */
} extent;

typedef struct bad_rec {
	uint32_t model;
	int where;               /* APB_WHERE_BLOCK or APB_WHERE_TABLE */
	int code;
	uint64_t block;
	bool used;
} bad_rec;

struct apbi_blocks {
	apbi_source *src;
	const apbi_manifest *m;
	apbi_cache *cache;
	const uint32_t *gid;     /* per object: its cache id (NULL: the same number) */
	uint32_t page_size, shift;
	uint32_t n, ntab, nobj;
	uint32_t *tslot;         /* per model: its table slot, or APBI_NO_OBJ */
	uint32_t *tmodel;        /* per table slot: its model */
	uint64_t *sizes;         /* per object */
	uint32_t *units;         /* per object: pages per unit (cache load unit) */
	uint64_t failures;       /* atomic */
	pthread_mutex_t lock;    /* scratch and ring */
	uint8_t *scratch[SCRATCH_N];
	bool busy[SCRATCH_N];
	bad_rec ring[RING_N];
	unsigned ring_next;
	apbi_codec_ctx *cctx[SCRATCH_N]; /* decoding contexts (block_codec.c) */
	bool cbusy[SCRATCH_N];
	uint32_t max_coded_block;        /* largest block of a compressed model */
	uint64_t decoded_bytes, decode_ns; /* atomic: blocks decoded, time spent */
	uint64_t loads, load_us_sum;     /* atomic: loader calls and their time */
	uint64_t load_lat[APB_LATENCY_BUCKETS]; /* atomic: loader calls per latency bucket */
};

/** Describes object obj. */
void apbi_extent_of(const apbi_blocks *bl, uint32_t obj, extent *e);

/** Object number of model m's table (APBI_NO_OBJ without one); +1: its index. */
uint32_t apbi_table_obj(const apbi_blocks *bl, uint32_t m);

/** Reads checksum entries of one object through the cache, a page at a time. */
typedef struct cursor {
	apbi_blocks *bl;
	uint32_t obj, esize;
	apbi_page *pg;           /* pinned page, or NULL */
	uint64_t page;
	const uint8_t *data;     /* of the current page (pinned or own) */
	uint8_t *own;            /* page read uncached when nothing could be pinned */
	bool have;
} cursor;

void apbi_cursor_init(cursor *c, apbi_blocks *bl, uint32_t obj, uint32_t esize);

/** Points *e at entry idx; 0 or the code of loading its page. */
int apbi_cursor_entry(cursor *c, uint64_t idx, const uint8_t **e);

/** Releases what the cursor holds. */
void apbi_cursor_done(cursor *c);

/** Called for a bad unit with its code; non-zero stops the read. */
typedef int (*unit_bad_fn)(void *ctx, uint64_t unit, int code);

/**
 * Unit u of e failed with code (APB_E_CHECKSUM, APB_E_CORRUPT for a frame
 * or table entry that cannot be decoded): counts and remembers it, records
 * a detail naming model, unit and byte range, and returns bad(ctx, u, code)
 * (0 without bad).
 */
int apbi_unit_failed(apbi_blocks *bl, const extent *e, uint64_t u, int code, unit_bad_fn bad,
                     void *ctx);

/**
 * A load buffer of len bytes: one of SCRATCH_N kept ones when len <=
 * SCRATCH_SIZE and one is free, else a one-off allocation; *kept says
 * which, for apbi_scratch_put.  NULL (with a detail) when out of memory.
 */
uint8_t *apbi_scratch_get(apbi_blocks *bl, uint64_t len, bool *kept);
void apbi_scratch_put(apbi_blocks *bl, uint8_t *p, bool kept);

/**
 * Reads units [u0, u1) of the compressed model e into the segments of iov
 * (each holding whole decoded blocks), as read_units does for stored
 * bytes: each block located through its table entry, decoded, checked.
 * *stored is set to the stored bytes read.  Returns 0, a bad() value that
 * stopped, or a negative code for the run.
 */
int apbi_read_coded(apbi_blocks *bl, const extent *e, uint64_t u0, uint64_t u1,
                    const struct iovec *iov, int niov, unit_bad_fn bad, void *ctx,
                    uint64_t *stored);

/** Frees the kept decoding contexts. */
void apbi_codec_pool_free(apbi_blocks *bl);

/** Records a failure of model m (counts it, keeps it in the ring). */
void apbi_blocks_note_bad(apbi_blocks *bl, uint32_t m, int where, uint64_t block, int code);

#endif
