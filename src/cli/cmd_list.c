/*
 * cmd_list.c - `apbundle list BUNDLE [--json]`: one line per model.
 *
 * Invariants: the text form prints a header and one line per model in
 * file order, columns aligned (NAME SIZE OFFSET CHECKSUM; OFFSET is the
 * absolute byte offset in the file, so `dd skip=OFFSET` finds the model);
 * names are escaped.  The JSON form is one array built with json-c, so it
 * is always valid JSON whatever the names contain.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "internal.h"

static const char list_usage[] =
	"Usage: apbundle list [--json] BUNDLE\n"
	"List the models of BUNDLE in file order: name, size in bytes, offset of\n"
	"the first byte in the file, and checksum (\"-\" for aprender legacy\n"
	"bundles, which have none).\n\n"
	"  -j, --json   print a JSON array of {name, size, offset, checksum,\n"
	"               block_size, codec, filter, stored_size, ratio, metadata}\n"
	"               objects instead (size: bytes served; stored_size: bytes in\n"
	"               the file; ratio: stored_size / size)\n"
	"  -h, --help   show this help and exit\n";

/* Display width of an escaped name: code points, not bytes. */
static size_t width_of(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static int print_text(const apbi_manifest *m)
{
	size_t wname = 4, wsize = 4, woff = 6;
	char num[32];

	for (uint64_t i = 0; i < m->n_models; i++) {
		const apbi_model *mod = &m->models[i];
		size_t w = width_of(cli_esc(mod->name));
		if (w > wname)
			wname = w;
		w = (size_t)snprintf(num, sizeof(num), "%llu", (unsigned long long)mod->size);
		if (w > wsize)
			wsize = w;
		w = (size_t)snprintf(num, sizeof(num), "%llu",
		                     (unsigned long long)(m->data_start + mod->offset));
		if (w > woff)
			woff = w;
	}
	printf("NAME%*s  %*s  %*s  CHECKSUM\n", (int)(wname - 4), "", (int)wsize, "SIZE",
	       (int)woff, "OFFSET");
	for (uint64_t i = 0; i < m->n_models; i++) {
		const apbi_model *mod = &m->models[i];
		const char *name = cli_esc(mod->name);
		char sum[22] = "-";

		if (mod->has_checksum)
			apbi_checksum_format(mod->checksum, sum);
		printf("%s%*s  %*llu  %*llu  %s\n", name, (int)(wname - width_of(name)), "",
		       (int)wsize, (unsigned long long)mod->size, (int)woff,
		       (unsigned long long)(m->data_start + mod->offset), sum);
	}
	return CLI_OK;
}

/* {"k": "v", ...} from a key/value array. */
static json_object *kv_object(const apb_kv *kv, size_t n)
{
	json_object *o = json_object_new_object();

	for (size_t i = 0; o && i < n; i++)
		json_object_object_add(o, kv[i].key, json_object_new_string(kv[i].value));
	return o;
}

static json_object *metadata_object(const apb_metadata *md)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (md->version)
		json_object_object_add(o, "version", json_object_new_string(md->version));
	if (md->architecture)
		json_object_object_add(o, "architecture",
		                       json_object_new_string(md->architecture));
	json_object_object_add(o, "hyperparameters",
	                       kv_object(md->hyperparameters, md->n_hyperparameters));
	json_object_object_add(o, "custom", kv_object(md->custom, md->n_custom));
	return o;
}

static json_object *model_object(const apbi_manifest *m, const apbi_model *mod)
{
	json_object *o = json_object_new_object();
	char sum[22];

	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(mod->name));
	json_object_object_add(o, "size", json_object_new_uint64(mod->size));
	json_object_object_add(o, "offset", json_object_new_uint64(m->data_start + mod->offset));
	if (mod->has_checksum) {
		apbi_checksum_format(mod->checksum, sum);
		json_object_object_add(o, "checksum", json_object_new_string(sum));
	} else {
		json_object_object_add(o, "checksum", NULL);
	}
	json_object_object_add(o, "block_size", json_object_new_uint64(mod->block_size));
	json_object_object_add(o, "codec", json_object_new_string(apbi_codec_name(mod->codec)));
	json_object_object_add(o, "filter", json_object_new_string(apbi_filter_name(mod->filter)));
	json_object_object_add(o, "stored_size", json_object_new_uint64(mod->stored_size));
	json_object_object_add(o, "ratio", json_object_new_double(mod->size ?
	                       (double)mod->stored_size / (double)mod->size : 1.0));
	json_object_object_add(o, "metadata", metadata_object(&mod->md));
	return o;
}

static int print_json(const apbi_manifest *m)
{
	json_object *arr = json_object_new_array();
	const char *text;

	if (!arr)
		goto nomem;
	for (uint64_t i = 0; i < m->n_models; i++) {
		json_object *o = model_object(m, &m->models[i]);
		if (!o || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			goto nomem;
		}
	}
	text = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
	                                      JSON_C_TO_STRING_SPACED |
	                                      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		goto nomem;
	puts(text);
	json_object_put(arr);
	return CLI_OK;
nomem:
	json_object_put(arr);
	cli_msg("out of memory");
	return CLI_BAD;
}

/** `apbundle list`: see list_usage. */
int cli_cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	apbi_manifest *m;
	int c, fd, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(list_usage, stdout); return CLI_OK;
		default: return cli_getopt_error(c, argv);
		}
	}
	status = cli_open_sole_bundle(argc, argv, &fd, &m);
	if (status != CLI_OK)
		return status;
	status = json ? print_json(m) : print_text(m);
	apbi_manifest_free(m);
	close(fd);
	return status;
}
