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
	"model count, total model bytes, file size, alignment, checksum block\n"
	"size, description and creation time (when recorded).\n\n"
	"  -h, --help   show this help and exit\n";

static void print_info(const char *path, const apbi_manifest *m)
{
	char h1[32];
	uint64_t total = cli_total_bytes(m);

	printf("file:           %s\n", cli_esc(path));
	printf("layout:         %s\n", m->layout == APBI_LAYOUT_LEGACY
	       ? "aprender legacy (binary manifest, no checksums)" : "apbundle v1");
	printf("format version: %u\n", m->version);
	printf("models:         %llu\n", (unsigned long long)m->n_models);
	printf("model bytes:    %llu (%s)\n", (unsigned long long)total, cli_human(total, h1));
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
