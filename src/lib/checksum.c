/*
 * checksum.c - XXH3-64 checksums and their "xxh3:<16 hex>" text form.
 *
 * Invariants: the hash is libxxhash's XXH3_64bits with the default seed and
 * secret, so values match `xxh64sum`-style tools using XXH3; formatting
 * always gives exactly 21 characters plus NUL; parsing accepts exactly
 * "xxh3:" followed by 16 hex digits (either case) and nothing else.
 */
#include <string.h>

#include <xxhash.h>

#include "internal.h"

/**
 * Returns XXH3-64 of data[0..len).
 */
uint64_t apbi_xxh3(const void *data, size_t len)
{
	return (uint64_t)XXH3_64bits(data, len);
}

/**
 * Writes "xxh3:" + 16 lowercase hex digits of h and a NUL into out.
 */
void apbi_checksum_format(uint64_t h, char out[22])
{
	static const char hex[] = "0123456789abcdef";

	memcpy(out, "xxh3:", 5);
	for (int i = 0; i < 16; i++)
		out[5 + i] = hex[(h >> (60 - 4 * i)) & 0xf];
	out[21] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/**
 * Parses "xxh3:<16 hex digits>" into *out.  Returns 0, or APB_E_MANIFEST
 * with a detail for a NULL string, another algorithm, a wrong length or a
 * non-hex digit.
 */
int apbi_checksum_parse(const char *s, uint64_t *out)
{
	uint64_t h = 0;

	if (!s)
		return apbi_set_error(APB_E_MANIFEST, "checksum missing");
	if (strncmp(s, "xxh3:", 5) != 0)
		return apbi_set_error(APB_E_MANIFEST,
		                      "checksum \"%.40s\": unknown algorithm (want \"xxh3:\")", s);
	for (int i = 0; i < 16; i++) {
		int v = hex_value(s[5 + i]);
		if (v < 0)
			return apbi_set_error(APB_E_MANIFEST,
			                      "checksum \"%.40s\": want 16 hex digits after \"xxh3:\"", s);
		h = (h << 4) | (uint64_t)v;
	}
	if (s[21] != '\0')
		return apbi_set_error(APB_E_MANIFEST,
		                      "checksum \"%.40s\": more than 16 hex digits", s);
	*out = h;
	return 0;
}
