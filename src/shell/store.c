/*
 * store.c - apbundle-shell's only contact with libapbundle: building the
 * model bundle and opening it paged.
 *
 * Invariants: models are added with apb_builder_add_file, so the builder
 * streams them from the work directory and never holds a whole model; the
 * model is opened with max_memory = --memory-limit, pages of SH_PAGE_SIZE
 * (= the checksum block size written here, so each page is verified on its
 * own) and prefetch off (no background thread, no speculative pages), so
 * the cache holds only pages a lookup touched, within the limit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apbundle.h"
#include "shell.h"

/** Builds the bundle at out from the model files below dir. */
int sh_store_build(const char *out, const char *dir, char *const *models, size_t n)
{
	apb_builder *bb = apb_builder_new(out);
	char path[4096];
	int rc;

	if (!bb)
		return sh_err(-ENOMEM, "out of memory");
	if ((rc = apb_builder_set_block_size(bb, SH_PAGE_SIZE)) < 0 ||
	    (rc = apb_builder_set_description(bb, "apbundle-shell n-gram model")) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, models[i]);
		if ((rc = apb_builder_add_file(bb, models[i], path)) < 0)
			goto fail;
	}
	if ((rc = apb_builder_build(bb)) < 0)
		goto fail;
	apb_builder_free(bb);
	return 0;
fail:
	sh_err(rc, "cannot write %s: %s", out, apb_last_error());
	apb_builder_free(bb);
	return rc;
}

static ssize_t paged_read(void *ctx, const char *name, void *buf, size_t len, uint64_t off)
{
	return apb_paged_read(ctx, name, buf, len, off);
}

static const char *paged_describe(void *ctx, int code)
{
	const char *e = apb_last_error();

	(void)ctx;
	return *e ? e : apb_strerror(code);
}

/** Opens the model paged under a limit_mb MiB cache budget. */
int sh_store_open(const char *path, uint64_t limit_mb, struct apb_paged **pb, sh_source *src)
{
	apb_paging_config cfg;
	int rc;

	*pb = NULL;
	apb_paging_config_init(&cfg);
	cfg.max_memory = limit_mb << 20;
	cfg.page_size = SH_PAGE_SIZE;
	cfg.prefetch = false;
	rc = apb_paged_open(path, &cfg, pb);
	if (rc == -ENOENT)
		return sh_err(rc, "no model at %s (run 'apbundle-shell train' first)", path);
	if (rc < 0)
		return sh_err(rc, "cannot open model %s: %s", path, apb_last_error());
	src->read = paged_read;
	src->describe = paged_describe;
	src->ctx = *pb;
	return 0;
}
