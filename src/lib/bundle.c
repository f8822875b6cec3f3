/*
 * bundle.c - apb_bundle_*: a whole bundle held in memory.
 *
 * Invariants kept here:
 *  - A bundle is a list of models, each with its own heap copy of the bytes
 *    (so pointers handed out by get_model survive later additions).  The
 *    first n_loaded entries come from a file: their names and metadata live
 *    in the decoded manifest b->m, looked up with apbi_manifest_find; models
 *    added in memory own their names and are found through a hash index.
 *    Names are unique across both.
 *  - load reads every model through the block layer (apb_paged_stream)
 *    and so verifies each before returning it: every block against its
 *    table, the table against the manifest, the model checksum over all
 *    its bytes.  Legacy (aprender) bundles carry no checksums and are
 *    loaded unverified.  On any failure nothing is returned.
 *  - save goes through the builder (atomic, reproducible); model bytes are
 *    borrowed, not copied, and loaded metadata and description are kept.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "format_write.h"
#include "internal.h"
#include "paged_priv.h"

struct bentry {
	char *name;                   /* owned only for models added in memory */
	uint8_t *data;                /* owned; never NULL */
	size_t size;
};

struct apb_bundle {
	apbi_manifest *m;             /* decoded manifest of a loaded bundle, or NULL */
	size_t n_loaded;              /* entries [0, n_loaded) come from m */
	size_t n, cap;
	struct bentry *e;
	apbi_nameidx idx;             /* entries [n_loaded, n) */
};

static const apb_metadata no_metadata;

static const char *bundle_name_at(const void *ctx, size_t i)
{
	const apb_bundle *b = ctx;
	return b->e[i].name;
}

static apb_bundle *bundle_alloc(void)
{
	apb_bundle *b = calloc(1, sizeof *b);

	if (!b)
		return NULL;
	b->idx.name_at = bundle_name_at;
	b->idx.ctx = b;
	return b;
}

apb_bundle *apb_bundle_new(void)
{
	apb_bundle *b;

	apbi_clear_error();
	if (!(b = bundle_alloc()))
		apbi_set_error(-ENOMEM, "out of memory creating a bundle");
	return b;
}

void apb_bundle_free(apb_bundle *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->e[i].data);
		if (i >= b->n_loaded)
			free(b->e[i].name);
	}
	free(b->e);
	apbi_nameidx_free(&b->idx);
	apbi_manifest_free(b->m);
	free(b);
}

/* Returns the index of name, or -1. */
static int64_t bundle_find(const apb_bundle *b, const char *name)
{
	int64_t i = b->m ? apbi_manifest_find(b->m, name) : -1;

	return i >= 0 ? i : apbi_nameidx_find(&b->idx, name);
}

int apb_bundle_add_model(apb_bundle *b, const char *name, const void *data, size_t size)
{
	struct bentry *e;
	int rc;

	apbi_clear_error();
	if (!b || !name || (!data && size))
		return apbi_set_error(-EINVAL, "apb_bundle_add_model: NULL argument");
	if ((rc = apbi_name_check(name, strlen(name))) != 0)
		return rc;
	if (bundle_find(b, name) >= 0)
		return apbi_set_error(APB_E_DUPLICATE, "model \"%s\" is already in the bundle", name);
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		if (!(e = realloc(b->e, cap * sizeof *e)))
			return apbi_set_error(-ENOMEM, "out of memory adding model \"%s\"", name);
		b->e = e;
		b->cap = cap;
	}
	e = &b->e[b->n];
	e->size = size;
	e->name = strdup(name);
	e->data = malloc(size ? size : 1);
	if (!e->name || !e->data || apbi_nameidx_add(&b->idx, b->n) != 0) {
		free(e->name);
		free(e->data);
		return apbi_set_error(-ENOMEM, "out of memory adding model \"%s\" (%zu bytes)", name, size);
	}
	if (size)
		memcpy(e->data, data, size);
	b->n++;
	return 0;
}

int apb_bundle_get_model(const apb_bundle *b, const char *name, const void **data, size_t *size)
{
	int64_t i;

	apbi_clear_error();
	if (!b || !name || !data || !size)
		return apbi_set_error(-EINVAL, "apb_bundle_get_model: NULL argument");
	if ((i = bundle_find(b, name)) < 0)
		return apbi_set_error(-ENOENT, "no model \"%s\" in the bundle", name);
	*data = b->e[i].data;
	*size = b->e[i].size;
	return 0;
}

size_t apb_bundle_model_count(const apb_bundle *b)
{
	return b ? b->n : 0;
}

const char *apb_bundle_model_name(const apb_bundle *b, size_t i)
{
	return b && i < b->n ? b->e[i].name : NULL;
}

