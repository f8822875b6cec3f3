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
 *  - The builder writes "<OUT>.tmp.XXXXXX" and renames it over OUT.  During
 *    the build a watcher thread spots that file among this process's open
 *    descriptors (/proc/self/fd), records its path and flock()s it.  On
 *    SIGINT, SIGTERM or SIGHUP the handler (async-signal-safe calls only)
 *    unlinks the temporary file, found the same way or as recorded, and
 *    re-raises the signal: OUT is untouched and nothing is left behind.
 *  - After a SIGKILL or power loss a "<OUT>.tmp.XXXXXX" file may remain.
 *    Each create of OUT first removes such files of earlier runs, but only
 *    when they are regular files owned by the caller's user that no
 *    process holds open (checked through /proc/PID/fd) and that no process
 *    has flock()ed; if some process's descriptors could not be inspected,
 *    the file must also be older than a minute.  Each removal is reported.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "internal.h"

static const char create_usage[] =
	"Usage: apbundle create [OPTION]... OUT NAME=PATH...\n"
	"       apbundle create [OPTION]... OUT DIR...\n"
	"Build the bundle OUT from files: each NAME=PATH adds the file PATH as model\n"
	"NAME (split at the first '='); each DIR adds every regular file below it,\n"
	"named by its path relative to DIR, in bytewise order (symlinks to files\n"
	"are followed; other special files are skipped with a warning).  OUT is\n"
	"written atomically: on any failure or interruption it is left untouched.\n\n"
	"  -a, --align N              data alignment, a power of two (default 4096)\n"
	"  -b, --block-size N         checksum block size, a power of two >= 512\n"
	"                             (default 64K)\n"
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

		apbi_clear_error();
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
/* temporary files: interrupted builds and stale leftovers              */
/* ------------------------------------------------------------------ */

static char tmp_prefix[PATH_MAX + 16];   /* "<absolute dir>/<base>.tmp." */
static size_t tmp_prefix_len;
static char out_dir[PATH_MAX];
static const char *out_base;

/* True when s (len bytes) is a temp name's suffix: 6 of [A-Za-z0-9], as the builder makes. */
static bool suffix_ok(const char *s, size_t len)
{
	if (len != 6)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
			return false;
	}
	return true;
}

/* True when path is "<OUT>.tmp.XXXXXX" in OUT's directory. */
static bool is_out_temp(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t blen = strlen(out_base);
	char dir[PATH_MAX], real[PATH_MAX];

	if (strncmp(base, out_base, blen) != 0 || strncmp(base + blen, ".tmp.", 5) != 0 ||
	    !suffix_ok(base + blen + 5, strlen(base + blen + 5)) ||
	    (size_t)(base - path) >= sizeof(dir))
		return false;
	memcpy(dir, path, (size_t)(base - path));
	dir[base - path] = '\0';
	return realpath(dir[0] ? dir : ".", real) && strcmp(real, out_dir) == 0;
}

/* Computes out_dir, out_base and tmp_prefix; returns CLI_OK or CLI_USAGE. */
static int plan_temp_names(const char *out)
{
	char *copy = strdup(out), *slash;
	const char *dir = ".";

	if (!copy)
		return cli_msg("out of memory"), CLI_BAD;
	slash = strrchr(copy, '/');
	out_base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
	if (slash) {
		*slash = '\0';
		dir = slash == copy ? "/" : copy;
	}
	if (!out_base[0] || strcmp(out_base, ".") == 0 || strcmp(out_base, "..") == 0) {
		free(copy);
		return cli_usage_error("'%s' is not a file name for OUT", cli_esc(out));
	}
	if (!realpath(dir, out_dir)) {
		cli_msg("%s: %s", cli_esc(dir), strerror(errno));
		free(copy);
		return CLI_BAD;
	}
	free(copy);
	tmp_prefix_len = (size_t)snprintf(tmp_prefix, sizeof(tmp_prefix), "%s%s%s.tmp.", out_dir,
	                                  strcmp(out_dir, "/") ? "/" : "", out_base);
	if (tmp_prefix_len >= sizeof(tmp_prefix))
		return cli_msg("%s: path too long", cli_esc(out)), CLI_BAD;
	return CLI_OK;
}

