/*
 * main.c - apbundle-shell: command dispatch, options, help and exit codes.
 *
 * Invariants: usage errors print one line plus a hint and exit 2; runtime
 * errors (missing model, bad history, I/O) print one line
 * "apbundle-shell: ..." and exit 1; successful output goes to stdout only.
 * Training writes its segments into a private directory next to the output
 * and removes it whatever happens; the model appears atomically (builder).
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apbundle.h"
#include "shell.h"

#define PROG "apbundle-shell"

static const char main_help[] =
	"usage: " PROG " COMMAND [OPTIONS]\n"
	"Shell-history completion from an n-gram model served by a paged bundle.\n\n"
	"Commands:\n"
	"  train    learn a model from shell history\n"
	"  suggest  print completions of a command-line prefix\n"
	"  stats    print model and page-cache statistics\n\n"
	"Run '" PROG " COMMAND --help' for a command's options.\n"
	"Default model: $APBUNDLE_SHELL_MODEL or ~/.apbundle-shell.apbundle\n";

static const char train_help[] =
	"usage: " PROG " train [--history FILE] [--format bash|zsh|fish|auto]\n"
	"                      [--ngram N] [--memory-limit MB] [-o MODEL]\n"
	"Learns an n-gram model from shell history and writes it as a bundle.\n\n"
	"  --history FILE     history to read (default: the first of ~/.zsh_history,\n"
	"                     ~/.bash_history, ~/.local/share/fish/fish_history)\n"
	"  --format FMT       history format (default auto: detected from the file)\n"
	"  --ngram N          n-gram size, 2..8: contexts of N-1 tokens (default 3)\n"
	"  --memory-limit MB  page-cache budget recorded as the default of suggest\n"
	"                     and stats (default 10)\n"
	"  -o, --output MODEL model to write (default ~/.apbundle-shell.apbundle)\n";

static const char suggest_help[] =
	"usage: " PROG " suggest PREFIX [--memory-limit MB] [-n COUNT] [-m MODEL]\n"
	"Prints up to COUNT completions of PREFIX, best first, as\n"
	"'completion<TAB>score'.  A PREFIX ending in a space gets its next token;\n"
	"otherwise its last token is completed.\n\n"
	"  --memory-limit MB  page-cache budget (default: the value given to train)\n"
	"  -n, --count COUNT  completions to print, 1..1000 (default 5)\n"
	"  -m, --model MODEL  model to read\n";

static const char stats_help[] =
	"usage: " PROG " stats [--memory-limit MB] [-m MODEL]\n"
	"Prints the model's sizes, the page cache's counters and the top commands.\n\n"
	"  --memory-limit MB  page-cache budget (default: the value given to train)\n"
	"  -m, --model MODEL  model to read\n";

typedef struct opts {
	const char *history, *model, *prefix;
	sh_hist_format format;
	unsigned ngram;
	uint64_t limit_mb;
	bool limit_given;
	unsigned long count;
	char model_buf[4096];
} opts;

static int usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG "%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
	return 2;
}

static bool parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static void default_model(opts *o)
{
	const char *env = getenv("APBUNDLE_SHELL_MODEL"), *home = getenv("HOME");

	if (env && *env)
		o->model = env;
	else {
		snprintf(o->model_buf, sizeof o->model_buf, "%s/.apbundle-shell.apbundle",
			 home && *home ? home : ".");
		o->model = o->model_buf;
	}
}

static int parse_format(const char *s, sh_hist_format *f)
{
	static const sh_hist_format all[] = { SH_HIST_AUTO, SH_HIST_BASH, SH_HIST_ZSH, SH_HIST_FISH };

	for (size_t i = 0; i < 4; i++)
		if (strcmp(s, sh_hist_format_name(all[i])) == 0) {
			*f = all[i];
			return 0;
		}
	return -1;
}

/* --memory-limit (L), --ngram (N), -n: returns -1 when valid, else exit status 2. */
static int number_opt(const char *cmd, int c, const char *a, opts *o)
{
	unsigned long v;

	if (c == 'L') {
		if (!parse_ulong(a, 1, 1ul << 20, &v))
			return usage(cmd, "--memory-limit wants a whole number of MiB >= 1, not '%s'", a);
		o->limit_mb = v;
		o->limit_given = true;
	} else if (c == 'N') {
		if (!parse_ulong(a, SH_NGRAM_MIN, SH_NGRAM_MAX, &v))
			return usage(cmd, "--ngram wants a number from 2 to 8, not '%s'", a);
		o->ngram = (unsigned)v;
	} else {
		if (!parse_ulong(a, 1, SH_MAX_COUNT, &v))
			return usage(cmd, "-n wants a number from 1 to 1000, not '%s'", a);
		o->count = v;
	}
	return -1;
}

