/*
 * cmd_create.c - `apbundle create OUT NAME=PATH|DIR...`: build a bundle
 * with the streaming builder.
 *
 * Invariants:
 *  - Every source is checked (names, duplicates, readable regular files,
 *    metadata files) before anything is written; all problems are reported,
 *    each naming the model or file, then create fails without touching OUT.
 *  - A DIR contributes every regular file below it, its path relative to
 *    DIR as the name, sorted bytewise.  Symlinks to regular files are
 *    followed (the model holds the target's bytes under the link's name);
 *    anything else (symlinks to directories, dangling symlinks, FIFOs,
 *    sockets, devices, OUT itself) is skipped with a warning naming it:
 *    nothing is skipped silently.  An unreadable directory is an error.
 *  - The builder writes "<OUT>.tmp.XXXXXX", holding flock(LOCK_EX) on it,
 *    and renames it over OUT.  SIGINT, SIGTERM and SIGHUP only set the
 *    builder's cancel flag; the builder stops at its next chunk, removes
 *    the temporary file and fails with -ECANCELED, and create then dies of
 *    the same signal (status 128 + signo).  OUT is untouched, or, when the
 *    signal came after the rename (the commit point), the complete bundle.
 *  - After a SIGKILL or power loss a "<OUT>.tmp.XXXXXX" file may remain.
 *    Each create of OUT first removes such files (exactly 6 characters of
 *    [A-Za-z0-9] after ".tmp.") that are regular, owned by the caller's
 *    user and whose flock(LOCK_EX | LOCK_NB) succeeds: a live builder holds
 *    that lock for the file's whole life and the kernel drops it when the
 *    builder dies, so a free lock means a dead writer.  Each removal is
 *    reported.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char create_usage[] =
	"Usage: apbundle create [OPTION]... OUT NAME=PATH...\n"
	"       apbundle create [OPTION]... OUT DIR...\n"
	"Build the bundle OUT from files: each NAME=PATH adds the file PATH as model\n"
	"NAME (split at the first '='); each DIR adds every regular file below it,\n"
	"named by its path relative to DIR, in bytewise order (symlinks to files\n"
	"are followed; other special files are skipped with a warning).  OUT is\n"
	"written atomically: on any failure or interruption it is left untouched.\n\n"
	"  -a, --align N              data alignment, a power of two (default 4096;\n"
	"                             16 with --compress)\n"
	"  -b, --block-size N         checksum block size, a power of two >= 512\n"
	"                             (default 64K)\n"
	"  -z, --compress zstd[:LEVEL]  compress every model, block by block, with\n"
	"                             zstd at LEVEL 1-19 (default 3); makes the\n"
	"                             bundle format version 2 and the default\n"
	"                             alignment 16.  `none`: off\n"
	"      --filter F             byte filter before zstd: auto (default: picked\n"
	"                             per model from a few blocks), none, bytegroup2\n"
	"                             (16-bit weights), bytegroup4 (32-bit weights)\n"
	"  -d, --description TEXT     bundle description\n"
	"  -m, --metadata NAME=FILE   attach FILE's JSON object {\"version\",\n"
	"                             \"architecture\", \"hyperparameters\": {},\n"
	"                             \"custom\": {}} to model NAME (repeatable)\n"
	"  -t, --timestamp            record created_at (SOURCE_DATE_EPOCH or now)\n"
	"  -v, --verbose              print each model added\n"
	"  -h, --help                 show this help and exit\n"
	"Sizes accept K, M, G suffixes (KiB, MiB, GiB).\n";

typedef struct md_spec {
	const char *name;         /* model */
	cli_metadata meta;        /* parsed FILE.json */
} md_spec;

typedef struct source {
	char *name;
	char *path;
	bool from_arg;            /* NAME=PATH on the command line */
} source;

typedef struct create_ctx {
	apb_builder *bb;
	const char *out;
	const char *align, *block, *description;   /* option values */
	const char *compress, *filter;
	bool timestamp;
	bool verbose;
	source *src;
	size_t n_src, cap_src;
	md_spec *md;
	size_t n_md;
	struct stat out_st;       /* OUT's identity when it already exists */
	bool out_exists;
	uint64_t total;           /* source bytes */
} create_ctx;

