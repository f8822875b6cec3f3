/*
 * json_scan.c - find where JSON values begin and end without building them.
 *
 * Invariants: the scanner only finds extents; it never decodes.  It checks
 * the structure (brackets matched, keys are strings followed by ':', values
 * separated by single commas, no trailing comma) and nesting no deeper than
 * APBI_JSON_MAX_DEPTH, iteratively with a fixed-size stack, so no input can
 * exhaust the C stack.  Inside a string a backslash skips the next byte
 * and the first other '"' ends it; string contents, scalars and UTF-8 are
 * left to json-c, which re-parses every span strictly.  Every position is
 * checked against len before it is read; every failure is APB_E_MANIFEST
 * with a detail naming the byte offset.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "format_priv.h"
#include "internal.h"

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t apbi_json_skip_ws(const char *t, size_t len, size_t p)
{
	while (p < len && is_ws(t[p]))
		p++;
	return p;
}

int apbi_json_error(const char *t, size_t len, size_t at, const char *what)
{
	if (at >= len)
		return apbi_set_error(APB_E_MANIFEST, "manifest JSON ends early (at byte %zu of %zu)",
		                      at, len);
	return apbi_set_error(APB_E_MANIFEST, "manifest JSON invalid at byte %zu: %s (found 0x%02x)",
	                      at, what, (unsigned char)t[at]);
}

/* Records that the bracket at t[at] opens one level too many. */
static int depth_error(const char *t, size_t len, size_t at)
{
	char why[64];

	snprintf(why, sizeof why, "nested more than %d levels deep", APBI_JSON_MAX_DEPTH);
	return apbi_json_error(t, len, at, why);
}

int apbi_json_skip_string(const char *t, size_t len, size_t *pos)
{
	size_t p = *pos;

	if (p >= len || t[p] != '"')
		return apbi_json_error(t, len, p, "expected a string");
	for (p++; p < len; p++) {
		if (t[p] == '\\')
			p++;
		else if (t[p] == '"') {
			*pos = p + 1;
			return 0;
		}
	}
	return apbi_json_error(t, len, len, NULL);
}

int apbi_json_skip_colon(const char *t, size_t len, size_t *pos)
{
	size_t p = apbi_json_skip_ws(t, len, *pos);

	if (p >= len || t[p] != ':')
		return apbi_json_error(t, len, p, "expected ':' after an object key");
	*pos = apbi_json_skip_ws(t, len, p + 1);
	return 0;
}

/* Skips a key, ':' and the whitespace before the value. */
static int skip_key(const char *t, size_t len, size_t *pos)
{
	int rc = apbi_json_skip_string(t, len, pos);

	return rc < 0 ? rc : apbi_json_skip_colon(t, len, pos);
}

