/*
 * format_json.c - decode the v1 JSON manifest (the library's only json-c
 * reader).
 *
 * Invariants: the text is parsed strictly (JSON_TOKENER_STRICT, UTF-8
 * validated, and every string kept is re-checked with the strict
 * apbi_utf8_valid, because json-c lets overlongs and surrogates through);
 * after the top-level object only JSON whitespace may follow (the
 * padding).  The "models" array is never built as one tree: json_scan.c
 * walks the top-level object, finds the one "models" key (a second is an
 * error) and the extent of each element; json-c parses the top level from
 * a copy with the array cut to "[]", then each element on its own, and the
 * element's tree is freed as soon as it is decoded, so peak memory is the
 * top level plus one model.  Every byte still passes through a strict
 * json-c parse or the scanner's structure check (separators, brackets,
 * nesting capped at json-c's depth).  Every field is type-checked and
 * every failure names the field (and the model by index and, once known,
 * by name) or the byte.  All strings are copied into the manifest's arena;
 * nothing here outlives the call.  Unknown fields are ignored; JSON null
 * counts as absent for optional fields.  The only model bytes checked here
 * are those of empty models (none): a 0-byte model's checksum must be
 * XXH3("") at decode, since no read of it ever verifies anything.
 * A top-level "manifest_checksum" (one at most, written literally) must
 * match XXH3-64 of the whole manifest text with its 16 digits as '0'
 * before anything else is decoded; without it the manifest is unbound
 * (m->manifest_bound false), as older writers made it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <xxhash.h>

#include "format_priv.h"
#include "internal.h"

/* Where a field sits, for messages: top level (model < 0) or a model. */
typedef struct where {
	int64_t model;        /* -1 for the top level */
	const char *name;     /* model name once decoded, else NULL */
	const char *prefix;   /* "", "blocks.", "metadata." ... */
} where;

/* Records a detail naming the field key at w and returns code. */
__attribute__((format(printf, 4, 5)))
static int field_error(int code, const where *w, const char *key, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (w->model < 0)
		return apbi_set_error(code, "manifest field \"%s%s\": %s", w->prefix, key, msg);
	return apbi_model_error(code, (uint64_t)w->model, w->name, "field \"%s%s\": %s",
	                        w->prefix, key, msg);
}

/* Looks up key; *v is NULL when absent or null.  Missing required: error. */
static int get_field(json_object *obj, const char *key, bool required,
                     const where *w, json_object **v)
{
	*v = NULL;
	json_object_object_get_ex(obj, key, v);
	if (!*v && required)
		return field_error(APB_E_MANIFEST, w, key, "missing");
	return 0;
}

/* Reads a non-negative integer field. */
static int get_u64(json_object *obj, const char *key, bool required, const where *w,
                   uint64_t *out, bool *present)
{
	json_object *v;
	int rc = get_field(obj, key, required, w, &v);

	if (present)
		*present = v != NULL;
	if (rc < 0 || !v)
		return rc;
	if (!json_object_is_type(v, json_type_int))
		return field_error(APB_E_MANIFEST, w, key, "not an integer");
	if (json_object_get_int64(v) < 0)
		return field_error(APB_E_MANIFEST, w, key, "negative (%lld)",
		                   (long long)json_object_get_int64(v));
	*out = json_object_get_uint64(v);
	return 0;
}

/* Reads a string field with no embedded NUL; *s NULL when absent. */
static int get_str(json_object *obj, const char *key, bool required, const where *w,
                   const char **s, size_t *len)
{
	json_object *v;
	int rc = get_field(obj, key, required, w, &v);

	*s = NULL;
	if (rc < 0 || !v)
		return rc;
	if (!json_object_is_type(v, json_type_string))
		return field_error(APB_E_MANIFEST, w, key, "not a string");
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	if (strlen(*s) != *len)
		return field_error(APB_E_MANIFEST, w, key, "contains a NUL character");
	if (!apbi_utf8_valid(*s, *len))   /* json-c lets overlongs and surrogates through */
		return field_error(APB_E_MANIFEST, w, key, "not valid UTF-8");
	return 0;
}

