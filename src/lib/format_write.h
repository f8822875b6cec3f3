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
#include <sys/types.h>

#include "apbundle.h"
#include "codec.h"

/** Default alignment of a bundle with compressed models (set_alignment overrides). */
#define APBI_COMPRESSED_ALIGNMENT 16u

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
	enum apbi_codec codec;     /* APBI_CODEC_NONE: stored as is */
	enum apbi_filter filter;   /* with a codec */
	uint64_t stored_size;      /* bytes at offset: size when uncompressed; for a
	                              compressed model size (the bound) until written */
} apbi_wmodel;

/** Bytes of the index of a table of table_bytes bytes (one u64 per chunk). */
static inline uint64_t apbi_windex_bytes(uint64_t table_bytes)
{
	return (table_bytes + 65535) / 65536 * 8;
}

/**
 * Appends to a table of tbytes bytes at t (as stored; t has room for
 * apbi_windex_bytes(tbytes) more) its index: the little-endian XXH3-64 of
 * each 64 KiB chunk of the table (docs/FORMAT.md 4).  Returns the XXH3-64
 * of the index's bytes (blocks.index_checksum).
 */
uint64_t apbi_windex_make(void *t, uint64_t tbytes);

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
	uint32_t version;          /* 1, or 2 when some model has a codec */
	size_t reserve;            /* pad the manifest to at least this many bytes */
} apbi_wbundle;

/** True when model m has a block table (more than one block, or compressed). */
bool apbi_wmodel_has_table(const apbi_wmodel *m);

/**
 * Places every model of wb and its block table (each table followed by its
 * index, 8-byte aligned), filling offset, n_blocks, blocks_offset,
 * index_offset and wb->data_size; sets wb->version.  Version 1 (no codec):
 * every model at the next multiple of the alignment, in order, then the
 * tables.  Version 2: each model at the next multiple of the alignment
 * after the previous model's table and index, its stored_size bytes, then
 * its table (16-byte entries when compressed) and index.  Offsets only grow
 * with stored sizes, so a plan made with stored_size = size bounds every
 * offset of the final one.  Errors: -EFBIG when an offset would pass
 * INT64_MAX (with a detail naming the model).
 */
int apbi_layout_plan(apbi_wbundle *wb);

/**
 * Version 2: places model i at the first aligned offset >= *pos and its
 * table after its stored_size bytes; *pos becomes the table's end.  Used by
 * the builder once more after a model is compressed.  Errors: as above.
 */
int apbi_layout_place(apbi_wbundle *wb, size_t i, uint64_t *pos);

/**
 * Encodes the manifest of a planned wb.  On success *out is a malloc'ed
 * buffer the caller frees, holding *len bytes: the JSON text followed by
 * spaces so that 16 + *len is a multiple of the alignment and *len is at
 * least wb->reserve (which must itself be such a length) (no NUL is
 * counted in *len, though one follows).  Errors: -ENOMEM, -EFBIG (the
 * manifest would exceed the 64 MiB limit, or the data section would start
 * beyond INT64_MAX).
 */
int apbi_manifest_encode(const apbi_wbundle *wb, char **out, size_t *len);

/**
 * Fills the 16-byte header (format version, a manifest of len bytes) into out.
 */
void apbi_header_encode(uint8_t out[16], uint32_t version, uint32_t len);

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

/**
 * Like apb_builder_add_model but without copying: data must stay valid
 * and unchanged until the builder is freed.  Used by apb_bundle_save.
 */
int apbi_builder_add_ref(apb_builder *bb, const char *name, const void *data, size_t size);

/* ---- temporary file (builder_tmp.c), used by builder.c ---- */

/**
 * Creates and locks (flock LOCK_EX) "<path>.tmp.XXXXXX": *fd open
 * read-write, *tmp its malloc'ed name.  Errors: -errno with a detail.
 */
int apbi_tmp_open(const char *path, int *fd, char **tmp);

/** Reads up to want bytes from fd's position (fewer only at end of file); count or -errno. */
ssize_t apbi_read_upto(int fd, uint8_t *buf, size_t want);

/** Bytes of hole at pos of a size-byte file (0 when pos is in data); holes read as zeros. */
uint64_t apbi_hole_run(int fd, uint64_t pos, uint64_t size);

/** Bytes of data at pos before the next hole (or size). */
uint64_t apbi_data_run(int fd, uint64_t pos, uint64_t size);

/** fsyncs the directory holding path.  Errors: -errno with a detail. */
int apbi_sync_dir(const char *path);

/* ---- metadata (builder_meta.c), used by builder.c ---- */

/**
 * Sets wb's created_at: SOURCE_DATE_EPOCH when set, else the current time.
 * Errors: -EINVAL (SOURCE_DATE_EPOCH is not a number of seconds).
 */
int apbi_resolve_time(apbi_wbundle *wb);

/**
 * Validates md and makes a deep copy of it in one malloc'ed allocation
 * (header, pair arrays, strings; each pair array sorted by key), which
 * the caller frees with free().  Errors: -EINVAL with a detail (NULL list
 * with a nonzero count, NULL key or value, invalid UTF-8, a key given
 * twice in one list), -ENOMEM.  Nothing stays allocated on failure.
 */
int apbi_metadata_copy(const apb_metadata *md, apb_metadata **out);

#endif