/* Records one --metadata NAME=FILE; returns CLI_OK, CLI_BAD or CLI_USAGE. */
static int add_md_spec(create_ctx *c, char *arg)
{
	char *eq = strchr(arg, '=');
	md_spec *s, *grown;

	if (!eq || eq == arg || !eq[1])
		return cli_usage_error("--metadata: '%s' is not NAME=FILE.json", cli_esc(arg));
	grown = realloc(c->md, (c->n_md + 1) * sizeof(*c->md));
	if (!grown)
		return cli_msg("out of memory"), CLI_BAD;
	c->md = grown;
	s = &c->md[c->n_md++];
	memset(s, 0, sizeof(*s));
	*eq = '\0';
	s->name = arg;
	return cli_metadata_load(eq + 1, &s->meta) < 0 ? CLI_BAD : CLI_OK;
}

/* ------------------------------------------------------------------ */
/* sources                                                              */
/* ------------------------------------------------------------------ */

static int push_source(create_ctx *c, const char *name, const char *path, bool from_arg)
{
	if (c->n_src == c->cap_src) {
		size_t cap = c->cap_src ? c->cap_src * 2 : 64;
		source *g = realloc(c->src, cap * sizeof(*g));
		if (!g)
			return -1;
		c->src = g;
		c->cap_src = cap;
	}
	c->src[c->n_src].name = strdup(name);
	c->src[c->n_src].path = strdup(path);
	c->src[c->n_src].from_arg = from_arg;
	if (!c->src[c->n_src].name || !c->src[c->n_src].path) {
		free(c->src[c->n_src].name);
		free(c->src[c->n_src].path);
		return -1;
	}
	c->n_src++;
	return 0;
}

static bool is_out_temp(const char *path);

/* The directory walk's state (nftw has no user pointer). */
static struct {
	create_ctx *c;
	size_t prefix;            /* bytes of "DIR/" to strip */
	int status;
} walk;

static void skip_warn(const char *path, const char *why)
{
	cli_msg("warning: skipping %s: %s", cli_esc(path), why);
}

static const char *kind_of(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO, not a regular file" :
	       S_ISSOCK(m) ? "a socket, not a regular file" :
	       S_ISCHR(m) || S_ISBLK(m) ? "a device, not a regular file" :
	       S_ISDIR(m) ? "a symlink to a directory (not followed)" : "not a regular file";
}

static int walk_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	struct stat st;

	if (ftw->level == 0)
		return 0;
	switch (flag) {
	case FTW_D:
		return 0;
	case FTW_DNR:
	case FTW_NS:
		cli_msg("%s: %s", cli_esc(path), strerror(errno ? errno : EACCES));
		walk.status = CLI_BAD;
		return 0;
	case FTW_SLN:
		skip_warn(path, "dangling symlink");
		return 0;
	case FTW_SL:
		if (stat(path, &st) < 0) {
			skip_warn(path, "dangling symlink");
			return 0;
		}
		sb = &st;
		break;
	default:
		break;
	}
	if (!S_ISREG(sb->st_mode)) {
		skip_warn(path, kind_of(sb->st_mode));
		return 0;
	}
	if (walk.c->out_exists && sb->st_dev == walk.c->out_st.st_dev &&
	    sb->st_ino == walk.c->out_st.st_ino) {
		skip_warn(path, "it is the output bundle");
		return 0;
	}
	if (is_out_temp(path)) {
		skip_warn(path, "a temporary file of a create of the output bundle");
		return 0;
	}
	if (push_source(walk.c, path + walk.prefix, path, false) < 0) {
		cli_msg("out of memory");
		return 1;
	}
	walk.c->total += (uint64_t)sb->st_size;
	return 0;
}

static int cmp_source(const void *a, const void *b)
{
	return strcmp(((const source *)a)->name, ((const source *)b)->name);
}

/* Adds every file below dir, sorted by name. */
static int add_dir(create_ctx *c, const char *dir)
{
	char *d = malloc(strlen(dir) + 3);
	size_t len, first = c->n_src;
	struct stat st;

	if (!d)
		return cli_msg("out of memory"), CLI_BAD;
	strcpy(d, dir);
	len = strlen(d);
	while (len > 1 && d[len - 1] == '/')
		d[--len] = '\0';
	if (lstat(d, &st) == 0 && S_ISLNK(st.st_mode)) {
		strcpy(d + len, "/.");   /* DIR itself is a symlink: walk its target */
		len += 2;
	}
	walk.c = c;
	walk.prefix = strcmp(d, "/") == 0 ? 1 : len + 1;
	walk.status = CLI_OK;
	if (nftw(d, walk_cb, 32, FTW_PHYS) != 0) {
		if (errno)
			cli_msg("%s: %s", cli_esc(dir), strerror(errno));
		walk.status = CLI_BAD;
	}
	free(d);
	if (walk.status == CLI_OK && c->n_src == first)
		cli_msg("warning: %s: no regular files below it", cli_esc(dir));
	qsort(c->src + first, c->n_src - first, sizeof(*c->src), cmp_source);
	return walk.status;
}

