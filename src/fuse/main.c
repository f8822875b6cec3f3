/*
 * main.c - apbundle-mount: command line, bundle validation, session, signals, daemon.
 *
 * Order matters and is kept strictly: parse and validate every option, open
 * and validate the bundle and build the inode tree (all in the foreground,
 * so any mistake is a one-line error, a non-zero exit and nothing mounted);
 * then mount; then daemonize (the parent exits only once the kernel mount
 * exists); only then start threads (the cache's worker, the readahead
 * tuner, the session loop), because fork() keeps only the calling thread.
 * Exit status: 0 after a clean unmount (fusermount3 -u, SIGTERM, SIGINT,
 * SIGHUP), 1 bad usage or option, 2 bundle cannot be opened, 3 mount
 * failed, 4 the session failed while mounted.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <fuse_opt.h>

#include "mount.h"

#define PROG "apbundle-mount"
#define FUSE_SUPER_MAGIC 0x65735546

enum { EXIT_USAGE = 1, EXIT_BUNDLE = 2, EXIT_MOUNT = 3, EXIT_RUNTIME = 4 };
enum { KEY_IGNORE = 1 };

/* Our own options are recognised by apbm_opts_set (options.c), not here. */
typedef struct cli_opts {
	apbm_opts o;
	char *bundle;
	char *mountpoint;   /* as given; libfuse gets it too */
} cli_opts;

static const struct fuse_opt opt_spec[] = {
	/* fstab options that mean nothing to a FUSE file system */
	FUSE_OPT_KEY("defaults", KEY_IGNORE),
	FUSE_OPT_KEY("auto", KEY_IGNORE),
	FUSE_OPT_KEY("noauto", KEY_IGNORE),
	FUSE_OPT_KEY("nofail", KEY_IGNORE),
	FUSE_OPT_KEY("_netdev", KEY_IGNORE),
	FUSE_OPT_KEY("user", KEY_IGNORE),
	FUSE_OPT_KEY("users", KEY_IGNORE),
	FUSE_OPT_KEY("nouser", KEY_IGNORE),
	FUSE_OPT_END
};

static void usage(const char *argv0)
{
	printf("usage: %s [options] BUNDLE|URL MOUNTPOINT\n\n"
	       "Serves the models of BUNDLE as read-only files under MOUNTPOINT,\n"
	       "read through a page cache bounded by max_memory.\n\n"
	       "apbundle-mount options:\n"
	       "    -o max_memory=SIZE     bytes of model data cached (default 100M)\n"
	       "    -o page_size=SIZE      cache page size, a power of two >= 512 (default 64K)\n"
	       "    -o eviction=NAME       eviction policy (default tinylfu; eviction=help lists them)\n"
	       "    -o prefetch=0|1        readahead and next-model prefetch (default 1)\n"
	       "    -o prefetch_count=N    next-likely models to prefetch (default 2)\n"
	       "    -o huge_pages=0|1      back the cache with transparent huge pages (default 1)\n"
	       "    -o direct_io           every read goes through the page cache: exact\n"
	       "                           statistics, no kernel caching, no shared mmap\n"
	       "    -o readahead=SIZE      kernel readahead of the mount (default 1M, 0 = keep)\n"
	       "    -o max_read=SIZE       largest read request, 4K..1M (default 1M)\n"
	       "    -o uid=N,gid=N         owner of every file (default: the bundle's owner)\n"
	       "    -o metrics_per_model   per-model series in .metrics (default: totals only)\n"
	       "    -o control             a write-only .control file for the owner:\n"
	       "                           evict NAME, prefetch NAME, clear, reload\n"
	       "    -o watch               reload when the bundle file is replaced (rename)\n"
	       "  BUNDLE may be an http:// or https:// URL (read with range requests):\n"
	       "    -o disk_cache=DIR      keep fetched blocks on disk; serves offline later\n"
	       "    -o disk_cache_size=SIZE  bytes the disk tier may hold (default 1G)\n"
	       "    -o timeout=SECONDS     longest one read may take, retries included (30)\n"
	       "    -o connect_timeout=SECONDS  connection limit (default 5)\n"
	       "    -o retries=N           extra attempts after a transient failure (5)\n"
	       "    -o ca_file=PATH        PEM CA bundle for https (default: system CAs)\n"
	       "    -o header_file=PATH    its first line is sent as an extra header, e.g.\n"
	       "                           \"Authorization: Bearer ...\" (never logged)\n"
	       "    SIZE takes K, M or G suffixes meaning KiB, MiB, GiB.\n"
	       "    The mount is always read-only; default_permissions is always on.\n\n",
	       argv0);
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	cli_opts *o = data;

	if (key == KEY_IGNORE)
		return 0;
	if (key == FUSE_OPT_KEY_NONOPT && !o->bundle) {
		o->bundle = strdup(arg);
		return o->bundle ? 0 : -1;
	}
	if (key == FUSE_OPT_KEY_NONOPT && !o->mountpoint) {
		o->mountpoint = strdup(arg);
		return o->mountpoint ? 1 : -1;	/* kept for fuse_parse_cmdline */
	}
	if (key != FUSE_OPT_KEY_OPT)
		return 1;
	if (strncmp(arg, "x-", 2) == 0 || strncmp(arg, "comment=", 8) == 0)
		return 0;	/* fstab annotations for other tools */
	switch (apbm_opts_set(&o->o, arg)) {
	case 1:
		return 0;	/* ours: consumed */
	case 0:
		return 1;	/* libfuse's (or unknown: fuse_session_new says so) */
	default:
		return -1;
	}
}

