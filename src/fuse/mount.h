/*
 * mount.h - shared state of apbundle-mount: options, inode tree, ops table.
 *
 * The mount serves one apb_paged handle as a read-only tree.  The tree is
 * built once, before mounting, and never changes: node i is inode i + 1,
 * node 0 is the root, nodes 1 and 2 are the virtual files .stats and
 * .stats.json, and the bundle's directories and models follow in sorted
 * name order, so inode numbers are stable across mounts of the same bundle.
 * Everything in struct apbm_fs is read-only once the session loop runs,
 * except the members guarded by their own mutex (buffer pool, bad-block log).
 * Cross-file helpers of the mount use the apbm_ prefix.
 */
#ifndef APBM_MOUNT_H
#define APBM_MOUNT_H

/* 3.12 API: fuse_loop_cfg_* lets us set the thread limits explicitly. */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "apbundle.h"

/* Node kinds stored in apbm_node.model when it is not a model index. */
#define APBM_DIR    (-1)
#define APBM_VSTATS (-2)
#define APBM_VJSON  (-3)

#define APBM_ROOT_NODE 0u
#define APBM_NODE_STATS 1u
#define APBM_NODE_JSON 2u
#define APBM_FIRST_NODE 3u

#define APBM_DEFAULT_MAX_READ (1u << 20)
#define APBM_DEFAULT_READAHEAD (1u << 20)
#define APBM_POOL_BUFS 4u   /* copy buffers of max_read bytes: bounds RSS */
#define APBM_MAX_IOV 512    /* cache pages one zero-copy reply may point at */

/* One file or directory.  name points into the model name (not NUL-ended). */
typedef struct apbm_node {
	const char *name;
	uint32_t name_len;
	uint32_t parent;       /* node index */
	int64_t model;         /* model index >= 0, or APBM_DIR / APBM_V* */
	uint64_t size;         /* model size; 0 for the others */
	uint32_t first_child;  /* directories: index into apbm_tree.children */
	uint32_t n_children;
	uint32_t n_subdirs;
} apbm_node;

typedef struct apbm_tree {
	apbm_node *nodes;
	uint32_t n_nodes;
	uint32_t *children;    /* per directory, a run of node indexes */
	uint32_t *slots;       /* hash of (parent, name) -> node index + 1 */
	uint32_t mask;
	uint32_t n_hidden;     /* models shadowed by .stats / .stats.json */
} apbm_tree;

typedef struct apbm_fs {
	apb_paged *pb;
	char *bundle_path;     /* absolute */
	apb_paging_config cfg;
	apbm_tree tree;
	bool direct_io;
	bool foreground;
	bool use_syslog;
	uint32_t max_read;
	uint64_t readahead;    /* bytes for the bdi; 0 = leave the kernel's */
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;
	uint64_t bundle_size;

	pthread_mutex_t pool_lock;  /* read buffers, when no zero-copy path */
	pthread_cond_t pool_cond;
	void *pool[APBM_POOL_BUFS];
	unsigned pool_free;

	pthread_mutex_t bad_lock;   /* blocks already reported corrupt */
	uint64_t *bad_keys;
	size_t n_bad, cap_bad;

	pthread_mutex_t vbuf_lock;  /* open .stats snapshots (ops.c) */
	struct apbm_vbuf *vbufs;    /* freed at exit if RELEASE never came */
} apbm_fs;

/** The node of inode ino, or NULL when there is none. */
static inline const apbm_node *apbm_node_of(const apbm_fs *fs, fuse_ino_t ino)
{
	if (ino == 0 || ino > fs->tree.n_nodes)
		return NULL;
	return &fs->tree.nodes[ino - 1];
}

/* ---- ops.c ---- */

/** The low-level operations table; userdata is the apbm_fs. */
extern const struct fuse_lowlevel_ops apbm_ops;

/**
 * Builds fs->tree from the models of fs->pb.  Returns 0, or -ENOMEM, or
 * -EEXIST with a message logged when a model name is also a directory.
 */
int apbm_tree_build(apbm_fs *fs);

/** Frees fs->tree.  Safe on a zeroed or partly built tree. */
void apbm_tree_free(apbm_tree *t);

/** Frees the read buffer pool (after the session loop has ended). */
void apbm_pool_free(apbm_fs *fs);

/**
 * Frees the .stats snapshots still open after the session loop has ended:
 * the kernel may unmount without sending RELEASE for a file closed just
 * before.  Call only once no request thread runs.
 */
void apbm_vbufs_free(apbm_fs *fs);

/* ---- vfiles.c ---- */

/**
 * Renders a snapshot of the cache statistics for node kind (APBM_VSTATS:
 * text, APBM_VJSON: one JSON object).  On success *out is a malloc'ed
 * buffer of *len bytes owned by the caller.  Returns 0 or -ENOMEM.
 */
int apbm_vfile_render(apbm_fs *fs, int64_t kind, char **out, size_t *len);

/** getxattr: user.apbundle.checksum, .offset and the model's metadata. */
void apbm_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);

/** listxattr: the names apbm_getxattr answers for ino. */
void apbm_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

/* ---- options.c ---- */

/** Our -o options as given (malloc'ed strings, NULL = not given). */
typedef struct apbm_opts {
	char *max_memory, *page_size, *eviction, *prefetch, *prefetch_count;
	char *readahead, *max_read, *uid, *gid;
	bool direct_io;
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
 * 0..1G, max_read 4K..1M), eviction not lru/lfu, prefetch not a boolean,
 * prefetch_count not 0..1024, uid/gid neither a number nor a known name.
 */
int apbm_opts_check(const apbm_opts *o, apbm_fs *fs, char *err, size_t errlen);

/* ---- main.c ---- */

/** Logs one line: to stderr in the foreground, to syslog when daemonized. */
void apbm_log(apbm_fs *fs, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
