/*
 * mount.h - shared state of apbundle-mount: options, the open bundle, ops.
 *
 * The mount serves a generation (apbm_gen: one apb_paged handle and its
 * read-only tree, tree.h) at a time; a reload (reload.c) replaces the
 * current one while older ones keep serving the descriptors opened on
 * them.  Everything in struct apbm_fs is read-only once the session loop
 * runs, except the members guarded by their own mutex (generations,
 * buffer pool, bad-block log, snapshots).  Memory outside max_memory, all bounded: the tree (per
 * model, tree.h), the copy-buffer pool (APBM_POOL_BUFS x max_read), the
 * bad-block log (APBM_BAD_MAX keys) and the open snapshots of the
 * generated files (fs->snap_cap bytes, snap.c).  Cross-file helpers of the
 * mount use the apbm_ prefix.
 */
#ifndef APBM_MOUNT_H
#define APBM_MOUNT_H

/* 3.12 API: fuse_loop_cfg_* lets us set the thread limits explicitly. */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "apbundle.h"
#include "control.h"
#include "log.h"
#include "metrics.h"
#include "obuf.h"
#include "tree.h"

#define APBM_DEFAULT_MAX_READ (1u << 20)
#define APBM_DEFAULT_READAHEAD (1u << 20)
#define APBM_POOL_BUFS 4u   /* copy buffers of max_read bytes: bounds RSS */
#define APBM_MAX_IOV 512    /* cache pages one zero-copy reply may point at */
#define APBM_BAD_MAX 4096u  /* bad blocks remembered (each logged once), minus one */
#define APBM_SNAP_MIN_CAP (16u << 20) /* bytes of open snapshots, at least */

typedef struct apbm_snap apbm_snap;

/* How a remote bundle (an http(s):// URL) is fetched; the strings are owned. */
typedef struct apbm_remote {
	apb_open_options opt;  /* its strings point at the members below */
	char *ca_file;         /* absolute (the daemon changes directory) */
	char *header;          /* header_file's first line: a secret, never logged */
	char *disk_cache;
} apbm_remote;

/*
 * One opened version of the bundle.  Immutable once published, except
 * refs (under apbm_fs.gen_lock).  Who holds a reference: fs->cur (the
 * current one), every open model file (fi->fh) and every request while
 * it uses the generation.  The last reference of a replaced generation
 * closes it.
 */
typedef struct apbm_gen {
	apb_paged *pb;
	apbm_tree tree;
	uint64_t id;               /* 1 at mount, then +1 per reload */
	uint64_t refs;
	uint64_t bundle_size;
	struct timespec atime, mtime, ctime;
	struct apbm_gen *next;     /* list of live generations (fs->gens) */
} apbm_gen;

typedef struct apbm_fs {
	pthread_mutex_t gen_lock;  /* cur, gens, every gen's refs */
	apbm_gen *cur;             /* what new lookups and opens see */
	apbm_gen *gens;            /* every live generation, newest first */
	uint32_t first_model_node; /* the same in every generation's tree */
	apbm_gen *rgen;            /* the one a render uses (under snap_lock, snap.c) */
	struct apbm_open *opens;   /* every open model file's fh (ops.c), under gen_lock */
	pthread_mutex_t reload_lock; /* one reload at a time */
	uint64_t reloads, reload_failures; /* under reload_lock; read atomically */
	struct fuse_session *se;   /* for the kernel notifications of a reload */
	char *open_path;           /* what a reload opens: the path as given
	                              (absolute, symlinks kept) or the full URL
	                              (a secret: never logged) */
	bool watch;                /* -o watch: reload when the path is replaced */
	int watch_fd, wake_fd[2];  /* inotify, and the pipe SIGHUP writes to */
	pthread_t watch_thread;
	bool watch_started;
	char *bundle_path;     /* absolute, or the URL as given */
	bool remote;           /* bundle_path is an http(s):// URL */
	apbm_remote net;       /* -o ca_file, header_file, disk_cache, timeouts */
	char *trace_path;      /* absolute; NULL: no trace=FILE */
	apb_paging_config cfg;
	bool direct_io;
	bool foreground;
	bool metrics_per_model;    /* -o metrics_per_model */
	bool control;              /* -o control: .control exists */
	apbm_metrics metrics;      /* FUSE reads measured here (metrics.c) */
	uint32_t max_read;
	uint64_t readahead;    /* bytes for the bdi; 0 = leave the kernel's */
	uid_t uid;
	gid_t gid;

	pthread_mutex_t pool_lock;  /* read buffers, when no zero-copy path */
	pthread_cond_t pool_cond;
	void *pool[APBM_POOL_BUFS];
	unsigned pool_free;

	pthread_mutex_t bad_lock;   /* blocks already reported corrupt (badblock.c) */
	struct apbm_badset *bad;

	pthread_mutex_t snap_lock;  /* open snapshots of generated files (snap.c) */
	apbm_snap *snaps;           /* every live one; freed at exit if RELEASE never came */
	apbm_snap *newest[3];       /* per kind, the one a new open may share */
	size_t snap_bytes;          /* mapped bytes of every live snapshot */
	size_t snap_cap;            /* ... at most this many */
} apbm_fs;

