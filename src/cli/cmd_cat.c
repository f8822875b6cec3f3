/*
 * cmd_cat.c - `apbundle cat BUNDLE NAME`: a model's bytes to stdout.
 *
 * Invariants: every block is verified before any of its bytes is written,
 * so stdout only ever receives good bytes; on the first bad block the
 * output stops (a prefix of the model has been written) and the exit
 * status is CLI_BAD.  Bytes go to fd 1 directly, not through stdio.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char cat_usage[] =
	"Usage: apbundle cat BUNDLE NAME\n"
	"Write the bytes of model NAME to standard output.  Each checksum block is\n"
	"verified before it is written; on a bad block the output stops there and\n"
	"the exit status is 1.  NAME may be given as list prints it (with \\\\,\n"
	"\\\" and \\xNN escapes) when no model has that exact name.\n\n"
	"  -h, --help   show this help and exit\n";

static int stdout_sink(void *ctx, const void *buf, size_t len)
{
	int rc = cli_write_all(STDOUT_FILENO, buf, len);

	(void)ctx;
	if (rc < 0)
		cli_msg("writing to standard output: %s", strerror(-rc));
	return rc;
}

/** `apbundle cat`: see cat_usage. */
int cli_cmd_cat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	cli_stream_result r;
	apb_paged *pb;
	const char *path;
	ssize_t idx;
	int c, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(cat_usage, stdout);
			return CLI_OK;
		}
		return cli_getopt_error(c, argv);
	}
	if (argc - optind < 2)
		return cli_usage_error(optind >= argc ? "missing BUNDLE and NAME" : "missing NAME");
	if (argc - optind > 2)
		return cli_usage_error("too many arguments ('%s'); cat takes one model",
		                       cli_esc(argv[optind + 2]));
	path = argv[optind];
	status = cli_open(path, &pb);
	if (status != CLI_OK)
		return status;
	idx = cli_find(pb, path, argv[optind + 1]);
	status = idx < 0 ? CLI_BAD : cli_stream_model(pb, path, (size_t)idx, true, stdout_sink,
	                                              NULL, NULL, &r);
	apb_paged_close(pb);
	return status;
}