/*
 * What a reload opens: a URL as given (with its secrets: never logged), or
 * the path made absolute without resolving symlinks (the daemon changes
 * directory; a deployment may point a symlink at each new version).
 */
static char *absolute_path(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (apb_is_url(path) || path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&out, "%s/%s", cwd, path) < 0)
		return NULL;
	return out;
}

/*
 * Cuts a URL's user:password@ and its ?query / #fragment in place: what
 * remains names the bundle in fsname, .stats and messages (a presigned
 * URL's signature is a secret).  The full URL is used only to open.
 */
static void redact_url(char *url)
{
	char *host = strstr(url, "://"), *end, *at;

	if (!host)
		return;
	host += 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at)
		memmove(host, at + 1, strlen(at + 1) + 1);
	url[strcspn(url, "?#")] = '\0';
}

/*
 * Resolves a local bundle path and takes the files' times and owner from
 * it.  A URL is kept as given; its files get the mount's start time and the
 * mounting user (the object's Last-Modified is not exposed by the library,
 * and a server's clock says nothing about local ownership).
 */
static int locate_bundle(const char *path, apbm_fs *fs, bool have_uid, bool have_gid,
                         struct stat *stp)
{
	struct stat st = { 0 };

	fs->remote = apb_is_url(path);
	if (!(fs->open_path = absolute_path(path)))
		return -1;
	if (fs->remote) {
		if (!(fs->bundle_path = strdup(path)))
			return -1;
		redact_url(fs->bundle_path);
		clock_gettime(CLOCK_REALTIME, &st.st_mtim);
		st.st_atim = st.st_ctim = st.st_mtim;
		st.st_uid = getuid();
		st.st_gid = getgid();
	} else {
		fs->bundle_path = realpath(path, NULL);
		if (!fs->bundle_path || stat(fs->bundle_path, &st) != 0) {
			fprintf(stderr, PROG ": cannot open bundle '%s': %s\n", path, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, PROG ": cannot open bundle '%s': not a regular file\n", path);
			return -1;
		}
	}
	*stp = st;
	if (!have_uid)
		fs->uid = st.st_uid;
	if (!have_gid)
		fs->gid = st.st_gid;
	return 0;
}

/* Opens and validates the bundle and builds the tree.  Prints one line on error. */
static int open_bundle(const char *path, apbm_fs *fs, bool have_uid, bool have_gid)
{
	apb_source_stats src;
	struct stat st;
	apb_paged *pb;
	int rc;

	if (locate_bundle(path, fs, have_uid, have_gid, &st) != 0)
		return -1;
	if (fs->watch && fs->remote) {
		fprintf(stderr, PROG ": -o watch needs a local bundle file (reload a URL with "
		        "SIGHUP or .control)\n");
		return -1;
	}
	rc = apb_paged_open_with(fs->remote ? path : fs->bundle_path, &fs->cfg, &fs->net.opt, &pb);
	if (rc != 0) {
		fprintf(stderr, PROG ": cannot open bundle '%s': %s\n", fs->bundle_path,
		        apb_last_error());
		return -1;
	}
	apb_paged_config(pb, &fs->cfg);
	apb_paged_source_stats(pb, &src);
	if (src.offline)
		apbm_log(LOG_WARNING, "offline: serving the version the disk tier saw last");
	if ((rc = apbm_gen_new(fs, pb, 1, &st, &fs->cur)) != 0) {
		fprintf(stderr, PROG ": cannot serve bundle '%s': %s\n", path, strerror(-rc));
		return -1;
	}
	fs->gens = fs->cur;
	fs->first_model_node = fs->cur->tree.first_model_node;
	apbm_snap_init(fs, pb);
	return 0;
}

