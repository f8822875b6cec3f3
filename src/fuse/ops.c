/*
 * ops.c - the FUSE low-level operations of apbundle-mount.
 *
 * Each generation's inode tree (tree.c) is immutable, so the operations
 * take only the generations' lock (a reference for the request, reload.c),
 * the read buffer pool, the bad-block log and the snapshots of generated
 * files (snap.c).  Invariants: inode = the generation's bits and node
 * index + 1 (apbm_gen_ino); an open model file's fh (apbm_open) holds
 * its generation, so it reads the bundle it opened until it is closed, and
 * its reader on that generation's handle (its own read window), closed at
 * release before the generation is let go; a generated file's fh is its
 * snapshot; every request gets exactly one reply; nothing is ever written
 * to the bundle and every modifying operation answers EROFS.  Model reads
 * reply straight from pinned cache pages (fuse_reply_iov) and
 * unpin only after the reply was written; a bounded pool of copy buffers
 * (APBM_POOL_BUFS, outside max_memory) serves what cannot be pinned.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/mman.h>
#include <sys/statvfs.h>

#include "mount.h"

#define TIMEOUT 86400.0

/* ------------------------------------------------------------------ */
/* Attributes and lookups                                               */
/* ------------------------------------------------------------------ */

static apbm_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* True when ino is a model's or a bundle directory's (not the root's or a generated file's). */
static bool bundle_ino(const apbm_fs *fs, uint64_t ino)
{
	return (ino & 0xffffffffu) > fs->first_model_node;
}

static void fill_attr(const apbm_fs *fs, const apbm_gen *g, const apbm_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)apbm_gen_ino(g, n);
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim = g->atime;
	st->st_mtim = g->mtime;
	st->st_ctim = g->ctime;
	st->st_blksize = (blksize_t)fs->cfg.page_size;
	if (n->model == APBM_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2 + n->n_subdirs;
		st->st_size = 4096;
	} else if (n->model == APBM_VCONTROL) {
		st->st_mode = S_IFREG | 0200;	/* the owner writes commands; nobody reads */
		st->st_nlink = 1;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
	}
	st->st_blocks = (st->st_size + 511) / 512;
}

