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
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	"followed.\n\n"
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
		if (fd >= 0)
			return fd;
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
static int write_model(int fd, const apbi_manifest *m, uint64_t i, const char *bundle,
                       int dfd, const char *base, cli_progress *prog)
{
	const char *name = m->models[i].name;
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
	status = cli_stream_model(fd, bundle, m, i, true, file_sink, &x, prog, &r);
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
	return dfd;
}

static int extract_one(int fd, const apbi_manifest *m, uint64_t i, const char *bundle,
                       int rootfd, dircache *dc, cli_progress *prog)
{
	const char *base;
	int dfd = dircache_get(dc, rootfd, bundle, m->models[i].name, &base);
	int status;

	if (dfd < 0)
		return CLI_BAD;
	status = write_model(fd, m, i, bundle, dfd, base, prog);
	if (status == CLI_OK)
		dc->dirty = true;
	return status;
}

/*
 * Marks the models named by names[0..n) in sel (a name ending in '/'
 * selects everything below it).  Returns CLI_BAD after reporting any name
 * that selects nothing.
 */
static int select_models(const apbi_manifest *m, const char *bundle, char **names,
                         int n, bool *sel)
{
	int status = CLI_OK;

	for (int k = 0; k < n; k++) {
		size_t len = strlen(names[k]);
		int64_t idx = apbi_manifest_find(m, names[k]);
		bool any = idx >= 0;

		if (idx >= 0)
			sel[idx] = true;
		for (uint64_t i = 0; idx < 0 && len && names[k][len - 1] == '/' &&
		     i < m->n_models; i++)
			if (strncmp(m->models[i].name, names[k], len) == 0)
				sel[i] = any = true;
		if (!any) {
			cli_msg("%s: no model named \"%s\"", cli_esc(bundle), cli_esc(names[k]));
			status = CLI_BAD;
		}
	}
	return status;
}

static int extract_selected(int fd, const apbi_manifest *m, const char *bundle,
                            int rootfd, const bool *sel, bool verbose)
{
	dircache dc = { NULL, -1, false };
	cli_progress prog;
	uint64_t total = 0, bad = 0;

	for (uint64_t i = 0; i < m->n_models; i++)
		total += sel[i] ? m->models[i].size : 0;
	cli_progress_start(&prog, total);
	for (uint64_t i = 0; i < m->n_models; i++) {
		if (!sel[i])
			continue;
		if (extract_one(fd, m, i, bundle, rootfd, &dc, &prog) != CLI_OK)
			bad++;
		else if (verbose)
			printf("%s\n", cli_esc(m->models[i].name));
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
	apbi_manifest *m = NULL;
	bool *sel = NULL;
	int fd = -1, rootfd, status;

	rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		cli_msg("%s: %s", cli_esc(dir), strerror(errno));
		return CLI_BAD;
	}
	status = cli_open_bundle(bundle, &fd, &m);
	if (status != CLI_OK)
		goto out;
	sel = calloc(m->n_models ? m->n_models : 1, sizeof(*sel));
	if (!sel) {
		cli_msg("out of memory");
		status = CLI_BAD;
		goto out;
	}
	if (n_names == 0)
		memset(sel, 1, m->n_models * sizeof(*sel));
	status = select_models(m, bundle, names, n_names, sel);
	cli_catch_signals(on_signal);
	if (extract_selected(fd, m, bundle, rootfd, sel, verbose) != CLI_OK)
		status = CLI_BAD;
	cli_restore_signals();
out:
	free(sel);
	apbi_manifest_free(m);
	if (fd >= 0)
		close(fd);
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
