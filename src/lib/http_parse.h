/*
 * http_parse.h - strict parsers for the HTTP reply fields the remote source
 * trusts (status line, header lines, Content-Range, Content-Length).  Pure
 * functions over (pointer, length): no allocation, no locale, no NUL
 * needed; fuzzed by tests/fuzz/fuzz_http.c.
 *
 * Invariants: every parser either accepts its whole input (after optional
 * surrounding spaces/tabs and one trailing CRLF or LF) and fills its
 * outputs, or returns -1 and leaves them untouched; numbers are decimal
 * digits only (no sign, no spaces inside), at most 19 digits, and never
 * overflow.
 */
#ifndef APB_HTTP_PARSE_H
#define APB_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/** A parsed "Content-Range: bytes FIRST-LAST/TOTAL" (RFC 9110 14.4). */
typedef struct apbi_content_range {
	uint64_t first, last;     /* inclusive; valid only when !unsatisfied */
	uint64_t total;           /* complete length of the object */
	int unsatisfied;          /* 1 for "bytes *\/TOTAL" (a 416 reply) */
} apbi_content_range;

/**
 * Parses the value of a Content-Range field.  Accepts "bytes F-L/T" with
 * F <= L < T, or "bytes *\/T"; refuses a "*" total (unknown length), other
 * units, signs, spaces inside numbers and trailing garbage.  Returns 0 or -1.
 */
int apbi_http_content_range(const char *s, size_t len, apbi_content_range *out);

/** Parses a decimal Content-Length value.  Returns 0 or -1. */
int apbi_http_content_length(const char *s, size_t len, uint64_t *out);

/**
 * Parses a status line "HTTP/1.x NNN reason" (or "HTTP/2 NNN"); sets
 * *status to the three-digit code.  The reason phrase may hold no control
 * byte but tab.  Returns 0 or -1.
 */
int apbi_http_status_line(const char *s, size_t len, int *status);

/**
 * Splits a header line "Name: value" (trailing CRLF optional): *name and
 * *name_len cover the field name (an RFC 9110 token), *val and *val_len the
 * value without surrounding spaces/tabs.  Returns 0, or -1 for anything
 * else (a continuation line, no colon, an empty or invalid name, a control
 * character other than tab in the value).
 */
int apbi_http_header_line(const char *s, size_t len, const char **name, size_t *name_len,
                          const char **val, size_t *val_len);

/** Case-insensitive comparison of a header name with lit (NUL-terminated). */
int apbi_http_name_is(const char *name, size_t name_len, const char *lit);

#endif
