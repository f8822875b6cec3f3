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

/*
 * The JSON scanner (json_scan.c): finds value extents without building
 * them, so the manifest's "models" array is decoded one element at a time.
 * Nesting is capped at json-c's own default depth (the root counts as 1).
 */
#define APBI_JSON_MAX_DEPTH 32

/** The extent text[a..b) of one JSON value. */
typedef struct apbi_json_span {
	size_t a, b;
} apbi_json_span;

/**
 * Records "manifest JSON invalid at byte at: what (found 0x..)", or "ends
 * early" when at >= len, and returns APB_E_MANIFEST.
 */
int apbi_json_error(const char *t, size_t len, size_t at, const char *what);

/** Returns the first position >= p in t[0..len) that is not JSON whitespace. */
size_t apbi_json_skip_ws(const char *t, size_t len, size_t p);

/**
 * Skips the string starting at t[*pos] ('"'); *pos ends just past its
 * closing quote.  Returns 0 or APB_E_MANIFEST with a detail.
 */
int apbi_json_skip_string(const char *t, size_t len, size_t *pos);

/**
 * Expects optional whitespace, ':' and optional whitespace at t[*pos];
 * *pos ends at the value.  Returns 0 or APB_E_MANIFEST with a detail.
 */
int apbi_json_skip_colon(const char *t, size_t len, size_t *pos);

/**
 * Skips the value starting at t[*pos] (no leading whitespace) that sits
 * inside depth open containers; *pos ends just past it.  Returns 0 or
 * APB_E_MANIFEST naming the byte (bad structure, nesting deeper than
 * APBI_JSON_MAX_DEPTH, or the text ends first).
 */
int apbi_json_skip_value(const char *t, size_t len, size_t *pos, int depth);

/**
 * Scans the array at t[*pos] ('[') inside depth open containers: *spans
 * (malloc'd, caller frees; NULL when empty) gets the extent of each of its
 * *n elements and *pos ends just past ']'.  Only whitespace and single
 * commas may separate elements; what names the array in messages.
 * Returns 0, APB_E_MANIFEST naming the byte, or -ENOMEM.
 */
int apbi_json_array_spans(const char *t, size_t len, size_t *pos, int depth, const char *what,
                          apbi_json_span **spans, size_t *n);

/**
 * Checks the manifest's "manifest_checksum", whose value (quotes included)
 * the scanner found at text[sum_a..sum_b) (sum_b 0: no key, unbound, not an
 * error).  Sets *bound on a match.  Errors: APB_E_MANIFEST (not "xxh3:"
 * and 16 hex digits), APB_E_CHECKSUM (mismatch), -ENOMEM (format_text.c).
 */
int apbi_check_binding(const char *text, size_t len, size_t sum_a, size_t sum_b, bool *bound);

/** Refuses a \\u escape of a lone UTF-16 surrogate: APB_E_MANIFEST (format_text.c). */
int apbi_check_surrogates(const char *t, size_t len);

#endif
