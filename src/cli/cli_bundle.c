/*
 * cli_bundle.c - how the apbundle subcommands read bundles: open through
 * the public paged API, find models by name (as given or as list printed
 * it), stream a model's verified bytes, warn about names that cannot
 * share a tree.
 *
 * Invariants: only include/apbundle.h is used, never src/lib; every
 * bundle is opened by cli_open, so every command refuses a FIFO, device or
 * directory at once (the library's file source opens without blocking);
 * cli_stream_model hands a byte to its sink only after apb_paged_stream
 * verified the block holding it, and names every bad block from
 * apb_last_block_error-style records without reading anything again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_BAD_REPORTS 10       /* bad blocks printed per model */
#define MAX_CLASH_REPORTS 10     /* clashing names printed per bundle */

/** Opens a bundle for reading with a small budget and no prefetch. */
int cli_open(const char *path, apb_paged **pb)
{
	apb_paging_config cfg;
	int rc;

	apb_paging_config_init(&cfg);
	cfg.max_memory = CLI_MAX_MEMORY;
	cfg.prefetch = false;
	*pb = NULL;
	rc = apb_paged_open(path, &cfg, pb);
	if (rc == -EINVAL && strstr(apb_last_error(), "cannot hold one load")) {
		/* blocks over 4 MiB (create -b): streaming never caches them, but
		 * the open wants a budget of one block; 1 GiB is the largest */
		cfg.max_memory = 1u << 30;
		rc = apb_paged_open(path, &cfg, pb);
	}
	if (rc < 0) {
		*pb = NULL;
		return cli_lib_error(cli_esc(path), rc);
	}
	return CLI_OK;
}

int cli_open_sole_bundle(int argc, char **argv, apb_paged **pb)
{
	extern int optind;

	if (optind >= argc)
		return cli_usage_error("missing BUNDLE");
	if (argc - optind > 1)
		return cli_usage_error("too many arguments ('%s')", cli_esc(argv[optind + 1]));
	return cli_open(argv[optind], pb);
}

/** Finds name as given, else as list escaped it. */
ssize_t cli_find(apb_paged *pb, const char *bundle, const char *name)
{
	ssize_t idx = apb_paged_find(pb, name);
	char *raw;

	if (idx < 0 && (raw = cli_unesc(name)) != NULL) {
		idx = apb_paged_find(pb, raw);
		free(raw);
	}
	if (idx < 0)
		cli_msg("%s: no model named \"%s\"", cli_esc(bundle), cli_esc(name));
	return idx < 0 ? -1 : idx;
}

/** Sum of the sizes of all models. */
uint64_t cli_total_bytes(apb_paged *pb)
{
	size_t n = apb_paged_model_count(pb);
	apb_model_info info;
	uint64_t t = 0;

	for (size_t i = 0; i < n; i++)
		if (apb_paged_model_info(pb, i, &info) == 0)
			t += info.size;
	return t;
}

/* What a clash flag means, for messages. */
static const char *clash_text(uint32_t c)
{
	if (c & APB_CLASH_RESERVED)
		return "its first component is a name apbundle-mount reserves at its root "
		       "(.stats, .stats.json, .metrics, .control); the mount hides it";
	if (c & APB_CLASH_DIR)
		return "it is also the directory of other models; extract and the mount "
		       "cannot show both";
	return "a directory on its path is also a model; extract and the mount cannot "
	       "show both";
}

/** Warns about every model whose name cannot share a tree; returns their count. */
size_t cli_warn_clashes(apb_paged *pb, const char *bundle)
{
	size_t n = apb_paged_model_count(pb), seen = 0;
	apb_model_info info;

	for (size_t i = 0; i < n; i++) {
		if (apb_paged_model_info(pb, i, &info) < 0 || !info.name_clash)
			continue;
		if (++seen <= MAX_CLASH_REPORTS)
			cli_msg("%s: warning: model \"%s\": %s", cli_esc(bundle), cli_esc(info.name),
			        clash_text(info.name_clash));
	}
	if (seen > MAX_CLASH_REPORTS)
		cli_msg("%s: warning: %zu more models with such names not shown", cli_esc(bundle),
		        seen - MAX_CLASH_REPORTS);
	return seen;
}

