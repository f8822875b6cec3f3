/*
 * vfiles.c - the virtual files .stats (text) and .stats.json of the mount root.
 *
 * Each open renders one snapshot of the paging statistics into a private
 * buffer that the open file owns, so a reader sees one consistent snapshot
 * however it reads it.  The JSON object has exactly the keys of the
 * documented schema.  Its "models" array is streamed one model at a time
 * into json-c's output buffer, so rendering a bundle of 100,000 models never
 * holds more than the output text and one small model object in memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "mount.h"

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
