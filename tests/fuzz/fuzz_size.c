/*
 * fuzz_size.c - libFuzzer target for the size parser (and the mount's
 * option parser when it is linkable).
 *
 * apb_parse_size() is checked against an independent reference written
 * here with 128-bit arithmetic: both must agree on accept/reject and on
 * the value; a failure leaves *out untouched.  Any disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* Reference: digits, then "", B, b, or [KMGTkmgt] + ("" | B | b | iB | ib). */
static int ref_parse(const char *s, uint64_t *out)
{
	unsigned __int128 v = 0;
	const char *p = s;
	int shift = 0, overflow = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > UINT64_MAX)
			overflow = 1, v = (unsigned __int128)UINT64_MAX + 1;
	}
	if (overflow)
		return -2;
	if (*p && strchr("kKmMgGtT", *p)) {
		const char *u = "kKmMgGtT";
		shift = 10 * (int)((strchr(u, *p) - u) / 2 + 1);
		p++;
		if (!strcmp(p, "") || !strcmp(p, "B") || !strcmp(p, "b") ||
		    !strcmp(p, "iB") || !strcmp(p, "ib"))
			p += strlen(p);
	} else if (!strcmp(p, "B") || !strcmp(p, "b")) {
		p++;
	}
	if (*p)
		return -1;
	if ((v << shift) > UINT64_MAX)
		return -2;
	*out = (uint64_t)(v << shift);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	uint64_t got = 0x5a5a5a5a5a5a5a5aull, want = 0;
	int rc, ref;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	rc = apb_parse_size(s, &got);
	ref = ref_parse(s, &want);
	if (ref == 0) {
		CHECK(rc == 0);
		CHECK(got == want);
	} else {
		CHECK(rc == (ref == -2 ? -ERANGE : -EINVAL));
		CHECK(got == 0x5a5a5a5a5a5a5a5aull);
	}
	free(s);
	return 0;
}