/* Copies an optional string field into the arena (*out NULL when absent). */
static int copy_str(apbi_manifest *m, json_object *obj, const char *key, const where *w,
                    const char **out)
{
	const char *s;
	size_t len;
	int rc = get_str(obj, key, false, w, &s, &len);

	*out = NULL;
	if (rc < 0 || !s)
		return rc;
	if (!(*out = apbi_arena_strdup(m, s, len)))
		return apbi_set_error(-ENOMEM, "out of memory copying the manifest");
	return 0;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const apb_kv *)a)->key, ((const apb_kv *)b)->key);
}

/* Copies an optional object of strings (metadata.hyperparameters ...) sorted by key. */
static int copy_kv(apbi_manifest *m, json_object *md, const char *key, const where *w,
                   const apb_kv **out, size_t *n_out)
{
	json_object *o;
	apb_kv *kv;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	get_field(md, key, false, w, &o);
	if (!o)
		return 0;
	if (!json_object_is_type(o, json_type_object))
		return field_error(APB_E_MANIFEST, w, key, "not an object");
	if (json_object_object_length(o) == 0)
		return 0;
	kv = apbi_arena_alloc(m, (size_t)json_object_object_length(o) * sizeof *kv);
	if (!kv)
		return apbi_set_error(-ENOMEM, "out of memory copying the manifest");
	json_object_object_foreach(o, k, v) {
		size_t len = (size_t)json_object_get_string_len(v);
		if (!json_object_is_type(v, json_type_string) || strlen(json_object_get_string(v)) != len ||
		    !apbi_utf8_valid(json_object_get_string(v), len) || !apbi_utf8_valid(k, strlen(k)))
			return field_error(APB_E_MANIFEST, w, key, "value of \"%.100s\" is not a string "
			                   "of valid UTF-8 without NUL", k);
		kv[n].key = apbi_arena_strdup(m, k, strlen(k));
		kv[n].value = apbi_arena_strdup(m, json_object_get_string(v), len);
		if (!kv[n].key || !kv[n].value)
			return apbi_set_error(-ENOMEM, "out of memory copying the manifest");
		n++;
	}
	qsort(kv, n, sizeof *kv, kv_cmp);
	*out = kv;
	*n_out = n;
	return 0;
}

/* Decodes the optional "metadata" object of a model. */
static int decode_metadata(apbi_manifest *m, json_object *obj, apbi_model *mod, where *w)
{
	json_object *md;
	int rc;

	get_field(obj, "metadata", false, w, &md);
	if (!md)
		return 0;
	if (!json_object_is_type(md, json_type_object))
		return field_error(APB_E_MANIFEST, w, "metadata", "not an object");
	w->prefix = "metadata.";
	if ((rc = copy_str(m, md, "version", w, &mod->md.version)) < 0 ||
	    (rc = copy_str(m, md, "architecture", w, &mod->md.architecture)) < 0 ||
	    (rc = copy_kv(m, md, "hyperparameters", w, &mod->md.hyperparameters,
	                  &mod->md.n_hyperparameters)) < 0 ||
	    (rc = copy_kv(m, md, "custom", w, &mod->md.custom, &mod->md.n_custom)) < 0)
		return rc;
	w->prefix = "";
	return 0;
}

/*
 * Reads the checksum field key ("xxh3:<16 hex>") into *out; *present says
 * whether it was there (absent or null is an error only when required).
 */
static int get_checksum(json_object *obj, const char *key, bool required, const where *w,
                        uint64_t *out, bool *present)
{
	const char *s;
	size_t len;
	int rc = get_str(obj, key, required, w, &s, &len);

	*present = s != NULL;
	if (rc < 0 || !s)
		return rc;
	if (apbi_checksum_parse(s, out) < 0) {
		char why[256];
		snprintf(why, sizeof why, "%s", apb_last_error());
		return field_error(APB_E_MANIFEST, w, key, "%s", why);
	}
	return 0;
}

/*
 * Decodes the optional table index ("blocks.index_offset" and
 * "blocks.index_checksum", both or neither; docs/FORMAT.md section 4).
 */