/* ---- reload.c ---- */

/** The current generation, with a reference (drop it with apbm_gen_put). */
apbm_gen *apbm_gen_cur(apbm_fs *fs);

/**
 * The generation inode ino belongs to, with a reference, and its node in
 * *n; NULL when there is none (the generation was closed, or no such
 * node).  The root and the generated files belong to every generation:
 * they resolve in the current one.
 */
apbm_gen *apbm_gen_of_ino(apbm_fs *fs, uint64_t ino, const apbm_node **n);

/** Generations open now (the current one and those with open files). */
uint64_t apbm_gens_live(apbm_fs *fs);

/** Takes one more reference on g (an open file). */
void apbm_gen_get(apbm_fs *fs, apbm_gen *g);

/** Drops a reference; the last one of a replaced generation closes it.  NULL ok. */
void apbm_gen_put(apbm_fs *fs, apbm_gen *g);

/** The inode number of node n of g. */
uint64_t apbm_gen_ino(const apbm_gen *g, const apbm_node *n);

/**
 * Builds generation id from the opened pb (taken: closed on error),
 * with the bundle file's times in st (NULL: now).  Returns 0, -ENOMEM or
 * -EFBIG (the tree; logged).
 */
int apbm_gen_new(apbm_fs *fs, apb_paged *pb, uint64_t id, const struct stat *st, apbm_gen **out);

/**
 * Opens fs->open_path again and, when it opens and validates, makes it
 * the current generation (the old one serves its open files until they
 * close) and tells the kernel to forget the old names.  why names the
 * trigger in the log.  Returns 0, or the library's error code (logged
 * with its reason; the current generation stays).
 */
int apbm_reload(apbm_fs *fs, const char *why);

/**
 * Starts the thread that reloads on SIGHUP and, with -o watch, when the
 * bundle's path is replaced by a rename.  Installs the SIGHUP handler
 * (after libfuse's, which would end the session).  0 or -errno (logged).
 */
int apbm_reload_start(apbm_fs *fs);

/** Stops that thread (after the session loop).  Safe when it never started. */
void apbm_reload_stop(apbm_fs *fs);

/** Frees every generation (at exit: the kernel may unmount without every RELEASE). */
void apbm_gens_free(apbm_fs *fs);

/**
 * Closes the reader of every model file still open and frees its fh (at
 * exit, before apbm_gens_free: a lazy unmount ends the session with files
 * open, and no RELEASE comes for them).
 */
void apbm_opens_free(apbm_fs *fs);

/* ---- ops.c ---- */

/** The low-level operations table; userdata is the apbm_fs. */
extern const struct fuse_lowlevel_ops apbm_ops;

/** Frees the read buffer pool (after the session loop has ended). */
void apbm_pool_free(apbm_fs *fs);

/* ---- badblock.c ---- */

/**
 * Logs the bad block (or table, or whole-model checksum) e names, the
 * first time it is reported; later reports of it are silent.  Safe from
 * any request thread.
 */
void apbm_badblock_report(apbm_fs *fs, apb_paged *pb, const apb_block_error *e);

/** Frees the set of logged blocks (at exit). */
void apbm_badblock_free(apbm_fs *fs);

/* ---- snap.c ---- */

/**
 * Sets fs->snap_cap for the open bundle: two .stats.json renders' worth
 * (estimated from the model names), at least APBM_SNAP_MIN_CAP.
 */
void apbm_snap_init(apbm_fs *fs, apb_paged *pb);

/**
 * Gives the caller a reference to a snapshot of generated file kind
 * (APBM_VSTATS, APBM_VJSON): the newest one if the statistics have not
 * changed since it was rendered, else a new one.  Returns 0, -EBUSY (the
 * open snapshots already hold fs->snap_cap bytes) or -ENOMEM.
 */
int apbm_snap_open(apbm_fs *fs, int64_t kind, apbm_snap **out);

/** Takes one more reference (a read in flight). */
void apbm_snap_get(apbm_snap *s);

/** Drops a reference; the last one unmaps the text.  NULL is ignored. */
void apbm_snap_put(apbm_fs *fs, apbm_snap *s);

/** The text of s (*len bytes); valid while a reference is held. */
const char *apbm_snap_text(const apbm_snap *s, size_t *len);

/**
 * Frees the snapshots still open after the session loop has ended: the
 * kernel may unmount without sending RELEASE for a file closed just
 * before.  Call only once no request thread runs.
 */
void apbm_snaps_free(apbm_fs *fs);

/* ---- vfiles.c ---- */

