/*
 * cmd_list.c - `apbundle list [--json|--null] BUNDLE`: one line per model.
 *
 * Invariants: the text form prints a header and one line per model in
 * file order, columns aligned in terminal columns (wcwidth), not bytes
 * (NAME SIZE OFFSET CHECKSUM; OFFSET is the absolute byte offset in the
 * file, so `dd skip=OFFSET` finds the model); names are escaped (\\, \"
 * and \xNN), and cat and extract accept a name as printed here.  The JSON
 * form is one array built with json-c, so it is always valid JSON whatever
 * the names contain; --null prints the raw names, each ended by a NUL,
 * for xargs -0.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"

static const char list_usage[] =
	"Usage: apbundle list [--json | --null] BUNDLE\n"
	"List the models of BUNDLE in file order: name, size in bytes, offset of\n"
	"the first byte in the file, and checksum (\"-\" for aprender legacy\n"
	"bundles, which have none).  Names are printed with \\\\, \\\" and \\xNN\n"
	"escapes for backslash, quote and bytes that are not printable; cat and\n"
	"extract accept a name as printed here.\n\n"
	"  -j, --json   print a JSON array of {name, size, offset, checksum,\n"
	"               block_size, codec, filter, stored_size, ratio, metadata}\n"
	"               objects instead (size: bytes served; stored_size: bytes in\n"
	"               the file; ratio: stored_size / size)\n"
	"  -0, --null   print only the names, unescaped, each followed by a NUL\n"
	"               byte (for xargs -0)\n"
	"  -h, --help   show this help and exit\n";

typedef enum { LIST_TEXT, LIST_JSON, LIST_NULL } list_form;

/* "xxh3:" and 16 hex digits, or "-" without a checksum. */
static void sum_text(const apb_model_info *info, char out[22])
{
	if (info->has_checksum)
		snprintf(out, 22, "xxh3:%016llx", (unsigned long long)info->checksum);
	else
		strcpy(out, "-");
}

/* Number of decimal digits of v. */
static size_t digits(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static int print_text(apb_paged *pb)
{
	size_t n = apb_paged_model_count(pb), wname = 4, wsize = 4, woff = 6;
	apb_model_info info;

	for (size_t i = 0; i < n; i++) {
		if (apb_paged_model_info(pb, i, &info) < 0)
			continue;
		size_t w = cli_width(cli_esc(info.name));
		wname = w > wname ? w : wname;
		wsize = digits(info.size) > wsize ? digits(info.size) : wsize;
		woff = digits(info.file_offset) > woff ? digits(info.file_offset) : woff;
	}
	printf("NAME%*s  %*s  %*s  CHECKSUM\n", (int)(wname - 4), "", (int)wsize, "SIZE",
	       (int)woff, "OFFSET");
	for (size_t i = 0; i < n; i++) {
		char *name, sum[22];
		if (apb_paged_model_info(pb, i, &info) < 0 || !(name = cli_esc_dup(info.name))) {
			cli_msg("out of memory");
			return CLI_BAD;
		}
		sum_text(&info, sum);
		printf("%s%*s  %*llu  %*llu  %s\n", name, (int)(wname - cli_width(name)), "",
		       (int)wsize, (unsigned long long)info.size, (int)woff,
		       (unsigned long long)info.file_offset, sum);
		free(name);
	}
	return CLI_OK;
}

static int print_null(apb_paged *pb)
{
	size_t n = apb_paged_model_count(pb);
	apb_model_info info;

	for (size_t i = 0; i < n; i++)
		if (apb_paged_model_info(pb, i, &info) == 0)
			fwrite(info.name, 1, strlen(info.name) + 1, stdout);
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

static json_object *model_object(const apb_model_info *info)
{
	json_object *o = json_object_new_object();
	char sum[22];

	if (!o)
		return NULL;
	sum_text(info, sum);
	json_object_object_add(o, "name", json_object_new_string(info->name));
	json_object_object_add(o, "size", json_object_new_uint64(info->size));
	json_object_object_add(o, "offset", json_object_new_uint64(info->file_offset));
	json_object_object_add(o, "checksum", info->has_checksum ? json_object_new_string(sum) : NULL);
	json_object_object_add(o, "block_size", json_object_new_uint64(info->block_size));
	json_object_object_add(o, "codec", json_object_new_string(apb_codec_name(info->codec)));
	json_object_object_add(o, "filter", json_object_new_string(apb_filter_name(info->filter)));
	json_object_object_add(o, "stored_size", json_object_new_uint64(info->stored_size));
	json_object_object_add(o, "ratio", json_object_new_double(info->size ?
	                       (double)info->stored_size / (double)info->size : 1.0));
	json_object_object_add(o, "metadata", metadata_object(info->metadata));
	return o;
}

static int print_json(apb_paged *pb)
{
	json_object *arr = json_object_new_array();
	size_t n = apb_paged_model_count(pb);
	apb_model_info info;
	const char *text;

	if (!arr)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		json_object *o = apb_paged_model_info(pb, i, &info) < 0 ? NULL : model_object(&info);
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
		{ "null", no_argument, NULL, '0' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	list_form form = LIST_TEXT;
	apb_paged *pb;
	int c, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":j0h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
		case '0':
			if (form != LIST_TEXT && form != (c == 'j' ? LIST_JSON : LIST_NULL))
				return cli_usage_error("--json and --null exclude each other");
			form = c == 'j' ? LIST_JSON : LIST_NULL;
			break;
		case 'h': fputs(list_usage, stdout); return CLI_OK;
		default: return cli_getopt_error(c, argv);
		}
	}
	status = cli_open_sole_bundle(argc, argv, &pb);
	if (status != CLI_OK)
		return status;
	status = form == LIST_JSON ? print_json(pb) : form == LIST_NULL ? print_null(pb)
	                                                                : print_text(pb);
	apb_paged_close(pb);
	return status;
}