static int decode_index(json_object *b, apbi_model *mod, const where *w)
{
	bool has_sum = false;
	int rc;

	mod->has_index = false;
	if ((rc = get_u64(b, "index_offset", false, w, &mod->index_offset, &mod->has_index)) < 0 ||
	    (rc = get_checksum(b, "index_checksum", false, w, &mod->index_checksum, &has_sum)) < 0)
		return rc;
	if (mod->has_index != has_sum)
		return field_error(APB_E_MANIFEST, w, mod->has_index ? "index_checksum" : "index_offset",
		                   "missing (index_offset and index_checksum go together)");
	return 0;
}

/*
 * Decodes the optional "blocks" object, or makes the model one block.
 * "blocks.table_checksum" is optional: writers before it was added bound
 * the table to nothing (docs/FORMAT.md section 4).
 */
static int decode_blocks(json_object *obj, apbi_model *mod, uint64_t i, where *w)
{
	json_object *b;
	uint64_t bs;
	int rc;

	get_field(obj, "blocks", false, w, &b);
	if (!b)
		return apbi_model_single_block(mod, i);
	if (!json_object_is_type(b, json_type_object))
		return field_error(APB_E_MANIFEST, w, "blocks", "not an object");
	w->prefix = "blocks.";
	if ((rc = get_u64(b, "size", true, w, &bs, NULL)) < 0 ||
	    (rc = get_u64(b, "checksums_offset", true, w, &mod->blocks_offset, NULL)) < 0 ||
	    (rc = get_checksum(b, "table_checksum", false, w, &mod->table_checksum,
	                       &mod->has_table_checksum)) < 0 ||
	    (rc = decode_index(b, mod, w)) < 0)
		return rc;
	if (bs < APBI_MIN_BLOCK_SIZE || bs > APBI_MAX_BLOCK_SIZE || (bs & (bs - 1)))
		return field_error(APB_E_CORRUPT, w, "size", "%llu is not a power of two between %u and %u",
		                   (unsigned long long)bs, APBI_MIN_BLOCK_SIZE, APBI_MAX_BLOCK_SIZE);
	w->prefix = "";
	mod->block_size = (uint32_t)bs;
	mod->n_blocks = mod->size / bs + (mod->size % bs != 0);
	mod->has_block_table = true;
	mod->entry_size = 8;
	return 0;
}

/* Reads the optional string key naming a codec or filter (absent: "none"). */
static int get_enum(json_object *obj, const char *key, const where *w, int (*parse)(const char *, int *),
                    int *out)
{
	const char *s;
	size_t len;
	int rc = get_str(obj, key, false, w, &s, &len);

	*out = 0;
	if (rc < 0 || !s)
		return rc;
	if (parse(s, out) < 0)
		return field_error(APB_E_MANIFEST, w, key, "\"%.40s\" is not a known %s", s, key);
	return 0;
}

static int parse_codec(const char *s, int *out)
{
	enum apbi_codec c;
	int rc = apbi_codec_parse(s, &c);
	*out = (int)c;
	return rc;
}

static int parse_filter(const char *s, int *out)
{
	enum apbi_filter f;
	int rc = apbi_filter_parse(s, &f);
	*out = (int)f;
	return rc;
}

/*
 * Decodes the v2 keys "codec", "filter", "stored_size" (docs/FORMAT.md
 * 2.2): absent means an uncompressed model; a compressed one needs a
 * version-2 manifest, its "stored_size" and a block table of 16-byte entries.
 */
