/*
 * source_file.c - a local bundle file as a byte source (source.h), and the
 * source functions every kind shares.
 *
 * Invariants: the file is a regular file, opened without blocking (a FIFO
 * or device path is refused before anything reads it); its identity
 * (device, inode, size, mtime) is taken once at open.  Every read goes
 * through the I/O seam (io.c, so tests inject faults) and is followed by
 * an fstat: if the file's size or mtime changed since open, the read fails
 * with -EIO even when its bytes arrived, so a reader never gets a mix of
 * two versions that a checksum might not cover (legacy bundles have none).
 * A file replaced by rename keeps serving the old inode's bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "source.h"

typedef struct file_source {
	apbi_source head;
	int fd;
	struct stat st;           /* at open */
} file_source;

static bool same_version(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int file_readv(apbi_source *s, const struct iovec *iov, int n, uint64_t off)
{
	file_source *f = (file_source *)s;
	struct stat now;
	int r = apbi_preadv_full(f->fd, iov, n, off);
	if (fstat(f->fd, &now) != 0)
		return apbi_set_error(-errno, "%.200s: fstat: %s", s->name, strerror(errno));
	if (!same_version(&f->st, &now))
		return apbi_set_error(-EIO, "%.200s: the bundle file changed under a live handle "
		                      "(size or mtime differ from when it was opened)", s->name);
	if (r == APB_E_TRUNCATED)
		return apbi_set_error(r, "%.200s: file ends before byte %llu", s->name,
		                      (unsigned long long)off);
	return r;
}

static void file_close(apbi_source *s)
{
	file_source *f = (file_source *)s;
	close(f->fd);
	free(f);
}

static const apbi_source_ops file_ops = {
	.kind = "file",
	.readv = file_readv,
	.commit = NULL,
	.close = file_close,
};

/** See source.h. */
int apbi_source_open_file(const char *path, apbi_source **out)
{
	file_source *f;
	int fd, e;
	*out = NULL;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return apbi_set_error(-errno, "%.400s: %s", path, strerror(errno));
	if (!(f = calloc(1, sizeof *f))) {
		close(fd);
		return apbi_set_error(-ENOMEM, "out of memory");
	}
	f->fd = fd;
	if (fstat(fd, &f->st) != 0) {
		e = -errno;
		file_close(&f->head);
		return apbi_set_error(e, "%.400s: fstat: %s", path, strerror(-e));
	}
	if (!S_ISREG(f->st.st_mode)) {
		file_close(&f->head);
		return apbi_set_error(-EINVAL, "%.400s: not a regular file", path);
	}
	/* Back to blocking reads: regular files never block on O_NONBLOCK anyway. */
	(void)fcntl(fd, F_SETFL, 0);
	f->head.ops = &file_ops;
	f->head.size = (uint64_t)f->st.st_size;
	snprintf(f->head.identity, sizeof f->head.identity, "file:%llu:%llu:%llu:%lld.%09ld",
	         (unsigned long long)f->st.st_dev, (unsigned long long)f->st.st_ino,
	         (unsigned long long)f->st.st_size, (long long)f->st.st_mtim.tv_sec,
	         f->st.st_mtim.tv_nsec);
	snprintf(f->head.name, sizeof f->head.name, "%s", path);
	*out = &f->head;
	return 0;
}

/** See source.h. */
int apbi_source_readv(apbi_source *s, const struct iovec *iov, int n, uint64_t off)
{
	uint64_t len = 0;
	int r;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (off > s->size || len > s->size - off)
		return apbi_set_error(APB_E_TRUNCATED, "%.200s: bytes %llu-%llu lie past the end "
		                      "of the %llu-byte bundle", s->name, (unsigned long long)off,
		                      (unsigned long long)(off + len), (unsigned long long)s->size);
	if (!len)
		return 0;
	r = s->ops->readv(s, iov, n, off);
	if (r == 0) {
		__atomic_add_fetch(&s->bytes_read, len, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
	}
	return r;
}

/** See source.h. */
int apbi_source_read(apbi_source *s, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	return apbi_source_readv(s, &iov, 1, off);
}

/** See source.h. */
void apbi_source_commit(apbi_source *s, uint64_t off, const void *data, size_t len)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	if (s && s->ops->commit && len)
		s->ops->commit(s, off, &iov, 1);
}

/** See source.h. */
void apbi_commit_flush(apbi_source *s, apbi_commit_run *r)
{
	if (r->len)
		s->ops->commit(s, r->off, r->iov, r->n);
	r->len = 0;
	r->n = 0;
}

/** See source.h. */
void apbi_commit_add(apbi_source *s, apbi_commit_run *r, uint64_t off, const void *data,
                     size_t len)
{
	struct iovec *last;
	if (!s || !s->ops->commit || !len)
		return;
	if (r->len && (r->off + r->len != off ||
	               r->len + len > APBI_COMMIT_MAX))
		apbi_commit_flush(s, r);
	last = r->n ? &r->iov[r->n - 1] : NULL;
	if (last && (const char *)last->iov_base + last->iov_len == (const char *)data) {
		last->iov_len += len;
	} else {
		if (r->n == APBI_COMMIT_SEGS)
			apbi_commit_flush(s, r);
		if (!r->len)
			r->off = off;
		r->iov[r->n++] = (struct iovec){ .iov_base = (void *)data, .iov_len = len };
	}
	r->len += len;
}

/** See source.h. */
void apbi_source_close(apbi_source *s)
{
	if (s)
		s->ops->close(s);
}