/* Classifies each operand (NAME=PATH or DIR) and gathers the sources. */
static int gather(create_ctx *c, char **args, int n)
{
	int status = CLI_OK;

	for (int k = 0; k < n; k++) {
		char *eq = strchr(args[k], '=');
		struct stat st;

		if (eq) {
			*eq = '\0';
			if (push_source(c, args[k], eq + 1, true) < 0)
				return cli_msg("out of memory"), CLI_BAD;
			*eq = '=';
		} else if (stat(args[k], &st) < 0) {
			cli_msg("%s: %s (sources are NAME=PATH or DIR)", cli_esc(args[k]),
			        strerror(errno));
			return CLI_BAD;
		} else if (S_ISDIR(st.st_mode)) {
			if (add_dir(c, args[k]) != CLI_OK)
				status = CLI_BAD;
		} else {
			return cli_usage_error("'%s' is not a directory: add a file as NAME=PATH",
			                       cli_esc(args[k]));
		}
	}
	return status;
}

/* Hands every source and metadata to the builder; reports every problem. */
static int feed_builder(create_ctx *c)
{
	int status = CLI_OK;

	for (size_t i = 0; i < c->n_src; i++) {
		source *s = &c->src[i];
		struct stat st;
		int rc;

		rc = apb_builder_add_file(c->bb, s->name, s->path);
		if (rc == APB_E_NAME || rc == APB_E_DUPLICATE) {
			cli_msg("%s name \"%s\" (from %s): %s", rc == APB_E_NAME ? "invalid" :
			        "duplicate", cli_esc(s->name), cli_esc(s->path), apb_last_error());
			status = s->from_arg ? CLI_USAGE : (status ? status : CLI_BAD);
		} else if (rc < 0) {
			char what[2100];
			snprintf(what, sizeof(what), "model \"%s\" from %s", cli_esc(s->name),
			         cli_esc(s->path));
			cli_lib_error(what, rc);
			status = status ? status : CLI_BAD;
		} else {
			if (s->from_arg && stat(s->path, &st) == 0)
				c->total += (uint64_t)st.st_size;
			if (c->verbose)
				printf("adding \"%s\" from %s\n", cli_esc(s->name), cli_esc(s->path));
		}
	}
	for (size_t i = 0; status == CLI_OK && i < c->n_md; i++) {
		int rc = apb_builder_set_metadata(c->bb, c->md[i].name, &c->md[i].meta.md);
		if (rc == -ENOENT)
			return cli_usage_error("--metadata: no model named \"%s\"",
			                       cli_esc(c->md[i].name));
		if (rc < 0)
			return cli_lib_error("--metadata", rc);
	}
	return status;
}

/* ------------------------------------------------------------------ */
/* temporary files: names and stale leftovers                          */
/* ------------------------------------------------------------------ */

static char out_dir[PATH_MAX];           /* OUT's directory, resolved */
static const char *out_base;             /* OUT's last component */

/* True when name is "<OUT base>.tmp." and 6 of [A-Za-z0-9], as the builder makes. */
static bool temp_name(const char *name)
{
	size_t blen = strlen(out_base);

	if (strncmp(name, out_base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0 ||
	    strlen(name + blen + 5) != 6)
		return false;
	for (const char *s = name + blen + 5; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return false;
	}
	return true;
}

/* True when path is "<OUT>.tmp.XXXXXX" in OUT's directory. */
static bool is_out_temp(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char dir[PATH_MAX], real[PATH_MAX];

	if (!temp_name(base) || (size_t)(base - path) >= sizeof(dir))
		return false;
	memcpy(dir, path, (size_t)(base - path));
	dir[base - path] = '\0';
	return realpath(dir[0] ? dir : ".", real) && strcmp(real, out_dir) == 0;
}

/* Computes out_dir and out_base; returns CLI_OK, CLI_BAD or CLI_USAGE. */
static int plan_temp_names(const char *out)
{
	char *copy = strdup(out), *slash;
	const char *dir = ".";
	int status = CLI_OK;

	if (!copy)
		return cli_msg("out of memory"), CLI_BAD;
	slash = strrchr(copy, '/');
	out_base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
	if (slash) {
		*slash = '\0';
		dir = slash == copy ? "/" : copy;
	}
	if (!out_base[0] || strcmp(out_base, ".") == 0 || strcmp(out_base, "..") == 0) {
		status = cli_usage_error("'%s' is not a file name for OUT", cli_esc(out));
	} else if (!realpath(dir, out_dir)) {
		cli_msg("%s: %s", cli_esc(dir), strerror(errno));
		status = CLI_BAD;
	}
	free(copy);
	return status;
}

/*
 * Removes name, seen as st in OUT's directory dfd, when no live create
 * writes it: a builder holds flock(LOCK_EX) on its temporary file from
 * creation to rename, so a lock we can take means its writer is dead.
 * Holding that lock, we unlink only while the name is still that file.
 */
static void remove_stale(int dfd, const char *name, const struct stat *st)
{
	struct stat locked, now;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &locked) == 0 &&
	    locked.st_dev == st->st_dev && locked.st_ino == st->st_ino &&
	    fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now.st_dev == st->st_dev && now.st_ino == st->st_ino && unlinkat(dfd, name, 0) == 0)
		cli_msg("removed stale temporary file %s/%s (left by an interrupted create)",
		        cli_esc(out_dir), cli_esc(name));
	close(fd);
}