static int decode_codec(apbi_manifest *m, json_object *obj, apbi_model *mod, where *w)
{
	int c, f, rc;
	bool has_stored;

	if ((rc = get_enum(obj, "codec", w, parse_codec, &c)) < 0 ||
	    (rc = get_enum(obj, "filter", w, parse_filter, &f)) < 0 ||
	    (rc = get_u64(obj, "stored_size", false, w, &mod->stored_size, &has_stored)) < 0)
		return rc;
	mod->codec = (enum apbi_codec)c;
	mod->filter = (enum apbi_filter)f;
	mod->entry_size = c == APBI_CODEC_NONE ? 8 : 16;
	if (c == APBI_CODEC_NONE) {
		if (f != APBI_FILTER_NONE)
			return field_error(APB_E_CORRUPT, w, "filter", "a filter on an uncompressed model");
		if (has_stored && mod->stored_size != mod->size)
			return field_error(APB_E_CORRUPT, w, "stored_size", "%llu, but the model is "
			                   "uncompressed and has %llu bytes", (unsigned long long)mod->stored_size,
			                   (unsigned long long)mod->size);
		return 0;
	}
	if (m->version < 2)
		return field_error(APB_E_VERSION, w, "codec", "a compressed model in a version-%u bundle",
		                   m->version);
	if (!has_stored)
		return field_error(APB_E_MANIFEST, w, "stored_size", "missing (required with a codec)");
	if (mod->stored_size > mod->size)
		return field_error(APB_E_CORRUPT, w, "stored_size", "%llu is more than the %llu decoded bytes",
		                   (unsigned long long)mod->stored_size, (unsigned long long)mod->size);
	if (!mod->has_block_table && mod->size)
		return field_error(APB_E_CORRUPT, w, "blocks", "missing (a compressed model needs its table)");
	return 0;
}

/* Decodes and checks the name of models[i] (a NUL in it is a name error). */
static int decode_name(apbi_manifest *m, json_object *obj, apbi_model *mod, where *w)
{
	json_object *v;
	const char *s;
	size_t len;
	int rc;

	if ((rc = get_field(obj, "name", true, w, &v)) < 0)
		return rc;
	if (!json_object_is_type(v, json_type_string))
		return field_error(APB_E_MANIFEST, w, "name", "not a string");
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (apbi_name_check(s, len) < 0) {
		char why[400];
		snprintf(why, sizeof why, "%s", apb_last_error());
		return apbi_model_error(APB_E_NAME, (uint64_t)w->model, NULL, "%s", why);
	}
	if (!(mod->name = apbi_arena_strdup(m, s, len)))
		return apbi_set_error(-ENOMEM, "out of memory copying the manifest");
	mod->name_len = (uint32_t)len;
	w->name = mod->name;
	return 0;
}

/* Decodes models[i]. */
static int decode_model(apbi_manifest *m, json_object *obj, uint64_t i)
{
	apbi_model *mod = &m->models[i];
	where w = { (int64_t)i, NULL, "" };
	int rc;

	if (!json_object_is_type(obj, json_type_object))
		return apbi_model_error(APB_E_MANIFEST, i, NULL, "not an object");
	if ((rc = decode_name(m, obj, mod, &w)) < 0 ||
	    (rc = get_u64(obj, "offset", true, &w, &mod->offset, NULL)) < 0 ||
	    (rc = get_u64(obj, "size", true, &w, &mod->size, NULL)) < 0 ||
	    (rc = get_checksum(obj, "checksum", true, &w, &mod->checksum, &mod->has_checksum)) < 0)
		return rc;
	/* an empty model has no block to verify when read: check it now */
	if (mod->size == 0 && mod->checksum != apbi_xxh3("", 0)) {
		char got[22], want[22];
		apbi_checksum_format(mod->checksum, got);
		apbi_checksum_format(apbi_xxh3("", 0), want);
		return apbi_model_error(APB_E_CHECKSUM, i, mod->name, "checksum mismatch: the model is "
		                        "empty (0 bytes) but its checksum is %s, not %s", got, want);
	}
	if ((rc = decode_blocks(obj, mod, i, &w)) < 0 ||
	    (rc = decode_codec(m, obj, mod, &w)) < 0 ||
	    (rc = decode_metadata(m, obj, mod, &w)) < 0)
		return rc;
	return 0;
}

