/*
 * cmd_simulate.c - `apbundle simulate TRACE`: replays a page-lookup trace
 * (recorded with apbundle-mount -o trace=FILE, or written by hand) through
 * every eviction policy and Belady's optimal bound, with the library's
 * apb_simulate_* functions, and prints each hit ratio.
 *
 * Invariants: the trace is parsed once and only read afterwards; --json
 * prints exactly one JSON object and nothing else on stdout; every error
 * goes to stderr with exit status 1 (bad trace) or 2 (bad command line).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char simulate_usage[] =
	"Usage: apbundle simulate TRACE [--max-memory SIZE | --pages N] [--page-size SIZE]\n"
	"                         [--policies LIST] [--json]\n"
	"Replay the page lookups of TRACE (apbundle-mount -o trace=FILE writes one)\n"
	"through each eviction policy and Belady's optimal offline bound, with the\n"
	"cache's accounting, and print each hit ratio and its fraction of Belady's.\n\n"
	"  -m, --max-memory SIZE   cache budget (default 100M; K/M/G = KiB/MiB/GiB)\n"
	"  -n, --pages N           budget in pages instead (N * page size)\n"
	"  -p, --page-size SIZE    page size when the trace does not say (default 64K)\n"
	"  -P, --policies LIST     comma-separated policies (default: all of them)\n"
	"  -j, --json              print one JSON object\n"
	"  -h, --help              show this help and exit\n";

typedef struct sim_opts {
	uint64_t max_memory, pages, page_size;
	bool have_memory, json;
	bool use[APB_EVICT_COUNT];
	const char *trace;
} sim_opts;

/* Marks the policies of a comma-separated list; CLI_OK or CLI_USAGE. */
static int parse_policies(const char *list, sim_opts *o)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int r = CLI_OK;
	if (!copy)
		return cli_usage_error("out of memory");
	memset(o->use, 0, sizeof o->use);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		apb_eviction e;
		if (apb_eviction_parse(tok, &e) < 0) {
			r = cli_usage_error("--policies: %s", apb_last_error());
			break;
		}
		o->use[e] = true;
	}
	free(copy);
	if (r == CLI_OK && !memchr(o->use, true, sizeof o->use))
		r = cli_usage_error("--policies: no policy named");
	return r;
}

static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end || v == 0 || v > (1ull << 40))
		return -1;
	*out = v;
	return 0;
}

