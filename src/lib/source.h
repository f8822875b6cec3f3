/*
 * source.h - where a bundle's stored bytes come from: the lowest layer of
 * the read path (source_file.c: a local file; source_http.c: an HTTP(S)
 * object).  Everything above (format, blocks, cache) reads stored bytes
 * only through a source.
 *
 * Invariants: a source's size and identity are fixed when it is opened and
 * never change; a read is of a range inside [0, size) and either fills
 * every byte asked for or fails with a negative code and a detail
 * (apbi_set_error): there are no short reads.  When the underlying object
 * changes under a live source (a file truncated, an object replaced), reads
 * give -EIO (or the bytes of the version opened), never a mix of old and
 * new bytes.  All functions are thread-safe: reads may run concurrently.
 */
#ifndef APB_SOURCE_H
#define APB_SOURCE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct apbi_source apbi_source;

typedef struct apbi_source_ops {
	const char *kind;     /* "file", "http", ... (for logs and statistics) */
	/* Reads exactly the bytes of iov[0..n) (n >= 1) at off, in order.
	 * off + total length <= size (checked by apbi_source_readv).  Returns
	 * 0, a negative errno (-EIO ...) or APB_E_TRUNCATED, with a detail. */
	int (*readv)(apbi_source *s, const struct iovec *iov, int n, uint64_t off);
	/* Optional (NULL: nothing to do): the bytes [off, off+len) read from
	 * this source were verified by the caller (block checksums); a source
	 * with a local tier may keep them.  Never fails visibly. */
	void (*commit)(apbi_source *s, uint64_t off, const void *data, size_t len);
	/* Frees the source (every resource, the struct included). */
	void (*close)(apbi_source *s);
} apbi_source_ops;

/* The common head of every source; implementations embed it first. */
struct apbi_source {
	const apbi_source_ops *ops;
	uint64_t size;            /* bytes, fixed at open */
	char identity[160];       /* fixed at open: "file:DEV:INO:SIZE:MTIME_NS" or
	                             "http:ETAG:LAST_MODIFIED:SIZE"; keys a disk tier */
	char name[256];           /* path or URL without credentials, for messages */
	uint64_t bytes_read;      /* stored bytes read (atomic add), for statistics */
	uint64_t reads;           /* read calls (atomic add) */
};

/**
 * Opens path as a local file source (source_file.c): O_RDONLY|O_CLOEXEC,
 * a regular file only (a FIFO or device is refused, so nothing blocks).
 * Errors: negative errno from open/fstat (-ENOENT, -EACCES), -EINVAL (not
 * a regular file), -ENOMEM.
 */
int apbi_source_open_file(const char *path, apbi_source **out);

/**
 * Reads exactly len bytes at off into buf (a one-segment apbi_source_readv).
 */
int apbi_source_read(apbi_source *s, void *buf, size_t len, uint64_t off);

/**
 * Checks that [off, off + the iov's total) lies inside the source (else
 * APB_E_TRUNCATED with a detail), then reads it with s->ops->readv and
 * counts the bytes.  Returns 0 or the negative code.
 */
int apbi_source_readv(apbi_source *s, const struct iovec *iov, int n, uint64_t off);

/** Passes verified bytes to s->ops->commit when the source has one. */
void apbi_source_commit(apbi_source *s, uint64_t off, const void *data, size_t len);

/** Closes s; NULL allowed. */
void apbi_source_close(apbi_source *s);

#endif