/* Decodes the optional top-level "created_at" (seconds since the epoch). */
static int decode_created_at(apbi_manifest *m, json_object *root, const where *w)
{
	json_object *v;

	get_field(root, "created_at", false, w, &v);
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return field_error(APB_E_MANIFEST, w, "created_at", "not an integer");
	if (json_object_get_int64(v) >= 0 && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return field_error(APB_E_MANIFEST, w, "created_at", "out of range");
	m->created_at = json_object_get_int64(v);
	m->has_created_at = true;
	return 0;
}

/* Decodes the top-level fields other than "models". */
static int decode_top(apbi_manifest *m, json_object *root, uint64_t *count)
{
	static const where top = { -1, NULL, "" };
	const char *fmt;
	uint64_t v;
	size_t len;
	int rc;

	if ((rc = get_str(root, "format", true, &top, &fmt, &len)) < 0)
		return rc;
	if (strcmp(fmt, "apbundle") != 0)
		return field_error(APB_E_MANIFEST, &top, "format", "\"%.40s\", want \"apbundle\"", fmt);
	if ((rc = get_u64(root, "version", true, &top, &v, NULL)) < 0)
		return rc;
	if (v != m->version)
		return field_error(APB_E_VERSION, &top, "version", "%llu, but the header says %u",
		                   (unsigned long long)v, m->version);
	if ((rc = get_u64(root, "alignment", true, &top, &v, NULL)) < 0)
		return rc;
	if (v == 0 || v > APBI_MAX_ALIGNMENT || (v & (v - 1)))
		return field_error(APB_E_CORRUPT, &top, "alignment",
		                   "%llu is not a power of two between 1 and %u",
		                   (unsigned long long)v, APBI_MAX_ALIGNMENT);
	m->alignment = (uint32_t)v;
	if (m->data_start % m->alignment)
		return field_error(APB_E_CORRUPT, &top, "alignment",
		                   "the data section starts at byte %llu, not a multiple of %u",
		                   (unsigned long long)m->data_start, m->alignment);
	if ((rc = get_u64(root, "model_count", true, &top, count, NULL)) < 0 ||
	    (rc = copy_str(m, root, "description", &top, (const char **)&m->description)) < 0)
		return rc;
	return decode_created_at(m, root, &top);
}

/*
 * Where the top-level "models" value is: when it is an array, the extent of
 * the array and of each element (the tree then holds "[]" in its place).
 */
typedef struct models_scan {
	bool found, is_array;
	size_t a, b;                /* the array, brackets included */
	apbi_json_span *el;         /* its elements (malloc'd) */
	size_t n;
	size_t sum_a, sum_b;        /* the "manifest_checksum" value; sum_b 0: none */
} models_scan;

/* Parses models[i] from its extent with tok and decodes it. */
static int decode_span(apbi_manifest *m, json_tokener *tok, const char *text,
                       const apbi_json_span *sp, uint64_t i)
{
	json_object *obj;
	enum json_tokener_error jerr;
	int rc;

	if (text[sp->a] != '{')
		return apbi_model_error(APB_E_MANIFEST, i, NULL, "not an object");
	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, text + sp->a, (int)(sp->b - sp->a));
	jerr = json_tokener_get_error(tok);
	if (!obj || json_tokener_get_parse_end(tok) != sp->b - sp->a) {
		json_object_put(obj);
		return apbi_set_error(APB_E_MANIFEST, "manifest JSON invalid at byte %zu (in models[%llu]): %s",
		                      sp->a + json_tokener_get_parse_end(tok), (unsigned long long)i,
		                      jerr == json_tokener_success || jerr == json_tokener_continue ?
		                      "incomplete value" : json_tokener_error_desc(jerr));
	}
	rc = decode_model(m, obj, i);
	json_object_put(obj);
	return rc;
}

/* Decodes the elements of the "models" array one at a time from their extents. */
static int decode_spans(apbi_manifest *m, const char *text, const models_scan *ms)
{
	/* the root object and the array hold each element */
	json_tokener *tok = json_tokener_new_ex(APBI_JSON_MAX_DEPTH - 2);
	int rc = 0;

	if (!tok)
		return apbi_set_error(-ENOMEM, "out of memory parsing the manifest");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	for (size_t i = 0; i < ms->n && rc == 0; i++)
		rc = decode_span(m, tok, text, &ms->el[i], i);
	json_tokener_free(tok);
	return rc;
}

