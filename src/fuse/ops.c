/*
 * ops.c - the inode tree and the FUSE low-level operations of apbundle-mount.
 *
 * The tree is built once from the sorted model names (O(n log n) for the
 * sort, O(n) for the rest) and is immutable afterwards, so every operation
 * here is lock-free except the read buffer pool and the bad-block log.
 * Invariants: inode = node index + 1; a directory's children are a run of
 * tree.children in sorted-name order, so readdir offsets are stable; every
 * request gets exactly one reply; nothing is ever written to the bundle and
 * every modifying operation answers EROFS.  Model reads reply straight from
 * pinned cache pages (fuse_reply_iov) and unpin only after the reply was
 * written; a bounded pool of copy buffers serves what cannot be pinned.
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
/* Tree                                                                 */
/* ------------------------------------------------------------------ */

typedef struct sorted_name {
	const char *name;
	uint64_t size;
	uint32_t idx;
} sorted_name;

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const sorted_name *)a)->name, ((const sorted_name *)b)->name);
}

static uint32_t hash_key(uint32_t parent, const char *name, uint32_t len)
{
	uint64_t h = 1469598103934665603ull ^ ((uint64_t)parent * 0x9e3779b97f4a7c15ull);

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* Returns the node index of (parent, name), or UINT32_MAX. */
static uint32_t tree_find(const apbm_tree *t, uint32_t parent, const char *name, uint32_t len)
{
	for (uint32_t s = hash_key(parent, name, len) & t->mask;; s = (s + 1) & t->mask) {
		uint32_t v = t->slots[s];
		if (v == 0)
			return UINT32_MAX;
		const apbm_node *n = &t->nodes[v - 1];
		if (n->parent == parent && n->name_len == len && memcmp(n->name, name, len) == 0)
			return v - 1;
	}
}

/* Appends a node; returns its index, or UINT32_MAX when the name is taken. */
static uint32_t tree_add(apbm_tree *t, uint32_t parent, const char *name, uint32_t len,
                         int64_t model, uint64_t size)
{
	uint32_t s = hash_key(parent, name, len) & t->mask;

	for (; t->slots[s] != 0; s = (s + 1) & t->mask) {
		const apbm_node *n = &t->nodes[t->slots[s] - 1];
		if (n->parent == parent && n->name_len == len && memcmp(n->name, name, len) == 0)
			return UINT32_MAX;
	}
	uint32_t i = t->n_nodes++;
	t->nodes[i] = (apbm_node){ .name = name, .name_len = len, .parent = parent,
	                           .model = model, .size = size };
	t->slots[s] = i + 1;
	return i;
}

/*
 * Adds one model, creating the directories of its name.  stack[d] is the
 * directory node at depth d of the previous name; *depth its length.
 * Returns false when the name collides with an existing file/directory.
 */
static bool tree_add_model(apbm_tree *t, const sorted_name *sn, uint32_t *stack, uint32_t *depth)
{
	const char *p = sn->name;
	uint32_t d = 0;
	const char *slash;

	while ((slash = strchr(p, '/')) != NULL) {
		uint32_t len = (uint32_t)(slash - p);
		if (d + 1 < *depth) {
			const apbm_node *n = &t->nodes[stack[d + 1]];
			if (n->name_len == len && memcmp(n->name, p, len) == 0) {
				d++;
				p = slash + 1;
				continue;
			}
		}
		uint32_t dir = tree_add(t, stack[d], p, len, APBM_DIR, 0);
		if (dir == UINT32_MAX)
			return false;
		stack[++d] = dir;
		*depth = d + 1;
		p = slash + 1;
	}
	*depth = d + 1;
	return tree_add(t, stack[d], p, (uint32_t)strlen(p), sn->idx, sn->size) != UINT32_MAX;
}

/* Groups children per directory (node order = sorted order) and counts subdirs. */
static int tree_link(apbm_tree *t)
{
	t->children = malloc(sizeof(uint32_t) * (t->n_nodes ? t->n_nodes : 1));
	if (!t->children)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->n_nodes; i++) {
		apbm_node *p = &t->nodes[t->nodes[i].parent];
		p->n_children++;
		if (t->nodes[i].model == APBM_DIR)
			p->n_subdirs++;
	}
	uint32_t next = 0;
	for (uint32_t i = 0; i < t->n_nodes; i++) {
		t->nodes[i].first_child = next;
		next += t->nodes[i].n_children;
		t->nodes[i].n_children = 0;
	}
	for (uint32_t i = 1; i < t->n_nodes; i++) {
		apbm_node *p = &t->nodes[t->nodes[i].parent];
		t->children[p->first_child + p->n_children++] = i;
	}
	return 0;
}

