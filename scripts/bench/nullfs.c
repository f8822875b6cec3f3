/*
 * nullfs.c - a memory-backed FUSE file system: the benchmarks' ceiling.
 *
 * It serves exactly one read-only regular file, held entirely in memory,
 * through libfuse3's low-level API with the multithreaded session loop.
 * Whatever a FUSE file system can reach on this kernel, this daemon reaches:
 * a read is one fuse_reply_buf() straight out of the buffer, nothing else.
 *
 * Invariants: the buffer is filled (from -o source=FILE, or with
 * deterministic bytes) before the mount exists and never changes after it;
 * max_read is set to the same value in init() and as "-o max_read=N" on the
 * session (libfuse 3.14 aborts the mount when the two disagree); the file's
 * inode number (2) and size never change while mounted.
 *
 * With -o copy, each read is first copied into a per-thread bounce buffer
 * and replied from there: the cost of one user-space copy per read, to
 * measure what a zero-copy reply (fuse_reply_iov from cache pages) is worth.
 *
 * Usage: nullfs MOUNTPOINT -o size=1G[,source=FILE][,name=model.bin][,copy]
 *        [-f] [-s]
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NULLFS_MAX_READ (1024u * 1024u)
#define NULLFS_FILE_INO 2
#define NULLFS_TIMEOUT 86400.0

struct nullfs_opts {
	char *size;
	char *source;
	char *name;
	int copy;
};

static struct {
	char *data;
	uint64_t size;
	const char *name;
	time_t mtime;
	int copy;
	pthread_key_t bounce_key;
} g_fs;

#define NULLFS_OPT(t, p) { t, offsetof(struct nullfs_opts, p), 1 }
static const struct fuse_opt nullfs_opt_spec[] = {
	NULLFS_OPT("size=%s", size),
	NULLFS_OPT("source=%s", source),
	NULLFS_OPT("name=%s", name),
	NULLFS_OPT("copy", copy),
	FUSE_OPT_END
};

/* Parse "123", "4K", "1M", "1G" (binary multiples); -1 on a bad value. */
static int64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	default: break;
	}
	if (*end != '\0' || v > (uint64_t)INT64_MAX / mul)
		return -1;
	return (int64_t)(v * mul);
}

/* Fill the buffer from a file (its first size bytes, repeated if short). */
static int fill_from_file(const char *path)
{
	uint64_t done = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		perror(path);
		return -1;
	}
	while (done < g_fs.size) {
		ssize_t n = pread(fd, g_fs.data + done, g_fs.size - done, done);
		if (n < 0) {
			perror(path);
			close(fd);
			return -1;
		}
		if (n == 0) {
			if (done == 0) {
				fprintf(stderr, "nullfs: %s is empty\n", path);
				close(fd);
				return -1;
			}
			/* Repeat what we have to reach the requested size. */
			uint64_t chunk = done < g_fs.size - done ? done : g_fs.size - done;
			memcpy(g_fs.data + done, g_fs.data, chunk);
			done += chunk;
			continue;
		}
		done += (uint64_t)n;
	}
	close(fd);
	return 0;
}

/* Deterministic, incompressible-looking bytes (xorshift64*). */
static void fill_deterministic(void)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	uint64_t i;

	for (i = 0; i + 8 <= g_fs.size; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t v = x * 0x2545F4914F6CDD1Dull;
		memcpy(g_fs.data + i, &v, 8);
	}
	for (; i < g_fs.size; i++)
		g_fs.data[i] = (char)i;
}

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mtime = g_fs.mtime;
	st->st_ctime = g_fs.mtime;
	st->st_atime = g_fs.mtime;
	st->st_blksize = 4096;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)g_fs.size;
		st->st_blocks = (blkcnt_t)((g_fs.size + 511) / 512);
	}
}

static void nullfs_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_read = NULLFS_MAX_READ;
}

static void nullfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, g_fs.name) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = NULLFS_FILE_INO;
	e.attr_timeout = NULLFS_TIMEOUT;
	e.entry_timeout = NULLFS_TIMEOUT;
	fill_stat(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void nullfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != FUSE_ROOT_ID && ino != NULLFS_FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(ino, &st);
	fuse_reply_attr(req, &st, NULLFS_TIMEOUT);
}

/* Append one entry; returns the new used size, or used unchanged if full. */
static size_t add_dirent(fuse_req_t req, char *buf, size_t bufsize, size_t used,
			 const char *name, fuse_ino_t ino, off_t next)
{
	struct stat st;
	size_t need;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = ino == NULLFS_FILE_INO ? S_IFREG : S_IFDIR;
	need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
	if (used + need > bufsize)
		return used;
	fuse_add_direntry(req, buf + used, bufsize - used, name, &st, next);
	return used + need;
}