/* Decodes the "models" array; its length must equal model_count. */
static int decode_models(apbi_manifest *m, json_object *root, uint64_t count, const char *text,
                         const models_scan *ms)
{
	static const where top = { -1, NULL, "" };
	json_object *arr;
	size_t n;
	int rc;

	if ((rc = get_field(root, "models", true, &top, &arr)) < 0)
		return rc;
	if (!json_object_is_type(arr, json_type_array))
		return field_error(APB_E_MANIFEST, &top, "models", "not an array");
	n = ms->is_array ? ms->n : json_object_array_length(arr);
	if (count != n)
		return field_error(APB_E_CORRUPT, &top, "model_count", "%llu, but \"models\" has %zu entries",
		                   (unsigned long long)count, n);
	m->n_models = n;
	m->models = calloc(n ? n : 1, sizeof *m->models);
	if (!m->models)
		return apbi_set_error(-ENOMEM, "out of memory for %zu models", n);
	if (ms->is_array)
		return decode_spans(m, text, ms);
	for (size_t i = 0; i < n; i++) {
		if ((rc = decode_model(m, json_object_array_get_idx(arr, i), i)) < 0)
			return rc;
		/*
		 * Free this model's subtree now, while it is still in cache (the
		 * last one goes with the root: json-c would grow the array to
		 * store NULL at its final index).
		 */
		if (i + 1 < n)
			json_object_array_put_idx(arr, i, NULL);
	}
	return 0;
}

/* Whether the key string text[a..b) (quotes included) decodes to want. */
static bool key_is(const char *text, size_t a, size_t b, const char *want)
{
	size_t wl = strlen(want);
	json_tokener *tok;
	json_object *k = NULL;
	bool yes;

	if (!memchr(text + a, '\\', b - a))
		return b - a == wl + 2 && memcmp(text + a + 1, want, wl) == 0;
	/* escaped: decode it as json-c will (a key stops at a NUL there too) */
	if ((tok = json_tokener_new())) {
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
		k = json_tokener_parse_ex(tok, text + a, (int)(b - a));
		json_tokener_free(tok);
	}
	yes = k && json_object_is_type(k, json_type_string) &&
	      strcmp(json_object_get_string(k), want) == 0;
	json_object_put(k);
	return yes;
}

/* Records the extent of the top-level "manifest_checksum" value at *p. */
static int scan_sum(const char *text, size_t len, size_t *p, size_t ka, models_scan *ms)
{
	int rc;

	if (ms->sum_b)
		return apbi_set_error(APB_E_MANIFEST, "manifest: a second \"manifest_checksum\" key at byte %zu", ka);
	ms->sum_a = *p;
	rc = apbi_json_skip_value(text, len, p, 1);
	ms->sum_b = *p;
	return rc;
}

/* Skips the value of the top-level key at *p; a "models" array is recorded in ms. */
static int scan_member(const char *text, size_t len, size_t *p, models_scan *ms)
{
	size_t ka = *p, kb;
	int rc;

	if ((rc = apbi_json_skip_string(text, len, p)) < 0)
		return rc;
	kb = *p;
	if ((rc = apbi_json_skip_colon(text, len, p)) < 0)
		return rc;
	if (key_is(text, ka, kb, "manifest_checksum"))
		return scan_sum(text, len, p, ka, ms);
	if (!key_is(text, ka, kb, "models"))
		return apbi_json_skip_value(text, len, p, 1);
	if (ms->found)
		return apbi_set_error(APB_E_MANIFEST, "manifest: a second \"models\" key at byte %zu", ka);
	ms->found = true;
	if (*p >= len || text[*p] != '[')
		return apbi_json_skip_value(text, len, p, 1);
	ms->is_array = true;
	ms->a = *p;
	rc = apbi_json_array_spans(text, len, p, 1, "models", &ms->el, &ms->n);
	ms->b = *p;
	return rc;
}
/*
 * Walks the top-level object key by key to find "models".  Leaves ms empty
 * when the text does not start with '{' (parse_text then says what is wrong).
 */
