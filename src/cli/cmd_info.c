/*
 * cmd_info.c - `apbundle info BUNDLE`: layout and bundle-wide settings.
 *
 * Invariants: reads only the header and manifest (never model bytes), so
 * it is instant on any bundle size; prints "key: value" lines in a fixed
 * order, optional ones (description, created at) only when present.
 */
#include <getopt.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char info_usage[] =
	"Usage: apbundle info BUNDLE\n"
	"Show BUNDLE's layout (apbundle v1 or aprender legacy), format version,\n"
	"model count, total model bytes, compression (models compressed, the\n"
	"codecs and filters, stored bytes and their ratio to the model bytes),\n"
	"file size, alignment, checksum block size, description and creation\n"
	"time (when recorded).\n\n"
	"  -h, --help   show this help and exit\n";

/* "compression:" and "stored bytes:" lines: what is compressed, and how much. */
static void print_compression(const apbi_manifest *m, uint64_t total)
{
	uint64_t n = 0, stored = 0, by_filter[5] = { 0 };
	char h[32];

	for (uint64_t i = 0; i < m->n_models; i++) {
		const apbi_model *mod = &m->models[i];
		stored += mod->stored_size;
		if (mod->codec != APBI_CODEC_NONE) {
			n++;
			by_filter[mod->filter]++;
		}
	}
	if (!n) {
		printf("compression:    none\n");
		return;
	}
	printf("compression:    zstd, %llu of %llu models (filters: none %llu, bytegroup2 %llu, "
	       "bytegroup4 %llu)\n", (unsigned long long)n, (unsigned long long)m->n_models,
	       (unsigned long long)by_filter[0], (unsigned long long)by_filter[2],
	       (unsigned long long)by_filter[4]);
	printf("stored bytes:   %llu (%s), ratio %.4f\n", (unsigned long long)stored,
	       cli_human(stored, h), total ? (double)stored / (double)total : 1.0);
}

static void print_info(const char *path, const apbi_manifest *m)
{
	char h1[32];
	uint64_t total = cli_total_bytes(m);

	printf("file:           %s\n", cli_esc(path));
	printf("layout:         %s\n", m->layout == APBI_LAYOUT_LEGACY
	       ? "aprender legacy (binary manifest, no checksums)" : m->version == 2 ? "apbundle v2 (compression)" : "apbundle v1");
	printf("format version: %u\n", m->version);
	printf("models:         %llu\n", (unsigned long long)m->n_models);
	printf("model bytes:    %llu (%s)\n", (unsigned long long)total, cli_human(total, h1));
	print_compression(m, total);
	printf("file size:      %llu (%s)\n", (unsigned long long)m->file_size,
	       cli_human(m->file_size, h1));
	printf("data offset:    %llu\n", (unsigned long long)m->data_start);
	printf("alignment:      %u\n", m->alignment);
	if (m->block_size)
		printf("block size:     %u\n", m->block_size);
	else
		printf("block size:     none (no checksums)\n");
	if (m->description) {
		printf("description:    ");
		cli_put_name(stdout, m->description);
		putchar('\n');
	}
	if (m->has_created_at) {
		time_t t = (time_t)m->created_at;
		struct tm tm;
		char when[64] = "?";
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("created at:     %s (%lld)\n", when, (long long)m->created_at);
	}
}

/** `apbundle info`: see info_usage. */
int cli_cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	apbi_manifest *m;
	int c, fd, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(info_usage, stdout);
			return CLI_OK;
		}
		return cli_getopt_error(c, argv);
	}
	status = cli_open_sole_bundle(argc, argv, &fd, &m);
	if (status != CLI_OK)
		return status;
	print_info(argv[optind], m);
	apbi_manifest_free(m);
	close(fd);
	return CLI_OK;
}
