/*
 * format_write.c - encode a bundle's layout and manifest (json-c):
 * version 1, or 2 when some model is compressed.
 *
 * Invariants kept here:
 *  - Models are placed in the order added, each at a multiple of the
 *    alignment relative to the data start; block tables of multi-block
 *    models follow the last model, each 8-byte aligned and followed by its
 *    index (one XXH3-64 per 64 KiB of table).  A model of at most
 *    one block (size <= block_size, including 0) has no table.
 *  - Every offset and end stays <= INT64_MAX (off_t), or -EFBIG.
 *  - The manifest is exactly: format, version, alignment, model_count,
 *    manifest_checksum, [description], [created_at], models; each model:
 *    name, offset, size, checksum, [blocks: size, checksums_offset,
 *    table_checksum, index_offset, index_checksum],
 *    [metadata], serialized PLAIN and NOSLASHESCAPE,
 *    starting with '{' and followed only by ASCII spaces up to the aligned
 *    data start.  Its length depends on offsets and sizes, never on the
 *    checksum values (fixed width), so it can be sized before hashing.
 *    manifest_checksum binds every manifest byte, padding included: it is
 *    XXH3-64 of the padded manifest with its own 16 digits as '0'.
 *  - The name index (apbi_nameidx) is a linear-probing table at most half
 *    full; it stores indices only, names stay with their owner.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "format.h"
#include "format_write.h"
#include "internal.h"

#define KEY_FLAGS (JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT)

/* Rounds v up to a multiple of a (power of two); -1 past INT64_MAX. */
static int align_up(uint64_t v, uint64_t a, uint64_t *out)
{
	if (v > (uint64_t)INT64_MAX - (a - 1))
		return -1;
	*out = (v + a - 1) & ~(a - 1);
	return 0;
}

/* Adds end bytes at pos; -1 when the result passes INT64_MAX. */
static int advance(uint64_t pos, uint64_t len, uint64_t *out)
{
	if (len > (uint64_t)INT64_MAX - pos)
		return -1;
	*out = pos + len;
	return 0;
}

uint64_t apbi_windex_make(void *t, uint64_t tbytes)
{
	uint64_t n = apbi_windex_bytes(tbytes) / 8, idx[1];
	uint8_t *out = (uint8_t *)t + tbytes;

	for (uint64_t k = 0; k < n; k++) {
		uint64_t at = k * 65536, len = tbytes - at < 65536 ? tbytes - at : 65536;
		idx[0] = htole64(apbi_xxh3((const uint8_t *)t + at, (size_t)len));
		memcpy(out + 8 * k, idx, 8);
	}
	return apbi_xxh3(out, n * 8);
}

bool apbi_wmodel_has_table(const apbi_wmodel *m)
{
	return m->codec != APBI_CODEC_NONE ? m->n_blocks > 0 : m->n_blocks > 1;
}

int apbi_layout_place(apbi_wbundle *wb, size_t i, uint64_t *pos)
{
	apbi_wmodel *m = &wb->models[i];
	uint64_t entry = m->codec != APBI_CODEC_NONE ? 16 : 8;

	if (m->codec == APBI_CODEC_NONE)
		m->stored_size = m->size;
	m->n_blocks = m->size / wb->block_size + (m->size % wb->block_size != 0);
	m->blocks_offset = m->index_offset = 0;
	if (align_up(*pos, wb->alignment, &m->offset) || advance(m->offset, m->stored_size, pos))
		return apbi_set_error(-EFBIG, "model \"%s\": offset + size %llu beyond the largest file offset",
		                      m->name, (unsigned long long)m->stored_size);
	if (apbi_wmodel_has_table(m) &&
	    (align_up(*pos, 8, &m->blocks_offset) ||
	     advance(m->blocks_offset, m->n_blocks * entry, &m->index_offset) ||
	     advance(m->index_offset, apbi_windex_bytes(m->n_blocks * entry), pos)))
		return apbi_set_error(-EFBIG, "model \"%s\": block table beyond the largest file offset",
		                      m->name);
	return 0;
}

int apbi_layout_plan(apbi_wbundle *wb)
{
	uint64_t pos = 0;
	int rc;

	wb->version = 1;
	for (size_t i = 0; i < wb->n_models; i++)
		wb->version = wb->models[i].codec != APBI_CODEC_NONE ? 2 : wb->version;
	if (wb->version == 2) {
		for (size_t i = 0; i < wb->n_models; i++)
			if ((rc = apbi_layout_place(wb, i, &pos)) != 0)
				return rc;
		wb->data_size = pos;
		return 0;
	}

	for (size_t i = 0; i < wb->n_models; i++) {
		apbi_wmodel *m = &wb->models[i];
		if (align_up(pos, wb->alignment, &m->offset) ||
		    advance(m->offset, m->size, &pos))
			return apbi_set_error(-EFBIG, "model \"%s\": offset + size %llu beyond the largest file offset",
			                      m->name, (unsigned long long)m->size);
		m->n_blocks = m->size / wb->block_size + (m->size % wb->block_size != 0);
		m->blocks_offset = 0;
		m->index_offset = 0;
	}
	for (size_t i = 0; i < wb->n_models; i++) {
		apbi_wmodel *m = &wb->models[i];
		if (!apbi_wmodel_has_table(m))
			continue;
		if (align_up(pos, 8, &m->blocks_offset) ||
		    advance(m->blocks_offset, m->n_blocks * 8, &m->index_offset) ||
		    advance(m->index_offset, apbi_windex_bytes(m->n_blocks * 8), &pos))
			return apbi_set_error(-EFBIG, "model \"%s\": block table beyond the largest file offset",
			                      m->name);
	}
	wb->data_size = pos;
	return 0;
}