/* Sorted (name, size, index) of every model; *slashes counts '/' in all names. */
static sorted_name *collect_names(apb_paged *pb, size_t n, size_t *slashes)
{
	sorted_name *v = malloc(sizeof(*v) * (n ? n : 1));

	if (!v)
		return NULL;
	*slashes = 0;
	for (size_t i = 0; i < n; i++) {
		apb_model_info info;
		if (apb_paged_model_info(pb, i, &info) != 0) {
			free(v);
			return NULL;
		}
		v[i] = (sorted_name){ .name = info.name, .size = info.size, .idx = (uint32_t)i };
		for (const char *s = info.name; (s = strchr(s, '/')) != NULL; s++)
			(*slashes)++;
	}
	qsort(v, n, sizeof(*v), cmp_name);
	return v;
}

static int tree_alloc(apbm_tree *t, size_t cap)
{
	size_t slots = 16;

	while (slots < 2 * cap)
		slots <<= 1;
	t->nodes = malloc(sizeof(apbm_node) * cap);
	t->slots = calloc(slots, sizeof(uint32_t));
	t->mask = (uint32_t)(slots - 1);
	return t->nodes && t->slots ? 0 : -ENOMEM;
}

/* Skips a name hidden by a collision; every later name under it too. */
static void report_hidden(apbm_fs *fs, const char *name)
{
	fs->tree.n_hidden++;
	if (fs->tree.n_hidden <= 10)
		apbm_log(fs, LOG_WARNING, "model \"%s\" is not shown: its path collides "
		         "with another file or directory", name);
}

int apbm_tree_build(apbm_fs *fs)
{
	apbm_tree *t = &fs->tree;
	size_t n = apb_paged_model_count(fs->pb), slashes = 0;
	uint32_t stack[APB_MAX_NAME_LEN / 2 + 2], depth = 1;
	sorted_name *sn = NULL;
	int rc = -ENOMEM;

	if (n > UINT32_MAX / 4)
		return -EFBIG;
	sn = collect_names(fs->pb, n, &slashes);
	if (!sn || slashes > UINT32_MAX / 4)
		goto out;
	if (tree_alloc(t, APBM_FIRST_NODE + n + slashes) != 0)
		goto out;
	tree_add(t, 0, "", 0, APBM_DIR, 0);
	t->nodes[0].parent = 0;
	tree_add(t, 0, ".stats", 6, APBM_VSTATS, 0);
	tree_add(t, 0, ".stats.json", 11, APBM_VJSON, 0);
	stack[0] = APBM_ROOT_NODE;
	for (size_t i = 0; i < n; i++) {
		if (!tree_add_model(t, &sn[i], stack, &depth)) {
			report_hidden(fs, sn[i].name);
			depth = 1;
		}
	}
	rc = tree_link(t);
out:
	free(sn);
	return rc;
}

void apbm_tree_free(apbm_tree *t)
{
	free(t->nodes);
	free(t->children);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------ */
/* Attributes and lookups                                               */
/* ------------------------------------------------------------------ */

static apbm_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_attr(const apbm_fs *fs, const apbm_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)(n - fs->tree.nodes) + 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim = fs->atime;
	st->st_mtim = fs->mtime;
	st->st_ctim = fs->ctime;
	st->st_blksize = (blksize_t)fs->cfg.page_size;
	if (n->model == APBM_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2 + n->n_subdirs;
		st->st_size = 4096;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
	}
	st->st_blocks = (st->st_size + 511) / 512;
}

