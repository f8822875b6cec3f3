/*
 * internal.h - helpers shared by the library's files (apbi_*), not exported.
 *
 * Invariants: every library file I/O goes through apbi_io (so tests can
 * inject faults); every failure path that returns a code records a detail
 * with apbi_set_error() first; nothing here prints.
 */
#ifndef APB_INTERNAL_H
#define APB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "apbundle.h"

/* ---- relaxed atomic access to a field shared with lock-free readers ---- */

/** Stores v into lvalue x atomically (relaxed): x is read without a lock elsewhere. */
#define ASTORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
/** Loads lvalue x atomically (relaxed): x is written without a lock elsewhere. */
#define ALOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* ---- errors (errors.c) ---- */

/**
 * Records a printf-style detail for apb_last_error() in this thread and
 * returns code, so callers can write `return apbi_set_error(-EIO, "...")`.
 */
int apbi_set_error(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** Clears the thread's recorded error and block (on entry to public functions). */
void apbi_clear_error(void);

/** Records the block the thread's current failure is about (apb_last_block_error). */
void apbi_set_block_error(const apb_block_error *e);

/* ---- file I/O seam (io.c) ---- */

/**
 * The library's file operations.  Production uses the system calls; tests
 * replace the table with apbi_io_set() to inject EIO, short reads or EINTR.
 */
typedef struct apbi_io_ops {
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	ssize_t (*read)(int fd, void *buf, size_t len);
	int (*fsync)(int fd);
	/* Optional: NULL makes apbi_preadv_full call pread once per segment. */
	ssize_t (*preadv)(int fd, const struct iovec *iov, int n, off_t off);
} apbi_io_ops;

/** Installs ops (NULL restores the system calls).  Not thread-safe: tests only. */
void apbi_io_set(const apbi_io_ops *ops);

/**
 * Reads exactly len bytes at off, retrying on EINTR and short reads.
 * Returns 0, -EIO (or the errno) on error, APB_E_TRUNCATED at end of file.
 */
int apbi_pread_full(int fd, void *buf, size_t len, uint64_t off);

/**
 * Reads exactly the bytes of iov[0..n) (n >= 1) at off into those
 * segments, in order, with one preadv when the kernel allows, retrying on
 * EINTR and continuing short reads.  iov is not modified.  Returns as
 * apbi_pread_full.
 */
int apbi_preadv_full(int fd, const struct iovec *iov, int n, uint64_t off);

/** Writes exactly len bytes at off, retrying on EINTR and short writes. */
int apbi_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/** Reads up to len bytes from fd's position, retrying on EINTR; returns count or -errno. */
ssize_t apbi_read_some(int fd, void *buf, size_t len);

/** fsync through the seam; returns 0 or -errno. */
int apbi_fsync(int fd);

/**
 * Notes n more bytes written to fd since *pending was last reset; once
 * they reach 8 MiB, starts (does not wait for) writeback of fd's dirty
 * pages and resets *pending, so that a later fsync finds little left to
 * write.  Best effort: never fails.
 */
void apbi_write_kick(int fd, uint64_t *pending, size_t n);

/* ---- checksums (checksum.c) ---- */

/** XXH3-64 of len bytes. */
uint64_t apbi_xxh3(const void *data, size_t len);

/** Formats "xxh3:" + 16 lowercase hex digits into out (>= 22 bytes). */
void apbi_checksum_format(uint64_t h, char out[22]);

/** Parses "xxh3:<16 hex>"; returns 0 or APB_E_MANIFEST. */
int apbi_checksum_parse(const char *s, uint64_t *out);

/* ---- names (names.c) ---- */

/**
 * Checks a model name against the rules of docs/FORMAT.md: 1..4096 bytes,
 * valid UTF-8, no NUL or control characters, no leading '/', no empty, "."
 * or ".." component, components <= 255 bytes.  Returns 0 or APB_E_NAME with
 * a detail naming the problem.
 */
int apbi_name_check(const char *name, size_t len);

/** Returns 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int apbi_utf8_valid(const char *s, size_t len);

/** True when name's first component is reserved by the mount (APB_CLASH_RESERVED). */
bool apbi_name_reserved(const char *name);

/**
 * Flags the names of names[0..n) that cannot coexist in one tree with
 * APB_CLASH_* bits in flags[0..n); pair (may be NULL) gets the first
 * file/directory pair or SIZE_MAX twice.  Returns how many names are
 * flagged, or -ENOMEM.  See names.c.
 */
ssize_t apbi_name_clashes(const char *const *names, size_t n, uint8_t *flags, size_t pair[2]);

#endif
