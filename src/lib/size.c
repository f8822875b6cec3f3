/*
 * size.c - human sizes: parses "4096", "64K", "8MiB", "1G"; formats "1.5 MiB".
 *
 * Invariants: K, M, G and T (either case) are binary multiples (KiB ...),
 * optionally followed by "iB" or "B" (and a bare "B" suffix means bytes);
 * the whole string must be consumed; nothing ever overflows uint64_t.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Returns the shift for a unit letter, or -1. */
static int unit_shift(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	case 't': case 'T': return 40;
	default:            return -1;
	}
}

/* Parses the suffix at s into a shift; -1 when it is not a valid suffix. */
static int parse_suffix(const char *s)
{
	int shift;

	if (s[0] == '\0')
		return 0;
	if (strcmp(s, "B") == 0 || strcmp(s, "b") == 0)
		return 0;
	shift = unit_shift(s[0]);
	if (shift < 0)
		return -1;
	s++;
	if (s[0] == '\0' || strcmp(s, "B") == 0 || strcmp(s, "b") == 0 ||
	    strcmp(s, "iB") == 0 || strcmp(s, "ib") == 0)
		return shift;
	return -1;
}

/**
 * Parses a decimal size with an optional binary unit suffix into *out.
 * Returns 0; -EINVAL for NULL, empty, a sign, junk or a bad suffix;
 * -ERANGE when the value does not fit in 64 bits.  *out is untouched on
 * failure.
 */
int apb_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	int shift;

	if (!s || !out)
		return apbi_set_error(-EINVAL, "size: missing value");
	if (s[0] < '0' || s[0] > '9')
		return apbi_set_error(-EINVAL, "size \"%.40s\": must start with a digit", s);
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return apbi_set_error(-ERANGE, "size \"%.40s\": too large", s);
		v = v * 10 + d;
	}
	shift = parse_suffix(s + i);
	if (shift < 0)
		return apbi_set_error(-EINVAL, "size \"%.40s\": unknown suffix \"%.10s\" "
		                      "(use K, M, G or T, optionally with iB or B)", s, s + i);
	if (shift > 0 && v > (UINT64_MAX >> shift))
		return apbi_set_error(-ERANGE, "size \"%.40s\": too large", s);
	*out = v << shift;
	return 0;
}

/** See apbundle.h. */
const char *apb_format_size(uint64_t bytes, char *buf, size_t cap)
{
	static const char *units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = -1;

	if (!buf || !cap)
		return buf;
	if (bytes < 1024) {
		snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}
