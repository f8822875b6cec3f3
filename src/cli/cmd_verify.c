/*
 * cmd_verify.c - `apbundle verify BUNDLE`: structure, every block and
 * every model checksum.
 *
 * Invariants: the structure is validated by apbi_manifest_read before any
 * data is read; models are streamed in chunks (never loaded whole), every
 * bad block and model is named on stderr and the scan goes on to the end;
 * the exit status is CLI_BAD when anything at all was bad, and the summary
 * on stdout is printed only when everything was good.  Block tables without
 * a table_checksum (old writers) are not an error: they are verified here
 * through the model checksum, and a note says they are not bound.
 */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

static const char verify_usage[] =
	"Usage: apbundle verify [-q] BUNDLE\n"
	"Check BUNDLE's structure (header, manifest, every range) and then every\n"
	"block checksum and model checksum, reading each model in chunks.  Every\n"
	"bad model and block is named on stderr.  Exit status 0 when all is good,\n"
	"1 when anything is bad.\n\n"
	"  -q, --quiet  print nothing when the bundle is good\n"
	"  -h, --help   show this help and exit\n";

typedef struct verify_totals {
	uint64_t bytes, blocks, bad_models, unverified, unbound;
} verify_totals;

static void verify_models(int fd, const char *path, const apbi_manifest *m,
                          verify_totals *t)
{
	cli_progress prog;

	cli_progress_start(&prog, cli_total_bytes(m));
	for (uint64_t i = 0; i < m->n_models; i++) {
		cli_stream_result r;

		if (cli_stream_model(fd, path, m, i, false, NULL, NULL, &prog, &r) != CLI_OK)
			t->bad_models++;
		t->bytes += r.bytes;
		t->blocks += r.blocks;
		if (!r.verified)
			t->unverified++;
		if (m->models[i].has_block_table && !m->models[i].has_table_checksum)
			t->unbound++;
	}
	cli_progress_end(&prog);
}

/** `apbundle verify`: see verify_usage. */
int cli_cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	verify_totals t = { 0, 0, 0, 0, 0 };
	bool quiet = false;
	apbi_manifest *m;
	const char *path;
	int c, fd, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'h': fputs(verify_usage, stdout); return CLI_OK;
		default: return cli_getopt_error(c, argv);
		}
	}
	status = cli_open_sole_bundle(argc, argv, &fd, &m);
	path = argv[optind];
	if (status != CLI_OK)
		return status;
	verify_models(fd, path, m, &t);
	if (t.bad_models) {
		cli_msg("%s: FAILED: %llu of %llu models bad", cli_esc(path),
		        (unsigned long long)t.bad_models, (unsigned long long)m->n_models);
		status = CLI_BAD;
	} else if (!quiet) {
		printf("%s: OK: %llu models, %llu bytes, %llu blocks verified\n", cli_esc(path),
		       (unsigned long long)m->n_models, (unsigned long long)t.bytes,
		       (unsigned long long)t.blocks);
		if (t.unverified)
			printf("%s: note: %llu models have no checksums (aprender legacy "
			       "layout): only their structure was checked\n", cli_esc(path),
			       (unsigned long long)t.unverified);
		if (t.unbound)
			printf("%s: note: %llu models: table not bound (old writer): their block "
			       "tables have no table_checksum; verified here through the model "
			       "checksums, but paged readers and the mount check pages only "
			       "against the tables\n", cli_esc(path), (unsigned long long)t.unbound);
	}
	apbi_manifest_free(m);
	close(fd);
	return status;
}