int apb_bundle_model_info(const apb_bundle *b, size_t i, apb_model_info *out)
{
	apbi_clear_error();
	if (!b || !out)
		return apbi_set_error(-EINVAL, "apb_bundle_model_info: NULL argument");
	if (i >= b->n)
		return apbi_set_error(-ENOENT, "model index %zu out of range (%zu models)", i, b->n);
	if (i < b->n_loaded) {
		apbi_model_info(b->m, i, out);
		return 0;
	}
	memset(out, 0, sizeof *out);
	out->name = b->e[i].name;
	out->size = b->e[i].size;
	out->metadata = &no_metadata;
	out->table_bound = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Save                                                                 */
/* ------------------------------------------------------------------ */

static bool has_metadata(const apb_metadata *md)
{
	return md->version || md->architecture || md->n_hyperparameters || md->n_custom;
}

int apb_bundle_save(const apb_bundle *b, const char *path)
{
	apb_builder *bb;
	int rc = 0;

	apbi_clear_error();
	if (!b || !path)
		return apbi_set_error(-EINVAL, "apb_bundle_save: NULL argument");
	if (!(bb = apb_builder_new(path)))
		return apbi_set_error(-ENOMEM, "out of memory saving to %s", path);
	if (b->m && b->m->description)
		rc = apb_builder_set_description(bb, b->m->description);
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		rc = apbi_builder_add_ref(bb, b->e[i].name, b->e[i].data, b->e[i].size);
		if (rc == 0 && i < b->n_loaded && has_metadata(&b->m->models[i].md))
			rc = apb_builder_set_metadata(bb, b->e[i].name, &b->m->models[i].md);
	}
	if (rc == 0)
		rc = apb_builder_build(bb);
	apb_builder_free(bb);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Load                                                                 */
/* ------------------------------------------------------------------ */

/* Stream sink: copies verified bytes into the model's buffer. */
static int copy_out(void *ctx, uint64_t off, const void *buf, size_t len)
{
	memcpy((uint8_t *)ctx + off, buf, len);
	return 0;
}

/* Reads and verifies model i of pb into entry i of b (names from b->m). */
static int load_model(apb_bundle *b, apb_paged *pb, uint64_t i)
{
	static const apb_stream_ops ops = { .data = copy_out };
	const apbi_model *mod = &b->m->models[i];
	struct bentry *e = &b->e[i];

	if (mod->size > SIZE_MAX - 1)
		return apbi_set_error(-EFBIG, "model \"%.200s\": %llu bytes do not fit in memory",
		                      mod->name, (unsigned long long)mod->size);
	e->name = mod->name;
	e->size = (size_t)mod->size;
	if (!(e->data = malloc(e->size ? e->size : 1)))
		return apbi_set_error(-ENOMEM, "model \"%.200s\": out of memory for %zu bytes",
		                      mod->name, e->size);
	return apb_paged_stream(pb, (size_t)i, &ops, e->data, NULL);
}

/*
 * Loads through a paged handle, so every byte takes the block layer's one
 * verified path (apb_paged_stream: every block, every table chunk and the
 * whole-model checksum); the small cache holds only block-table pages.
 */
int apb_bundle_load(const char *path, apb_bundle **out)
{
	return apb_bundle_load_with(path, NULL, out);
}

/** See apbundle.h. */
int apb_bundle_load_with(const char *path, const apb_open_options *opt, apb_bundle **out)
{
	apb_paging_config cfg;
	apb_paged *pb = NULL;
	apb_bundle *b = NULL;
	int rc;

	apbi_clear_error();
	if (!path || !out)
		return apbi_set_error(-EINVAL, "apb_bundle_load: NULL argument");
	*out = NULL;
	apb_paging_config_init(&cfg);
	cfg.max_memory = 64u << 20;   /* a ceiling: only table pages are cached */
	cfg.prefetch = false;
	if ((rc = apb_paged_open_with(path, &cfg, opt, &pb)) != 0)
		return rc;
	if (!(b = bundle_alloc())) {
		rc = apbi_set_error(-ENOMEM, "out of memory loading %s", path);
		goto out;
	}
	b->m = apbi_paged_manifest(pb);
	if (b->m->n_models > SIZE_MAX / sizeof *b->e ||
	    !(b->e = calloc(b->m->n_models ? (size_t)b->m->n_models : 1, sizeof *b->e))) {
		rc = apbi_set_error(-ENOMEM, "out of memory for %llu models of %s",
		                    (unsigned long long)b->m->n_models, path);
		goto out;
	}
	b->cap = (size_t)b->m->n_models;
	for (uint64_t i = 0; i < b->m->n_models; i++) {
		b->n = b->n_loaded = (size_t)i + 1; /* entry i is freed with b from now on */
		if ((rc = load_model(b, pb, i)) != 0)
			goto out;
	}
	*out = b;
	b = NULL;
out:
	if (b)
		b->m = NULL;   /* still pb's: freed by apb_paged_close */
	apb_bundle_free(b);
	if (*out)
		apbi_paged_take_manifest(pb);
	apb_paged_close(pb);
	return rc;
}
