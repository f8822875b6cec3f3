/*
 * obuf.h - a growable text buffer in its own anonymous mapping.
 *
 * The mount renders its generated files (.stats, .stats.json, .metrics)
 * into these.  The mapping grows by mremap (no copy through the heap, no
 * 2x peak of realloc) and apbm_obuf_free gives every byte back to the
 * kernel at once, so a large snapshot never leaves freed-but-kept heap
 * behind.  After any failed append the buffer is marked failed and every
 * later append is a no-op: the caller checks once, at the end.
 */
#ifndef APBM_OBUF_H
#define APBM_OBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct apbm_obuf {
	char *data;      /* NULL until the first append */
	size_t len;      /* bytes written */
	size_t cap;      /* bytes mapped */
	size_t limit;    /* appends beyond this many bytes fail; 0 = no limit */
	bool failed;     /* an append failed (no memory, or over limit) */
	bool over_limit; /* ... because of limit */
} apbm_obuf;

/** Appends n bytes of s. */
void apbm_obuf_put(apbm_obuf *b, const char *s, size_t n);

/** Appends the NUL-terminated string s. */
void apbm_obuf_puts(apbm_obuf *b, const char *s);

/** Appends printf-formatted text. */
void apbm_obuf_printf(apbm_obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Appends s as a JSON string, quotes included: '"', '\\' and control
 * characters escaped, everything else (valid UTF-8 is assumed, as model
 * names are) copied as is.
 */
void apbm_obuf_json_str(apbm_obuf *b, const char *s);

/** Returns the unused tail of the mapping to the kernel (after the last append). */
void apbm_obuf_shrink(apbm_obuf *b);

/** Unmaps the buffer and zeroes b.  Safe on a zeroed b. */
void apbm_obuf_free(apbm_obuf *b);

#endif
