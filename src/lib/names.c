/*
 * names.c - model name rules and a strict UTF-8 validator.
 *
 * A valid name is 1..APB_MAX_NAME_LEN bytes of valid UTF-8 with no NUL or
 * control character (0x01-0x1f, 0x7f), not starting with '/', whose
 * '/'-separated components are non-empty, not "." or "..", and at most
 * APB_MAX_COMPONENT_LEN bytes.  Backslash and every other printable byte
 * are allowed.  Every rejection records a detail that names the problem;
 * the name itself is quoted with non-printable bytes escaped, so a hostile
 * name can never smuggle control characters into a message.
 *
 * Valid names may still not coexist in one directory tree: "a" beside
 * "a/b" (a file that is also a directory), or a first component that the
 * mount reserves at its root (.stats ...).  apbi_name_clashes finds them
 * in O(n log n); writers refuse them, readers flag them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Number of name bytes quoted in a detail message. */
#define QUOTE_MAX 64

/* Writes a printable, escaped, possibly shortened copy of name into out. */
static void quote_name(const char *name, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < QUOTE_MAX && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c >= 0x80)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (len > QUOTE_MAX && o + 4 < cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* Length of the UTF-8 sequence at s (of at most left bytes), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;       /* continuation byte, 0xc0/0xc1 overlong, > U+13FFFF */
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
		return 0;       /* overlong */
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0;       /* UTF-16 surrogate */
	if (cp > 0x10ffff)
		return 0;
	return n;
}

/**
 * Returns 1 if s[0..len) is valid UTF-8: shortest form only, no surrogates,
 * nothing above U+10FFFF.  NUL bytes are valid UTF-8 here (names reject
 * them separately).  Returns 0 otherwise.
 */
int apbi_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* Checks component [start, start+clen) of name; 0 or APB_E_NAME. */
static int check_component(const char *name, size_t len, size_t start, size_t clen)
{
	char q[QUOTE_MAX * 4 + 8];

	quote_name(name, len, q, sizeof q);
	if (clen == 0)
		return apbi_set_error(APB_E_NAME,
		                      "model name \"%s\": empty path component at byte %zu", q, start);
	if (clen == 1 && name[start] == '.')
		return apbi_set_error(APB_E_NAME,
		                      "model name \"%s\": \".\" path component at byte %zu", q, start);
	if (clen == 2 && name[start] == '.' && name[start + 1] == '.')
		return apbi_set_error(APB_E_NAME,
		                      "model name \"%s\": \"..\" path component at byte %zu", q, start);
	if (clen > APB_MAX_COMPONENT_LEN)
		return apbi_set_error(APB_E_NAME,
		                      "model name \"%s\": path component at byte %zu is %zu bytes (max %u)",
		                      q, start, clen, APB_MAX_COMPONENT_LEN);
	return 0;
}

/* Checks bytes: no NUL, no control character.  0 or APB_E_NAME. */
static int check_bytes(const char *name, size_t len)
{
	char q[QUOTE_MAX * 4 + 8];

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == 0 || c < 0x20 || c == 0x7f) {
			quote_name(name, len, q, sizeof q);
			return apbi_set_error(APB_E_NAME, "model name \"%s\": %s byte 0x%02x at %zu", q,
			                      c == 0 ? "NUL" : "control character", c, i);
		}
	}
	return 0;
}

/**
 * Checks name[0..len) against the name rules (file comment).  Returns 0,
 * or APB_E_NAME with a detail naming the problem (NULL name too).
 */
