/*
 * metrics.c - the daemon's own measurements (see metrics.h) and the
 * .metrics page: Prometheus text exposition format 0.0.4.
 *
 * The page is rendered from one apb_paging_stats snapshot, the same kind
 * of snapshot .stats.json is rendered from, so their numbers agree when
 * taken at the same instant.  Names follow Prometheus conventions:
 * apbundle_ prefix, _total for counters, base units (bytes, seconds).
 * Per-model series (apbundle_model_*{model="NAME"}) only with
 * -o metrics_per_model, so a bundle of 100,000 models does not make
 * 300,000 series by default.  Label values are escaped as the format
 * requires (backslash, double quote, newline).
 */
#include <errno.h>
#include <inttypes.h>
#include <time.h>

#include "mount.h"

const uint64_t apbm_lat_bounds_ns[APBM_LAT_BUCKETS] = {
	10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
	10000000, 25000000, 50000000, 100000000, 250000000, 1000000000, 10000000000ull,
};

uint64_t apbm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void apbm_metrics_read(apbm_metrics *m, uint64_t ns, int64_t bytes)
{
	unsigned b = 0;

	while (b < APBM_LAT_BUCKETS && ns > apbm_lat_bounds_ns[b])
		b++;
	__atomic_add_fetch(&m->lat_count[b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->lat_sum_ns, ns, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->reads, 1, __ATOMIC_RELAXED);
	if (bytes < 0)
		__atomic_add_fetch(&m->read_errors, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&m->read_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
}

static void metric(apbm_obuf *b, const char *name, const char *type, const char *help,
                   uint64_t v)
{
	apbm_obuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name,
	                 type, name, v);
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void read_histogram(apbm_obuf *b, const apbm_metrics *m)
{
	static const char *name = "apbundle_fuse_read_duration_seconds";
	uint64_t cum = 0;

	apbm_obuf_printf(b, "# HELP %s Time from a model READ request to its reply.\n"
	                 "# TYPE %s histogram\n", name, name);
	for (unsigned i = 0; i < APBM_LAT_BUCKETS; i++) {
		cum += load(&m->lat_count[i]);
		apbm_obuf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
		                 (double)apbm_lat_bounds_ns[i] / 1e9, cum);
	}
	cum += load(&m->lat_count[APBM_LAT_BUCKETS]);
	apbm_obuf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9f\n%s_count %" PRIu64 "\n",
	                 name, cum, name, (double)load(&m->lat_sum_ns) / 1e9, name, cum);
}

/* A label value: \\ \" \n escaped. */
static void label_value(apbm_obuf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		if (*s != '\\' && *s != '"' && *s != '\n')
			continue;
		apbm_obuf_put(b, run, (size_t)(s - run));
		apbm_obuf_put(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\", 2);
		run = s + 1;
	}
	apbm_obuf_put(b, run, (size_t)(s - run));
}

static const struct {
	const char *name, *type, *help;
} model_series[3] = {
	{ "apbundle_model_cached_bytes", "gauge", "Cached bytes of the model." },
	{ "apbundle_model_hits_total", "counter", "Page lookups of the model served from the cache." },
	{ "apbundle_model_misses_total", "counter", "Page lookups of the model that loaded the page." },
};

static int per_model(apbm_fs *fs, apbm_obuf *b)
{
	size_t n = apb_paged_model_count(fs->pb);

	for (int k = 0; k < 3; k++) {
		apbm_obuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", model_series[k].name,
		                 model_series[k].help, model_series[k].name, model_series[k].type);
		for (size_t i = 0; i < n && !b->failed; i++) {
			apb_model_info info;
			apb_model_stats ms;
			if (apbm_model_row(fs, i, &info, &ms) != 0)
				return -EIO;
			apbm_obuf_printf(b, "%s{model=\"", model_series[k].name);
			label_value(b, info.name);
			apbm_obuf_printf(b, "\"} %" PRIu64 "\n",
			                 k == 0 ? ms.cached_bytes : k == 1 ? ms.hits : ms.misses);
		}
	}
	return 0;
}

