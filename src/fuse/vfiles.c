/*
 * vfiles.c - renders the mount's generated files: .stats and .stats.json
 * (.metrics: metrics.c).
 *
 * A render is given one apb_paged_stats snapshot and writes straight into
 * an apbm_obuf (one anonymous mapping, no heap copy, no json-c tree), so
 * rendering the 100,000-model .stats.json holds only its own text.  The
 * JSON object has exactly the keys of the documented schema, in a fixed
 * order; model names are escaped by apbm_obuf_json_str, the per-model
 * counters are read one model at a time as the array is written.  Nothing
 * here locks: snap.c serializes renders.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "mount.h"

const char *apbm_eviction_name(apb_eviction e)
{
	const char *name = apb_eviction_name(e);
	return name ? name : "unknown";
}

/* "N" below 1 KiB, else "N (x.y MiB)". */
static void size_line(apbm_obuf *b, const char *label, uint64_t n)
{
	char h[32];

	if (n < 1024)
		apbm_obuf_printf(b, "%-19s%" PRIu64 "\n", label, n);
	else
		apbm_obuf_printf(b, "%-19s%" PRIu64 " (%s)\n", label, n, apb_format_size(n, h, sizeof(h)));
}

static void num_line(apbm_obuf *b, const char *label, uint64_t n)
{
	apbm_obuf_printf(b, "%-19s%" PRIu64 "\n", label, n);
}

/* Mean of the request latencies in microseconds; 0 before the first request. */
uint64_t apbm_source_mean_us(const apb_source_stats *src)
{
	return src->net_requests ? src->latency_us_sum / src->net_requests : 0;
}

/* Where the stored bytes came from: the file, or the network and the disk tier. */
static void render_source_text(apbm_fs *fs, apbm_obuf *b)
{
	apb_source_stats src;

	apb_paged_source_stats(fs->rgen->pb, &src);
	apbm_obuf_printf(b, "%-19s%s\n", "source:", src.kind ? src.kind : "file");
	size_line(b, "source bytes read:", src.bytes_read);
	num_line(b, "source reads:", src.reads);
	if (!fs->remote)
		return;
	size_line(b, "network bytes:", src.net_bytes);
	num_line(b, "network requests:", src.net_requests);
	num_line(b, "network retries:", src.net_retries);
	num_line(b, "network errors:", src.net_errors);
	apbm_obuf_printf(b, "%-19s%.3f ms\n", "mean latency:", apbm_source_mean_us(&src) / 1000.0);
	size_line(b, "tier bytes:", src.tier_bytes);
	num_line(b, "tier hits:", src.tier_hits);
	num_line(b, "tier misses:", src.tier_misses);
	size_line(b, "tier stored:", src.tier_stored);
	apbm_obuf_printf(b, "%-19s%s\n", "offline:", src.offline ? "yes" : "no");
}

static void render_text(apbm_fs *fs, const apb_paging_stats *st, apbm_obuf *b)
{
	apbm_obuf_printf(b, "%-19s%s\n", "bundle:", fs->bundle_path);
	num_line(b, "generation:", fs->rgen->id);
	num_line(b, "generations open:", apbm_gens_live(fs));
	num_line(b, "reloads:", __atomic_load_n(&fs->reloads, __ATOMIC_RELAXED));
	num_line(b, "reload failures:", __atomic_load_n(&fs->reload_failures, __ATOMIC_RELAXED));
	num_line(b, "models:", apb_paged_model_count(fs->rgen->pb));
	num_line(b, "hidden models:", fs->rgen->tree.n_hidden);
	apbm_obuf_printf(b, "%-19s%s\n", "eviction:", apbm_eviction_name(fs->cfg.eviction));
	num_line(b, "page size:", fs->cfg.page_size);
	size_line(b, "max memory:", fs->cfg.max_memory);
	size_line(b, "memory used:", st->memory_used);
	num_line(b, "cached pages:", st->cached_pages);
	num_line(b, "hits:", st->hits);
	num_line(b, "misses:", st->misses);
	num_line(b, "evictions:", st->evictions);
	apbm_obuf_printf(b, "%-19s%.2f%%\n", "hit rate:", 100.0 * apb_paging_stats_hit_rate(st));
	num_line(b, "prefetches:", st->prefetches);
	num_line(b, "prefetch hits:", st->prefetch_hits);
	num_line(b, "prefetch wasted:", st->prefetch_wasted);
	size_line(b, "readahead window:", st->readahead_window);
	num_line(b, "sequential reads:", st->sequential_reads);
	num_line(b, "readahead seeks:", st->readahead_seeks);
	num_line(b, "readahead shrinks:", st->readahead_shrinks);
	size_line(b, "bytes loaded:", st->bytes_loaded);
	size_line(b, "bytes decoded:", st->bytes_decoded);
	apbm_obuf_printf(b, "%-19s%.3f s\n", "decode time:", (double)st->decode_ns / 1e9);
	num_line(b, "checksum failures:", st->checksum_failures);
	render_source_text(fs, b);
}

