/*
 * cmd_extract.c - `apbundle extract BUNDLE [-C DIR] [NAME...]`: models out
 * as files below DIR.
 *
 * Invariants:
 *  - Nothing is ever created outside DIR.  Names were validated when the
 *    manifest was read (no leading '/', no ".", ".." or empty component)
 *    and are checked again here; the path below DIR is walked one
 *    component at a time with openat(O_DIRECTORY | O_NOFOLLOW) from a file
 *    descriptor of DIR, creating missing directories with mkdirat, so a
 *    symlink already present below DIR is never followed (the model is
 *    refused instead).  The final name is replaced with renameat, which
 *    replaces a symlink itself rather than writing through it.
 *  - Each file is written to a fresh temporary file (O_EXCL | O_NOFOLLOW)
 *    in its target directory, verified block by block while it is
 *    written, fsynced and renamed over the target, and the directory is
 *    fsynced after its last file: the target holds either its old content
 *    or the complete good model.
 *    A bad model's temporary file is removed and the target left as it was;
 *    so is the one being written when SIGINT, SIGTERM or SIGHUP arrives.
 *  - Each temporary file ".apbundle-extract.<16 hex>.tmp" is locked with
 *    flock(LOCK_EX) from creation to rename or removal.  A run killed with
 *    SIGKILL leaves it unlocked (the kernel drops the lock), so the first
 *    time extract writes into a directory it removes such files there that
 *    are regular, owned by the caller and whose lock it can take, and says
 *    so: a live extract's file is never touched.
 *  - Models whose names cannot share one tree with the others (a name that
 *    is also a directory of other models, as older writers allowed) are
 *    reported by name (apb_model_info.name_clash) when they fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char extract_usage[] =
	"Usage: apbundle extract [-C DIR] [-v] BUNDLE [NAME...]\n"
	"Write the models of BUNDLE (all, or each NAME; a NAME ending in '/'\n"
	"selects every model below it) as files below DIR (default: the current\n"
	"directory).  Names with '/' become directories.  Every block is verified\n"
	"while it is written and each file is replaced atomically; a bad model is\n"
	"not written and makes the exit status 1.  Symlinks below DIR are never\n"
	"followed.  A NAME may be given as list prints it (with escapes).\n"
	"Temporary files left by an extract that was killed are removed.\n\n"
	"  -C, --directory DIR  extract below DIR, which must exist\n"
	"  -v, --verbose        print each extracted model's name\n"
	"  -h, --help           show this help and exit\n";

typedef struct xfile {
	int fd;
	const char *bundle;
	const char *name;
} xfile;

/* Rejects components that could leave DIR (defence in depth). */
static bool component_ok(const char *c, size_t n)
{
	return n > 0 && !(n == 1 && c[0] == '.') && !(n == 2 && c[0] == '.' && c[1] == '.');
}

/*
 * Walks name's directories below rootfd, creating them as needed, never
 * following a symlink.  On success returns an fd of the parent directory
 * (rootfd itself, not dup'ed, for top-level names) and *base points at the
 * last component; on failure prints why and returns -1.
 */
static int open_parent(int rootfd, const char *bundle, const char *name, const char **base)
{
	const char *p = name, *slash;
	int cur = rootfd;

	if (name[0] == '/')
		goto hostile;
	while ((slash = strchr(p, '/')) != NULL) {
		char comp[256];
		size_t n = (size_t)(slash - p);
		int nfd;

		if (!component_ok(p, n) || n >= sizeof(comp))
			goto hostile;
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (mkdirat(cur, comp, 0777) < 0 && errno != EEXIST)
			goto fail;
		nfd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0)
			goto fail;
		if (cur != rootfd)
			close(cur);
		cur = nfd;
		p = slash + 1;
	}
	if (!component_ok(p, strlen(p)))
		goto hostile;
	*base = p;
	return cur;
hostile:
	cli_msg("%s: model \"%s\": refusing a name that leaves the target directory",
	        cli_esc(bundle), cli_esc(name));
	goto out;
fail:
	if (errno == ELOOP || errno == ENOTDIR)
		cli_msg("%s: model \"%s\": a component of its path below the target "
		        "directory is a symlink or not a directory; not followed",
		        cli_esc(bundle), cli_esc(name));
	else
		cli_msg("%s: model \"%s\": creating its directory: %s", cli_esc(bundle),
		        cli_esc(name), strerror(errno));
