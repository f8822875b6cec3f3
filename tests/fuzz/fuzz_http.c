/*
 * fuzz_http.c - libFuzzer target for the HTTP reply parsers the remote
 * source trusts (src/lib/http_parse.c).
 *
 * The first input byte picks the parser, the rest (copied to a buffer of
 * exactly that size, no NUL, so a read past the end is an ASan error) is
 * its input.  Content-Range and Content-Length are checked against
 * independent reference parsers written here with strspn/strtoull: same
 * accept/reject, same values, outputs untouched on failure.  Header and
 * status lines are checked against their promises (name a token inside the
 * input, value trimmed and free of control bytes, status 100..999).
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* Digits only, 1..19 of them, whole string. */
static int ref_num(const char *s, uint64_t *v)
{
	size_t n = strlen(s);
	if (n == 0 || n > 19 || strspn(s, "0123456789") != n)
		return -1;
	errno = 0;
	*v = strtoull(s, NULL, 10);
	return errno ? -1 : 0;
}

/* Trims "\n" / "\r\n" once, then blanks; returns a malloc'ed copy. */
static char *ref_trim(const char *s, size_t n)
{
	char *c;
	if (n && s[n - 1] == '\n')
		n--;
	if (n && s[n - 1] == '\r')
		n--;
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	c = malloc(n + 1);
	if (!c)
		abort();
	memcpy(c, s, n);
	c[n] = 0;
	return memchr(c, 0, n) ? (free(c), NULL) : c;
}

static int ref_range(const char *in, size_t n, apbi_content_range *r)
{
	char *s = ref_trim(in, n), *slash, *dash;
	int ok = -1;
	memset(r, 0, sizeof *r);
	if (!s || strncasecmp(s, "bytes ", 6) != 0 || !(slash = strrchr(s, '/')))
		goto out;
	*slash = 0;
	if (ref_num(slash + 1, &r->total))
		goto out;
	if (strcmp(s + 6, "*") == 0) {
		r->unsatisfied = 1;
		ok = 0;
		goto out;
	}
	if (!(dash = strchr(s + 6, '-')))
		goto out;
	*dash = 0;
	if (ref_num(s + 6, &r->first) || ref_num(dash + 1, &r->last))
		goto out;
	ok = r->first <= r->last && r->last < r->total ? 0 : -1;
out:
	free(s);
	return ok;
}

static void fuzz_range(const char *in, size_t n)
{
	apbi_content_range got, want;
	memset(&got, 0x5a, sizeof got);
	apbi_content_range keep = got;
	int rc = apbi_http_content_range(in, n, &got), ref = ref_range(in, n, &want);
	CHECK((rc == 0) == (ref == 0));
	if (rc != 0) {
		CHECK(memcmp(&got, &keep, sizeof got) == 0);
		return;
	}
	CHECK(got.unsatisfied == want.unsatisfied && got.total == want.total);
	if (!got.unsatisfied)
		CHECK(got.first == want.first && got.last == want.last && got.last < got.total);
}

static void fuzz_length(const char *in, size_t n)
{
	uint64_t got = 7, want = 0;
	char *s = ref_trim(in, n);
	int rc = apbi_http_content_length(in, n, &got), ref = s ? ref_num(s, &want) : -1;
	free(s);
	CHECK((rc == 0) == (ref == 0));
	CHECK(rc == 0 ? got == want : got == 7);
}

static void fuzz_lines(const char *in, size_t n)
{
	const char *nm, *v;
	size_t nl, vl;
	int st = -1;
	if (apbi_http_header_line(in, n, &nm, &nl, &v, &vl) == 0) {
		CHECK(nm == in && nl > 0 && nl < n && in[nl] == ':');
		CHECK(v >= in + nl + 1 && v + vl <= in + n);
		for (size_t i = 0; i < nl; i++)
			CHECK(isalnum((unsigned char)nm[i]) || strchr("!#$%&'*+-.^_`|~", nm[i]));
		for (size_t i = 0; i < vl; i++)
			CHECK((unsigned char)v[i] >= 0x20 ? v[i] != 0x7f : v[i] == '\t');
		CHECK(!vl || (v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' && v[vl - 1] != '\t'));
		CHECK(apbi_http_name_is(nm, nl, "x") == (nl == 1 && (nm[0] | 0x20) == 'x'));
	}
	if (apbi_http_status_line(in, n, &st) == 0) {
		char *s = ref_trim(in, n);
		CHECK(st >= 100 && st <= 999 && s && strncmp(s, "HTTP/", 5) == 0);
		free(s);
	} else {
		CHECK(st == -1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in;
	if (size < 1)
		return 0;
	if (!(in = malloc(size - 1 ? size - 1 : 1)))
		abort();
	memcpy(in, data + 1, size - 1);
	switch (data[0] % 3) {
	case 0: fuzz_range(in, size - 1); break;
	case 1: fuzz_length(in, size - 1); break;
	default: fuzz_lines(in, size - 1); break;
	}
	free(in);
	return 0;
}
