/*
 * format_priv.h - what the manifest decoders share (format*.c only).
 *
 * format.c owns the manifest object (arena, name index, common structural
 * checks); format_json.c decodes the v1 JSON manifest and format_legacy.c
 * aprender's binary one into it.  A decoder fills layout-specific fields,
 * m->n_models and m->models (allocated with calloc), copies every string
 * into the arena, and checks each name with apbi_name_check; then
 * apbi_manifest_finish() checks alignment, ranges, overlaps and duplicate
 * names the same way for both layouts and builds the index.
 */
#ifndef APB_FORMAT_PRIV_H
#define APB_FORMAT_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* Largest block size a reader accepts; also the largest model without a table. */
#define APBI_MAX_BLOCK_SIZE (1u << 30)
#define APBI_MIN_BLOCK_SIZE 512u
#define APBI_MAX_ALIGNMENT (1u << 30)

/**
 * Returns n bytes aligned to 8 from m's arena (freed with the manifest),
 * or NULL when out of memory.
 */
void *apbi_arena_alloc(apbi_manifest *m, size_t n);

/** Copies s[0..len) and a NUL into m's arena; NULL when out of memory. */
char *apbi_arena_strdup(apbi_manifest *m, const char *s, size_t len);

/**
 * Records a detail "models[i] \"name\": <fmt...>" (or "models[i]: ..." when
 * name is NULL) and returns code.
 */
int apbi_model_error(int code, uint64_t i, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/**
 * Sets the block fields of a model without a block table: the whole model
 * is one block.  Returns 0 or APB_E_CORRUPT when the model is too large to
 * go without a table.
 */
int apbi_model_single_block(apbi_model *mod, uint64_t i);

/** Decodes the v1 JSON manifest text[0..len) into m. */
int apbi_decode_json(const char *text, size_t len, apbi_manifest *m);

/** Decodes aprender's binary manifest p[0..len) into m. */
int apbi_decode_legacy(const uint8_t *p, size_t len, apbi_manifest *m);

/**
 * Checks what both layouts share: offsets aligned, every model and block
 * table inside the data section, no two overlap, names unique; builds the
 * name index.  Returns 0 or an APB_E_* code with a detail.
 */
int apbi_manifest_finish(apbi_manifest *m);

#endif