static void fill_entry(const apbm_fs *fs, const apbm_node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = (fuse_ino_t)(n - fs->tree.nodes) + 1;
	e->generation = 1;
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
	fill_attr(fs, n, &e->attr);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *p = apbm_node_of(fs, parent);
	struct fuse_entry_param e;
	size_t len = strlen(name);

	if (!p || p->model != APBM_DIR) {
		fuse_reply_err(req, p ? ENOTDIR : ENOENT);
		return;
	}
	uint32_t i = len > UINT32_MAX ? UINT32_MAX
	           : tree_find(&fs->tree, (uint32_t)(p - fs->tree.nodes), name, (uint32_t)len);
	if (i == UINT32_MAX) {
		/* The tree never changes: let the kernel cache the negative entry. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	fill_entry(fs, &fs->tree.nodes[i], &e);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *n = apbm_node_of(fs, ino);
	struct stat st;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(fs, n, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	apbm_fs *fs = fs_of(req);
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = fs->cfg.page_size;
	sv.f_frsize = fs->cfg.page_size;
	sv.f_blocks = (fs->bundle_size + fs->cfg.page_size - 1) / fs->cfg.page_size;
	sv.f_files = fs->tree.n_nodes;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* ------------------------------------------------------------------ */
/* Directories                                                          */
/* ------------------------------------------------------------------ */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const apbm_node *n = apbm_node_of(fs_of(req), ino);

	if (!n || n->model != APBM_DIR) {
		fuse_reply_err(req, n ? ENOTDIR : ENOENT);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* Entry k of directory d: 0 ".", 1 "..", then the children.  Returns its node. */
static const apbm_node *dir_entry(const apbm_fs *fs, const apbm_node *d, size_t k,
                                  char name[NAME_MAX + 1])
{
	const apbm_node *c;

	if (k < 2) {
		strcpy(name, k == 0 ? "." : "..");
		return k == 0 ? d : &fs->tree.nodes[d->parent];
	}
	c = &fs->tree.nodes[fs->tree.children[d->first_child + k - 2]];
	if (c->name_len > NAME_MAX)
		return NULL;
	memcpy(name, c->name, c->name_len);
	name[c->name_len] = '\0';
	return c;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *d = apbm_node_of(fs, ino);
	char name[NAME_MAX + 1], *buf;
	size_t used = 0, total;

	if (!d || d->model != APBM_DIR) {
		fuse_reply_err(req, d ? ENOTDIR : ENOENT);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	total = (size_t)d->n_children + 2;
	for (size_t k = off < 0 ? 0 : (size_t)off; k < total; k++) {
		const apbm_node *c = dir_entry(fs, d, k, name);
		size_t want;
		if (!c)
			continue;
		if (plus) {
			struct fuse_entry_param e;
			fill_entry(fs, c, &e);
			want = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)k + 1);
		} else {
			struct stat st = { .st_ino = (ino_t)(c - fs->tree.nodes) + 1,
			                   .st_mode = c->model == APBM_DIR ? S_IFDIR : S_IFREG };
			want = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)k + 1);
		}
		if (want > size - used)
			break;
		used += want;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
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
 * A rendered virtual file, owned by the open file handle and by each read
 * in flight: the kernel may already have sent RELEASE while a reply thread
 * is still returning from writev, so the last reference frees it.  Every
 * live snapshot is also on fs->vbufs, so that those whose RELEASE never
 * arrives (a close racing an unmount) are freed when the daemon exits.
 */
typedef struct apbm_vbuf {
	char *data;
	size_t len;
	unsigned refs;
	struct apbm_vbuf *prev, *next;  /* fs->vbufs, under fs->vbuf_lock */
} vbuf;

static void vbuf_link(apbm_fs *fs, vbuf *vb)
{
	pthread_mutex_lock(&fs->vbuf_lock);
	vb->prev = NULL;
	vb->next = fs->vbufs;
	if (fs->vbufs)
		fs->vbufs->prev = vb;
	fs->vbufs = vb;
	pthread_mutex_unlock(&fs->vbuf_lock);
}

static void vbuf_free(vbuf *vb)
{
	free(vb->data);
	free(vb);
}

static void vbuf_put(apbm_fs *fs, vbuf *vb)
{
	if (!vb || __atomic_sub_fetch(&vb->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_lock(&fs->vbuf_lock);
	if (vb->prev)
		vb->prev->next = vb->next;
	else
		fs->vbufs = vb->next;
	if (vb->next)
		vb->next->prev = vb->prev;
	pthread_mutex_unlock(&fs->vbuf_lock);
	vbuf_free(vb);
}

void apbm_vbufs_free(apbm_fs *fs)
{
	while (fs->vbufs) {
		vbuf *vb = fs->vbufs;

		fs->vbufs = vb->next;
		vbuf_free(vb);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *n = apbm_node_of(fs, ino);
	vbuf *vb;

	if (!n || n->model == APBM_DIR) {
		fuse_reply_err(req, n ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->noflush = 1;
	if (n->model >= 0) {
		fi->fh = 0;
		fi->direct_io = fs->direct_io;
		fi->keep_cache = !fs->direct_io;
		fuse_reply_open(req, fi);
		return;
	}
	vb = calloc(1, sizeof(*vb));
	if (!vb || apbm_vfile_render(fs, n->model, &vb->data, &vb->len) != 0) {
		free(vb);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	vb->refs = 1;
	vbuf_link(fs, vb);
	fi->fh = (uint64_t)(uintptr_t)vb;
	fi->direct_io = 1;	/* generated content: its size is not known to stat */
	if (fuse_reply_open(req, fi) != 0)
		vbuf_put(fs, vb);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	vbuf_put(fs_of(req), (vbuf *)(uintptr_t)fi->fh);
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

/* Records block key once; returns true the first time it is seen. */
static bool bad_block_first(apbm_fs *fs, uint64_t key)
{
	bool first = true;

	pthread_mutex_lock(&fs->bad_lock);
	for (size_t i = 0; i < fs->n_bad && first; i++)
		first = fs->bad_keys[i] != key;
	if (first && fs->n_bad == fs->cap_bad && fs->cap_bad < 65536) {
		size_t cap = fs->cap_bad ? fs->cap_bad * 2 : 16;
		uint64_t *k = realloc(fs->bad_keys, cap * sizeof(*k));
		if (k) {
			fs->bad_keys = k;
			fs->cap_bad = cap;
		}
	}
	if (first && fs->n_bad < fs->cap_bad)
		fs->bad_keys[fs->n_bad++] = key;
	pthread_mutex_unlock(&fs->bad_lock);
	return first;
}

/*
 * A read failed its checksum: find which blocks of [off, off+len) are bad
 * by reading them one at a time into scratch, and log each bad block once.
 */
static void report_corruption(apbm_fs *fs, const apbm_node *n, uint64_t off, size_t len,
                              void *scratch)
{
	apb_model_info info;
	uint64_t bs, first, last;

	if (apb_paged_model_info(fs->pb, (size_t)n->model, &info) != 0 || info.block_size == 0)
		return;
	bs = info.block_size;
	first = off / bs;
	last = (off + len - 1) / bs;
	for (uint64_t b = first; b <= last; b++) {
		uint64_t boff = b * bs, blen = bs;
		if (boff + blen > n->size)
			blen = n->size - boff;
		if (blen > fs->max_read)
			blen = fs->max_read;	/* any byte of the block verifies all of it */
		ssize_t r = apb_paged_read_index(fs->pb, (size_t)n->model, scratch, blen, boff);
		if (r != APB_E_CHECKSUM || !bad_block_first(fs, ((uint64_t)n->model << 32) ^ b))
			continue;
		apbm_log(fs, LOG_ERR, "model \"%s\": block %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64
		         ") fails its checksum; reads of it return EIO", info.name, b, boff,
		         (b + 1) * bs > n->size ? n->size - 1 : (b + 1) * bs - 1);
	}
}

static void read_vfile(fuse_req_t req, apbm_fs *fs, vbuf *vb, size_t size, off_t off)
{
	if (!vb || off < 0 || (size_t)off >= vb->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > vb->len - (size_t)off)
		size = vb->len - (size_t)off;
	__atomic_add_fetch(&vb->refs, 1, __ATOMIC_ACQ_REL);
	fuse_reply_buf(req, vb->data + off, size);
	vbuf_put(fs, vb);
}

/* Logs a failed model read (checksum failures once per bad block). */
static void read_failed(apbm_fs *fs, const apbm_node *n, fuse_ino_t ino, ssize_t r,
                        uint64_t off, size_t size)
{
	void *scratch;

	if (r != APB_E_CHECKSUM) {
		apbm_log(fs, LOG_ERR, "read of inode %lu at %llu: %s", (unsigned long)ino,
		         (unsigned long long)off, apb_last_error());
		return;
	}
	scratch = pool_get(fs);
	if (scratch)
		report_corruption(fs, n, off, size, scratch);
	pool_put(fs, scratch);
}

/*
 * Copies [off, off+size) through the cache into a pool buffer and replies
 * with pre[0..n_pre) (pinned pages already describing the bytes before off)
 * followed by the copy.  Returns 0 or the library's error (nothing replied).
 */
static ssize_t reply_copy(fuse_req_t req, apbm_fs *fs, const apbm_node *n, uint64_t off,
                          size_t size, struct iovec *pre, int n_pre)
{
	void *buf = pool_get(fs);
	ssize_t r = -ENOMEM;

	if (buf)
		r = apb_paged_read_index(fs->pb, (size_t)n->model, buf, size, off);
	if (r >= 0) {
		pre[n_pre].iov_base = buf;
		pre[n_pre].iov_len = (size_t)r;
		fuse_reply_iov(req, pre, n_pre + 1);
		r = 0;
	}
	pool_put(fs, buf);
	return r;
}

/*
 * Replies straight from pinned cache pages (no copy in the daemon); what
 * cannot be pinned, or does not fit the iovec array, is copied.  The pins
 * are released only after the reply has been written.
 */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	apbm_fs *fs = fs_of(req);
	const apbm_node *n = apbm_node_of(fs, ino);
	struct iovec iov[APBM_MAX_IOV + 1];
	apb_pinned *pins = NULL;
	int n_iov = 0;
	ssize_t r;

	if (!n || n->model == APBM_DIR) {
		fuse_reply_err(req, n ? EISDIR : EBADF);
		return;
	}
	if (n->model < 0) {
		read_vfile(req, fs, (vbuf *)(uintptr_t)fi->fh, size, off);
		return;
	}
	if (off < 0 || (uint64_t)off >= n->size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > fs->max_read)
		size = fs->max_read;
	if ((uint64_t)size > n->size - (uint64_t)off)
		size = (size_t)(n->size - (uint64_t)off);
	r = apb_paged_pin_range(fs->pb, (size_t)n->model, (uint64_t)off, size, iov,
	                        APBM_MAX_IOV, &n_iov, &pins);
	if (r == (ssize_t)size) {
		fuse_reply_iov(req, iov, n_iov);
	} else if (r == 0) {
		fuse_reply_buf(req, NULL, 0);	/* the model ended after all */
	} else if (r > 0 || r == -ENOBUFS) {
		if (r < 0) {
			r = 0;
			n_iov = 0;
		}
		r = reply_copy(req, fs, n, (uint64_t)off + (uint64_t)r, size - (size_t)r, iov, n_iov);
	}
	apb_paged_unpin(fs->pb, pins);
	if (r < 0) {
		int err = apb_errno((int)r);
		read_failed(fs, n, ino, r, (uint64_t)off, size);
		fuse_reply_err(req, err ? err : EIO);
	}
}

/* ------------------------------------------------------------------ */
/* Everything that would modify the tree: EROFS                         */
/* ------------------------------------------------------------------ */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
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

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
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
