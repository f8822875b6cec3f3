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
 * requires (backslash, double quote, newline).  The source's series
 * (apbundle_source_*; for a URL apbundle_net_*, apbundle_tier_*,
 * apbundle_offline and the request-latency histogram, whose buckets are
 * the library's apb_latency_bound_us) come from apb_paged_source_stats.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
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

/*
 * A histogram from per-bucket counts: bound[i] seconds for i < n (a
 * negative bound is skipped: that bucket is only in +Inf), then +Inf.
 */
static void histogram(apbm_obuf *b, const char *name, const char *help, const uint64_t *counts,
                      const double *bound, unsigned n, uint64_t inf_extra, double sum)
{
	uint64_t cum = 0;

	apbm_obuf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (unsigned i = 0; i < n; i++) {
		cum += counts[i];
		if (bound[i] >= 0)
			apbm_obuf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bound[i], cum);
	}
	cum += inf_extra;
	apbm_obuf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9f\n%s_count %" PRIu64 "\n",
	                 name, cum, name, sum, name, cum);
}

static void read_histogram(apbm_obuf *b, const apbm_metrics *m)
{
	uint64_t counts[APBM_LAT_BUCKETS];
	double bound[APBM_LAT_BUCKETS];

	for (unsigned i = 0; i < APBM_LAT_BUCKETS; i++) {
		counts[i] = load(&m->lat_count[i]);
		bound[i] = (double)apbm_lat_bounds_ns[i] / 1e9;
	}
	histogram(b, "apbundle_fuse_read_duration_seconds", "Time from a model READ request to its reply.",
	          counts, bound, APBM_LAT_BUCKETS, load(&m->lat_count[APBM_LAT_BUCKETS]),
	          (double)load(&m->lat_sum_ns) / 1e9);
}

static void net_histogram(apbm_obuf *b, const apb_source_stats *src)
{
	double bound[APB_LATENCY_BUCKETS];

	for (unsigned i = 0; i < APB_LATENCY_BUCKETS; i++) {
		uint64_t us = apb_latency_bound_us(i);
		bound[i] = us == UINT64_MAX ? -1.0 : (double)us / 1e6;
	}
	histogram(b, "apbundle_net_request_duration_seconds",
	          "Time of one HTTP request to the bundle's server.", src->latency, bound,
	          APB_LATENCY_BUCKETS, 0, (double)src->latency_us_sum / 1e6);
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
	size_t n = apb_paged_model_count(fs->rgen->pb);

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

/* The source's series: the first two for every bundle, the rest only for a URL. */
#define SRC(f) offsetof(apb_source_stats, f)
static const struct {
	const char *name, *type, *help;
	size_t off;
} source_series[] = {
	{ "apbundle_source_bytes_read_total", "counter",
	  "Stored bytes returned by the bundle's source (disk tier included).", SRC(bytes_read) },
	{ "apbundle_source_reads_total", "counter", "Reads from the bundle's source.", SRC(reads) },
	{ "apbundle_net_bytes_total", "counter", "HTTP body bytes received.", SRC(net_bytes) },
	{ "apbundle_net_requests_total", "counter", "HTTP requests, retries included.",
	  SRC(net_requests) },
	{ "apbundle_net_retries_total", "counter", "HTTP requests that were retries.",
	  SRC(net_retries) },
	{ "apbundle_net_errors_total", "counter", "Source reads that failed after every retry.",
	  SRC(net_errors) },
	{ "apbundle_tier_bytes_total", "counter", "Bytes served by the disk tier.", SRC(tier_bytes) },
	{ "apbundle_tier_hits_total", "counter", "Reads served wholly by the disk tier.",
	  SRC(tier_hits) },
	{ "apbundle_tier_misses_total", "counter", "Reads the disk tier could not serve.",
	  SRC(tier_misses) },
	{ "apbundle_tier_commits_total", "counter", "Ranges written to the disk tier.",
	  SRC(tier_commits) },
	{ "apbundle_tier_evictions_total", "counter", "Ranges the disk tier dropped.",
	  SRC(tier_evictions) },
	{ "apbundle_tier_stored_bytes", "gauge", "Bytes the disk tier holds now.", SRC(tier_stored) },
};
#undef SRC

static void source_metrics(apbm_fs *fs, apbm_obuf *b)
{
	size_t n = sizeof(source_series) / sizeof(source_series[0]);
	apb_source_stats s;

	apb_paged_source_stats(fs->rgen->pb, &s);
	for (size_t i = 0; i < (fs->remote ? n : 2); i++) {
		uint64_t v;

		memcpy(&v, (const char *)&s + source_series[i].off, sizeof(v));
		metric(b, source_series[i].name, source_series[i].type, source_series[i].help, v);
	}
	if (!fs->remote)
		return;
	metric(b, "apbundle_offline", "gauge",
	       "1 when opened from the disk tier with the server unreachable.", s.offline);
	net_histogram(b, &s);
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
	metric(b, "apbundle_models", "gauge", "Models in the bundle.", apb_paged_model_count(fs->rgen->pb));
	metric(b, "apbundle_bundle_generation", "gauge",
	       "Generation of the bundle new opens see (1 at mount, +1 per reload).", fs->rgen->id);
	metric(b, "apbundle_generations_open", "gauge",
	       "Bundle generations open: the current one and those with open files.",
	       apbm_gens_live(fs));
	metric(b, "apbundle_reloads_total", "counter", "Reloads that replaced the bundle.",
	       __atomic_load_n(&fs->reloads, __ATOMIC_RELAXED));
	metric(b, "apbundle_reload_failures_total", "counter",
	       "Reloads refused because the new bundle did not open or validate.",
	       __atomic_load_n(&fs->reload_failures, __ATOMIC_RELAXED));
	metric(b, "apbundle_fuse_reads_total", "counter", "Model READ requests answered.",
	       load(&m->reads));
	metric(b, "apbundle_fuse_read_errors_total", "counter",
	       "Model READ requests answered with an error.", load(&m->read_errors));
	metric(b, "apbundle_fuse_read_bytes_total", "counter", "Bytes returned by model reads.",
	       load(&m->read_bytes));
	read_histogram(b, m);
	source_metrics(fs, b);
	apb_paged_source_stats(fs->rgen->pb, &ss);
	load_histogram(b, &ss);
	if (fs->metrics_per_model && per_model(fs, b) != 0)
		return -EIO;
	return b->failed ? -ENOMEM : 0;
}