out:
	if (cur != rootfd)
		close(cur);
	return -1;
}

/*
 * The temporary file being written, for the signal handler: its name is
 * stored before it is created and the directory fd is cleared only after
 * it was renamed or removed, so an interrupt never leaves it behind (an
 * unlink of a name already renamed fails harmlessly).
 */
static char cur_tmp[64];
static volatile sig_atomic_t cur_tmp_dfd = -1;

static void on_signal(int sig)
{
	if (cur_tmp_dfd >= 0)
		unlinkat(cur_tmp_dfd, cur_tmp, 0);
	signal(sig, SIG_DFL);
	raise(sig);     /* blocked until we return, then fatal */
}

/*
 * Locks a new temporary file for its whole life.  False when a cleaner
 * took the lock first and unlinked it (st_nlink 0): take another name.
 * Without flock support the file goes on unlocked.
 */
static bool lock_fresh(int fd)
{
	struct stat st;

	if (flock(fd, LOCK_EX) < 0)
		return true;
	return fstat(fd, &st) < 0 || st.st_nlink > 0;
}

/* True for ".apbundle-extract.<16 hex digits>.tmp", the names make_temp makes. */
static bool temp_name(const char *n)
{
	static const char pre[] = ".apbundle-extract.", suf[] = ".tmp";

	if (strlen(n) != sizeof(pre) - 1 + 16 + sizeof(suf) - 1 ||
	    strncmp(n, pre, sizeof(pre) - 1) != 0 || strcmp(n + sizeof(pre) - 1 + 16, suf) != 0)
		return false;
	for (size_t i = sizeof(pre) - 1; i < sizeof(pre) - 1 + 16; i++)
		if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
			return false;
	return true;
}

/*
 * Removes the temporary files of killed extracts in directory dfd: ours,
 * regular, and unlocked (we take the lock, and unlink only while the name
 * is still the file we locked).
 */
static void clean_stale(int dfd, const char *bundle, const char *root, const char *dirname)
{
	int dup_fd = dup(dfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st, locked, now;
		int fd;
		if (!temp_name(e->d_name) || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &locked) == 0 &&
		    locked.st_ino == st.st_ino && locked.st_dev == st.st_dev &&
		    fstatat(dfd, e->d_name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
		    now.st_ino == st.st_ino && now.st_dev == st.st_dev &&
		    unlinkat(dfd, e->d_name, 0) == 0)
			cli_msg("%s: removed stale temporary file %s/%s%s%s (left by an interrupted "
			        "extract)", cli_esc(bundle), cli_esc(root), cli_esc(dirname),
			        dirname[0] ? "/" : "", cli_esc(e->d_name));
		close(fd);
	}
	closedir(d);
}

/* Creates a fresh temporary file in dfd; its name goes to tmp. */
static int make_temp(int dfd, char tmp[64])
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t r[2] = { (uint32_t)getpid(), (uint32_t)tries };
		int fd;

		if (getrandom(r, sizeof(r), 0) < 0 && errno != ENOSYS)
			return -1;
		cur_tmp_dfd = -1;
		snprintf(tmp, 64, ".apbundle-extract.%08x%08x.tmp", r[0], r[1]);
		memcpy(cur_tmp, tmp, 64);
		cur_tmp_dfd = dfd;
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd >= 0 && lock_fresh(fd))
			return fd;
		if (fd >= 0) {      /* a cleaner removed it before we locked it */
			close(fd);
			continue;
		}
		cur_tmp_dfd = -1;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

static int file_sink(void *ctx, const void *buf, size_t len)
{
	xfile *x = ctx;
	int rc = cli_write_all(x->fd, buf, len);

	if (rc < 0)
		cli_msg("%s: model \"%s\": writing: %s", cli_esc(x->bundle), cli_esc(x->name),
		        strerror(-rc));
	return rc;
}