/* Skips a number or literal: its exact form is json-c's to check. */
static int skip_scalar(const char *t, size_t len, size_t *pos)
{
	size_t p = *pos;
	char c = p < len ? t[p] : 0;

	if (!(c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n'))
		return apbi_json_error(t, len, p, "expected a value");
	while (p < len && ((t[p] >= '0' && t[p] <= '9') || (t[p] >= 'a' && t[p] <= 'z') ||
	                   (t[p] >= 'A' && t[p] <= 'Z') || t[p] == '-' || t[p] == '+' || t[p] == '.'))
		p++;
	*pos = p;
	return 0;
}

/*
 * After a value inside open containers: consumes ',' (and the next key in
 * an object) or closing brackets.  *sp is the open count; returns 1 when
 * another value follows at *pos, 0 when all are closed.
 */
static int after_value(const char *t, size_t len, size_t *pos, const char *stack, int *sp)
{
	size_t p = *pos;
	int rc;

	while (*sp > 0) {
		p = apbi_json_skip_ws(t, len, p);
		if (p < len && t[p] == stack[*sp - 1]) {
			(*sp)--;
			p++;
			continue;
		}
		if (p >= len || t[p] != ',')
			return apbi_json_error(t, len, p, stack[*sp - 1] == '}' ? "expected ',' or '}'" :
			                  "expected ',' or ']'");
		p = apbi_json_skip_ws(t, len, p + 1);
		if (stack[*sp - 1] == '}' && (rc = skip_key(t, len, &p)) < 0)
			return rc;
		*pos = p;
		return 1;
	}
	*pos = p;
	return 0;
}

int apbi_json_skip_value(const char *t, size_t len, size_t *pos, int depth)
{
	char stack[APBI_JSON_MAX_DEPTH];
	size_t p = *pos;
	int sp = 0, rc;

	for (;;) {
		char c = p < len ? t[p] : 0;
		if (c == '{' || c == '[') {
			if (depth + sp >= APBI_JSON_MAX_DEPTH)
				return depth_error(t, len, p);
			stack[sp++] = c == '{' ? '}' : ']';
			p = apbi_json_skip_ws(t, len, p + 1);
			if (p >= len || t[p] != stack[sp - 1]) {
				if (c == '{' && (rc = skip_key(t, len, &p)) < 0)
					return rc;
				continue;   /* at the first value inside */
			}
			sp--;
			p++;
		} else if (c == '"') {
			if ((rc = apbi_json_skip_string(t, len, &p)) < 0)
				return rc;
		} else if ((rc = skip_scalar(t, len, &p)) < 0) {
			return rc;
		}
		if ((rc = after_value(t, len, &p, stack, &sp)) <= 0) {
			if (rc == 0)
				*pos = p;
			return rc;
		}
	}
}

/* Appends the span [a, b) to *spans (*n used, *cap allocated). */
static int push_span(apbi_json_span **spans, size_t *n, size_t *cap, size_t a, size_t b)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		apbi_json_span *s = realloc(*spans, nc * sizeof *s);
		if (!s)
			return apbi_set_error(-ENOMEM, "out of memory scanning the manifest");
		*spans = s;
		*cap = nc;
	}
	(*spans)[*n].a = a;
	(*spans)[(*n)++].b = b;
	return 0;
}

/* Element scanning of apbi_json_array_spans; *n counts the elements. */
static int scan_elements(const char *t, size_t len, size_t *pos, int depth, const char *what,
                         apbi_json_span **spans, size_t *n)
{
	size_t p = apbi_json_skip_ws(t, len, *pos + 1), a, cap = 0;
	char why[160];
	int rc;

	if (p < len && t[p] == ']')
		goto done;
	for (;;) {
		if (p < len && t[p] == ',') {
			snprintf(why, sizeof why, "a ',' where %s[%zu] should start", what, *n);
			return apbi_json_error(t, len, p, why);
		}
		a = p;
		if ((rc = apbi_json_skip_value(t, len, &p, depth + 1)) < 0 ||
		    (rc = push_span(spans, n, &cap, a, p)) < 0)
			return rc;
		p = apbi_json_skip_ws(t, len, p);
		if (p < len && t[p] == ']')
			goto done;
		if (p >= len || t[p] != ',') {
			snprintf(why, sizeof why, "after %s[%zu], expected ',' or ']'", what, *n - 1);
			return apbi_json_error(t, len, p, why);
		}
		p = apbi_json_skip_ws(t, len, p + 1);
		if (p < len && t[p] == ']') {
			snprintf(why, sizeof why, "a trailing ',' after %s[%zu]", what, *n - 1);
			return apbi_json_error(t, len, p, why);
		}
	}
done:
	*pos = p + 1;
	return 0;
}

int apbi_json_array_spans(const char *t, size_t len, size_t *pos, int depth, const char *what,
                          apbi_json_span **spans, size_t *n)
{
	int rc;

	*spans = NULL;
	*n = 0;
	if (*pos >= len || t[*pos] != '[')
		return apbi_json_error(t, len, *pos, "expected '['");
	if (depth >= APBI_JSON_MAX_DEPTH)
		return depth_error(t, len, *pos);
	if ((rc = scan_elements(t, len, pos, depth, what, spans, n)) < 0) {
		free(*spans);
		*spans = NULL;
		*n = 0;
	}
	return rc;
}
