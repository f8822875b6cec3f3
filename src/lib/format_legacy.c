/*
 * format_legacy.c - decode aprender's own binary manifest (read-only).
 *
 * Layout (after the 20-byte header): u32 version, u64 created_at, u32
 * desc_len + bytes, u32 num_models, then per model u32 name_len + name,
 * u64 size, u64 offset (relative to the data section at 20 + manifest
 * length).  All little-endian.  Invariants: every length and count is
 * checked against the bytes that remain before anything is allocated or
 * copied, so a hostile count can never cause a large allocation; names
 * follow the same rules as v1; models get no checksum and alignment 1.
 * Bytes after the last model are ignored, as aprender's reader does.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format_priv.h"
#include "internal.h"

/* Smallest encoding of one model: name_len, empty name, size, offset. */
#define MIN_MODEL_BYTES 20u

typedef struct reader {
	const uint8_t *p;
	size_t len, pos;
} reader;

static int take(reader *r, void *out, size_t n, const char *what)
{
	if (r->len - r->pos < n) {
		memset(out, 0, n);
		return apbi_set_error(APB_E_CORRUPT, "legacy manifest: ends inside %s (byte %zu of %zu)",
		                      what, r->pos, r->len);
	}
	memcpy(out, r->p + r->pos, n);
	r->pos += n;
	return 0;
}

static int take_u32(reader *r, uint32_t *v, const char *what)
{
	int rc = take(r, v, 4, what);
	*v = le32toh(*v);
	return rc;
}

static int take_u64(reader *r, uint64_t *v, const char *what)
{
	int rc = take(r, v, 8, what);
	*v = le64toh(*v);
	return rc;
}

/* Decodes the fields before the model list. */
static int decode_head(reader *r, apbi_manifest *m, uint32_t *count)
{
	uint32_t version, dlen;
	uint64_t created;
	int rc;

	if ((rc = take_u32(r, &version, "the version")) < 0 ||
	    (rc = take_u64(r, &created, "created_at")) < 0 ||
	    (rc = take_u32(r, &dlen, "the description length")) < 0)
		return rc;
	if (dlen > r->len - r->pos)
		return apbi_set_error(APB_E_CORRUPT, "legacy manifest: description length %u exceeds the "
		                      "%zu bytes left", dlen, r->len - r->pos);
	if (!apbi_utf8_valid((const char *)r->p + r->pos, dlen) ||
	    memchr(r->p + r->pos, 0, dlen))
		return apbi_set_error(APB_E_MANIFEST, "legacy manifest: description is not valid UTF-8 text");
	if (dlen && !(m->description = apbi_arena_strdup(m, (const char *)r->p + r->pos, dlen)))
		return apbi_set_error(-ENOMEM, "out of memory copying the manifest");
	r->pos += dlen;
	if (created && created <= (uint64_t)INT64_MAX) {
		m->has_created_at = true;
		m->created_at = (int64_t)created;
	}
	if ((rc = take_u32(r, count, "the model count")) < 0)
		return rc;
	if (*count > (r->len - r->pos) / MIN_MODEL_BYTES)
		return apbi_set_error(APB_E_CORRUPT, "legacy manifest: %u models cannot fit in the %zu bytes left",
		                      *count, r->len - r->pos);
	return 0;
}

/* Decodes models[i]. */
static int decode_model(reader *r, apbi_manifest *m, uint64_t i)
{
	apbi_model *mod = &m->models[i];
	const char *name;
	uint32_t nlen;
	int rc;

	if ((rc = take_u32(r, &nlen, "a name length")) < 0)
		return apbi_model_error(rc, i, NULL, "legacy manifest ends inside its name length");
	if (nlen > r->len - r->pos)
		return apbi_model_error(APB_E_CORRUPT, i, NULL, "name length %u exceeds the %zu bytes left",
		                        nlen, r->len - r->pos);
	name = (const char *)r->p + r->pos;
	if (apbi_name_check(name, nlen) < 0) {
		char why[400];
		snprintf(why, sizeof why, "%s", apb_last_error());
		return apbi_model_error(APB_E_NAME, i, NULL, "%s", why);
	}
	if (!(mod->name = apbi_arena_strdup(m, name, nlen)))
		return apbi_set_error(-ENOMEM, "out of memory copying the manifest");
	mod->name_len = nlen;
	r->pos += nlen;
	if (take_u64(r, &mod->size, "a model size") < 0 ||
	    take_u64(r, &mod->offset, "a model offset") < 0)
		return apbi_model_error(APB_E_CORRUPT, i, mod->name, "legacy manifest ends inside its size/offset");
	mod->has_checksum = false;
	mod->block_size = 0;
	mod->n_blocks = 0;
	mod->has_block_table = false;
	return 0;
}

int apbi_decode_legacy(const uint8_t *p, size_t len, apbi_manifest *m)
{
	reader r = { p, len, 0 };
	uint32_t count;
	int rc;

	m->alignment = 1;
	if ((rc = decode_head(&r, m, &count)) < 0)
		return rc;
	m->n_models = count;
	m->models = calloc(count ? count : 1, sizeof *m->models);
	if (!m->models)
		return apbi_set_error(-ENOMEM, "out of memory for %u models", count);
	for (uint32_t i = 0; i < count; i++) {
		if ((rc = decode_model(&r, m, i)) < 0)
			return rc;
	}
	return 0;
}
