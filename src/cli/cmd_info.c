/*
 * cmd_info.c - `apbundle info BUNDLE`: layout and bundle-wide settings.
 *
 * Invariants: reads only the header and manifest (never model bytes), so
 * it is instant on any bundle size; prints "key: value" lines in a fixed
 * order, optional ones (description, created at) only when present.  It
 * uses verify's words: a model of at most one block has no block table
 * and is checked as one block by its checksum, so "blocks" counts those
 * too and verify's "N blocks verified" matches it.
 */
#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"

static const char info_usage[] =
	"Usage: apbundle info BUNDLE\n"
	"Show BUNDLE's layout (apbundle v1 or aprender legacy), format version,\n"
	"model count, total model bytes, compression (models compressed, the\n"
	"codecs and filters, stored bytes and their ratio to the model bytes),\n"
	"file size, alignment, checksum block size and count, whether the\n"
	"manifest is bound by its checksum, names that cannot share one\n"
	"directory tree, description and creation time (when recorded).\n\n"
	"  -h, --help   show this help and exit\n";

/* "compression:" and "stored bytes:" lines: what is compressed, and how much. */
static void print_compression(apb_paged *pb, uint64_t total)
{
	uint64_t n = 0, stored = 0, by_filter[5] = { 0 };
	size_t count = apb_paged_model_count(pb);
	apb_model_info info;
	char h[32];

	for (size_t i = 0; i < count; i++) {
		if (apb_paged_model_info(pb, i, &info) < 0)
			continue;
		stored += info.stored_size;
		if (info.codec != APB_CODEC_NONE) {
			n++;
			by_filter[info.filter >= 0 && info.filter <= 4 ? info.filter : 0]++;
		}
	}
	if (!n) {
		printf("compression:    none\n");
		return;
	}
	printf("compression:    zstd, %llu of %zu models (filters: none %llu, bytegroup2 %llu, "
	       "bytegroup4 %llu)\n", (unsigned long long)n, count,
	       (unsigned long long)by_filter[0], (unsigned long long)by_filter[2],
	       (unsigned long long)by_filter[4]);
	printf("stored bytes:   %llu (%s), ratio %.4f\n", (unsigned long long)stored,
	       CLI_SIZE(stored, h), total ? (double)stored / (double)total : 1.0);
}

/* Checksum blocks of every model (a model of at most one block counts one). */
static uint64_t total_blocks(apb_paged *pb)
{
	size_t n = apb_paged_model_count(pb);
	apb_model_info info;
	uint64_t t = 0;

	for (size_t i = 0; i < n; i++)
		if (apb_paged_model_info(pb, i, &info) == 0)
			t += info.n_blocks;
	return t;
}

static void print_block_size(const apb_bundle_info *bi, uint64_t blocks)
{
	if (bi->legacy)
		printf("block size:     none (aprender legacy: no checksums)\n");
	else if (bi->block_size)
		printf("block size:     %u\n", bi->block_size);
	else
		printf("block size:     - (every model fits in one checksum block)\n");
	if (!bi->legacy)
		printf("blocks:         %llu\n", (unsigned long long)blocks);
}

static void print_info(const char *path, apb_paged *pb, const apb_bundle_info *bi)
{
	char h1[32];
	uint64_t total = cli_total_bytes(pb);

	printf("file:           %s\n", cli_esc(path));
	if (bi->legacy)
		printf("layout:         aprender legacy (binary manifest, no checksums)\n");
	else
		printf("layout:         apbundle v%u%s\n", bi->format_version,
		       bi->format_version == 2 ? " (compression)" : "");
	printf("format version: %u\n", bi->format_version);
	printf("models:         %zu\n", bi->model_count);
	printf("model bytes:    %llu (%s)\n", (unsigned long long)total, CLI_SIZE(total, h1));
	print_compression(pb, total);
	printf("file size:      %llu (%s)\n", (unsigned long long)bi->file_size,
	       CLI_SIZE(bi->file_size, h1));
	printf("data offset:    %llu\n", (unsigned long long)bi->data_start);
	printf("alignment:      %u\n", bi->alignment);
	print_block_size(bi, total_blocks(pb));
	if (!bi->legacy)
		printf("manifest:       %s\n", bi->manifest_bound ? "bound (manifest_checksum)"
		       : "unbound (written by an older apbundle)");
	if (bi->name_clashes)
		printf("name clashes:   %zu models (see the warnings)\n", bi->name_clashes);
	if (bi->description) {
		printf("description:    ");
		cli_put_name(stdout, bi->description);
		putchar('\n');
	}
	if (bi->has_created_at) {
		time_t t = (time_t)bi->created_at;
		struct tm tm;
		char when[64] = "?";
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("created at:     %s (%lld)\n", when, (long long)bi->created_at);
	}
}

/** `apbundle info`: see info_usage. */
int cli_cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	apb_bundle_info bi;
	apb_paged *pb;
	int c, rc, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(info_usage, stdout);
			return CLI_OK;
		}
		return cli_getopt_error(c, argv);
	}
	status = cli_open_sole_bundle(argc, argv, &pb);
	if (status != CLI_OK)
		return status;
	if ((rc = apb_paged_bundle_info(pb, &bi)) < 0) {
		status = cli_lib_error(cli_esc(argv[optind]), rc);
	} else {
		cli_warn_clashes(pb, argv[optind]);
		print_info(argv[optind], pb, &bi);
	}
	apb_paged_close(pb);
	return status;
}
