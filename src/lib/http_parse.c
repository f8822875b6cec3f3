/*
 * http_parse.c - strict parsers for HTTP reply fields (see http_parse.h).
 *
 * Invariants: input is (pointer, length), never read past; nothing is
 * written to the outputs unless the whole input is accepted; numbers have
 * 1..19 decimal digits, so they fit in uint64_t without overflow checks
 * beyond the digit count.
 */
#include <string.h>
#include <strings.h>

#include "http_parse.h"

/* Drops one trailing "\r\n" or "\n", then surrounding spaces and tabs. */
static void trim(const char **s, size_t *len)
{
	const char *p = *s;
	size_t n = *len;
	if (n && p[n - 1] == '\n')
		n--;
	if (n && p[n - 1] == '\r')
		n--;
	while (n && (p[0] == ' ' || p[0] == '\t')) {
		p++;
		n--;
	}
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	*s = p;
	*len = n;
}

/* Reads 1..19 digits at s[*i..len); advances *i.  Returns 0 or -1. */
static int number(const char *s, size_t len, size_t *i, uint64_t *out)
{
	uint64_t v = 0;
	size_t start = *i;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		if (*i - start >= 19)
			return -1;
		v = v * 10 + (uint64_t)(s[*i] - '0');
		(*i)++;
	}
	if (*i == start)
		return -1;
	*out = v;
	return 0;
}

/** See http_parse.h. */
int apbi_http_content_range(const char *s, size_t len, apbi_content_range *out)
{
	apbi_content_range r = { 0 };
	size_t i = 6;
	trim(&s, &len);
	if (len < 6 || strncasecmp(s, "bytes", 5) != 0 || s[5] != ' ')
		return -1;
	if (i < len && s[i] == '*') {
		r.unsatisfied = 1;
		i++;
	} else {
		if (number(s, len, &i, &r.first) || i >= len || s[i++] != '-' ||
		    number(s, len, &i, &r.last))
			return -1;
	}
	if (i >= len || s[i++] != '/' || number(s, len, &i, &r.total) || i != len)
		return -1;
	if (!r.unsatisfied && (r.first > r.last || r.last >= r.total))
		return -1;
	*out = r;
	return 0;
}

/** See http_parse.h. */
int apbi_http_content_length(const char *s, size_t len, uint64_t *out)
{
	size_t i = 0;
	uint64_t v;
	trim(&s, &len);
	if (number(s, len, &i, &v) || i != len)
		return -1;
	*out = v;
	return 0;
}

/** See http_parse.h. */
int apbi_http_status_line(const char *s, size_t len, int *status)
{
	size_t i;
	int code = 0;
	trim(&s, &len);
	if (len < 10 || memcmp(s, "HTTP/", 5) != 0)
		return -1;
	if (s[5] == '2' && s[6] == ' ')
		i = 7;
	else if (len >= 12 && s[5] == '1' && s[6] == '.' && (s[7] == '0' || s[7] == '1') &&
	         s[8] == ' ')
		i = 9;
	else
		return -1;
	if (len - i < 3)
		return -1;
	for (int k = 0; k < 3; k++, i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		code = code * 10 + (s[i] - '0');
	}
	if ((i != len && s[i] != ' ') || code < 100)
		return -1;
	for (; i < len; i++)              /* reason phrase: no control bytes but tab */
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return -1;
	*status = code;
	return 0;
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/** See http_parse.h. */
int apbi_http_header_line(const char *s, size_t len, const char **name, size_t *name_len,
                          const char **val, size_t *val_len)
{
	size_t i = 0;
	const char *v;
	size_t vl;
	if (len && s[len - 1] == '\n')
		len--;
	if (len && s[len - 1] == '\r')
		len--;
	while (i < len && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= len || s[i] != ':')
		return -1;
	v = s + i + 1;
	vl = len - i - 1;
	trim(&v, &vl);
	for (size_t k = 0; k < vl; k++) {
		unsigned char c = (unsigned char)v[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	*name = s;
	*name_len = i;
	*val = v;
	*val_len = vl;
	return 0;
}

/** See http_parse.h. */
int apbi_http_name_is(const char *name, size_t name_len, const char *lit)
{
	return strlen(lit) == name_len && strncasecmp(name, lit, name_len) == 0;
}
