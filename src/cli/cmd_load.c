/*
 * cmd_load.c - `apbundle load BUNDLE [options] NAME...`: read models fully
 * through the paging cache and print its statistics.
 *
 * Invariants: uses only the public PagedBundle API; each named model is
 * read start to end in the order given (repeats allowed, to replay an
 * access pattern) with apb_paged_read_index in chunks, so models larger
 * than the budget stream fine; pages are verified by the library and the
 * whole-model XXH3 is checked here as well.  A model that fails does not
 * stop the others; the statistics are printed in every case once the
 * bundle is open.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "cli.h"

#define LOAD_CHUNK (1u << 20)

static const char load_usage[] =
	"Usage: apbundle load [OPTION]... BUNDLE NAME...\n"
	"Read each model NAME fully, in the order given (names may repeat), through\n"
	"the paging cache, verify it, and print the cache statistics: hits,\n"
	"misses, evictions, hit rate, memory used, bytes loaded, prefetches.\n\n"
	"  -m, --max-memory SIZE     cache budget (default 100M; K/M/G = KiB/MiB/GiB)\n"
	"  -p, --page-size SIZE      page size, a power of two >= 512 (default 64K)\n"
	"  -e, --eviction %s\n"
	"                            eviction policy (default %s; apbundle-mount\n"
	"                            -o eviction=help says when to pick each)\n"
	"      --no-prefetch         disable readahead and next-model prefetch\n"
	"  -n, --prefetch-count N    next-likely models to prefetch (default 2)\n"
	"  -q, --quiet               print only the statistics\n"
	"  -h, --help                show this help and exit\n";

/* Prints the help, with the policy names from the library's one table. */
static void print_usage(void)
{
	apb_paging_config d;
	char names[256] = "";
	apb_paging_config_init(&d);
	for (int e = 0; e < APB_EVICT_COUNT; e++)
		snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", e ? "|" : "",
		         apb_eviction_name((apb_eviction)e));
	printf(load_usage, names, apb_eviction_name(d.eviction));
}

enum { OPT_NO_PREFETCH = 256 };

typedef struct load_opts {
	apb_paging_config cfg;
	bool quiet;
} load_opts;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads model name fully; prints one line; returns an exit status. */
static int load_one(apb_paged *pb, const char *bundle, const char *name, uint8_t *buf,
                    bool quiet)
{
	ssize_t idx = apb_paged_find(pb, name), n = 0;
	apb_model_info info;
	XXH3_state_t *st;
	uint64_t off = 0, digest;
	double t0 = mono(), dt;
	char h[32];

	if (idx < 0 || apb_paged_model_info(pb, (size_t)idx, &info) < 0) {
		cli_msg("%s: no model named \"%s\"", cli_esc(bundle), cli_esc(name));
		return CLI_BAD;
	}
	st = XXH3_createState();
	if (!st)
		return cli_msg("out of memory"), CLI_BAD;
	XXH3_64bits_reset(st);
	while (off < info.size &&
	       (n = apb_paged_read_index(pb, (size_t)idx, buf, LOAD_CHUNK, off)) > 0) {
		XXH3_64bits_update(st, buf, (size_t)n);
		off += (uint64_t)n;
	}
	digest = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	if (n < 0 || off != info.size) {
		char what[1100];
		snprintf(what, sizeof(what), "%s: model \"%s\" at byte %llu", cli_esc(bundle),
		         cli_esc(name), (unsigned long long)off);
		return cli_lib_error(what, n < 0 ? (int)n : -EIO);
	}
	if (info.has_checksum && digest != info.checksum) {
		cli_msg("%s: model \"%s\": checksum mismatch", cli_esc(bundle), cli_esc(name));
		return CLI_BAD;
	}
	dt = mono() - t0;
	if (!quiet)
		printf("loaded \"%s\": %llu bytes (%s) in %.3f s, %s\n", cli_esc(name),
		       (unsigned long long)info.size, CLI_SIZE(info.size, h), dt,
		       info.has_checksum ? "verified" : "no checksum (legacy)");
	return CLI_OK;
}