static int scan_top(const char *text, size_t len, models_scan *ms)
{
	size_t p = apbi_json_skip_ws(text, len, 0);
	int rc;

	if (p >= len || text[p] != '{')
		return 0;
	p = apbi_json_skip_ws(text, len, p + 1);
	if (p < len && text[p] == '}')
		return 0;
	for (;;) {
		if ((rc = scan_member(text, len, &p, ms)) < 0)
			return rc;
		p = apbi_json_skip_ws(text, len, p);
		if (p < len && text[p] == '}')
			return 0;   /* what follows is parse_text's to check */
		if (p >= len || text[p] != ',')
			return apbi_json_error(text, len, p, "expected ',' or '}'");
		p = apbi_json_skip_ws(text, len, p + 1);
	}
}

/*
 * The text json-c parses for the top level: the manifest, or a copy with
 * the "models" array cut to "[]" (bytes from at on then sit shift earlier).
 */
typedef struct text_view {
	const char *t;
	size_t len, at, shift;
	char *copy;
} text_view;

/* Byte p of the view as an offset in the manifest, for messages. */
static size_t view_pos(const text_view *v, size_t p)
{
	return p >= v->at ? p + v->shift : p;
}

/* Makes v the manifest with the "models" array replaced by "[]". */
static int cut_models(const char *text, size_t len, const models_scan *ms, text_view *v)
{
	size_t tail = len - ms->b;

	if (!(v->copy = malloc(ms->a + 2 + tail)))
		return apbi_set_error(-ENOMEM, "out of memory parsing the manifest");
	memcpy(v->copy, text, ms->a);
	memcpy(v->copy + ms->a, "[]", 2);
	memcpy(v->copy + ms->a + 2, text + ms->b, tail);
	v->t = v->copy;
	v->len = ms->a + 2 + tail;
	v->at = ms->a + 2;
	v->shift = ms->b - ms->a - 2;
	return 0;
}

/* Parses the view strictly; on success *root is the tree. */
static int parse_text(const text_view *v, json_object **root)
{
	const char *text = v->t;
	size_t len = v->len;
	json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	enum json_tokener_error jerr;
	size_t end;
	int rc = 0;

	*root = NULL;
	if (!tok)
		return apbi_set_error(-ENOMEM, "out of memory parsing the manifest");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
	                       JSON_TOKENER_VALIDATE_UTF8);
	*root = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!*root) {
		if (jerr == json_tokener_continue || jerr == json_tokener_success)
			rc = apbi_set_error(APB_E_MANIFEST, "manifest JSON ends early (at byte %zu of %zu)",
			                    view_pos(v, end), view_pos(v, len));
		else
			rc = apbi_set_error(APB_E_MANIFEST, "manifest JSON invalid at byte %zu: %s",
			                    view_pos(v, end), json_tokener_error_desc(jerr));
		goto out;
	}
	for (size_t i = end; i < len; i++) {
		char c = text[i];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			rc = apbi_set_error(APB_E_MANIFEST, "manifest: byte 0x%02x at %zu after the JSON object "
			                    "(only whitespace padding may follow it)", (unsigned char)c, view_pos(v, i));
			goto out;
		}
	}
	if (!json_object_is_type(*root, json_type_object))
		rc = apbi_set_error(APB_E_MANIFEST, "manifest: the JSON value is not an object");
out:
	if (rc < 0) {
		json_object_put(*root);
		*root = NULL;
	}
	json_tokener_free(tok);
	return rc;
}

int apbi_decode_json(const char *text, size_t len, apbi_manifest *m)
{
	models_scan ms = { 0 };
	text_view v = { text, len, len + 1, 0, NULL };
	json_object *root = NULL;
	uint64_t count;
	int rc;

	if ((rc = scan_top(text, len, &ms)) < 0 ||
	    (rc = apbi_check_binding(text, len, ms.sum_a, ms.sum_b, &m->manifest_bound)) < 0 ||
	    (rc = apbi_check_surrogates(text, len)) < 0 ||
	    (ms.is_array && (rc = cut_models(text, len, &ms, &v)) < 0) ||
	    (rc = parse_text(&v, &root)) < 0)
		goto out;
	/* the cut copy is only needed by the parse */
	free(v.copy);
	v.copy = NULL;
	if ((rc = decode_top(m, root, &count)) == 0)
		rc = decode_models(m, root, count, text, &ms);
out:
	json_object_put(root);
	free(v.copy);
	free(ms.el);
	return rc;
}