/* Streams model i into a temp file below dfd and renames it to base. */
static int write_model(apb_paged *pb, const char *name, size_t i, const char *bundle,
                       int dfd, const char *base, cli_progress *prog)
{
	xfile x = { -1, bundle, name };
	cli_stream_result r;
	char tmp[64];
	int status;

	x.fd = make_temp(dfd, tmp);
	if (x.fd < 0) {
		cli_msg("%s: model \"%s\": creating a temporary file: %s", cli_esc(bundle),
		        cli_esc(name), strerror(errno));
		return CLI_BAD;
	}
	status = cli_stream_model(pb, bundle, i, true, file_sink, &x, prog, &r);
	if (status == CLI_OK && fsync(x.fd) < 0) {
		cli_msg("%s: model \"%s\": fsync: %s", cli_esc(bundle), cli_esc(name),
		        strerror(errno));
		status = CLI_BAD;
	}
	if (close(x.fd) < 0 && status == CLI_OK) {
		cli_msg("%s: model \"%s\": close: %s", cli_esc(bundle), cli_esc(name),
		        strerror(errno));
		status = CLI_BAD;
	}
	if (status == CLI_OK && renameat(dfd, tmp, dfd, base) < 0) {
		cli_msg("%s: model \"%s\": renaming into place: %s", cli_esc(bundle),
		        cli_esc(name), strerror(errno));
		status = CLI_BAD;
	}
	if (status != CLI_OK)
		unlinkat(dfd, tmp, 0);
	cur_tmp_dfd = -1;
	return status;
}

/*
 * The directory of the previous model, kept open: models come sorted, so
 * neighbours usually share a directory, which is then walked once and
 * fsynced once (after its last rename) instead of once per file.
 */
typedef struct dircache {
	const char *root;         /* the -C directory, as given (for messages) */
	char *parent;             /* name prefix before the last '/', or NULL */
	int dfd;                  /* its descriptor (rootfd for "") or -1 */
	bool dirty;               /* a file was renamed into it */
} dircache;

/* Syncs and closes the cached directory. */
static void dircache_flush(dircache *dc, int rootfd)
{
	if (dc->dfd >= 0 && dc->dirty)
		fsync(dc->dfd);
	if (dc->dfd >= 0 && dc->dfd != rootfd)
		close(dc->dfd);
	free(dc->parent);
	dc->parent = NULL;
	dc->dfd = -1;
	dc->dirty = false;
}

/* Returns the directory fd for name (cached or walked) and its last component. */
static int dircache_get(dircache *dc, int rootfd, const char *bundle, const char *name,
                        const char **base)
{
	const char *slash = strrchr(name, '/');
	size_t plen = slash ? (size_t)(slash - name) : 0;
	int dfd;

	if (dc->parent && name[0] != '/' && strlen(dc->parent) == plen &&
	    memcmp(dc->parent, name, plen) == 0 &&
	    component_ok(name + plen + !!slash, strlen(name + plen + !!slash))) {
		*base = name + plen + !!slash;
		return dc->dfd;
	}
	dircache_flush(dc, rootfd);
	dfd = open_parent(rootfd, bundle, name, base);
	if (dfd < 0)
		return -1;
	dc->parent = strndup(name, plen);
	if (!dc->parent) {
		if (dfd != rootfd)
			close(dfd);
		cli_msg("out of memory");
		return -1;
	}
	dc->dfd = dfd;
	clean_stale(dfd, bundle, dc->root, dc->parent);
	return dfd;
}

static int extract_one(apb_paged *pb, size_t i, const char *bundle, int rootfd, dircache *dc,
                       cli_progress *prog)
{
	const char *base;
	apb_model_info info;
	int dfd, status;

	if ((status = apb_paged_model_info(pb, i, &info)) < 0)
		return cli_lib_error(cli_esc(bundle), status);
	dfd = dircache_get(dc, rootfd, bundle, info.name, &base);
	if (dfd < 0) {
		if (info.name_clash & (APB_CLASH_DIR | APB_CLASH_UNDER))
			cli_msg("%s: model \"%s\": its name cannot share one directory tree with "
			        "the other models (a name that is also a directory; see apbundle "
			        "verify)", cli_esc(bundle), cli_esc(info.name));
		return CLI_BAD;
	}
	status = write_model(pb, info.name, i, bundle, dfd, base, prog);
	if (status == CLI_OK)
		dc->dirty = true;
	return status;
}

