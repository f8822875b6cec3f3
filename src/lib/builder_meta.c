/*
 * builder_meta.c - validation and deep copy of the metadata given to
 * apb_builder_set_metadata (builder.c), and the bundle's created_at.
 *
 * Invariants kept here:
 *  - Every string is checked before anything is allocated: keys and values
 *    non-NULL, all text valid UTF-8, a list non-NULL whenever its count is
 *    nonzero.  The first problem found fails the call with -EINVAL and a
 *    detail naming the field; nothing is left allocated on any failure.
 *  - The copy is one allocation (apb_metadata header, then the
 *    hyperparameter and custom pair arrays, then every string), so it is
 *    freed with a single free() and never aliases the caller's memory.
 *  - Each pair array of the copy is sorted by key (strcmp order); a key
 *    given twice in one list is refused rather than silently kept or
 *    dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format_write.h"
#include "internal.h"

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const apb_kv *)a)->key, ((const apb_kv *)b)->key);
}

/* Checks a key/value list; adds its string bytes to *bytes. */
static int kv_check(const apb_kv *kv, size_t n, const char *what, size_t *bytes)
{
	if (n && !kv)
		return apbi_set_error(-EINVAL, "metadata %s: NULL list", what);
	for (size_t i = 0; i < n; i++) {
		if (!kv[i].key || !kv[i].value)
			return apbi_set_error(-EINVAL, "metadata %s[%zu]: NULL key or value", what, i);
		size_t kl = strlen(kv[i].key), vl = strlen(kv[i].value);
		if (!apbi_utf8_valid(kv[i].key, kl) || !apbi_utf8_valid(kv[i].value, vl))
			return apbi_set_error(-EINVAL, "metadata %s \"%s\": not valid UTF-8", what, kv[i].key);
		*bytes += kl + vl + 2;
	}
	return 0;
}

static int str_check(const char *s, const char *what, size_t *bytes)
{
	if (!s)
		return 0;
	if (!apbi_utf8_valid(s, strlen(s)))
		return apbi_set_error(-EINVAL, "metadata %s: not valid UTF-8", what);
	*bytes += strlen(s) + 1;
	return 0;
}

/* Appends s to the string area at *pos; returns the copy. */
static const char *stash(char **pos, const char *s)
{
	char *d = *pos;
	size_t l = strlen(s) + 1;
	memcpy(d, s, l);
	*pos += l;
	return d;
}

/* Copies n pairs into dst (strings into *pos), sorted; -EINVAL on a duplicate key. */
static int kv_copy(apb_kv *dst, const apb_kv *src, size_t n, char **pos, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		dst[i].key = stash(pos, src[i].key);
		dst[i].value = stash(pos, src[i].value);
	}
	qsort(dst, n, sizeof *dst, kv_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(dst[i - 1].key, dst[i].key) == 0)
			return apbi_set_error(-EINVAL, "metadata %s: key \"%s\" given twice", what, dst[i].key);
	}
	return 0;
}

/*
 * Validates md and makes a deep copy of it in one malloc'ed allocation
 * (header, both pair arrays, all strings), each pair array sorted by key;
 * the caller frees *out with free().  Errors: -EINVAL (a NULL list with a
 * nonzero count, a NULL key or value, text that is not valid UTF-8, a key
 * given twice in one list; each with a detail), -ENOMEM.
 */
int apbi_metadata_copy(const apb_metadata *md, apb_metadata **out)
{
	size_t nh = md->n_hyperparameters, nc = md->n_custom, bytes = 0;
	apb_metadata *c;
	apb_kv *kv;
	char *pos;
	int rc;

	if ((rc = str_check(md->version, "version", &bytes)) ||
	    (rc = str_check(md->architecture, "architecture", &bytes)) ||
	    (rc = kv_check(md->hyperparameters, nh, "hyperparameters", &bytes)) ||
	    (rc = kv_check(md->custom, nc, "custom", &bytes)))
		return rc;
	c = malloc(sizeof *c + (nh + nc) * sizeof *kv + bytes);
	if (!c)
		return apbi_set_error(-ENOMEM, "out of memory copying metadata");
	kv = (apb_kv *)(c + 1);
	pos = (char *)(kv + nh + nc);
	c->version = md->version ? stash(&pos, md->version) : NULL;
	c->architecture = md->architecture ? stash(&pos, md->architecture) : NULL;
	c->hyperparameters = kv;
	c->n_hyperparameters = nh;
	c->custom = kv + nh;
	c->n_custom = nc;
	if ((rc = kv_copy(kv, md->hyperparameters, nh, &pos, "hyperparameters")) ||
	    (rc = kv_copy(kv + nh, md->custom, nc, &pos, "custom"))) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int apbi_resolve_time(apbi_wbundle *wb)
{
	const char *e = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long v;

	wb->has_created_at = true;
	if (!e || !*e) {
		wb->created_at = (int64_t)time(NULL);
		return 0;
	}
	errno = 0;
	v = strtoll(e, &end, 10);
	if (errno || *end || v < 0)
		return apbi_set_error(-EINVAL, "SOURCE_DATE_EPOCH=\"%s\" is not a number of seconds", e);
	wb->created_at = v;
	return 0;
}