/* One model being streamed. */
typedef struct stream {
	const char *bundle;
	apb_model_info info;
	bool stop_on_bad;
	cli_sink_fn sink;
	void *ctx;
	cli_progress *prog;
	uint64_t done;            /* progress reported so far */
	uint64_t reported;        /* bad blocks and tables seen */
	uint64_t stop_at;         /* stop_on_bad: offset of the first bad block */
	cli_stream_result *res;
} stream;

#define STREAM_STOP 1             /* on_data's value past the first bad block */

static int on_data(void *ctx, uint64_t offset, const void *buf, size_t len)
{
	stream *s = ctx;

	if (offset >= s->stop_at)
		return STREAM_STOP;
	if (s->sink && s->sink(s->ctx, buf, len) < 0) {
		s->res->sink_failed = true;
		return -EIO;
	}
	return 0;
}

/* Prints one verification failure of the model s streams. */
static void report(stream *s, const apb_block_error *e)
{
	const char *why = e->code == APB_E_CHECKSUM ? "checksum mismatch" : apb_strerror(e->code);

	if (++s->reported > MAX_BAD_REPORTS)
		return;
	if (e->where == APB_WHERE_BLOCK)
		cli_msg("%s: model \"%s\": block %llu (bytes %llu-%llu): %s", cli_esc(s->bundle),
		        cli_esc(s->info.name), (unsigned long long)e->block,
		        (unsigned long long)e->offset,
		        (unsigned long long)(e->offset + (e->length ? e->length - 1 : 0)), why);
	else
		cli_msg("%s: model \"%s\": %s: %s", cli_esc(s->bundle), cli_esc(s->info.name),
		        e->where == APB_WHERE_TABLE ? "block table" :
		        "model checksum (every block good)", why);
}

/*
 * With stop_on_bad only the first bad block is reported, and the stream
 * goes on only to deliver the good blocks before it (the library checks a
 * whole chunk before handing out its good blocks); on_data stops it there.
 */
static int on_bad(void *ctx, const apb_block_error *e)
{
	stream *s = ctx;

	if (s->stop_on_bad && s->stop_at != UINT64_MAX)
		return 0;
	report(s, e);
	if (!s->stop_on_bad)
		return 0;
	if (e->where != APB_WHERE_BLOCK)
		return e->code;
	s->stop_at = e->offset;
	return 0;
}

static int on_progress(void *ctx, uint64_t done, uint64_t total)
{
	stream *s = ctx;

	(void)total;
	cli_progress_add(s->prog, done - s->done);
	s->done = done;
	return 0;
}

/* Reports what the stream returned when no callback said it already. */
static void stream_failed(stream *s, int rc)
{
	apb_block_error e;
	char what[1200];

	if (s->res->sink_failed)
		return;
	if (s->reported == 0 && apb_last_block_error(&e)) {
		report(s, &e);
		return;
	}
	if (s->reported)
		return;
	snprintf(what, sizeof(what), "%s: model \"%s\"", cli_esc(s->bundle), cli_esc(s->info.name));
	cli_lib_error(what, rc);
}

/** Streams model i in verified pieces to sink; see cli.h. */
int cli_stream_model(apb_paged *pb, const char *bundle, size_t i, bool stop_on_bad,
                     cli_sink_fn sink, void *ctx, cli_progress *prog, cli_stream_result *res)
{
	static const apb_stream_ops ops = { on_data, on_bad, on_progress };
	stream s = { bundle, { 0 }, stop_on_bad, sink, ctx, prog, 0, 0, UINT64_MAX, res };
	apb_stream_result r = { 0, 0, 0, false };
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = apb_paged_model_info(pb, i, &s.info)) < 0)
		return cli_lib_error(cli_esc(bundle), rc);
	rc = apb_paged_stream(pb, i, &ops, &s, &r);
	cli_progress_add(prog, s.info.size > s.done ? s.info.size - s.done : 0);
	res->bytes = r.bytes;
	res->blocks = r.blocks;
	res->bad_blocks = r.bad_blocks;
	res->verified = r.verified;
	if (rc == 0)
		return CLI_OK;
	stream_failed(&s, rc);
	if (s.reported > MAX_BAD_REPORTS)
		cli_msg("%s: model \"%s\": %llu more bad blocks not shown", cli_esc(bundle),
		        cli_esc(s.info.name), (unsigned long long)(s.reported - MAX_BAD_REPORTS));
	return CLI_BAD;
}