/* Decodes the octal escapes (\\040 ...) of a /proc/self/mountinfo field in place. */
static void unescape_field(char *f)
{
	char *w = f;

	for (char *r = f; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/*
 * Finds the topmost mount at path (absolute, resolved) in mountinfo and
 * copies its type and source; false when path is not a mount point.
 */
static bool mount_at(const char *path, char *type, char *source, size_t cap)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *save, *fld, *mnt;
	size_t n = 0;
	bool found = false;

	if (!f)
		return false;
	while (getline(&line, &n, f) > 0) {
		strtok_r(line, " \n", &save);
		for (int i = 0; i < 3; i++)
			strtok_r(NULL, " \n", &save);
		mnt = strtok_r(NULL, " \n", &save);
		while ((fld = strtok_r(NULL, " \n", &save)) && strcmp(fld, "-") != 0)
			;
		char *t = strtok_r(NULL, " \n", &save), *src = strtok_r(NULL, " \n", &save);
		if (!mnt || !t || !src)
			continue;
		unescape_field(mnt);
		if (strcmp(mnt, path) != 0)
			continue;
		unescape_field(src);
		snprintf(type, cap, "%s", t);
		snprintf(source, cap, "%s", src);
		found = true;	/* keep going: the last one is on top */
	}
	free(line);
	fclose(f);
	return found;
}

/*
 * Refuses a mountpoint that cannot work: missing, not a directory, a dead
 * FUSE mount (its daemon is gone: ENOTCONN) or a live FUSE mount (a second
 * mount would silently stack on it).  Prints one line; returns 0 or -1.
 */
static int check_mountpoint(const char *mnt)
{
	char *abs, type[256], source[PATH_MAX];
	struct statfs sfs;
	struct stat st;
	int rc = 0;

	if (stat(mnt, &st) != 0) {
		if (errno == ENOTCONN)
			goto dead;
		fprintf(stderr, PROG ": mountpoint '%s': %s\n", mnt, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, PROG ": mountpoint '%s' is not a directory\n", mnt);
		return -1;
	}
	abs = realpath(mnt, NULL);
	if (!abs) {
		if (errno == ENOTCONN)
			goto dead;
		fprintf(stderr, PROG ": mountpoint '%s': %s\n", mnt, strerror(errno));
		return -1;
	}
	if (mount_at(abs, type, source, sizeof(type)) && strncmp(type, "fuse", 4) == 0) {
		/* stat may answer from cached attributes; statfs asks the daemon. */
		if (statfs(abs, &sfs) != 0 && errno == ENOTCONN) {
			free(abs);
			goto dead;
		}
		fprintf(stderr, PROG ": mountpoint '%s' is already mounted (%s from %s); "
		        "unmount it first: fusermount3 -u %s\n", mnt, type, source, mnt);
		rc = -1;
	}
	free(abs);
	return rc;
dead:
	fprintf(stderr, PROG ": mountpoint '%s' is a dead FUSE mount (its daemon is gone); "
	        "unmount it first: fusermount3 -u %s\n", mnt, mnt);
	return -1;
}

/* Adds the options every mount gets: ro last, so that an fstab "rw" loses (but see -o control). */
static int add_mount_args(struct fuse_args *args, const apbm_fs *fs)
{
	char *head = NULL, tail[128], *fsname;
	int rc;

	if (asprintf(&fsname, "fsname=%s", fs->bundle_path) < 0)
		return -1;
	rc = fuse_opt_add_opt_escaped(&head, fsname);
	free(fsname);
	if (rc == 0)
		rc = fuse_opt_add_opt(&head, "subtype=" PROG);
	if (rc == 0)
		rc = fuse_opt_insert_arg(args, 1, "-o");
	if (rc == 0)
		rc = fuse_opt_insert_arg(args, 2, head);
	free(head);
	/*
	 * A read-only mount refuses every open for writing in the kernel, so
	 * with -o control the mount is rw at the VFS level: every file but
	 * .control is still 0444 and every modifying operation answers EROFS.
	 */
	snprintf(tail, sizeof(tail), "%s,default_permissions,max_read=%u",
	         fs->control ? "rw" : "ro", fs->max_read);
	if (rc == 0)
		rc = fuse_opt_add_arg(args, "-o");
	if (rc == 0)
		rc = fuse_opt_add_arg(args, tail);
	return rc;
}

typedef struct ra_job {
	char *mountpoint;
	uint64_t bytes;
} ra_job;

/*
 * Raises the mount's bdi read_ahead_kb (the kernel caps readahead of a FUSE
 * mount at 128 KiB by default).  Runs on its own thread: the stat() below
 * waits for the session loop to answer INIT, after which the kernel no longer
 * lowers the value.  Failure (not root, no sysfs) just keeps the default.
 */
static void *readahead_thread(void *arg)
{
	ra_job *j = arg;
	struct stat st;
	struct statfs sfs;
	char path[96];
	int fd;

	if (stat(j->mountpoint, &st) == 0 && st.st_ino == 1 &&
	    statfs(j->mountpoint, &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC) {
		snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		         major(st.st_dev), minor(st.st_dev));
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			dprintf(fd, "%llu\n", (unsigned long long)(j->bytes / 1024));
			close(fd);
		}
	}
	free(j->mountpoint);
	free(j);
	return NULL;
}