static void nullfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	char buf[4096];
	size_t cap = size < sizeof(buf) ? size : sizeof(buf);
	size_t used = 0;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (off < 1)
		used = add_dirent(req, buf, cap, used, ".", FUSE_ROOT_ID, 1);
	if (off < 2)
		used = add_dirent(req, buf, cap, used, "..", FUSE_ROOT_ID, 2);
	if (off < 3)
		used = add_dirent(req, buf, cap, used, g_fs.name, NULLFS_FILE_INO, 3);
	fuse_reply_buf(req, buf, used);
}

static void nullfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != NULLFS_FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void nullfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	if (off < 0 || (uint64_t)off >= g_fs.size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > g_fs.size - (uint64_t)off)
		size = g_fs.size - (uint64_t)off;
	if (g_fs.copy) {
		char *b = pthread_getspecific(g_fs.bounce_key);
		if (!b) {
			b = malloc(NULLFS_MAX_READ);
			if (!b || pthread_setspecific(g_fs.bounce_key, b) != 0) {
				free(b);
				fuse_reply_err(req, ENOMEM);
				return;
			}
		}
		if (size > NULLFS_MAX_READ)
			size = NULLFS_MAX_READ;
		memcpy(b, g_fs.data + off, size);
		fuse_reply_buf(req, b, size);
		return;
	}
	fuse_reply_buf(req, g_fs.data + off, size);
}

static const struct fuse_lowlevel_ops nullfs_ops = {
	.init = nullfs_init,
	.lookup = nullfs_lookup,
	.getattr = nullfs_getattr,
	.readdir = nullfs_readdir,
	.open = nullfs_open,
	.read = nullfs_read,
};

/* Validate our options and fill the in-memory file. */
static int setup_file(const struct nullfs_opts *o)
{
	int64_t size = parse_size(o->size ? o->size : "1G");

	if (size <= 0) {
		fprintf(stderr, "nullfs: bad size '%s'\n", o->size);
		return -1;
	}
	g_fs.size = (uint64_t)size;
	g_fs.name = o->name ? o->name : "model.bin";
	if (strchr(g_fs.name, '/') || !*g_fs.name) {
		fprintf(stderr, "nullfs: bad name '%s'\n", g_fs.name);
		return -1;
	}
	g_fs.mtime = time(NULL);
	g_fs.copy = o->copy;
	if (pthread_key_create(&g_fs.bounce_key, free) != 0)
		return -1;
	if (posix_memalign((void **)&g_fs.data, 1u << 21, g_fs.size) != 0) {
		fprintf(stderr, "nullfs: cannot allocate %llu bytes\n",
			(unsigned long long)g_fs.size);
		return -1;
	}
	if (o->source)
		return fill_from_file(o->source);
	fill_deterministic();
	return 0;
}

static int run_session(struct fuse_args *args, struct fuse_cmdline_opts *co)
{
	struct fuse_session *se;
	struct fuse_loop_config *cfg = NULL;
	int ret = 1;

	se = fuse_session_new(args, &nullfs_ops, sizeof(nullfs_ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, co->mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(co->foreground);
	if (co->singlethread) {
		ret = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(cfg, (unsigned)co->clone_fd);
		fuse_loop_cfg_set_max_threads(cfg, co->max_threads ? co->max_threads : 10);
		/* UINT_MAX means not given; passing it on only logs a warning. */
		if (co->max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(cfg, co->max_idle_threads);
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	ret = ret < 0 ? 1 : 0;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co;
	struct nullfs_opts o = { 0 };
	char maxread[64];
	int ret = 1;

	if (fuse_opt_parse(&args, &o, nullfs_opt_spec, NULL) != 0)
		return 1;
	if (fuse_parse_cmdline(&args, &co) != 0)
		goto out_args;
	if (co.show_help || !co.mountpoint) {
		printf("usage: %s MOUNTPOINT -o size=SIZE[,source=FILE][,name=NAME]"
		       " [-f] [-s] [-d]\n", argv[0]);
		fuse_cmdline_help();
		ret = co.show_help ? 0 : 2;
		goto out_mnt;
	}
	if (setup_file(&o) != 0)
		goto out_mnt;
	snprintf(maxread, sizeof(maxread), "-omax_read=%u", NULLFS_MAX_READ);
	if (fuse_opt_add_arg(&args, maxread) != 0 ||
	    fuse_opt_add_arg(&args, "-oro") != 0)
		goto out_mnt;
	ret = run_session(&args, &co);
out_mnt:
	free(co.mountpoint);
	free(g_fs.data);
out_args:
	free(o.size);
	free(o.source);
	free(o.name);
	fuse_opt_free_args(&args);
	return ret;
}