static char own_tmp[PATH_MAX + 32];       /* our temp file, once the watcher saw it */
static volatile sig_atomic_t own_tmp_known;

/*
 * Finds the descriptor of this process open on "<OUT>.tmp.XXXXXX" and
 * copies its path into out (PATH_MAX + 32 bytes).  Returns the descriptor
 * or -1.  Async-signal-safe: raw getdents64/readlink, no stdio, no malloc.
 */
static int find_own_temp(char *out)
{
	char dents[4096], fdpath[64];
	ssize_t n;
	int found = -1, d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (d < 0)
		return -1;
	while (found < 0 && (n = getdents64(d, dents, sizeof(dents))) > 0) {
		for (ssize_t pos = 0; found < 0 && pos < n;) {
			struct dirent64 *e = (struct dirent64 *)(dents + pos);
			size_t k = sizeof("/proc/self/fd/") - 1, j = 0;
			ssize_t ll;
			int fd = 0;

			pos += e->d_reclen;
			memcpy(fdpath, "/proc/self/fd/", k);
			for (; e->d_name[j] >= '0' && e->d_name[j] <= '9' && k < 40; j++) {
				fdpath[k++] = e->d_name[j];
				fd = fd * 10 + (e->d_name[j] - '0');
			}
			fdpath[k] = '\0';
			if (j == 0 || e->d_name[j] || fd == d)
				continue;
			ll = readlink(fdpath, out, PATH_MAX + 31);
			if (ll > (ssize_t)tmp_prefix_len &&
			    memcmp(out, tmp_prefix, tmp_prefix_len) == 0 &&
			    suffix_ok(out + tmp_prefix_len, (size_t)ll - tmp_prefix_len)) {
				out[ll] = '\0';
				found = fd;
			}
		}
	}
	close(d);
	return found;
}

/*
 * Signal handler: removes our temporary file (the one still open, and the
 * one the watcher recorded, which the builder may have closed just before
 * renaming it: unlinking that name after the rename fails harmlessly),
 * then dies of the same signal.
 */
static void on_signal(int sig)
{
	static char path[PATH_MAX + 32];

	if (find_own_temp(path) >= 0)
		unlink(path);
	if (own_tmp_known) {
		atomic_thread_fence(memory_order_acquire);
		unlink(own_tmp);
	}
	signal(sig, SIG_DFL);
	raise(sig);     /* blocked until we return, then fatal */
}

typedef struct stale {
	char *name;
	dev_t dev;
	ino_t ino;
	time_t mtime;
	bool busy;
} stale;

/*
 * Marks candidates that some process holds open.  Returns true when every
 * process's descriptors could be inspected.
 */
static bool mark_open(stale *s, size_t n)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;
	bool complete = proc != NULL;

	while (proc && (p = readdir(proc)) != NULL) {
		char fddir[300];
		DIR *fds;
		struct dirent *f;
		struct stat st;

		if (p->d_name[0] < '1' || p->d_name[0] > '9')
			continue;
		snprintf(fddir, sizeof(fddir), "/proc/%s/fd", p->d_name);
		fds = opendir(fddir);
		if (!fds) {
			if (errno != ENOENT)
				complete = false;
			continue;
		}
		while ((f = readdir(fds)) != NULL) {
			if (f->d_name[0] == '.' || fstatat(dirfd(fds), f->d_name, &st, 0) < 0)
				continue;
			for (size_t i = 0; i < n; i++)
				if (st.st_dev == s[i].dev && st.st_ino == s[i].ino)
					s[i].busy = true;
		}
		closedir(fds);
	}
	if (proc)
		closedir(proc);
	return complete;
}

/* Removes candidate s if nobody uses it; dfd is OUT's directory. */
static void remove_stale(int dfd, const stale *s, bool complete)
{
	struct stat st;
	int fd;

	if (s->busy || (!complete && time(NULL) - s->mtime < 60))
		return;
	fd = openat(dfd, s->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
	    st.st_dev == s->dev && st.st_ino == s->ino && unlinkat(dfd, s->name, 0) == 0)
		cli_msg("removed stale temporary file %s/%s (left by an interrupted create)",
		        cli_esc(out_dir), cli_esc(s->name));
	close(fd);
}