/* The names of the models of pb, by index (NULL when out of memory). */
static const char **model_names(apb_paged *pb, size_t n)
{
	const char **names = malloc((n ? n : 1) * sizeof(*names));
	apb_model_info info;

	for (size_t i = 0; names && i < n; i++)
		names[i] = apb_paged_model_info(pb, i, &info) == 0 ? info.name : "";
	return names;
}

/*
 * Marks the models named by names[0..n) in sel (a name ending in '/'
 * selects everything below it; a name as list printed it is accepted).
 * Returns CLI_BAD after reporting any name that selects nothing.
 */
static int select_models(apb_paged *pb, const char *bundle, char **names, int n, bool *sel)
{
	size_t count = apb_paged_model_count(pb);
	const char **all = model_names(pb, count);
	int status = CLI_OK;

	if (!all)
		return cli_msg("out of memory"), CLI_BAD;
	for (int k = 0; k < n; k++) {
		size_t len = strlen(names[k]);
		ssize_t idx = apb_paged_find(pb, names[k]);
		bool any = idx >= 0;

		if (idx >= 0)
			sel[idx] = true;
		for (size_t i = 0; idx < 0 && len && names[k][len - 1] == '/' && i < count; i++)
			if (strncmp(all[i], names[k], len) == 0)
				sel[i] = any = true;
		if (!any && (idx = cli_find(pb, bundle, names[k])) >= 0)
			sel[idx] = any = true;
		if (!any)
			status = CLI_BAD;
	}
	free(all);
	return status;
}

static int extract_selected(apb_paged *pb, const char *bundle, const char *dir, int rootfd,
                            const bool *sel, bool verbose)
{
	dircache dc = { dir, NULL, -1, false };
	size_t n = apb_paged_model_count(pb);
	apb_model_info info;
	cli_progress prog;
	uint64_t total = 0, bad = 0;

	for (size_t i = 0; i < n; i++)
		if (sel[i] && apb_paged_model_info(pb, i, &info) == 0)
			total += info.size;
	cli_progress_start(&prog, total);
	for (size_t i = 0; i < n; i++) {
		if (!sel[i])
			continue;
		if (extract_one(pb, i, bundle, rootfd, &dc, &prog) != CLI_OK)
			bad++;
		else if (verbose && apb_paged_model_info(pb, i, &info) == 0)
			printf("%s\n", cli_esc(info.name));
	}
	dircache_flush(&dc, rootfd);
	cli_progress_end(&prog);
	if (bad)
		cli_msg("%s: %llu models not extracted", cli_esc(bundle), (unsigned long long)bad);
	return bad ? CLI_BAD : CLI_OK;
}

/* Opens the bundle and DIR, selects the models and extracts them. */
static int run_extract(const char *bundle, const char *dir, char **names, int n_names,
                       bool verbose)
{
	apb_paged *pb = NULL;
	bool *sel = NULL;
	size_t n;
	int rootfd, status;

	rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		cli_msg("%s: %s", cli_esc(dir), strerror(errno));
		return CLI_BAD;
	}
	status = cli_open(bundle, &pb);
	if (status != CLI_OK)
		goto out;
	n = apb_paged_model_count(pb);
	sel = calloc(n ? n : 1, sizeof(*sel));
	if (!sel) {
		cli_msg("out of memory");
		status = CLI_BAD;
		goto out;
	}
	if (n_names == 0)
		memset(sel, 1, n * sizeof(*sel));
	status = select_models(pb, bundle, names, n_names, sel);
	cli_catch_signals(on_signal);
	if (extract_selected(pb, bundle, dir, rootfd, sel, verbose) != CLI_OK)
		status = CLI_BAD;
	cli_restore_signals();
out:
	free(sel);
	apb_paged_close(pb);
	close(rootfd);
	return status;
}

/** `apbundle extract`: see extract_usage. */
int cli_cmd_extract(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "directory", required_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = ".";
	bool verbose = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":C:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'C': dir = optarg; break;
		case 'v': verbose = true; break;
		case 'h': fputs(extract_usage, stdout); return CLI_OK;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("missing BUNDLE");
	if (!dir[0])
		return cli_usage_error("-C: empty directory name");
	return run_extract(argv[optind], dir, argv + optind + 1, argc - optind - 1, verbose);
}
