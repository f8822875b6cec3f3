/*
 * format_write.h - the write side of format v1 (format_write.c) and the
 * builder internals shared with bundle.c (builder.c, builder_meta.c).
 *
 * The writer works in two steps that never touch a file: apbi_layout_plan
 * places every model and block table in the data section (offsets relative
 * to its start), and apbi_manifest_encode turns the plan into the manifest
 * text, padded so that the data section starts aligned.  Checksums are
 * fixed-width strings, so encoding before and after hashing gives texts of
 * the same length: the layout never moves once planned.
 */
#ifndef APB_FORMAT_WRITE_H
#define APB_FORMAT_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apbundle.h"

/** One model as the writer sees it. */
typedef struct apbi_wmodel {
	const char *name;          /* validated, NUL-terminated */
	uint64_t size;             /* bytes */
	uint64_t offset;           /* set by apbi_layout_plan */
	uint64_t n_blocks;         /* set by apbi_layout_plan: ceil(size / block_size) */
	uint64_t blocks_offset;    /* set by apbi_layout_plan when n_blocks > 1 */
	uint64_t checksum;         /* XXH3-64 of the model (0 until hashed) */
	uint64_t table_checksum;   /* XXH3-64 of the block table's bytes as stored
	                              (little-endian u64s), when n_blocks > 1 */
	uint64_t index_offset;     /* set by apbi_layout_plan when n_blocks > 1: the
	                              table's index (docs/FORMAT.md 4), after it */
	uint64_t index_checksum;   /* XXH3-64 of the index's bytes as stored */
	const apb_metadata *md;    /* NULL: no "metadata" key */
} apbi_wmodel;

/** Bytes of the index of a table of table_bytes bytes (one u64 per chunk). */
static inline uint64_t apbi_windex_bytes(uint64_t table_bytes)
{
	return (table_bytes + 65535) / 65536 * 8;
}

/** Bundle-wide settings of the manifest. */
typedef struct apbi_wbundle {
	uint32_t alignment;        /* power of two */
	uint32_t block_size;       /* power of two >= 512 */
	const char *description;   /* NULL: no "description" key */
	bool has_created_at;
	int64_t created_at;
	size_t n_models;
	apbi_wmodel *models;       /* in the order they were added */
	uint64_t data_size;        /* set by apbi_layout_plan: bytes of the data section */
} apbi_wbundle;

/**
 * Places every model of wb (at multiples of the alignment, in order) and
 * then the block tables of multi-block models, each followed by its index
 * (8-byte aligned), filling offset, n_blocks, blocks_offset, index_offset
 * and wb->data_size.  Errors: -EFBIG when
 * an offset would pass INT64_MAX (with a detail naming the model).
 */
int apbi_layout_plan(apbi_wbundle *wb);

/**
 * Encodes the manifest of a planned wb.  On success *out is a malloc'ed
 * buffer the caller frees, holding *len bytes: the JSON text followed by
 * spaces so that 16 + *len is a multiple of the alignment (no NUL is
 * counted in *len, though one follows).  Errors: -ENOMEM, -EFBIG (the
 * manifest would exceed the 64 MiB limit, or the data section would start
 * beyond INT64_MAX).
 */
int apbi_manifest_encode(const apbi_wbundle *wb, char **out, size_t *len);

/**
 * Fills the 16-byte v1 header for a manifest of len bytes into out.
 */
void apbi_header_encode(uint8_t out[16], uint32_t len);

/* ---- name index (format_write.c), used by builder.c and bundle.c ---- */

/** Returns the NUL-terminated name of entry i of the caller's collection. */
typedef const char *(*apbi_name_at_fn)(const void *ctx, size_t i);

/**
 * Open-addressing hash index from names to the caller's indices.  The
 * names live in the caller's collection and are fetched through name_at;
 * zero-initialise before use.
 */
typedef struct apbi_nameidx {
	size_t *slots;             /* index + 1; 0 = empty */
	size_t cap;                /* power of two, or 0 */
	size_t count;
	apbi_name_at_fn name_at;
	const void *ctx;
} apbi_nameidx;

/** Returns the index stored for name, or -1.  O(1) average. */
int64_t apbi_nameidx_find(const apbi_nameidx *x, const char *name);

/** Adds index i (whose name must not be present yet).  Errors: -ENOMEM. */
int apbi_nameidx_add(apbi_nameidx *x, size_t i);

/** Frees the slots (not the names). */
void apbi_nameidx_free(apbi_nameidx *x);

/** Receives n more source bytes consumed by a build (holes included). */
typedef void (*apbi_progress_fn)(void *ctx, uint64_t n);

/**
 * Has apb_builder_build call fn (in the building thread) after every
 * chunk it copies or hashes, so the calls add up to the total size of the
 * models; NULL turns it off.  Used by apbundle create's progress line.
 */
void apbi_builder_set_progress(apb_builder *bb, apbi_progress_fn fn, void *ctx);

/**
 * Like apb_builder_add_model but without copying: data must stay valid
 * and unchanged until the builder is freed.  Used by apb_bundle_save.
 */
int apbi_builder_add_ref(apb_builder *bb, const char *name, const void *data, size_t size);

/* ---- metadata copy (builder_meta.c), used by builder.c ---- */

/**
 * Validates md and makes a deep copy of it in one malloc'ed allocation
 * (header, pair arrays, strings; each pair array sorted by key), which
 * the caller frees with free().  Errors: -EINVAL with a detail (NULL list
 * with a nonzero count, NULL key or value, invalid UTF-8, a key given
 * twice in one list), -ENOMEM.  Nothing stays allocated on failure.
 */
int apbi_metadata_copy(const apb_metadata *md, apb_metadata **out);

#endif
