/*
 * vfiles.c - the mount's generated content: .stats, .stats.json and xattrs.
 *
 * Each open renders one snapshot of the paging statistics into a private
 * buffer that the open file owns, so a reader sees one consistent snapshot
 * however it reads it.  The JSON object has exactly the keys of the
 * documented schema.  Its "models" array is streamed one model at a time
 * into json-c's output buffer, so rendering a bundle of 100,000 models never
 * holds more than the output text and one small model object in memory.
 * Extended attributes (user.apbundle.*) are generated from the manifest on
 * each request; directories and the virtual files have none.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "mount.h"

#define XA_PREFIX "user.apbundle."

static const char *eviction_name(apb_eviction e)
{
	switch (e) {
	case APB_EVICT_LRU: return "lru";
	case APB_EVICT_LFU: return "lfu";
	}
	return "unknown";
}

/* Formats n bytes as "N (x.y MiB)" into out. */
static void human_size(uint64_t n, char *out, size_t cap)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%" PRIu64, n);
	else
		snprintf(out, cap, "%" PRIu64 " (%.1f %s)", n, v, unit[u]);
}

static int render_text(apbm_fs *fs, const apb_paging_stats *st, char **out, size_t *len)
{
	char maxm[48], used[48], loaded[48];
	FILE *f = open_memstream(out, len);

	if (!f)
		return -ENOMEM;
	human_size(fs->cfg.max_memory, maxm, sizeof(maxm));
	human_size(st->memory_used, used, sizeof(used));
	human_size(st->bytes_loaded, loaded, sizeof(loaded));
	fprintf(f, "bundle:            %s\n", fs->bundle_path);
	fprintf(f, "models:            %zu\n", apb_paged_model_count(fs->pb));
	fprintf(f, "eviction:          %s\n", eviction_name(fs->cfg.eviction));
	fprintf(f, "page size:         %" PRIu32 "\n", fs->cfg.page_size);
	fprintf(f, "max memory:        %s\n", maxm);
	fprintf(f, "memory used:       %s\n", used);
	fprintf(f, "cached pages:      %" PRIu64 "\n", st->cached_pages);
	fprintf(f, "hits:              %" PRIu64 "\n", st->hits);
	fprintf(f, "misses:            %" PRIu64 "\n", st->misses);
	fprintf(f, "evictions:         %" PRIu64 "\n", st->evictions);
	fprintf(f, "hit rate:          %.2f%%\n", 100.0 * apb_paging_stats_hit_rate(st));
	fprintf(f, "prefetches:        %" PRIu64 "\n", st->prefetches);
	fprintf(f, "prefetch hits:     %" PRIu64 "\n", st->prefetch_hits);
	fprintf(f, "bytes loaded:      %s\n", loaded);
	fprintf(f, "checksum failures: %" PRIu64 "\n", st->checksum_failures);
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* json-c serializer of the "models" array: one object per model, streamed. */
static int models_to_json(json_object *jso, struct printbuf *pb, int level, int flags)
{
	apbm_fs *fs = json_object_get_userdata(jso);
	size_t n = apb_paged_model_count(fs->pb);

	printbuf_strappend(pb, "[");
	for (size_t i = 0; i < n; i++) {
		apb_model_info info;
		apb_model_stats ms = { 0 };
		if (apb_paged_model_info(fs->pb, i, &info) != 0)
			return -1;
		apb_paged_model_stats(fs->pb, i, &ms);
		json_object *m = json_object_new_object();
		if (!m)
			return -1;
		json_object_object_add(m, "name", json_object_new_string(info.name));
		json_object_object_add(m, "size", json_object_new_uint64(info.size));
		json_object_object_add(m, "cached_bytes", json_object_new_uint64(ms.cached_bytes));
		json_object_object_add(m, "hits", json_object_new_uint64(ms.hits));
		json_object_object_add(m, "misses", json_object_new_uint64(ms.misses));
		const char *s = json_object_to_json_string_ext(m, flags);
		if (i > 0)
			printbuf_strappend(pb, ",");
		if (!s || printbuf_memappend(pb, s, (int)strlen(s)) < 0) {
			json_object_put(m);
			return -1;
		}
		json_object_put(m);
	}
	printbuf_strappend(pb, "]");
	return 0;
}

static json_object *stats_object(apbm_fs *fs, const apb_paging_stats *st)
{
	json_object *o = json_object_new_object(), *models;

	if (!o)
		return NULL;
	json_object_object_add(o, "hits", json_object_new_uint64(st->hits));
	json_object_object_add(o, "misses", json_object_new_uint64(st->misses));
	json_object_object_add(o, "evictions", json_object_new_uint64(st->evictions));
	json_object_object_add(o, "hit_rate", json_object_new_double(apb_paging_stats_hit_rate(st)));
	json_object_object_add(o, "memory_used", json_object_new_uint64(st->memory_used));
	json_object_object_add(o, "max_memory", json_object_new_uint64(fs->cfg.max_memory));
	json_object_object_add(o, "bytes_loaded", json_object_new_uint64(st->bytes_loaded));
	json_object_object_add(o, "prefetches", json_object_new_uint64(st->prefetches));
	json_object_object_add(o, "prefetch_hits", json_object_new_uint64(st->prefetch_hits));
	json_object_object_add(o, "page_size", json_object_new_uint64(fs->cfg.page_size));
	json_object_object_add(o, "eviction",
	                       json_object_new_string(eviction_name(fs->cfg.eviction)));
	models = json_object_new_array();
	if (!models) {
		json_object_put(o);
		return NULL;
	}
	json_object_set_serializer(models, models_to_json, fs, NULL);
	json_object_object_add(o, "models", models);
	return o;
}

static int render_json(apbm_fs *fs, const apb_paging_stats *st, char **out, size_t *len)
{
	json_object *o = stats_object(fs, st);
	const char *s;
	size_t n;

	if (!o)
		return -ENOMEM;
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	*out = s ? malloc(n + 1) : NULL;
	if (!*out) {
		json_object_put(o);
		return -ENOMEM;
	}
	memcpy(*out, s, n);
	(*out)[n] = '\n';
	*len = n + 1;
	json_object_put(o);
	return 0;
}

int apbm_vfile_render(apbm_fs *fs, int64_t kind, char **out, size_t *len)
{
	apb_paging_stats st;

	*out = NULL;
	*len = 0;
	apb_paged_stats(fs->pb, &st);
	if (kind == APBM_VSTATS)
		return render_text(fs, &st, out, len);
	if (kind == APBM_VJSON)
		return render_json(fs, &st, out, len);
	return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* Extended attributes                                                  */
/* ------------------------------------------------------------------ */

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

static int each_xattr(apbm_fs *fs, const apbm_node *n, xattr_fn fn, void *ctx)
{
	apb_model_info info;
	char num[32];

	if (n->model < 0 || apb_paged_model_info(fs->pb, (size_t)n->model, &info) != 0)
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
	const apbm_node *n = apbm_node_of(fs, ino);
	xa_get g = { .want = name };

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) == 0)
		each_xattr(fs, n, xa_get_fn, &g);
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
	const apbm_node *n = apbm_node_of(fs, ino);
	xa_list l = { 0 };

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	each_xattr(fs, n, xa_list_fn, &l);
	if (l.oom)
		fuse_reply_err(req, ENOMEM);
	else
		reply_xattr(req, l.buf, l.len, size);
	free(l.buf);
}
