/*
 * mount_mkbundle.c - builds test bundles for the mount tests with the real builder.
 *
 * usage: mount_mkbundle OUT [-b BLOCK_SIZE] [-G N] [-M NAME]... NAME=FILE...
 * Each NAME=FILE adds FILE as model NAME (in argument order); -G N adds N
 * generated models "dDDD/mNNNNNN" (100 per directory) whose bytes are their
 * own name and a newline, for tests at scale; -M NAME gives
 * model NAME a fixed, known metadata set (version 1.2, architecture
 * transformer, hyperparameters layers=6 heads=8, custom owner=tests) that
 * the xattr tests look for.  Exits 0 or prints one line and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apbundle.h"

static const apb_kv hyper[] = { { "heads", "8" }, { "layers", "6" } };
static const apb_kv custom[] = { { "owner", "tests" } };
static const apb_metadata test_md = {
	.version = "1.2", .architecture = "transformer",
	.hyperparameters = hyper, .n_hyperparameters = 2,
	.custom = custom, .n_custom = 1,
};

/* Adds n models named d<i/100>/m<i>, each holding its name and '\n'. */
static int add_generated(apb_builder *bb, long n)
{
	char name[64], data[64];

	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "d%03ld/m%06ld", i / 100, i);
		int len = snprintf(data, sizeof(data), "%s\n", name);
		int rc = apb_builder_add_model(bb, name, data, (size_t)len);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int die(const char *what, int rc)
{
	fprintf(stderr, "mount_mkbundle: %s: %s\n", what, rc ? apb_last_error() : "bad usage");
	return 1;
}

int main(int argc, char **argv)
{
	apb_builder *bb;
	int opt, rc = 0, n_md = 0;
	const char *md_names[64];

	if (argc < 2)
		return die("usage: mount_mkbundle OUT [-b BLOCK] [-M NAME]... NAME=FILE...", 0);
	bb = apb_builder_new(argv[1]);
	if (!bb)
		return die(argv[1], -1);
	optind = 2;
	while ((opt = getopt(argc, argv, "b:G:M:")) != -1) {
		if (opt == 'G')
			rc = add_generated(bb, strtol(optarg, NULL, 10));
		else if (opt == 'b')
			rc = apb_builder_set_block_size(bb, (uint32_t)strtoul(optarg, NULL, 0));
		else if (opt == 'M' && n_md < 64)
			md_names[n_md++] = optarg;
		else
			rc = -1;
		if (rc != 0)
			goto fail;
	}
	for (int i = optind; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			rc = -1;
			goto fail;
		}
		*eq = '\0';
		rc = apb_builder_add_file(bb, argv[i], eq + 1);
		*eq = '=';
		if (rc != 0)
			goto fail;
	}
	for (int i = 0; i < n_md; i++)
		if ((rc = apb_builder_set_metadata(bb, md_names[i], &test_md)) != 0)
			goto fail;
	if ((rc = apb_builder_build(bb)) != 0)
		goto fail;
	apb_builder_free(bb);
	return 0;
fail:
	apb_builder_free(bb);
	return die(argv[1], rc);
}