/* Returns -1 to go on, else an exit status. */
static int parse_opts(const char *cmd, int argc, char **argv, opts *o)
{
	static const struct option lo[] = {
		{ "history", required_argument, NULL, 'H' }, { "format", required_argument, NULL, 'F' },
		{ "ngram", required_argument, NULL, 'N' }, { "memory-limit", required_argument, NULL, 'L' },
		{ "output", required_argument, NULL, 'o' }, { "model", required_argument, NULL, 'm' },
		{ "count", required_argument, NULL, 'n' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	bool train = strcmp(cmd, "train") == 0, suggest = strcmp(cmd, "suggest") == 0;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:m:n:h", lo, NULL)) != -1) {
		const char *a = optarg;
		switch (c) {
		case 'h':
			fputs(train ? train_help : suggest ? suggest_help : stats_help, stdout);
			return 0;
		case 'L':
			if ((rc = number_opt(cmd, c, a, o)) >= 0)
				return rc;
			break;
		case 'H': if (!train) goto bad; o->history = a; break;
		case 'o': if (!train) goto bad; o->model = a; break;
		case 'm': if (train) goto bad; o->model = a; break;
		case 'F':
			if (!train) goto bad;
			if (parse_format(a, &o->format) < 0)
				return usage(cmd, "unknown history format '%s' (bash, zsh, fish, auto)", a);
			break;
		case 'N':
		case 'n':
			if (c == 'N' ? !train : !suggest)
				goto bad;
			if ((rc = number_opt(cmd, c, a, o)) >= 0)
				return rc;
			break;
		case ':':
			return usage(cmd, "option '%s' needs an argument", argv[optind - 1]);
		default:
		bad:
			return usage(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (suggest && argc - optind != 1)
		return usage(cmd, "%s", argc - optind ? "give exactly one PREFIX (quote it)"
					     : "missing PREFIX");
	if (!suggest && argc != optind)
		return usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (suggest)
		o->prefix = argv[optind];
	return -1;
}

static int fail(void)
{
	fprintf(stderr, PROG ": %s\n", sh_errmsg());
	return 1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

static int train_into(const opts *o, FILE *f, const char *hist, const char *work,
		      sh_train_result *res)
{
	int rc = sh_train_dir(f, o->format, hist, o->ngram, o->limit_mb, work, res);

	if (rc == 0)
		rc = sh_store_build(o->model, work, res->models, res->n_models);
	return rc;
}

static int cmd_train(opts *o)
{
	char hist[4096], work[4200], dir[4096];
	sh_train_result res;
	struct timespec t0, t1;
	FILE *f;
	int rc;

	if (o->history)
		snprintf(hist, sizeof hist, "%s", o->history);
	else if (sh_history_default(hist, sizeof hist) < 0)
		return fail();
	if (!(f = fopen(hist, "re"))) {
		sh_err(-errno, "cannot read history %s: %s", hist, strerror(errno));
		return fail();
	}
	snprintf(dir, sizeof dir, "%s", o->model);
	snprintf(work, sizeof work, "%s/.apbundle-shell.XXXXXX", dirname(dir));
	if (!mkdtemp(work)) {
		sh_err(-errno, "cannot create a work directory in %s: %s", dir, strerror(errno));
		fclose(f);
		return fail();
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = train_into(o, f, hist, work, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fclose(f);
	nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (rc == 0) {
		double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		printf("History: %s (%s): %llu entries, %llu secret-looking and %llu unusable dropped\n",
		       hist, sh_hist_format_name(res.format), (unsigned long long)res.hist.entries,
		       (unsigned long long)res.hist.secrets, (unsigned long long)res.invalid);
		printf("Model: %s: %u-gram, %llu commands, %llu tokens, %u segments\n", o->model,
		       res.meta.ngram, (unsigned long long)res.meta.commands,
		       (unsigned long long)res.meta.vocabulary, res.meta.segments);
		printf("Trained in %.3f s (%.0f entries/s)\n", s,
		       s > 0 ? (double)res.hist.entries / s : 0.0);
	}
	sh_train_result_free(&res);
	return rc ? fail() : 0;
}

/* Opens the model and reads its metadata; picks the recorded limit if none given. */
static int open_model(opts *o, apb_paged **pb, sh_source *src, sh_meta *m)
{
	if (!o->limit_given) {
		if (sh_store_open(o->model, 1, pb, src) < 0 || sh_meta_read(src, m) < 0)
			goto fail;
		o->limit_mb = m->memory_limit_mb ? m->memory_limit_mb : SH_DEFAULT_LIMIT_MB;
		apb_paged_close(*pb);
		*pb = NULL;
	}
	if (sh_store_open(o->model, o->limit_mb, pb, src) < 0 || sh_meta_read(src, m) < 0)
		goto fail;
	return 0;
fail:
	apb_paged_close(*pb);
	*pb = NULL;
	return -1;
}

static int cmd_suggest(opts *o)
{
	apb_paged *pb = NULL;
	sh_source src;
	sh_meta m;
	sh_topk top = { .max = o->count };
	size_t base;
	int rc = 1;

	if (open_model(o, &pb, &src, &m) < 0)
		return fail();
	if (!(top.c = malloc(top.max * sizeof *top.c))) {
		sh_err(-ENOMEM, "out of memory");
		goto out;
	}
	if (sh_suggest(&src, &m, o->prefix, &top, &base) < 0)
		goto out;
	for (size_t i = 0; i < top.n; i++) {
		for (size_t j = 0; j < base; j++) {
			char ch = o->prefix[j];
			putchar(ch == '\n' || ch == '\r' || ch == '\t' ? ' ' : ch);
		}
		printf("%s\t%.6f\n", top.c[i].token, top.c[i].score);
	}
	rc = 0;
out:
	free(top.c);
	apb_paged_close(pb);
	return rc ? fail() : 0;
}

static int cmd_stats(opts *o)
{
	apb_paged *pb = NULL;
	sh_source src;
	sh_meta m;
	int rc;

	if (open_model(o, &pb, &src, &m) < 0)
		return fail();
	rc = sh_stats_print(stdout, pb, &src, &m, o->limit_mb);
	apb_paged_close(pb);
	return rc < 0 ? fail() : 0;
}

/* Everything but the final flush of stdout (see main). */
static int run(int argc, char **argv)
{
	opts o = { .format = SH_HIST_AUTO, .ngram = SH_NGRAM_DEFAULT,
		   .limit_mb = SH_DEFAULT_LIMIT_MB, .count = 5 };
	const char *cmd = argc > 1 ? argv[1] : NULL;
	int rc;

	if (!cmd)
		return usage(NULL, "%s", "missing COMMAND");
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(main_help, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf(PROG " %s\n", APB_VERSION_STRING);
		return 0;
	}
	if (strcmp(cmd, "train") && strcmp(cmd, "suggest") && strcmp(cmd, "stats"))
		return usage(NULL, "unknown command '%s'", cmd);
	default_model(&o);
	if ((rc = parse_opts(cmd, argc - 1, argv + 1, &o)) >= 0)
		return rc;
	if (strcmp(cmd, "train") == 0)
		rc = cmd_train(&o);
	else if (strcmp(cmd, "suggest") == 0)
		rc = cmd_suggest(&o);
	else
		rc = cmd_stats(&o);
	return rc;
}

/* Every path, --help and --version included, fails when stdout could not be written. */
int main(int argc, char **argv)
{
	int rc = run(argc, argv);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing output: %s\n", strerror(errno));
		return rc ? rc : 1;
	}
	return rc;
}