int apbi_name_check(const char *name, size_t len)
{
	char q[QUOTE_MAX * 4 + 8];
	size_t start = 0;
	int rc;

	if (!name || len == 0)
		return apbi_set_error(APB_E_NAME, "model name is empty");
	if (len > APB_MAX_NAME_LEN) {
		quote_name(name, len, q, sizeof q);
		return apbi_set_error(APB_E_NAME, "model name \"%s\": %zu bytes long (max %u)",
		                      q, len, APB_MAX_NAME_LEN);
	}
	if ((rc = check_bytes(name, len)) < 0)
		return rc;
	if (!apbi_utf8_valid(name, len)) {
		quote_name(name, len, q, sizeof q);
		return apbi_set_error(APB_E_NAME, "model name \"%s\": not valid UTF-8", q);
	}
	if (name[0] == '/') {
		quote_name(name, len, q, sizeof q);
		return apbi_set_error(APB_E_NAME, "model name \"%s\": starts with '/'", q);
	}
	for (size_t i = 0; i <= len; i++) {
		if (i == len || name[i] == '/') {
			if ((rc = check_component(name, len, start, i - start)) < 0)
				return rc;
			start = i + 1;
		}
	}
	return 0;
}

/* ---- names that cannot coexist in one mount tree ---- */

/* Names apbundle-mount serves at its root (keep in step with apbundle.h). */
static const char *const reserved[] = { ".stats", ".stats.json", ".metrics", ".control" };

/**
 * Returns true when the first '/'-component of name is one of the names
 * apbundle-mount reserves at its root (APB_CLASH_RESERVED).
 */
bool apbi_name_reserved(const char *name)
{
	size_t first = strcspn(name, "/");

	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strlen(reserved[i]) == first && memcmp(name, reserved[i], first) == 0)
			return true;
	return false;
}

/* A name and its index, sorted in tree order. */
typedef struct tree_ent {
	const char *name;
	size_t idx;
} tree_ent;

/* Byte order with '/' first (names hold no byte below 0x20). */
static int tree_cmp(const void *pa, const void *pb)
{
	const unsigned char *a = (const unsigned char *)((const tree_ent *)pa)->name;
	const unsigned char *b = (const unsigned char *)((const tree_ent *)pb)->name;

	for (; *a && *a == *b; a++, b++)
		;
	return (*a == '/' ? 1 : *a) - (*b == '/' ? 1 : *b);
}

/* True when name d lies below directory name p ("p/..."). */
static bool is_under(const char *p, size_t plen, const char *d)
{
	return strncmp(p, d, plen) == 0 && d[plen] == '/';
}

/**
 * Finds the names among names[0..n) (valid, unique) that cannot coexist
 * in one tree: flags[i] gets APB_CLASH_DIR when names[i] is also the
 * directory of another name ("a" beside "a/b"), APB_CLASH_UNDER when a
 * directory on its path is another name, and APB_CLASH_RESERVED
 * (apbi_name_reserved).  pair, when not NULL, gets the first DIR clash in
 * tree order (pair[0] the file, pair[1] a name below it), or SIZE_MAX
 * twice.  Returns the number of names flagged, or -ENOMEM.  O(n log n):
 * in tree order a name's descendants follow it at once, and a block is
 * walked only by its outermost owner.
 */
ssize_t apbi_name_clashes(const char *const *names, size_t n, uint8_t *flags, size_t pair[2])
{
	tree_ent *t = malloc((n ? n : 1) * sizeof *t);
	ssize_t count = 0;

	if (!t)
		return apbi_set_error(-ENOMEM, "out of memory checking %zu model names", n);
	for (size_t i = 0; i < n; i++)
		t[i] = (tree_ent){ names[i], i };
	qsort(t, n, sizeof *t, tree_cmp);
	memset(flags, 0, n);
	if (pair)
		pair[0] = pair[1] = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(t[i].name), j = i + 1;
		if (apbi_name_reserved(t[i].name))
			flags[t[i].idx] |= APB_CLASH_RESERVED;
		if (j == n || !is_under(t[i].name, len, t[j].name))
			continue;
		flags[t[i].idx] |= APB_CLASH_DIR;
		if (pair && pair[0] == SIZE_MAX)
			pair[0] = t[i].idx, pair[1] = t[j].idx;
		for (; j < n && !(flags[t[j].idx] & APB_CLASH_UNDER) &&
		       is_under(t[i].name, len, t[j].name); j++)
			flags[t[j].idx] |= APB_CLASH_UNDER;
	}
	for (size_t i = 0; i < n; i++)
		count += flags[i] != 0;
	free(t);
	return count;
}
