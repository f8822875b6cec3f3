/*
 * fault_preload.c - LD_PRELOAD shim that makes a running process's preads
 * (pread and preadv) of one file fail with EIO, for fault injection inside the mount daemon
 * (whose I/O seam a test cannot reach).  Used by stress_mount_test.sh.
 *
 * Environment, read at each call:
 *   APB_FAULT_INO    inode number of the file to fault (others untouched)
 *   APB_FAULT_RANGE  "START:END": a pread overlapping bytes [START, END)
 *                    of that file fails with EIO
 *   APB_FAULT_FLAG   path of a file: faults are injected only while it
 *                    exists, so a test can stop them without a restart
 * Invariant: with any variable unset, or the flag file absent, every call
 * goes straight to the real pread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*preadv_fn)(int, const struct iovec *, int, off_t);

ssize_t pread(int fd, void *buf, size_t len, off_t off);
ssize_t pread64(int fd, void *buf, size_t len, off_t off);
ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off);
ssize_t preadv64(int fd, const struct iovec *iov, int n, off_t off);

/* 1 when this pread must fail (see the file comment). */
static int must_fail(int fd, size_t len, off_t off)
{
	const char *ino = getenv("APB_FAULT_INO"), *range = getenv("APB_FAULT_RANGE");
	const char *flag = getenv("APB_FAULT_FLAG");
	uint64_t start, end;
	struct stat st;

	if (!ino || !range || !flag || access(flag, F_OK) != 0)
		return 0;
	if (sscanf(range, "%" SCNu64 ":%" SCNu64, &start, &end) != 2)
		return 0;
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_ino != strtoull(ino, NULL, 10))
		return 0;
	return (uint64_t)off < end && (uint64_t)off + len > start;
}

static ssize_t faulty(const char *sym, int fd, void *buf, size_t len, off_t off)
{
	pread_fn real = (pread_fn)dlsym(RTLD_NEXT, sym);

	if (must_fail(fd, len, off)) {
		errno = EIO;
		return -1;
	}
	return real(fd, buf, len, off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	return faulty("pread", fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	return faulty("pread64", fd, buf, len, off);
}

static ssize_t faulty_v(const char *sym, int fd, const struct iovec *iov, int n, off_t off)
{
	preadv_fn real = (preadv_fn)dlsym(RTLD_NEXT, sym);
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (must_fail(fd, len, off)) {
		errno = EIO;
		return -1;
	}
	return real(fd, iov, n, off);
}

ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	return faulty_v("preadv", fd, iov, n, off);
}

ssize_t preadv64(int fd, const struct iovec *iov, int n, off_t off)
{
	return faulty_v("preadv64", fd, iov, n, off);
}