/* Removes the "<OUT>.tmp.XXXXXX" regular files of ours that dead runs left. */
static void clean_stale(void)
{
	DIR *d = opendir(out_dir);
	struct dirent *e;
	struct stat st;

	while (d && (e = readdir(d)) != NULL) {
		if (temp_name(e->d_name) &&
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_uid == geteuid())
			remove_stale(dirfd(d), e->d_name, &st);
	}
	if (d)
		closedir(d);
}

/* ------------------------------------------------------------------ */
/* the build: progress and interruption                                 */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t caught_signal;   /* the builder's cancel flag */

/* Only records the signal: the builder polls the flag and cleans up. */
static void on_signal(int sig)
{
	caught_signal = sig;
}

/* Dies of sig as if it had not been caught, so the shell sees 128 + sig. */
static void die_of_signal(int sig)
{
	sigset_t set;

	fflush(NULL);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	_exit(128 + sig);         /* not reached */
}

static void add_progress(void *ctx, uint64_t n)
{
	cli_progress_add(ctx, n);
}

/*
 * Runs the build with a progress line.  SIGINT, SIGTERM and SIGHUP cancel
 * it (the builder removes its temporary file), then kill us.
 */
static int run_build(create_ctx *c)
{
	cli_progress prog;
	int rc;

	cli_progress_start(&prog, c->total);
	apb_builder_set_progress(c->bb, add_progress, &prog);
	caught_signal = 0;
	apb_builder_set_cancel(c->bb, &caught_signal);
	cli_catch_signals(on_signal);
	rc = apb_builder_build(c->bb);
	cli_restore_signals();
	cli_progress_end(&prog);
	if (rc < 0 && rc != -ECANCELED)
		cli_lib_error(cli_esc(c->out), rc);
	if (caught_signal) {
		if (rc == 0)   /* the signal came after the rename, the commit point */
			cli_msg("%s was written before the interruption", cli_esc(c->out));
		die_of_signal(caught_signal);
	}
	return rc < 0 ? CLI_BAD : CLI_OK;
}

/* ------------------------------------------------------------------ */
/* options and main flow                                                */
/* ------------------------------------------------------------------ */

/* Parses a size option value and hands it to setter. */
static int size_setting(apb_builder *bb, const char *opt, const char *arg,
                        int (*setter)(apb_builder *, uint32_t), const char *range)
{
	uint64_t v;

	if (cli_parse_size(opt, arg, &v))
		return CLI_USAGE;
	if (v > UINT32_MAX || setter(bb, (uint32_t)v) < 0)
		return cli_usage_error("%s: '%s' is not a power of two from %s", opt,
		                       cli_esc(arg), range);
	return CLI_OK;
}

/* Applies --compress zstd[:LEVEL] | none and --filter NAME. */
static int compression_setting(create_ctx *c)
{
	static const apb_filter filters[] = { APB_FILTER_AUTO, APB_FILTER_NONE, APB_FILTER_BYTEGROUP2,
	                                      APB_FILTER_BYTEGROUP4 };
	apb_filter f = APB_FILTER_AUTO;
	const char *spec = c->compress ? c->compress : "none";
	char *end = NULL;
	long level = 0;
	size_t k;

	for (k = 0; c->filter && k < sizeof filters / sizeof filters[0]; k++)
		if (!strcmp(c->filter, apb_filter_name(filters[k])))
			break;
	if (c->filter && k == sizeof filters / sizeof filters[0])
		return cli_usage_error("--filter: '%s' is not auto, none, bytegroup2 or bytegroup4",
		                       cli_esc(c->filter));
	if (c->filter)
		f = filters[k];
	if (c->filter && !c->compress)
		return cli_usage_error("--filter needs --compress");
	if (!strcmp(spec, "none"))
		return CLI_OK;
	if (strncmp(spec, "zstd", 4) || (spec[4] && spec[4] != ':'))
		return cli_usage_error("--compress: '%s' is not zstd[:LEVEL] or none", cli_esc(spec));
	if (spec[4] == ':') {
		errno = 0;
		level = strtol(spec + 5, &end, 10);
		if (errno || end == spec + 5 || *end || level < 1 || level > 19)
			return cli_usage_error("--compress: level '%s' is not a number from 1 to 19",
			                       cli_esc(spec + 5));
	}
	if (apb_builder_set_compression(c->bb, APB_CODEC_ZSTD, (int)level, f) < 0)
		return cli_usage_error("--compress: %s", apb_last_error());
	return CLI_OK;
}