static void start_readahead(apbm_fs *fs, const char *mountpoint)
{
	pthread_t t;
	ra_job *j;

	if (fs->readahead == 0 || fs->direct_io || !(j = calloc(1, sizeof(*j))))
		return;
	j->mountpoint = strdup(mountpoint);
	j->bytes = fs->readahead;
	if (!j->mountpoint || pthread_create(&t, NULL, readahead_thread, j) != 0) {
		free(j->mountpoint);
		free(j);
		return;
	}
	pthread_detach(t);
}

/* Mounts, daemonizes, serves until unmounted.  Returns the exit status. */
static int serve(apbm_fs *fs, struct fuse_args *args, const struct fuse_cmdline_opts *co)
{
	struct fuse_session *se;
	int ret, status = 0;

	se = fuse_session_new(args, &apbm_ops, sizeof(apbm_ops), fs);
	if (!se)
		return EXIT_USAGE;	/* libfuse printed the offending option */
	/*
	 * libfuse leaves alone a signal ignored at startup, and a shell starts
	 * background jobs with SIGINT ignored; SIGINT and SIGTERM are documented
	 * to unmount, so take them back (SIGHUP stays as nohup left it).
	 */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (fuse_set_signal_handlers(se) != 0) {
		status = EXIT_MOUNT;
		goto out_session;
	}
	if (fuse_session_mount(se, co->mountpoint) != 0) {
		status = EXIT_MOUNT;
		goto out_signals;
	}
	fuse_daemonize(co->foreground);
	if (!co->foreground)
		apbm_log_to_syslog(PROG);
	fs->se = se;
	if (apb_paged_start_worker(fs->cur->pb) != 0)
		apbm_log(LOG_WARNING, "prefetch worker not started: %s", apb_last_error());
	if (fs->trace_path && apb_paged_trace_start(fs->cur->pb, fs->trace_path) != 0) {
		apbm_log(LOG_ERR, "trace not started: %s", apb_last_error());
		status = EXIT_RUNTIME;
		goto out_unmount;
	}
	if (apbm_reload_start(fs) != 0) {
		status = EXIT_RUNTIME;
		goto out_unmount;
	}
	start_readahead(fs, co->mountpoint);
	if (co->singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();

		if (!lc) {
			apbm_log(LOG_ERR, "out of memory");
			status = EXIT_RUNTIME;
			goto out_unmount;
		}
		fuse_loop_cfg_set_clone_fd(lc, (unsigned)co->clone_fd);
		fuse_loop_cfg_set_max_threads(lc, co->max_threads ? co->max_threads : 10);
		/* UINT_MAX means not given; passing it on only logs a warning. */
		if (co->max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc, co->max_idle_threads);
		ret = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	if (ret < 0) {
		apbm_log(LOG_ERR, "session failed: %s", strerror(-ret));
		status = EXIT_RUNTIME;
	}
out_unmount:
	apbm_reload_stop(fs);	/* no reload from here on; the generations stay */
	if (fs->trace_path && apb_paged_trace_stop(fs->cur->pb) != 0 && !status) {
		apbm_log(LOG_ERR, "%s", apb_last_error());
		status = EXIT_RUNTIME;
	}
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	return status;
}

static void free_opts(cli_opts *o)
{
	apbm_opts_free(&o->o);
	free(o->bundle);
	free(o->mountpoint);
}

static void fs_init(apbm_fs *fs)
{
	memset(fs, 0, sizeof(*fs));
	apbm_opts_defaults(fs);
	fs->pool_free = APBM_POOL_BUFS;
	pthread_mutex_init(&fs->pool_lock, NULL);
	pthread_cond_init(&fs->pool_cond, NULL);
	pthread_mutex_init(&fs->bad_lock, NULL);
	pthread_mutex_init(&fs->snap_lock, NULL);
	fs->snap_cap = APBM_SNAP_MIN_CAP;
	pthread_mutex_init(&fs->gen_lock, NULL);
	pthread_mutex_init(&fs->reload_lock, NULL);
	fs->watch_fd = fs->wake_fd[0] = fs->wake_fd[1] = -1;
}

static void fs_fini(apbm_fs *fs)
{
	apbm_reload_stop(fs);
	apbm_opens_free(fs);
	apbm_gens_free(fs);
	apbm_pool_free(fs);
	apbm_snaps_free(fs);
	apbm_badblock_free(fs);
	free(fs->bundle_path);
	free(fs->open_path);
	free(fs->trace_path);
	apbm_remote_free(&fs->net);
	pthread_mutex_destroy(&fs->pool_lock);
	pthread_cond_destroy(&fs->pool_cond);
	pthread_mutex_destroy(&fs->bad_lock);
	pthread_mutex_destroy(&fs->snap_lock);
	pthread_mutex_destroy(&fs->gen_lock);
	pthread_mutex_destroy(&fs->reload_lock);
}

/* True when the arguments ask for --help or --version (nothing is mounted then). */
static bool asks_info(const struct fuse_args *args)
{
	for (int i = 1; i < args->argc; i++) {
		const char *a = args->argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "-V") ||
		    !strcmp(a, "--version"))
			return true;
	}
	return false;
}