static void print_stats(apb_paged *pb)
{
	apb_paging_stats s;
	apb_paging_config cfg;
	char h1[32], h2[32];

	apb_paged_stats(pb, &s);
	apb_paged_config(pb, &cfg);
	printf("eviction:       %s\n", apb_eviction_name(cfg.eviction));
	printf("page size:      %u\n", cfg.page_size);
	printf("hits:           %llu\n", (unsigned long long)s.hits);
	printf("misses:         %llu\n", (unsigned long long)s.misses);
	printf("evictions:      %llu\n", (unsigned long long)s.evictions);
	printf("hit rate:       %.1f%%\n", apb_paging_stats_hit_rate(&s) * 100.0);
	printf("memory used:    %llu (%s of %s)\n", (unsigned long long)s.memory_used,
	       CLI_SIZE(s.memory_used, h1), CLI_SIZE(cfg.max_memory, h2));
	printf("cached pages:   %llu\n", (unsigned long long)s.cached_pages);
	printf("bytes loaded:   %llu (%s)\n", (unsigned long long)s.bytes_loaded,
	       CLI_SIZE(s.bytes_loaded, h1));
	printf("prefetches:     %llu (%llu used)\n", (unsigned long long)s.prefetches,
	       (unsigned long long)s.prefetch_hits);
	printf("checksum failures: %llu\n", (unsigned long long)s.checksum_failures);
}

/* Parses the options into o; returns CLI_OK, CLI_USAGE or -1 for --help. */
static int parse_load_opts(int argc, char **argv, load_opts *o)
{
	static const struct option opts[] = {
		{ "max-memory", required_argument, NULL, 'm' },
		{ "page-size", required_argument, NULL, 'p' },
		{ "eviction", required_argument, NULL, 'e' },
		{ "no-prefetch", no_argument, NULL, OPT_NO_PREFETCH },
		{ "prefetch-count", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:p:e:n:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (cli_parse_size("--max-memory", optarg, &o->cfg.max_memory))
				return CLI_USAGE;
			if (o->cfg.max_memory == 0)
				return cli_usage_error("--max-memory: must be more than 0");
			break;
		case 'p':
			if (cli_parse_size("--page-size", optarg, &v))
				return CLI_USAGE;
			if (v < 512 || v > (1u << 30) || (v & (v - 1)))
				return cli_usage_error("--page-size: %s is not a power of two "
				                       "between 512 and 1G", cli_esc(optarg));
			o->cfg.page_size = (uint32_t)v;
			break;
		case 'e':
			if (apb_eviction_parse(optarg, &o->cfg.eviction) < 0)
				return cli_usage_error("--eviction: %s", apb_last_error());
			break;
		case OPT_NO_PREFETCH: o->cfg.prefetch = false; break;
		case 'n': {
			char *end;
			unsigned long long n;
			errno = 0;
			n = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end || errno || n > 1024)
				return cli_usage_error("--prefetch-count: '%s' is not a number "
				                       "from 0 to 1024", cli_esc(optarg));
			o->cfg.prefetch_count = (uint32_t)n;
			break;
		}
		case 'q': o->quiet = true; break;
		case 'h': print_usage(); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	return CLI_OK;
}

/** `apbundle load`: see load_usage. */
int cli_cmd_load(int argc, char **argv)
{
	load_opts o;
	apb_paged *pb = NULL;
	const char *bundle;
	uint8_t *buf;
	int rc, status = CLI_OK;

	memset(&o, 0, sizeof(o));
	apb_paging_config_init(&o.cfg);
	rc = parse_load_opts(argc, argv, &o);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	if (argc - optind < 2)
		return cli_usage_error(optind >= argc ? "missing BUNDLE and NAME"
		                                      : "missing NAME (which models to load)");
	bundle = argv[optind];
	rc = apb_paged_open(bundle, &o.cfg, &pb);
	if (rc < 0)
		return cli_lib_error(cli_esc(bundle), rc);
	buf = malloc(LOAD_CHUNK);
	if (!buf) {
		apb_paged_close(pb);
		cli_msg("out of memory");
		return CLI_BAD;
	}
	for (int k = optind + 1; k < argc; k++)
		if (load_one(pb, bundle, argv[k], buf, o.quiet) != CLI_OK)
			status = CLI_BAD;
	print_stats(pb);
	free(buf);
	apb_paged_close(pb);
	return status;
}
