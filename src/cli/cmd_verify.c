/*
 * cmd_verify.c - `apbundle verify BUNDLE`: structure, every block and
 * every model checksum.
 *
 * Invariants: the structure (and the manifest's own checksum, when it has
 * one) is validated by apb_paged_open before any data is read; models are
 * streamed block by block with apb_paged_stream (never loaded whole), every
 * bad block and model is named on stderr and the scan goes on to the end;
 * the exit status is CLI_BAD when anything at all was bad, names that
 * cannot share one tree included, and the summary on stdout is printed
 * only when everything was good.  A manifest without manifest_checksum and
 * block tables without a table_checksum (old writers) are not an error:
 * notes say they are unbound.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char verify_usage[] =
	"Usage: apbundle verify [-q] BUNDLE\n"
	"Check BUNDLE's structure (header, manifest, every range) and then every\n"
	"block checksum and model checksum, reading each model block by block.\n"
	"Every bad model and block is named on stderr, and so are model names that\n"
	"cannot share one directory tree.  Exit status 0 when all is good, 1 when\n"
	"anything is bad.\n\n"
	"  -q, --quiet  print nothing when the bundle is good\n"
	"  -h, --help   show this help and exit\n";

typedef struct verify_totals {
	uint64_t bytes, blocks, bad_models, unverified, unbound;
} verify_totals;

static void verify_models(apb_paged *pb, const char *path, verify_totals *t)
{
	size_t n = apb_paged_model_count(pb);
	apb_model_info info;
	cli_progress prog;

	cli_progress_start(&prog, cli_total_bytes(pb));
	for (size_t i = 0; i < n; i++) {
		cli_stream_result r;

		if (cli_stream_model(pb, path, i, false, NULL, NULL, &prog, &r) != CLI_OK)
			t->bad_models++;
		t->bytes += r.bytes;
		t->blocks += r.blocks;
		if (!r.verified)
			t->unverified++;
		if (apb_paged_model_info(pb, i, &info) == 0 && !info.table_bound)
			t->unbound++;
	}
	cli_progress_end(&prog);
}

/* The notes after OK: what could not be verified or is not bound. */
static void print_notes(const char *path, const apb_bundle_info *bi, const verify_totals *t)
{
	if (t->unverified)
		printf("%s: note: %llu models have no checksums (aprender legacy "
		       "layout): only their structure was checked\n", cli_esc(path),
		       (unsigned long long)t->unverified);
	if (!bi->legacy && !bi->manifest_bound)
		printf("%s: note: manifest: unbound (written by an older apbundle): it has no "
		       "manifest_checksum, so a change to names, metadata or the description "
		       "cannot be detected\n", cli_esc(path));
	if (t->unbound)
		printf("%s: note: %llu models: table not bound (old writer): their block "
		       "tables have no table_checksum; verified here through the model "
		       "checksums, but paged readers and the mount check pages only "
		       "against the tables\n", cli_esc(path), (unsigned long long)t->unbound);
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
	apb_bundle_info bi;
	apb_paged *pb;
	const char *path;
	size_t clashes;
	int c, rc, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'h': fputs(verify_usage, stdout); return CLI_OK;
		default: return cli_getopt_error(c, argv);
		}
	}
	status = cli_open_sole_bundle(argc, argv, &pb);
	path = argv[optind];
	if (status != CLI_OK)
		return status;
	if ((rc = apb_paged_bundle_info(pb, &bi)) < 0) {
		apb_paged_close(pb);
		return cli_lib_error(cli_esc(path), rc);
	}
	clashes = cli_warn_clashes(pb, path);
	verify_models(pb, path, &t);
	if (t.bad_models || clashes) {
		if (t.bad_models)
			cli_msg("%s: FAILED: %llu of %zu model%s bad", cli_esc(path),
			        (unsigned long long)t.bad_models, bi.model_count,
			        bi.model_count == 1 ? "" : "s");
		if (clashes)
			cli_msg("%s: FAILED: %zu model names cannot share one directory tree "
			        "(apbundle create refuses them now)", cli_esc(path), clashes);
		status = CLI_BAD;
	} else if (!quiet) {
		printf("%s: OK: %zu model%s, %llu bytes, %llu block%s verified\n", cli_esc(path),
		       bi.model_count, bi.model_count == 1 ? "" : "s", (unsigned long long)t.bytes,
		       (unsigned long long)t.blocks, t.blocks == 1 ? "" : "s");
		print_notes(path, &bi, &t);
	}
	apb_paged_close(pb);
	return status;
}
