/*
 * io.c - the library's file I/O seam: whole transfers over pread/pwrite.
 *
 * Invariants: every file read or write of the library goes through the ops
 * table below, which is the system calls unless a test installed fakes with
 * apbi_io_set(); the *_full helpers either transfer exactly the bytes asked
 * for or return a negative code with a detail recorded; EINTR is retried,
 * short transfers continue where they stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <unistd.h>

#include "internal.h"

static ssize_t sys_pread(int fd, void *buf, size_t len, off_t off)
{
	return pread(fd, buf, len, off);
}

static ssize_t sys_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

static ssize_t sys_read(int fd, void *buf, size_t len)
{
	return read(fd, buf, len);
}

static int sys_fsync(int fd)
{
	return fsync(fd);
}

static ssize_t sys_preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	return preadv(fd, iov, n, off);
}

static const apbi_io_ops sys_ops = {
	.pread = sys_pread,
	.pwrite = sys_pwrite,
	.read = sys_read,
	.fsync = sys_fsync,
	.preadv = sys_preadv,
};

static const apbi_io_ops *io = &sys_ops;

/**
 * Installs ops for every later library I/O call (NULL restores the system
 * calls).  ops must stay valid until replaced.  Not thread-safe: tests only.
 */
void apbi_io_set(const apbi_io_ops *ops)
{
	io = ops ? ops : &sys_ops;
}

/* Largest single transfer asked of the kernel (Linux caps at ~2 GiB). */
#define IO_CHUNK ((size_t)1 << 30)
#define KICK_BYTES ((uint64_t)8 << 20)   /* apbi_write_kick: writeback every 8 MiB */

/*
 * Transfers exactly len bytes at off in either direction, retrying EINTR
 * and continuing short transfers.  A read that hits end of file gives
 * APB_E_TRUNCATED, a write that makes no progress -EIO.
 */
static int transfer(int fd, char *p, size_t len, uint64_t off, bool is_write)
{
	const char *what = is_write ? "write" : "read";

	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return apbi_set_error(is_write ? -EFBIG : -EINVAL, "%s of %zu bytes at offset %llu: "
		                      "offset out of range", what, len, (unsigned long long)off);
	while (len > 0) {
		size_t want = len < IO_CHUNK ? len : IO_CHUNK;
		ssize_t n = is_write ? io->pwrite(fd, p, want, (off_t)off) : io->pread(fd, p, want, (off_t)off);
		if (n < 0) {
			int e = errno ? errno : EIO;
			if (e == EINTR)
				continue;
			return apbi_set_error(-e, "%s at offset %llu: %s", what,
			                      (unsigned long long)off, apb_strerror(-e));
		}
		if (n == 0 && is_write)
			return apbi_set_error(-EIO, "write at offset %llu made no progress",
			                      (unsigned long long)off);
		if (n == 0)
			return apbi_set_error(APB_E_TRUNCATED, "file ends at offset %llu, %zu bytes short",
			                      (unsigned long long)off, len);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/**
 * Reads exactly len bytes at off.  Returns 0; APB_E_TRUNCATED when the file
 * ends first; -EINVAL when off+len overflows off_t; -errno otherwise.
 */
int apbi_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return transfer(fd, buf, len, off, false);
}

/* Segments per preadv call: the kernel refuses more than IOV_MAX. */
#define IOV_CHUNK (IOV_MAX < 1024 ? IOV_MAX : 1024)

/**
 * Reads exactly the bytes of iov[0..n) at off (see internal.h).  A short
 * read continues with the rest of the segment it stopped in, then the
 * following segments, so no byte is read twice or skipped.
 */
int apbi_preadv_full(int fd, const struct iovec *iov, int n, uint64_t off)
{
	int i = 0;

	if (!io->preadv) {   /* a test's table without preadv */
		for (; i < n; off += iov[i].iov_len, i++) {
			int r = transfer(fd, iov[i].iov_base, iov[i].iov_len, off, false);
			if (r < 0)
				return r;
		}
		return 0;
	}
	while (i < n) {
		int k = n - i < IOV_CHUNK ? n - i : IOV_CHUNK;
		size_t want = 0;
		ssize_t got;

		for (int j = i; j < i + k; j++)
			want += iov[j].iov_len;
		if (off > (uint64_t)INT64_MAX || want > (uint64_t)INT64_MAX - off)
			return apbi_set_error(-EINVAL, "read of %zu bytes at offset %llu: offset out "
			                      "of range", want, (unsigned long long)off);
		got = io->preadv(fd, iov + i, k, (off_t)off);
		if (got < 0) {
			int e = errno ? errno : EIO;
			if (e == EINTR)
				continue;
			return apbi_set_error(-e, "read at offset %llu: %s",
			                      (unsigned long long)off, apb_strerror(-e));
		}
		if (got == 0 && want)
			return apbi_set_error(APB_E_TRUNCATED, "file ends at offset %llu, %zu bytes short",
			                      (unsigned long long)off, want);
		off += (uint64_t)got;
		/* Skip the segments read whole; finish a partly read one alone. */
		while (i < n && (size_t)got >= iov[i].iov_len) {
			got -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (got > 0) {
			int r = transfer(fd, (char *)iov[i].iov_base + got, iov[i].iov_len - (size_t)got,
			                 off, false);
			if (r < 0)
				return r;
			off += iov[i].iov_len - (uint64_t)got;
			i++;
		}
	}
	return 0;
}

/**
 * Writes exactly len bytes at off.  Returns 0, -EFBIG when off+len
 * overflows off_t, or -errno (-EIO when a write makes no progress).
 */
int apbi_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	return transfer(fd, (char *)buf, len, off, true);
}

/**
 * See internal.h.  Measured on `create --compress` of 256 MiB: the final
 * fsync waited 0.33 s for the whole file before; with writeback started
 * as the file grows it overlaps the compression.
 */
void apbi_write_kick(int fd, uint64_t *pending, size_t n)
{
	*pending += n;
	if (*pending < KICK_BYTES)
		return;
	*pending = 0;
#ifdef SYNC_FILE_RANGE_WRITE
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

/**
 * Reads up to len bytes from fd's current position, retrying EINTR.
 * Returns the count (0 at end of file) or -errno.
 */
ssize_t apbi_read_some(int fd, void *buf, size_t len)
{
	if (len > IO_CHUNK)
		len = IO_CHUNK;
	for (;;) {
		ssize_t n = io->read(fd, buf, len);
		if (n >= 0)
			return n;
		int e = errno ? errno : EIO;
		if (e != EINTR)
			return apbi_set_error(-e, "read: %s", apb_strerror(-e));
	}
}

/**
 * fsync through the seam, retrying EINTR.  Returns 0 or -errno.
 */
int apbi_fsync(int fd)
{
	for (;;) {
		if (io->fsync(fd) == 0)
			return 0;
		int e = errno ? errno : EIO;
		if (e != EINTR)
			return apbi_set_error(-e, "fsync: %s", apb_strerror(-e));
	}
}
