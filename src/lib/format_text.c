/*
 * format_text.c - checks of the manifest's raw text that json-c cannot
 * make: the binding checksum ("manifest_checksum", docs/FORMAT.md 2.4),
 * computed over the exact bytes as stored, and lone UTF-16 surrogate
 * escapes, which json-c would silently turn into U+FFFD.
 *
 * Invariants: both read only text[0..len) and never trust a length or
 * offset they did not find in it themselves.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

#include "format_priv.h"
#include "internal.h"

/* Lowercase or uppercase hex digit value, or -1. */
static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * See format_priv.h.  Checks "manifest_checksum" (docs/FORMAT.md 2.4): its value, written
 * literally as "xxh3:" and 16 hex digits, is XXH3-64 of the whole manifest
 * text[0..len) with those 16 digits read as '0'.  No key: unbound, not an
 * error (older writers).
 */
int apbi_check_binding(const char *text, size_t len, size_t sum_a, size_t sum_b, bool *bound)
{
	static const char zeros[16] = "0000000000000000";
	const char *v = text + sum_a;
	uint64_t want = 0, got;
	XXH3_state_t *st;
	char a[22], b[22];

	if (!sum_b)
		return 0;
	if (sum_b - sum_a != 23 || memcmp(v, "\"xxh3:", 6) != 0 || v[22] != '"')
		return apbi_set_error(APB_E_MANIFEST, "manifest field \"manifest_checksum\": not "
		                      "\"xxh3:\" and 16 hex digits written out (at byte %zu)", sum_a);
	for (int i = 0; i < 16; i++) {
		int d = hexval(v[6 + i]);
		if (d < 0)
			return apbi_set_error(APB_E_MANIFEST, "manifest field \"manifest_checksum\": "
			                      "0x%02x is not a hex digit (at byte %zu)",
			                      (unsigned char)v[6 + i], sum_a + 6 + i);
		want = want << 4 | (uint64_t)d;
	}
	if (!(st = XXH3_createState()))
		return apbi_set_error(-ENOMEM, "out of memory checking the manifest");
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, text, sum_a + 6);
	XXH3_64bits_update(st, zeros, 16);
	XXH3_64bits_update(st, v + 22, len - (sum_a + 22));
	got = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	if (got != want) {
		apbi_checksum_format(want, a);
		apbi_checksum_format(got, b);
		return apbi_set_error(APB_E_CHECKSUM, "manifest checksum mismatch: manifest_checksum "
		                      "is %s but the manifest's %zu bytes hash to %s (the manifest "
		                      "was changed after it was written)", a, len, b);
	}
	*bound = true;
	return 0;
}

/* The value of the \\uXXXX escape at t[p] ('\\'), or -1 when it is not one. */
static long u_escape(const char *t, size_t len, size_t p)
{
	long v = 0;

	if (p + 6 > len || t[p + 1] != 'u')
		return -1;
	for (size_t i = p + 2; i < p + 6; i++) {
		int d = hexval(t[i]);
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/*
 * Refuses a \\u escape of a lone UTF-16 surrogate, which json-c would turn
 * into U+FFFD where docs/FORMAT.md refuses surrogates.  A backslash is
 * only valid inside a string, so every one starts an escape.
 */
int apbi_check_surrogates(const char *t, size_t len)
{
	const char *b;

	for (size_t p = 0; p < len && (b = memchr(t + p, '\\', len - p)); ) {
		long v = u_escape(t, len, p = (size_t)(b - t)), lo;
		if (v >= 0xd800 && v <= 0xdbff && (lo = u_escape(t, len, p + 6)) >= 0xdc00 &&
		    lo <= 0xdfff) {
			p += 12;    /* a proper pair: one code point above U+FFFF */
			continue;
		}
		if (v >= 0xd800 && v <= 0xdfff)
			return apbi_set_error(APB_E_MANIFEST, "manifest JSON invalid at byte %zu: "
			                      "\"\\u%.4s\" is a lone UTF-16 surrogate (not a character)",
			                      p, t + p + 2);
		p += 2;
	}
	return 0;
}