/* The block layer's load latencies (apb_source_stats), a histogram in seconds. */
static void load_histogram(apbm_obuf *b, const apb_source_stats *ss)
{
	static const char *name = "apbundle_block_load_duration_seconds";
	uint64_t cum = 0;

	apbm_obuf_printf(b, "# HELP %s Time to read, verify and decode one run of pages "
	                 "(source %s).\n# TYPE %s histogram\n", name, ss->kind, name);
	for (unsigned i = 0; i + 1 < APB_LATENCY_BUCKETS; i++) {
		cum += ss->load_latency[i];
		apbm_obuf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
		                 (double)apb_latency_bound_us(i) / 1e6, cum);
	}
	cum += ss->load_latency[APB_LATENCY_BUCKETS - 1];
	apbm_obuf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n%s_count %" PRIu64 "\n",
	                 name, cum, name, (double)ss->load_us_sum / 1e6, name, cum);
}

int apbm_metrics_render(apbm_fs *fs, const apb_paging_stats *st, apbm_obuf *b)
{
	apb_source_stats ss;
	const apbm_metrics *m = &fs->metrics;

	metric(b, "apbundle_cache_hits_total", "counter", "Page lookups served from the cache.", st->hits);
	metric(b, "apbundle_cache_misses_total", "counter", "Page lookups that loaded the page.", st->misses);
	metric(b, "apbundle_cache_evictions_total", "counter", "Pages evicted.", st->evictions);
	metric(b, "apbundle_bytes_loaded_total", "counter",
	       "Bytes read from the bundle file (model data and block tables).", st->bytes_loaded);
	metric(b, "apbundle_prefetches_total", "counter", "Pages loaded by prefetch.", st->prefetches);
	metric(b, "apbundle_prefetch_hits_total", "counter",
	       "Prefetched pages later used by a read.", st->prefetch_hits);
	metric(b, "apbundle_prefetch_wasted_total", "counter",
	       "Prefetched pages evicted before any read used them.", st->prefetch_wasted);
	metric(b, "apbundle_decoded_bytes_total", "counter",
	       "Bytes of compressed blocks decoded.", st->bytes_decoded);
	apbm_obuf_printf(b, "# HELP apbundle_decode_seconds_total Time spent decoding compressed "
	                 "blocks.\n# TYPE apbundle_decode_seconds_total counter\n"
	                 "apbundle_decode_seconds_total %.9f\n", (double)st->decode_ns / 1e9);
	metric(b, "apbundle_checksum_failures_total", "counter",
	       "Blocks refused because their checksum did not match.", st->checksum_failures);
	metric(b, "apbundle_memory_used_bytes", "gauge", "Bytes of cached pages now.", st->memory_used);
	metric(b, "apbundle_memory_max_bytes", "gauge", "The cache's budget, max_memory.",
	       fs->cfg.max_memory);
	metric(b, "apbundle_cached_pages", "gauge", "Pages resident now.", st->cached_pages);
	metric(b, "apbundle_models", "gauge", "Models in the bundle.", apb_paged_model_count(fs->pb));
	metric(b, "apbundle_fuse_reads_total", "counter", "Model READ requests answered.",
	       load(&m->reads));
	metric(b, "apbundle_fuse_read_errors_total", "counter",
	       "Model READ requests answered with an error.", load(&m->read_errors));
	metric(b, "apbundle_fuse_read_bytes_total", "counter", "Bytes returned by model reads.",
	       load(&m->read_bytes));
	read_histogram(b, m);
	apb_paged_source_stats(fs->pb, &ss);
	load_histogram(b, &ss);
	if (fs->metrics_per_model && per_model(fs, b) != 0)
		return -EIO;
	return b->failed ? -ENOMEM : 0;
}
