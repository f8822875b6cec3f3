/*
 * format.h - the decoded form of a bundle's header and manifest (format.c).
 *
 * An apbi_manifest is immutable once decoded and has been fully validated:
 * every model range and block table lies inside the file, no two overlap,
 * names are valid and unique, counts match, and a 0-byte model's checksum
 * is XXH3 of no bytes (so an empty model, which has no block to read, is
 * still checked).  Readers may trust it.
 */
#ifndef APB_FORMAT_H
#define APB_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "apbundle.h"
#include "codec.h"

#define APBI_MAGIC "APBUNDLE"
#define APBI_HEADER_SIZE 16u            /* v1: magic, u32 version, u32 length */
#define APBI_LEGACY_HEADER_SIZE 20u     /* aprender: magic, u32 version, u64 length */
#define APBI_MAX_MANIFEST (64u << 20)   /* 64 MiB */
#define APBI_TABLE_CHUNK 65536u         /* table bytes covered by one index entry */
/* The value of "manifest_checksum" while it is hashed (docs/FORMAT.md 3.1). */
#define APBI_MANIFEST_SUM_ZERO "xxh3:0000000000000000"
#define APBI_MANIFEST_SUM_ZERO_Q "\"" APBI_MANIFEST_SUM_ZERO "\""

enum apbi_layout { APBI_LAYOUT_V1 = 1, APBI_LAYOUT_LEGACY = 2 };   /* V1: versions 1 and 2 */

typedef struct apbi_model {
	char *name;               /* NUL-terminated, validated */
	uint32_t name_len;
	uint64_t offset;          /* relative to the data section */
	uint64_t size;
	uint64_t checksum;        /* XXH3-64 of the model; valid if has_checksum */
	bool has_checksum;
	uint32_t block_size;      /* 0 = no verification possible (legacy); without a
	                             table the smallest power of two >= max(size, 512) */
	uint64_t n_blocks;        /* ceil(size / block_size); 0 for size 0 */
	bool has_block_table;     /* false: n_blocks <= 1, checksum is the block checksum */
	uint64_t blocks_offset;   /* relative to the data section, if has_block_table */
	uint64_t table_checksum;  /* XXH3-64 of the table's bytes as stored; valid if
	                             has_table_checksum */
	bool has_table_checksum;  /* false: "blocks" without "table_checksum" (old
	                             writer): the table is not bound to the manifest */
	uint32_t entry_size;      /* bytes per table entry: 8 (the block's XXH3-64), or
	                             16 for a compressed model (XXH3, stored offset) */
	bool has_index;           /* the table has an index (blocks.index_offset):
	                             XXH3-64 of each APBI_TABLE_CHUNK bytes of it */
	uint64_t index_offset;    /* relative to the data section, if has_index */
	uint64_t index_checksum;  /* XXH3-64 of the index's bytes as stored */
	enum apbi_codec codec;    /* APBI_CODEC_NONE unless a v2 manifest says "zstd" */
	enum apbi_filter filter;  /* APBI_FILTER_NONE for uncompressed models */
	uint64_t stored_size;     /* bytes at offset: == size when uncompressed, else
	                             <= size (the sum of the stored blocks) */
	apb_metadata md;          /* points into storage owned by the manifest */
	uint8_t clash;            /* APB_CLASH_* bits (apbi_name_clashes) */
} apbi_model;

typedef struct apbi_manifest {
	enum apbi_layout layout;
	uint32_t version;
	uint32_t alignment;       /* 1 for legacy */
	uint32_t block_size;      /* most common block size (for display); 0 legacy
	                             or when no model needs a block table */
	uint64_t data_start;      /* absolute file offset of the data section */
	uint64_t file_size;
	char *description;        /* may be NULL */
	bool has_created_at;
	int64_t created_at;
	bool manifest_bound;      /* "manifest_checksum" present and matching (an
	                             older writer's manifest has none) */
	uint64_t n_clashes;       /* models whose clash is not 0 */
	uint64_t n_models;
	apbi_model *models;       /* in file order */
	void *priv;               /* name index and string storage */
} apbi_manifest;

/** Bytes of model mod's block table (0 without one). */
static inline uint64_t apbi_table_bytes(const apbi_model *mod)
{
	return mod->has_block_table ? mod->n_blocks * mod->entry_size : 0;
}

/** Bytes of model mod's table index: one u64 per APBI_TABLE_CHUNK of table. */
static inline uint64_t apbi_index_bytes(const apbi_model *mod)
{
	return (apbi_table_bytes(mod) + APBI_TABLE_CHUNK - 1) / APBI_TABLE_CHUNK * 8;
}

/**
 * Reads and validates the header and manifest of the open bundle fd.
 * On success *out is a new manifest freed with apbi_manifest_free.
 * Errors: APB_E_* with a detail, negative errno from I/O.
 */
int apbi_manifest_read(int fd, apbi_manifest **out);

struct apbi_source;

/**
 * Reads and validates the header and manifest of a bundle through its
 * source (source.h), reading only the header and the manifest's bytes.
 * Errors as apbi_manifest_read.
 */
int apbi_manifest_read_source(struct apbi_source *src, apbi_manifest **out);

/**
 * Same from bytes already in memory: buf holds the first len bytes of a
 * file of file_size bytes (len may be less than file_size; the header and
 * manifest must be inside buf or APB_E_TRUNCATED is returned).  Used by the
 * reader above and by the fuzz targets.
 */
int apbi_manifest_parse(const uint8_t *buf, size_t len, uint64_t file_size,
                        apbi_manifest **out);

/** Returns the index of name, or -1.  O(1) average. */
int64_t apbi_manifest_find(const apbi_manifest *m, const char *name);

/** Frees a manifest; NULL allowed. */
void apbi_manifest_free(apbi_manifest *m);

/** Fills a public apb_model_info for model i (pointers into m). */
void apbi_model_info(const apbi_manifest *m, uint64_t i, apb_model_info *out);

/** Where block k of a compressed model is stored (apbi_block_locate). */
typedef struct apbi_block_loc {
	uint64_t checksum;        /* XXH3-64 of the decoded block */
	uint64_t offset;          /* stored offset relative to the model's offset */
	uint32_t stored_len;      /* == len: stored raw; < len: one zstd frame */
	uint32_t len;             /* decoded length (block_size, or the short tail) */
} apbi_block_loc;

/**
 * Reads entry k of compressed model mod (mod->entry_size 16) from the
 * table bytes as stored: entry points at the entry's 16 bytes, next at
 * entry k+1's (NULL for the last block, whose end is stored_size).
 * Checks what one entry can be checked for: entry 0 at stored offset 0,
 * offsets never decreasing, the stored range inside stored_size, the
 * stored length at most the decoded one.  Returns 0 or APB_E_CORRUPT with
 * a detail naming the model (index i) and block k.
 */
int apbi_block_locate(const apbi_model *mod, uint64_t i, uint64_t k, const uint8_t *entry,
                      const uint8_t *next, apbi_block_loc *out);

#endif