/* Removes "<OUT>.tmp.XXXXXX" files that earlier, dead runs left behind. */
static void clean_stale(void)
{
	size_t blen = strlen(out_base), n = 0, cap = 0;
	stale *s = NULL;
	struct dirent *e;
	DIR *d = opendir(out_dir);

	while (d && (e = readdir(d)) != NULL) {
		struct stat st;

		if (strncmp(e->d_name, out_base, blen) != 0 ||
		    strncmp(e->d_name + blen, ".tmp.", 5) != 0 ||
		    !suffix_ok(e->d_name + blen + 5, strlen(e->d_name + blen + 5)) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		if (n == cap) {
			stale *g = realloc(s, (cap * 2 + 4) * sizeof(*s));
			if (!g)
				break;
			s = g;
			cap = cap * 2 + 4;
		}
		s[n] = (stale){ strdup(e->d_name), st.st_dev, st.st_ino, st.st_mtime, false };
		if (s[n].name)
			n++;
	}
	if (n) {
		bool complete = mark_open(s, n);
		for (size_t i = 0; i < n; i++)
			remove_stale(dirfd(d), &s[i], complete);
	}
	for (size_t i = 0; i < n; i++)
		free(s[i].name);
	free(s);
	if (d)
		closedir(d);
}

/* ------------------------------------------------------------------ */
/* the watcher thread: temp file discovery, flock, progress             */
/* ------------------------------------------------------------------ */

static atomic_bool watch_stop;

/* Bytes this process has read so far (the builder reports no progress). */
static uint64_t read_chars(void)
{
	char buf[512];
	unsigned long long v = 0;
	int fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = '\0';
		sscanf(buf, "rchar: %llu", &v);
	}
	return v;
}

/*
 * Runs during the build: records the builder's temporary file as soon as
 * it appears and flock()s it (so other creates see it is in use), then
 * drives the progress line when there is one.  Signals are blocked here so
 * that the handler runs in the building thread.
 */
static void *watcher(void *arg)
{
	cli_progress *p = arg;
	uint64_t base = read_chars(), last = 0;
	char path[PATH_MAX + 32];
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!atomic_load(&watch_stop)) {
		int fd;

		if (!own_tmp_known && (fd = find_own_temp(path)) >= 0) {
			flock(fd, LOCK_EX | LOCK_NB);
			memcpy(own_tmp, path, sizeof(own_tmp));
			atomic_thread_fence(memory_order_release);
			own_tmp_known = 1;
		}
		if (p->on) {
			uint64_t now = read_chars() - base;
			if (now > p->total)
				now = p->total;
			if (now > last)
				cli_progress_add(p, now - last), last = now;
		}
		usleep(own_tmp_known ? 200000 : 2000);
	}
	return NULL;
}

/* Runs the build with signal handling, the watcher and maybe progress. */
static int run_build(create_ctx *c)
{
	cli_progress prog;
	pthread_t th;
	bool watching;
	int rc;

	cli_progress_start(&prog, c->total);
	atomic_store(&watch_stop, false);
	watching = pthread_create(&th, NULL, watcher, &prog) == 0;
	cli_catch_signals(on_signal);
	apbi_clear_error();
	rc = apb_builder_build(c->bb);
	if (watching) {
		atomic_store(&watch_stop, true);
		pthread_join(th, NULL);
	}
	cli_restore_signals();
	cli_progress_end(&prog);
	if (rc < 0)
		return cli_lib_error(cli_esc(c->out), rc);
	return CLI_OK;
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

/* Applies the bundle-wide settings gathered from the options. */
static int apply_settings(create_ctx *c)
{
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
		{ "metadata", required_argument, NULL, 'm' },
		{ "timestamp", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc = CLI_OK;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":a:b:d:m:tvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': c->align = optarg; break;
		case 'b': c->block = optarg; break;
		case 'd': c->description = optarg; break;
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