/* Applies the bundle-wide settings gathered from the options. */
static int apply_settings(create_ctx *c)
{
	if (compression_setting(c))
		return CLI_USAGE;
	if (c->align && size_setting(c->bb, "--align", c->align, apb_builder_set_alignment,
	                             "1 to 1G"))
		return CLI_USAGE;
	if (c->block && size_setting(c->bb, "--block-size", c->block,
	                             apb_builder_set_block_size, "512 to 1G"))
		return CLI_USAGE;
	if (c->description && apb_builder_set_description(c->bb, c->description) < 0)
		return cli_usage_error("--description: %s", apb_last_error());
	apb_builder_set_timestamp(c->bb, c->timestamp);
	return CLI_OK;
}

/* Parses the options; returns CLI_OK, an error status, or -1 for --help. */
static int parse_create_opts(create_ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "align", required_argument, NULL, 'a' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "description", required_argument, NULL, 'd' },
		{ "compress", required_argument, NULL, 'z' },
		{ "filter", required_argument, NULL, 'F' },
		{ "metadata", required_argument, NULL, 'm' },
		{ "timestamp", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc = CLI_OK;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":a:b:d:m:z:tvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': c->align = optarg; break;
		case 'b': c->block = optarg; break;
		case 'd': c->description = optarg; break;
		case 'z': c->compress = optarg; break;
		case 'F': c->filter = optarg; break;
		case 'm':
			if (rc == CLI_OK)
				rc = add_md_spec(c, optarg);
			break;
		case 't': c->timestamp = true; break;
		case 'v': c->verbose = true; break;
		case 'h': fputs(create_usage, stdout); return -1;
		default: return cli_getopt_error(ch, argv);
		}
	}
	return rc;
}

static void free_ctx(create_ctx *c)
{
	for (size_t i = 0; i < c->n_src; i++) {
		free(c->src[i].name);
		free(c->src[i].path);
	}
	free(c->src);
	for (size_t i = 0; i < c->n_md; i++)
		cli_metadata_free(&c->md[i].meta);
	free(c->md);
	apb_builder_free(c->bb);
}

/* Everything after option parsing; returns an exit status. */
static int create(create_ctx *c, char **args, int n_args)
{
	int status;

	c->bb = apb_builder_new(c->out);
	if (!c->bb)
		return cli_msg("out of memory"), CLI_BAD;
	status = apply_settings(c);
	if (status == CLI_OK)
		status = plan_temp_names(c->out);
	if (status != CLI_OK)
		return status;
	c->out_exists = stat(c->out, &c->out_st) == 0;
	if (c->out_exists && S_ISDIR(c->out_st.st_mode))
		return cli_usage_error("OUT '%s' is a directory; give the bundle's file name first",
		                       cli_esc(c->out));
	clean_stale();          /* first, so a walk of OUT's directory misses them */
	status = gather(c, args, n_args);
	if (status == CLI_OK)
		status = feed_builder(c);
	if (status != CLI_OK) {
		cli_msg("%s not written", cli_esc(c->out));
		return status;
	}
	return run_build(c);
}

/** `apbundle create`: see create_usage. */
int cli_cmd_create(int argc, char **argv)
{
	create_ctx c;
	int status;

	memset(&c, 0, sizeof(c));
	status = parse_create_opts(&c, argc, argv);
	if (status == CLI_OK && argc - optind < 1)
		status = cli_usage_error("missing OUT and sources");
	else if (status == CLI_OK && argc - optind < 2)
		status = cli_usage_error("missing sources (NAME=PATH or DIR) for %s",
		                         cli_esc(argv[optind]));
	if (status == CLI_OK) {
		c.out = argv[optind];
		status = create(&c, argv + optind + 1, argc - optind - 1);
	}
	free_ctx(&c);
	return status < 0 ? CLI_OK : status;
}