int apbm_model_row(apbm_fs *fs, size_t i, apb_model_info *info, apb_model_stats *ms)
{
	*ms = (apb_model_stats){ 0 };
	if (apb_paged_model_info(fs->rgen->pb, i, info) != 0)
		return -EIO;
	apb_paged_model_stats(fs->rgen->pb, i, ms);
	return 0;
}

/* The "models" array, one object per model. */
static int render_models(apbm_fs *fs, apbm_obuf *b)
{
	size_t n = apb_paged_model_count(fs->rgen->pb);

	apbm_obuf_put(b, "[", 1);
	for (size_t i = 0; i < n && !b->failed; i++) {
		apb_model_info info;
		apb_model_stats ms;

		if (apbm_model_row(fs, i, &info, &ms) != 0)
			return -EIO;
		apbm_obuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		apbm_obuf_json_str(b, info.name);
		apbm_obuf_printf(b, ",\"size\":%" PRIu64 ",\"cached_bytes\":%" PRIu64
		                 ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 "}",
		                 info.size, ms.cached_bytes, ms.hits, ms.misses);
	}
	apbm_obuf_put(b, "]", 1);
	return 0;
}

/* ,"source":{...}: the source counters (network and tier ones are 0 for a file). */
static void render_source_json(apbm_fs *fs, apbm_obuf *b)
{
	apb_source_stats src;

	apb_paged_source_stats(fs->rgen->pb, &src);
	apbm_obuf_printf(b, ",\"source\":{\"kind\":\"%s\",\"bytes_read\":%" PRIu64
	                 ",\"reads\":%" PRIu64 ",\"net_bytes\":%" PRIu64 ",\"net_requests\":%" PRIu64
	                 ",\"net_retries\":%" PRIu64 ",\"net_errors\":%" PRIu64
	                 ",\"latency_mean_us\":%" PRIu64 ",\"tier_bytes\":%" PRIu64
	                 ",\"tier_hits\":%" PRIu64 ",\"tier_misses\":%" PRIu64
	                 ",\"tier_stored\":%" PRIu64 ",\"offline\":%s}",
	                 src.kind ? src.kind : "file", src.bytes_read, src.reads, src.net_bytes,
	                 src.net_requests, src.net_retries, src.net_errors,
	                 apbm_source_mean_us(&src), src.tier_bytes, src.tier_hits, src.tier_misses,
	                 src.tier_stored, src.offline ? "true" : "false");
}

static int render_json(apbm_fs *fs, const apb_paging_stats *st, apbm_obuf *b)
{
	apbm_obuf_printf(b, "{\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"evictions\":%" PRIu64
	                 ",\"hit_rate\":%.17g,\"memory_used\":%" PRIu64 ",\"max_memory\":%" PRIu64
	                 ",\"bytes_loaded\":%" PRIu64 ",\"prefetches\":%" PRIu64
	                 ",\"prefetch_hits\":%" PRIu64 ",\"page_size\":%" PRIu32
	                 ",\"eviction\":\"%s\",\"prefetch_wasted\":%" PRIu64
	                 ",\"bytes_decoded\":%" PRIu64 ",\"decode_ns\":%" PRIu64
	                 ",\"readahead_window\":%" PRIu64 ",\"sequential_reads\":%" PRIu64
	                 ",\"readahead_seeks\":%" PRIu64 ",\"readahead_shrinks\":%" PRIu64
	                 ",\"generation\":%" PRIu64 ",\"generations_open\":%" PRIu64
	                 ",\"reloads\":%" PRIu64 ",\"reload_failures\":%" PRIu64 ",\"models\":",
	                 st->hits, st->misses, st->evictions, apb_paging_stats_hit_rate(st),
	                 st->memory_used, fs->cfg.max_memory, st->bytes_loaded, st->prefetches,
	                 st->prefetch_hits, fs->cfg.page_size, apbm_eviction_name(fs->cfg.eviction),
	                 st->prefetch_wasted, st->bytes_decoded, st->decode_ns, st->readahead_window,
	                 st->sequential_reads, st->readahead_seeks, st->readahead_shrinks, fs->rgen->id,
	                 apbm_gens_live(fs), __atomic_load_n(&fs->reloads, __ATOMIC_RELAXED),
	                 __atomic_load_n(&fs->reload_failures, __ATOMIC_RELAXED));
	if (render_models(fs, b) != 0)
		return -EIO;
	render_source_json(fs, b);
	apbm_obuf_put(b, "}\n", 2);
	return 0;
}

int apbm_vfile_render(apbm_fs *fs, int64_t kind, const apb_paging_stats *st, apbm_obuf *out)
{
	int rc = -EINVAL;

	if (kind == APBM_VSTATS) {
		render_text(fs, st, out);
		rc = 0;
	} else if (kind == APBM_VJSON) {
		rc = render_json(fs, st, out);
	} else if (kind == APBM_VMETRICS) {
		rc = apbm_metrics_render(fs, st, out);
	}
	if (rc == 0 && out->failed)
		rc = -ENOMEM;
	return rc;
}