/* Parses the options into o; returns CLI_OK, CLI_USAGE or -1 for --help. */
static int parse_sim_opts(int argc, char **argv, sim_opts *o)
{
	static const struct option opts[] = {
		{ "max-memory", required_argument, NULL, 'm' },
		{ "pages", required_argument, NULL, 'n' },
		{ "page-size", required_argument, NULL, 'p' },
		{ "policies", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:n:p:P:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (cli_parse_size("--max-memory", optarg, &o->max_memory))
				return CLI_USAGE;
			if (!o->max_memory)
				return cli_usage_error("--max-memory: must be more than 0");
			o->have_memory = true;
			break;
		case 'n':
			if (parse_count(optarg, &o->pages))
				return cli_usage_error("--pages: '%s' is not a count from 1 to 2^40",
				                       cli_esc(optarg));
			break;
		case 'p':
			if (cli_parse_size("--page-size", optarg, &o->page_size))
				return CLI_USAGE;
			if (o->page_size < 512 || o->page_size > (1u << 30) ||
			    (o->page_size & (o->page_size - 1)))
				return cli_usage_error("--page-size: %s is not a power of two "
				                       "between 512 and 1G", cli_esc(optarg));
			break;
		case 'P':
			if (parse_policies(optarg, o) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'j': o->json = true; break;
		case 'h': return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (o->have_memory && o->pages)
		return cli_usage_error("--max-memory and --pages exclude each other");
	if (optind + 1 != argc)
		return cli_usage_error(optind == argc ? "missing TRACE" : "one TRACE only");
	o->trace = argv[optind];
	return CLI_OK;
}

static double ratio(const apb_sim_result *r)
{
	return r->accesses ? (double)r->hits / (double)r->accesses : 0.0;
}

static void print_json(const sim_opts *o, const apb_sim_result *res, const apb_sim_result *bel)
{
	apb_paging_config def;
	bool first = true;
	apb_paging_config_init(&def);
	printf("{\"accesses\": %llu, \"capacity_pages\": %llu, \"default\": \"%s\", \"policies\": {",
	       (unsigned long long)bel->accesses, (unsigned long long)bel->capacity_pages,
	       apb_eviction_name(def.eviction));
	for (int i = 0; i < APB_EVICT_COUNT; i++) {
		if (!o->use[i])
			continue;
		printf("%s\"%s\": %.6f", first ? "" : ", ", apb_eviction_name((apb_eviction)i),
		       ratio(&res[i]));
		first = false;
	}
	printf("}, \"belady\": %.6f}\n", ratio(bel));
}

static void print_table(const sim_opts *o, const apb_sim_result *res, const apb_sim_result *bel,
                        uint32_t page_size, uint64_t budget)
{
	apb_paging_config def;
	double b = ratio(bel);
	char h[32];
	apb_paging_config_init(&def);
	printf("trace:    %s: %llu lookups\n", o->trace, (unsigned long long)bel->accesses);
	printf("budget:   %s = %llu pages of %u bytes\n", CLI_SIZE(budget, h),
	       (unsigned long long)bel->capacity_pages, page_size);
	printf("%-10s %9s %10s\n", "policy", "hit ratio", "of Belady");
	for (int i = 0; i < APB_EVICT_COUNT; i++) {
		if (!o->use[i])
			continue;
		printf("%-10s %8.2f%% %9.1f%%%s\n", apb_eviction_name((apb_eviction)i),
		       ratio(&res[i]) * 100.0, b > 0 ? ratio(&res[i]) / b * 100.0 : 0.0,
		       def.eviction == (apb_eviction)i ? "  (default)" : "");
	}
	printf("%-10s %8.2f%% %9.1f%%\n", "belady", b * 100.0, b > 0 ? 100.0 : 0.0);
}

/** `apbundle simulate TRACE [options]`. */
int cli_cmd_simulate(int argc, char **argv)
{
	sim_opts o = { .max_memory = APB_DEFAULT_MAX_MEMORY };
	apb_sim_result res[APB_EVICT_COUNT] = { 0 }, bel;
	apb_sim_trace *t;
	uint32_t ps;
	int r;
	memset(o.use, true, sizeof o.use);
	r = parse_sim_opts(argc, argv, &o);
	if (r < 0) {
		fputs(simulate_usage, stdout);
		return CLI_OK;
	}
	if (r != CLI_OK)
		return r;
	if ((r = apb_simulate_load(o.trace, &t)) < 0)
		return cli_lib_error(cli_esc(o.trace), r);
	ps = apb_simulate_page_size(t);
	if (o.page_size && ps && o.page_size != ps) {
		apb_simulate_free(t);
		return cli_usage_error("--page-size: the trace was recorded with pages of %u bytes", ps);
	}
	ps = ps ? ps : o.page_size ? (uint32_t)o.page_size : APB_DEFAULT_PAGE_SIZE;
	if (o.pages)
		o.max_memory = o.pages * ps;
	for (int i = 0; i < APB_EVICT_COUNT && r >= 0; i++)
		if (o.use[i])
			r = apb_simulate_policy(t, (apb_eviction)i, o.max_memory, ps, &res[i]);
	if (r >= 0)
		r = apb_simulate_belady(t, o.max_memory, ps, &bel);
	apb_simulate_free(t);
	if (r < 0)
		return cli_lib_error(cli_esc(o.trace), r);
	if (o.json)
		print_json(&o, res, &bel);
	else
		print_table(&o, res, &bel, ps, o.max_memory);
	return CLI_OK;
}