/* Handles -h and -V; returns -1 when neither was given. */
static int info_only(const char *argv0, const struct fuse_cmdline_opts *co)
{
	if (co->show_help) {
		usage(argv0);
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lowlevel_help();
		return 0;
	}
	if (co->show_version) {
		printf(PROG " %s (libapbundle %s, libfuse %s)\n", APB_VERSION_STRING,
		       apb_version(), fuse_pkgversion());
		fuse_lowlevel_version();
		return 0;
	}
	return -1;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co = { 0 };
	cli_opts o = { 0 };
	apbm_fs fs;
	char err[512];
	int status = EXIT_USAGE;

	fs_init(&fs);
	if (fuse_opt_parse(&args, &o, opt_spec, opt_proc) != 0)
		goto out;
	/* Before libfuse's parser, which fails on such a mountpoint with less to say. */
	status = EXIT_MOUNT;
	if (o.bundle && o.mountpoint && !asks_info(&args) && check_mountpoint(o.mountpoint) != 0)
		goto out;
	status = EXIT_USAGE;
	if (fuse_parse_cmdline(&args, &co) != 0)
		goto out;
	if ((status = info_only(argv[0], &co)) >= 0)
		goto out;
	if (o.o.eviction && !strcmp(o.o.eviction, "help")) {
		status = apbm_eviction_help(stdout);
		goto out;
	}
	status = EXIT_USAGE;
	if (!o.bundle || !co.mountpoint) {
		fprintf(stderr, PROG ": missing %s (usage: " PROG " [options] BUNDLE MOUNTPOINT; "
		        "see --help)\n", o.bundle ? "MOUNTPOINT" : "BUNDLE and MOUNTPOINT");
		goto out;
	}
	if (apbm_opts_check(&o.o, &fs, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (o.o.trace && !(fs.trace_path = apbm_trace_path(o.o.trace)))
		goto out;
	status = EXIT_BUNDLE;
	if (open_bundle(o.bundle, &fs, o.o.uid != NULL, o.o.gid != NULL) != 0)
		goto out;
	fs.foreground = co.foreground;
	status = EXIT_USAGE;
	if (add_mount_args(&args, &fs) != 0)
		goto out;
	status = serve(&fs, &args, &co);
out:
	fs_fini(&fs);
	free_opts(&o);
	free(co.mountpoint);
	fuse_opt_free_args(&args);
	return status;
}
