/*
 * xattr.c - the extended attributes of the mount's models (user.apbundle.*).
 *
 * Generated from the manifest on each request, nothing cached: the
 * checksum, the offset in the bundle file and the model's metadata.
 * Directories and the virtual files have none.  A name longer than
 * XATTR_NAME_MAX is skipped, never truncated.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "mount.h"

#define XA_PREFIX "user.apbundle."

/* Called for each attribute; returns nonzero to stop. */
typedef int (*xattr_fn)(void *ctx, const char *name, const char *value);

static int each_kv(const apb_kv *kv, size_t n, const char *group, xattr_fn fn, void *ctx)
{
	char name[XATTR_NAME_MAX + 1];

	for (size_t i = 0; i < n; i++) {
		int w = snprintf(name, sizeof(name), XA_PREFIX "%s.%s", group, kv[i].key);
		if (w < 0 || (size_t)w >= sizeof(name) || !kv[i].value)
			continue;
		if (fn(ctx, name, kv[i].value))
			return 1;
	}
	return 0;
}

static int each_xattr(apb_paged *pb, const apbm_node *n, xattr_fn fn, void *ctx)
{
	apb_model_info info;
	char num[32];

	if (n->model < 0 || apb_paged_model_info(pb, (size_t)n->model, &info) != 0)
		return 0;
	if (info.has_checksum) {
		snprintf(num, sizeof(num), "xxh3:%016" PRIx64, info.checksum);
		if (fn(ctx, XA_PREFIX "checksum", num))
			return 1;
	}
	snprintf(num, sizeof(num), "%" PRIu64, info.file_offset);
	if (fn(ctx, XA_PREFIX "offset", num))
		return 1;
	const apb_metadata *md = info.metadata;
	if (!md)
		return 0;
	if (md->version && fn(ctx, XA_PREFIX "version", md->version))
		return 1;
	if (md->architecture && fn(ctx, XA_PREFIX "architecture", md->architecture))
		return 1;
	if (each_kv(md->hyperparameters, md->n_hyperparameters, "hyperparameters", fn, ctx))
		return 1;
	return each_kv(md->custom, md->n_custom, "custom", fn, ctx);
}

typedef struct xa_get {
	const char *want;
	char *value;      /* copy, when found */
} xa_get;

static int xa_get_fn(void *ctx, const char *name, const char *value)
{
	xa_get *g = ctx;

	if (strcmp(name, g->want) != 0)
		return 0;
	g->value = strdup(value);
	return 1;
}

typedef struct xa_list {
	char *buf;
	size_t len, cap;
	bool oom;
} xa_list;

static int xa_list_fn(void *ctx, const char *name, const char *value)
{
	xa_list *l = ctx;
	size_t n = strlen(name) + 1;

	if (l->len + n > l->cap) {
		size_t cap = (l->cap + n) * 2;
		char *b = realloc(l->buf, cap);
		if (!b) {
			l->oom = true;
			return 1;
		}
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, name, n);
	l->len += n;
	return 0;
}

/* Replies with len bytes of data, or its size, or ERANGE, as getxattr wants. */
static void reply_xattr(fuse_req_t req, const char *data, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

/* Answers getxattr for every node (ENODATA for anything not listed). */
void apbm_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	apbm_fs *fs = fuse_req_userdata(req);
	const apbm_node *n;
	apbm_gen *gen = apbm_gen_of_ino(fs, ino, &n);
	xa_get g = { .want = name };

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) == 0)
		each_xattr(gen->pb, n, xa_get_fn, &g);
	apbm_gen_put(fs, gen);
	if (!g.value) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	reply_xattr(req, g.value, strlen(g.value), size);
	free(g.value);
}

/* Answers listxattr for every node. */
void apbm_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	apbm_fs *fs = fuse_req_userdata(req);
	const apbm_node *n;
	apbm_gen *gen = apbm_gen_of_ino(fs, ino, &n);
	xa_list l = { 0 };

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	each_xattr(gen->pb, n, xa_list_fn, &l);
	apbm_gen_put(fs, gen);
	if (l.oom)
		fuse_reply_err(req, ENOMEM);
	else
		reply_xattr(req, l.buf, l.len, size);
	free(l.buf);
}