/**
 * Renders generated file kind (APBM_VSTATS: text, APBM_VJSON: one JSON
 * object) from the statistics st into out (appended).  Returns 0, -ENOMEM
 * (out->failed: no memory or out->limit reached), -EIO (the bundle's
 * model list failed) or -EINVAL (not a generated kind).
 */
int apbm_vfile_render(apbm_fs *fs, int64_t kind, const apb_paging_stats *st, apbm_obuf *out);

/** Mean request latency of src in microseconds (0 before any request). */
uint64_t apbm_source_mean_us(const apb_source_stats *src);

/* ---- control.c ---- */

/**
 * Runs the commands of one write to .control: all parsed and their models
 * looked up before any runs.  Returns 0, or -EINVAL / -E2BIG (see
 * apbm_control_parse), -ENOENT (no such model), -EAGAIN (prefetch queue
 * full or prefetch off), or for a reload that failed (the old bundle
 * stays; the log says why) the errno of its error (EINVAL for a bundle
 * that does not validate, ENOENT, EIO, ...).
 */
int apbm_control_write(apbm_fs *fs, const char *buf, size_t len);

/* ---- metrics.c ---- */

/**
 * Renders .metrics (Prometheus text format 0.0.4) from st and fs->metrics
 * into b.  Returns 0, -ENOMEM (b->failed) or -EIO.
 */
int apbm_metrics_render(apbm_fs *fs, const apb_paging_stats *st, apbm_obuf *b);

/** Model i's description and counters, as the generated files show them.  0 or -EIO. */
int apbm_model_row(apbm_fs *fs, size_t i, apb_model_info *info, apb_model_stats *ms);

/** "lru", "lfu": the name the options and the generated files use. */
const char *apbm_eviction_name(apb_eviction e);

/* ---- xattr.c ---- */

/** getxattr: user.apbundle.checksum, .offset and the model's metadata. */
void apbm_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);

/** listxattr: the names apbm_getxattr answers for ino. */
void apbm_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

/* ---- options.c ---- */

/** Our -o options as given (malloc'ed strings, NULL = not given). */
typedef struct apbm_opts {
	char *max_memory, *page_size, *eviction, *prefetch, *prefetch_count;
	char *readahead, *max_read, *uid, *gid, *trace;
	char *ca_file, *header_file, *disk_cache, *disk_cache_size;
	char *timeout, *connect_timeout, *retries;
	char *huge_pages;
	bool direct_io, metrics_per_model, control, watch;
} apbm_opts;

/**
 * Recognises one option of a -o list ("name=value", or "direct_io") and
 * keeps a copy of its value in o, replacing an earlier one: the last
 * occurrence wins.  Values are not checked here (apbm_opts_check does).
 * Returns 1 when arg is ours, 0 when it is not (o unchanged: it belongs to
 * libfuse), -ENOMEM.
 */
int apbm_opts_set(apbm_opts *o, const char *arg);

/** Frees the strings of o and resets it to nothing given.  Safe on a zeroed o. */
void apbm_opts_free(apbm_opts *o);

/** Sets the defaults apbm_opts_check starts from: fs->cfg, max_read, readahead, direct_io. */
void apbm_opts_defaults(apbm_fs *fs);

/**
 * Validates every option given in o into fs->cfg (max_memory, page_size,
 * eviction, prefetch, prefetch_count), fs->readahead, fs->max_read,
 * fs->uid, fs->gid (names are looked up) and fs->direct_io; options not
 * given keep fs's values.  Returns 0, or -EINVAL with fs unchanged and one
 * line in err (errlen bytes, always NUL-terminated when errlen > 0) naming
 * the option and value: a size that does not parse or is out of range
 * (max_memory >= 1, page_size 512..1G and a power of two, readahead
 * 0..1G, max_read 4K..1M), eviction not a policy name, prefetch not a boolean,
 * prefetch_count not 0..1024, uid/gid neither a number nor a known name.
 * The remote options fill fs->net (apb_open_options_init's defaults for
 * what is not given): ca_file must be readable (kept absolute),
 * header_file's first line is read now and must be one "Name: value"
 * header (the error never quotes it), disk_cache_size a size >= 1 MiB,
 * timeout and connect_timeout seconds (decimals allowed) from 0.001 to
 * 3600, retries 0..100.
 */
int apbm_opts_check(const apbm_opts *o, apbm_fs *fs, char *err, size_t errlen);

/** Frees the strings of r (the header is wiped first) and zeroes it. */
void apbm_remote_free(apbm_remote *r);

/** Prints the eviction policies, one line each with when to pick it; returns 0. */
int apbm_eviction_help(FILE *out);

/**
 * For trace=FILE: creates (or truncates) path now, so that a bad path is
 * a usage error before mounting, and returns its absolute form (malloc'ed;
 * the daemon changes directory).  NULL after printing the error.
 */
char *apbm_trace_path(const char *path);

#endif