static void fill_entry(const apbm_fs *fs, const apbm_gen *g, const apbm_node *n,
                       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = (fuse_ino_t)apbm_gen_ino(g, n);
	e->generation = 1;
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
	fill_attr(fs, g, n, &e->attr);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *p;
	apbm_gen *g = apbm_gen_of_ino(fs, parent, &p);
	struct fuse_entry_param e;
	size_t len = strlen(name);

	if (!p || p->model != APBM_DIR) {
		fuse_reply_err(req, p ? ENOTDIR : ENOENT);
		apbm_gen_put(fs, g);
		return;
	}
	uint32_t i = apbm_tree_find(&g->tree, (uint32_t)(p - g->tree.nodes), name, len);
	if (i == UINT32_MAX) {
		/* A tree never changes (a reload invalidates the entry): cache the negative entry. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = TIMEOUT;
		fuse_reply_entry(req, &e);
	} else {
		fill_entry(fs, g, &g->tree.nodes[i], &e);
		fuse_reply_entry(req, &e);
	}
	apbm_gen_put(fs, g);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *n;
	apbm_gen *g = apbm_gen_of_ino(fs, ino, &n);
	struct stat st;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(fs, g, n, &st);
	apbm_gen_put(fs, g);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	apbm_fs *fs = fs_of(req);
	apbm_gen *g = apbm_gen_cur(fs);
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = fs->cfg.page_size;
	sv.f_frsize = fs->cfg.page_size;
	sv.f_blocks = (g->bundle_size + fs->cfg.page_size - 1) / fs->cfg.page_size;
	sv.f_files = g->tree.n_nodes;
	apbm_gen_put(fs, g);
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* ------------------------------------------------------------------ */
/* Directories                                                          */
/* ------------------------------------------------------------------ */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const apbm_node *n;
	apbm_gen *g = apbm_gen_of_ino(fs_of(req), ino, &n);

	bool dir = n && n->model == APBM_DIR;

	apbm_gen_put(fs_of(req), g);
	if (!dir) {
		fuse_reply_err(req, n ? ENOTDIR : ENOENT);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* Entry k of directory d: 0 ".", 1 "..", then the children.  Returns its node. */
static const apbm_node *dir_entry(const apbm_gen *g, const apbm_node *d, size_t k,
                                  char name[NAME_MAX + 1])
{
	const apbm_node *c;

	if (k < 2) {
		strcpy(name, k == 0 ? "." : "..");
		return k == 0 ? d : &g->tree.nodes[d->parent];
	}
	c = &g->tree.nodes[g->tree.children[d->first_child + k - 2]];
	if (c->name_len > NAME_MAX)
		return NULL;
	memcpy(name, c->name, c->name_len);
	name[c->name_len] = '\0';
	return c;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *d;
	apbm_gen *g = apbm_gen_of_ino(fs, ino, &d);
	char name[NAME_MAX + 1], *buf = NULL;
	size_t used = 0, total;

	if (!d || d->model != APBM_DIR || !(buf = malloc(size ? size : 1))) {
		fuse_reply_err(req, !d ? ENOENT : d->model != APBM_DIR ? ENOTDIR : ENOMEM);
		apbm_gen_put(fs, g);
		return;
	}
	total = (size_t)d->n_children + 2;
	for (size_t k = off < 0 ? 0 : (size_t)off; k < total; k++) {
		const apbm_node *c = dir_entry(g, d, k, name);
		size_t want;
		if (!c)
			continue;
		if (plus) {
			struct fuse_entry_param e;
			fill_entry(fs, g, c, &e);
			want = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)k + 1);
		} else {
			struct stat st = { .st_ino = (ino_t)apbm_gen_ino(g, c),
			                   .st_mode = c->model == APBM_DIR ? S_IFDIR : S_IFREG };
			want = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)k + 1);
		}
		if (want > size - used)
			break;
		used += want;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	apbm_gen_put(fs, g);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

/* ------------------------------------------------------------------ */
/* Files                                                                */
/* ------------------------------------------------------------------ */

/*
 * .control: write-only, and only by the mount's owner (the file's uid) or
 * root, checked here too, not only by default_permissions' mode 0200.
 */
static void open_control(fuse_req_t req, apbm_fs *fs, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	if (ctx->uid != fs->uid && ctx->uid != 0) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_WRONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	fi->direct_io = 1;
	fi->nonseekable = 1;
	fuse_reply_open(req, fi);
}

/*
 * What an open model file's fh points to (one small allocation per open
 * file, outside max_memory like the reader's): the reference to the
 * generation it opened, and its reader on that generation's handle (its
 * own read window), or NULL when the library refused one (APB_MAX_READERS
 * open, or no memory): its reads then share the model's window.  Freed at
 * RELEASE: the reader is closed first, then the reference is dropped
 * (which may close the generation's handle the reader was on).
 */
typedef struct apbm_open {
	apbm_gen *g;
	apb_reader *rd;
	struct apbm_open *prev, *next;   /* fs->opens, under gen_lock */
} apbm_open;

static void open_link(apbm_fs *fs, apbm_open *o, bool in)
{
	pthread_mutex_lock(&fs->gen_lock);
	if (in) {
		o->prev = NULL;
		o->next = fs->opens;
		if (fs->opens)
			fs->opens->prev = o;
		fs->opens = o;
	} else {
		if (o->prev)
			o->prev->next = o->next;
		else
			fs->opens = o->next;
		if (o->next)
			o->next->prev = o->prev;
	}
	pthread_mutex_unlock(&fs->gen_lock);
}

static void open_free(apbm_fs *fs, apbm_open *o)
{
	open_link(fs, o, false);
	apb_reader_close(o->rd);
	apbm_gen_put(fs, o->g);	/* may close an old generation */
	free(o);
}

/** See mount.h.  No request runs any more: nothing else touches the list. */
void apbm_opens_free(apbm_fs *fs)
{
	while (fs->opens) {
		apbm_open *o = fs->opens;
		fs->opens = o->next;
		apb_reader_close(o->rd);
		free(o);   /* its generation reference goes with apbm_gens_free */
	}
}

/* A model file: fi->fh holds g (the reference the caller took) and a reader, until RELEASE. */
static void open_model(fuse_req_t req, apbm_fs *fs, apbm_gen *g, const apbm_node *n,
                       struct fuse_file_info *fi)
{
	apbm_open *o = malloc(sizeof *o);

	if (!o) {
		apbm_gen_put(fs, g);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	o->g = g;
	if (apb_reader_open(g->pb, (size_t)n->model, &o->rd) != 0)
		o->rd = NULL;
	open_link(fs, o, true);
	fi->fh = (uint64_t)(uintptr_t)o;
	fi->direct_io = fs->direct_io;
	fi->keep_cache = !fs->direct_io;
	if (fuse_reply_open(req, fi) != 0)
		open_free(fs, o);	/* the open was interrupted: no RELEASE comes */
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *n;
	apbm_gen *g = apbm_gen_of_ino(fs, ino, &n);
	int64_t kind = n ? n->model : APBM_DIR;
	apbm_snap *snap;
	int rc;

	if (kind >= 0 && (fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC)) {
		fi->noflush = 1;
		open_model(req, fs, g, n, fi);
		return;
	}
	apbm_gen_put(fs, g);	/* the rest does not use the tree */
	if (!n || kind == APBM_DIR) {
		fuse_reply_err(req, n ? EISDIR : ENOENT);
		return;
	}
	if (kind == APBM_VCONTROL) {
		open_control(req, fs, fi);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->noflush = 1;
	rc = apbm_snap_open(fs, kind, &snap);
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)snap;
	fi->direct_io = 1;	/* generated content: its size is not known to stat */
	if (fuse_reply_open(req, fi) != 0)
		apbm_snap_put(fs, snap);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);

	if (bundle_ino(fs, ino))
		open_free(fs, (apbm_open *)(uintptr_t)fi->fh);
	else
		apbm_snap_put(fs, (apbm_snap *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void *pool_get(apbm_fs *fs)
{
	void *b = NULL;

	pthread_mutex_lock(&fs->pool_lock);
	while (fs->pool_free == 0)
		pthread_cond_wait(&fs->pool_cond, &fs->pool_lock);
	fs->pool_free--;
	b = fs->pool[fs->pool_free];
	fs->pool[fs->pool_free] = NULL;
	pthread_mutex_unlock(&fs->pool_lock);
	if (!b) {
		b = mmap(NULL, fs->max_read, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b == MAP_FAILED)
			b = NULL;
	}
	return b;
}

static void pool_put(apbm_fs *fs, void *b)
{
	pthread_mutex_lock(&fs->pool_lock);
	fs->pool[fs->pool_free++] = b;
	pthread_cond_signal(&fs->pool_cond);
	pthread_mutex_unlock(&fs->pool_lock);
}

void apbm_pool_free(apbm_fs *fs)
{
	for (unsigned i = 0; i < APBM_POOL_BUFS; i++) {
		if (fs->pool[i])
			munmap(fs->pool[i], fs->max_read);
		fs->pool[i] = NULL;
	}
}

/* What a failed model read reported, kept before another library call clears it. */
typedef struct read_error {
	bool has_block;
	apb_block_error block;
	char detail[200];
} read_error;

static void capture_error(read_error *re)
{
	re->has_block = apb_last_block_error(&re->block);
	snprintf(re->detail, sizeof(re->detail), "%s", apb_last_error());
}

static void read_vfile(fuse_req_t req, apbm_fs *fs, apbm_snap *snap, size_t size, off_t off)
{
	size_t len = 0;
	const char *text = snap ? apbm_snap_text(snap, &len) : NULL;

	if (!text || off < 0 || (size_t)off >= len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	apbm_snap_get(snap);
	fuse_reply_buf(req, text + off, size);
	apbm_snap_put(fs, snap);
}

/*
 * Logs a failed model read: a block the library names is logged once
 * (badblock.c), with no second read; anything else on every failure.
 */
static void read_failed(apbm_fs *fs, apb_paged *pb, fuse_ino_t ino, uint64_t off,
                        const read_error *re)
{
	if (re->has_block)
		apbm_badblock_report(fs, pb, &re->block);
	else
		apbm_log(LOG_ERR, "read of inode %lu at %llu: %s", (unsigned long)ino,
		         (unsigned long long)off, re->detail);
}

/*
 * Copies [off, off+size) through the cache into a pool buffer and replies
 * with pre[0..n_pre) (pinned pages already describing the bytes before off)
 * followed by the copy.  Returns the bytes copied, or the library's error
 * (nothing replied, the error's details in *re).
 */
static ssize_t reply_copy(fuse_req_t req, apbm_fs *fs, apb_paged *pb, const apbm_node *n,
                          apb_reader *rd, uint64_t off, size_t size, struct iovec *pre, int n_pre,
                          read_error *re)
{
	void *buf = pool_get(fs);
	ssize_t r = -ENOMEM;

	if (buf) {
		r = rd ? apb_reader_read(rd, buf, size, off) :
		         apb_paged_read_index(pb, (size_t)n->model, buf, size, off);
		if (r < 0)
			capture_error(re);
	} else {
		snprintf(re->detail, sizeof(re->detail), "no memory for a read buffer");
	}
	if (r >= 0) {
		pre[n_pre].iov_base = buf;
		pre[n_pre].iov_len = (size_t)r;
		fuse_reply_iov(req, pre, n_pre + 1);
	}
	pool_put(fs, buf);
	return r;
}

/*
 * Replies straight from pinned cache pages (no copy in the daemon); what
 * cannot be pinned, or does not fit the iovec array, is copied.  The pins
 * are released only after the reply has been written.  Returns the bytes
 * replied, or -1 after replying with an error.
 */
static int64_t read_model(fuse_req_t req, apbm_fs *fs, apb_paged *pb, const apbm_node *n,
                          fuse_ino_t ino, apb_reader *rd, size_t size, off_t off)
{
	struct iovec iov[APBM_MAX_IOV + 1];
	apb_pinned *pins = NULL;
	read_error re = { 0 };
	int n_iov = 0;
	bool copy;
	ssize_t r;

	if (off < 0 || (uint64_t)off >= n->size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return 0;
	}
	if (size > fs->max_read)
		size = fs->max_read;
	if ((uint64_t)size > n->size - (uint64_t)off)
		size = (size_t)(n->size - (uint64_t)off);
	r = rd ? apb_reader_pin(rd, (uint64_t)off, size, iov, APBM_MAX_IOV, &n_iov, &pins) :
	         apb_paged_pin_range(pb, (size_t)n->model, (uint64_t)off, size, iov,
	                             APBM_MAX_IOV, &n_iov, &pins);
	/* -ENOBUFS: pinning cannot serve it (all pinned, or a bad block shares
	 * the first page), copying can. */
	copy = r == -ENOBUFS;
	if (r < 0 && !copy)
		capture_error(&re);
	if (r == (ssize_t)size) {
		fuse_reply_iov(req, iov, n_iov);
	} else if (r == 0) {
		fuse_reply_buf(req, NULL, 0);	/* the model ended after all */
	} else if (r > 0 || copy) {
		if (r < 0) {
			r = 0;
			n_iov = 0;
		}
		ssize_t pinned = r;
		r = reply_copy(req, fs, pb, n, rd, (uint64_t)off + (uint64_t)r, size - (size_t)r, iov,
		               n_iov, &re);
		if (r >= 0)
			r += pinned;
	}
	apb_paged_unpin(pb, pins);
	if (r < 0) {
		int err = apb_errno((int)r);
		read_failed(fs, pb, ino, (uint64_t)off, &re);
		fuse_reply_err(req, err ? err : EIO);
		return -1;
	}
	return r;
}

/* Model reads are timed for .metrics (metrics.c), from request to reply. */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);
	/* a model file's: its generation and reader (only until the reply, see below) */
	const apbm_open *o = (const apbm_open *)(uintptr_t)fi->fh;
	apbm_gen *g;
	const apbm_node *n;
	uint64_t t0;
	int64_t r;

	if (!bundle_ino(fs, ino)) {
		if (ino == FUSE_ROOT_ID || ino == fs->first_model_node)
			fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : EBADF);
		else
			read_vfile(req, fs, (apbm_snap *)(uintptr_t)fi->fh, size, off);
		return;
	}
	g = o ? o->g : NULL;
	n = g ? apbm_tree_node(&g->tree, ino & 0xffffffffu) : NULL;
	if (!n || n->model < 0) {
		fuse_reply_err(req, !n || n->model != APBM_DIR ? EBADF : EISDIR);
		return;
	}
	/*
	 * The read's own reference: the kernel may send RELEASE as soon as it
	 * has the reply, while this thread still unpins the pages.
	 */
	apbm_gen_get(fs, g);
	t0 = apbm_now_ns();
	r = read_model(req, fs, g->pb, n, ino, o->rd, size, off);
	apbm_metrics_read(&fs->metrics, apbm_now_ns() - t0, r);
	apbm_gen_put(fs, g);
}

/* ------------------------------------------------------------------ */
/* Everything that would modify the tree: EROFS                         */
/* ------------------------------------------------------------------ */

/* Only the truncation of .control that "echo CMD > .control" asks for; else EROFS. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *n;
	apbm_gen *g = apbm_gen_of_ino(fs, ino, &n);
	const int ok = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
	               FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
	struct stat st;

	if (!n || n->model != APBM_VCONTROL || (to_set & ~ok) ||
	    ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != 0)) {
		apbm_gen_put(fs, g);
		fuse_reply_err(req, EROFS);
		return;
	}
	fill_attr(fs, g, n, &st);
	apbm_gen_put(fs, g);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EROFS);
}

/* Writes: .control takes commands (one write, whole commands); the rest is EROFS. */
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *n;
	apbm_gen *g = apbm_gen_of_ino(fs, ino, &n);
	bool control = n && n->model == APBM_VCONTROL;
	int rc;

	apbm_gen_put(fs, g);
	if (!control) {
		fuse_reply_err(req, EROFS);
		return;
	}
	rc = apbm_control_write(fs, buf, size);
	if (rc != 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	apbm_fs *fs = userdata;

	/* Must equal the -o max_read given to the session (see main.c). */
	conn->max_read = fs->max_read;
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;	/* the files never change */
	if (conn->max_background < 64) {
		conn->max_background = 64;	/* room for the kernel's async readahead */
		conn->congestion_threshold = 48;
	}
}

const struct fuse_lowlevel_ops apbm_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_unlink,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = apbm_getxattr,
	.listxattr = apbm_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
};