/* Adds val under a constant, new key; consumes val, -1 on failure. */
static int put(json_object *obj, const char *key, json_object *val)
{
	if (!val)
		return -1;
	if (json_object_object_add_ex(obj, key, val, KEY_FLAGS) != 0) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

static json_object *kv_object(const apb_kv *kv, size_t n)
{
	json_object *o = json_object_new_object();

	for (size_t i = 0; o && i < n; i++) {
		json_object *v = json_object_new_string(kv[i].value);
		if (!v || json_object_object_add(o, kv[i].key, v) != 0) {
			json_object_put(v);
			json_object_put(o);
			return NULL;
		}
	}
	return o;
}

static json_object *metadata_object(const apb_metadata *md)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if ((md->version && put(o, "version", json_object_new_string(md->version))) ||
	    (md->architecture && put(o, "architecture", json_object_new_string(md->architecture))) ||
	    put(o, "hyperparameters", kv_object(md->hyperparameters, md->n_hyperparameters)) ||
	    put(o, "custom", kv_object(md->custom, md->n_custom))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static json_object *blocks_object(const apbi_wbundle *wb, const apbi_wmodel *m)
{
	json_object *o = json_object_new_object();
	char sum[22], isum[22];

	apbi_checksum_format(m->table_checksum, sum);
	apbi_checksum_format(m->index_checksum, isum);
	if (o && (put(o, "size", json_object_new_int64(wb->block_size)) ||
	          put(o, "checksums_offset", json_object_new_int64((int64_t)m->blocks_offset)) ||
	          put(o, "table_checksum", json_object_new_string(sum)) ||
	          put(o, "index_offset", json_object_new_int64((int64_t)m->index_offset)) ||
	          put(o, "index_checksum", json_object_new_string(isum)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* The version-2 keys: codec, filter, stored_size. */
static int put_codec(json_object *o, const apbi_wmodel *m)
{
	return put(o, "codec", json_object_new_string(apbi_codec_name(m->codec))) ||
	       put(o, "filter", json_object_new_string(apbi_filter_name(m->filter))) ||
	       put(o, "stored_size", json_object_new_int64((int64_t)m->stored_size));
}

static json_object *model_object(const apbi_wbundle *wb, const apbi_wmodel *m)
{
	json_object *o = json_object_new_object();
	char sum[22];

	if (!o)
		return NULL;
	apbi_checksum_format(m->checksum, sum);
	if (put(o, "name", json_object_new_string(m->name)) ||
	    put(o, "offset", json_object_new_int64((int64_t)m->offset)) ||
	    put(o, "size", json_object_new_int64((int64_t)m->size)) ||
	    put(o, "checksum", json_object_new_string(sum)) ||
	    (wb->version >= 2 && put_codec(o, m)) ||
	    (apbi_wmodel_has_table(m) && put(o, "blocks", blocks_object(wb, m))) ||
	    (m->md && put(o, "metadata", metadata_object(m->md)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Builds the whole manifest tree, or NULL when out of memory. */
static json_object *manifest_object(const apbi_wbundle *wb)
{
	json_object *o = json_object_new_object();
	json_object *models = json_object_new_array_ext((int)(wb->n_models ? wb->n_models : 1));

	if (!o || !models)
		goto fail;
	for (size_t i = 0; i < wb->n_models; i++) {
		json_object *m = model_object(wb, &wb->models[i]);
		if (!m || json_object_array_add(models, m) != 0) {
			json_object_put(m);
			goto fail;
		}
	}
	if (put(o, "format", json_object_new_string("apbundle")) ||
	    put(o, "version", json_object_new_int((int)wb->version)) ||
	    put(o, "alignment", json_object_new_int64(wb->alignment)) ||
	    put(o, "model_count", json_object_new_int64((int64_t)wb->n_models)) ||
	    put(o, "manifest_checksum", json_object_new_string(APBI_MANIFEST_SUM_ZERO)) ||
	    (wb->description && put(o, "description", json_object_new_string(wb->description))) ||
	    (wb->has_created_at && put(o, "created_at", json_object_new_int64(wb->created_at))))
		goto fail;
	if (put(o, "models", models)) {
		models = NULL; /* consumed by put */
		goto fail;
	}
	return o;
fail:
	json_object_put(models);
	json_object_put(o);
	return NULL;
}

/*
 * Fills in "manifest_checksum" (docs/FORMAT.md 3.1): XXH3-64 of the whole
 * padded manifest with the value's 16 digits as '0'.  The first occurrence
 * of the key text is the top-level one: it precedes "description" and
 * "models", and inside a string every '"' is escaped.
 */
static void bind_manifest(char *buf, size_t len)
{
	char *at = strstr(buf, "\"manifest_checksum\":" APBI_MANIFEST_SUM_ZERO_Q);
	char sum[22];

	at += strlen("\"manifest_checksum\":\"xxh3:");
	apbi_checksum_format(apbi_xxh3(buf, len), sum);
	memcpy(at, sum + 5, 16);
}

int apbi_manifest_encode(const apbi_wbundle *wb, char **out, size_t *len)
{
	json_object *tree = manifest_object(wb);
	const char *text;
	size_t tlen = 0;
	uint64_t start = 0, end;
	char *buf = NULL;
	int rc;

	if (!tree)
		return apbi_set_error(-ENOMEM, "out of memory encoding the manifest");
	text = json_object_to_json_string_length(tree, JSON_C_TO_STRING_PLAIN |
	                                         JSON_C_TO_STRING_NOSLASHESCAPE, &tlen);
	if (!text) {
		rc = apbi_set_error(-ENOMEM, "out of memory serializing the manifest");
		goto out;
	}
	if (!align_up(APBI_HEADER_SIZE + (uint64_t)tlen, wb->alignment, &start) &&
	    start < APBI_HEADER_SIZE + (uint64_t)wb->reserve)
		start = APBI_HEADER_SIZE + wb->reserve;   /* the planned length (format_write.h) */
	if (start < APBI_HEADER_SIZE + (uint64_t)tlen || start - APBI_HEADER_SIZE > APBI_MAX_MANIFEST) {
		rc = apbi_set_error(-EFBIG, "manifest of %zu bytes (padded to alignment %u) exceeds the %u-byte limit",
		                    tlen, wb->alignment, APBI_MAX_MANIFEST);
		goto out;
	}
	if (advance(start, wb->data_size, &end)) {
		rc = apbi_set_error(-EFBIG, "bundle of %llu data bytes would pass the largest file offset",
		                    (unsigned long long)wb->data_size);
		goto out;
	}
	buf = malloc(start - APBI_HEADER_SIZE + 1);
	if (!buf) {
		rc = apbi_set_error(-ENOMEM, "out of memory for a %llu-byte manifest",
		                    (unsigned long long)(start - APBI_HEADER_SIZE));
		goto out;
	}
	memcpy(buf, text, tlen);
	memset(buf + tlen, ' ', start - APBI_HEADER_SIZE - tlen);
	buf[start - APBI_HEADER_SIZE] = '\0';
	bind_manifest(buf, start - APBI_HEADER_SIZE);
	*out = buf;
	*len = start - APBI_HEADER_SIZE;
	rc = 0;
out:
	json_object_put(tree);
	return rc;
}

void apbi_header_encode(uint8_t out[16], uint32_t version, uint32_t len)
{
	memcpy(out, APBI_MAGIC, 8);
	for (int i = 0; i < 4; i++) {
		out[8 + i] = (uint8_t)(version >> (8 * i));
		out[12 + i] = (uint8_t)(len >> (8 * i));
	}
}

/* ------------------------------------------------------------------ */
/* Name index (shared by builder.c and bundle.c)                                                           */
/* ------------------------------------------------------------------ */

static size_t name_hash(const char *s)
{
	return (size_t)apbi_xxh3(s, strlen(s));
}

int64_t apbi_nameidx_find(const apbi_nameidx *x, const char *name)
{
	if (!x->cap)
		return -1;
	for (size_t h = name_hash(name) & (x->cap - 1); x->slots[h]; h = (h + 1) & (x->cap - 1)) {
		if (strcmp(x->name_at(x->ctx, x->slots[h] - 1), name) == 0)
			return (int64_t)(x->slots[h] - 1);
	}
	return -1;
}

static void slot_put(size_t *slots, size_t cap, size_t h, size_t i)
{
	for (h &= cap - 1; slots[h]; h = (h + 1) & (cap - 1))
		;
	slots[h] = i + 1;
}

int apbi_nameidx_add(apbi_nameidx *x, size_t i)
{
	if ((x->count + 1) * 2 > x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		size_t *slots = calloc(cap, sizeof *slots);
		if (!slots)
			return apbi_set_error(-ENOMEM, "out of memory for the name index");
		for (size_t k = 0; k < x->cap; k++) {
			if (x->slots[k])
				slot_put(slots, cap, name_hash(x->name_at(x->ctx, x->slots[k] - 1)),
				         x->slots[k] - 1);
		}
		free(x->slots);
		x->slots = slots;
		x->cap = cap;
	}
	slot_put(x->slots, x->cap, name_hash(x->name_at(x->ctx, i)), i);
	x->count++;
	return 0;
}

void apbi_nameidx_free(apbi_nameidx *x)
{
	free(x->slots);
	x->slots = NULL;
	x->cap = x->count = 0;
}
