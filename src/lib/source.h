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

struct apb_open_options;

typedef struct apbi_source apbi_source;
struct apbi_source_stats;

typedef struct apbi_source_ops {
	const char *kind;     /* "file", "http", ... (for logs and statistics) */
	/* Reads exactly the bytes of iov[0..n) (n >= 1) at off, in order.
	 * off + total length <= size (checked by apbi_source_readv).  Returns
	 * 0, a negative errno (-EIO ...) or APB_E_TRUNCATED, with a detail. */
	int (*readv)(apbi_source *s, const struct iovec *iov, int n, uint64_t off);
	/* Optional (NULL: nothing to do): the bytes of iov[0..n) (n >= 1),
	 * read from this source at off, were verified by the caller (block
	 * checksums); a source with a local tier may keep them as one range.
	 * Never fails visibly. */
	void (*commit)(apbi_source *s, uint64_t off, const struct iovec *iov, int n);
	/* Frees the source (every resource, the struct included). */
	void (*close)(apbi_source *s);
	/* Optional (NULL: only bytes_read/reads of the head): adds this
	 * source's remote and tier counters to *out (source_http.c, source_tier.c). */
	void (*stats)(apbi_source *s, struct apbi_source_stats *out);
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

/*
 * A run of adjacent verified ranges, committed as one (so a disk tier keeps
 * ranges of up to APBI_COMMIT_MAX bytes, shaped like the reads that made
 * them, not one file per block).  Start with `apbi_commit_run r = { 0 };`,
 * add each verified range in source order, flush at the end; the data
 * must stay valid until the flush.  A range that does not continue the
 * run, or would take it past APBI_COMMIT_MAX bytes (a first range may be
 * larger) or APBI_COMMIT_SEGS segments, flushes the run first.  Nothing is
 * kept for a source without a commit operation.
 */
#define APBI_COMMIT_MAX (1024u * 1024u)
#define APBI_COMMIT_SEGS 64
typedef struct apbi_commit_run {
	uint64_t off, len;
	int n;
	struct iovec iov[APBI_COMMIT_SEGS];
} apbi_commit_run;

/** Adds [off, off+len) held at data to r (see apbi_commit_run). */
void apbi_commit_add(apbi_source *s, apbi_commit_run *r, uint64_t off, const void *data,
                     size_t len);

/** Commits what r holds and empties it. */
void apbi_commit_flush(apbi_source *s, apbi_commit_run *r);

/** Closes s; NULL allowed. */
void apbi_source_close(apbi_source *s);

/* ---- remote sources and the disk tier (source_open.c, source_http.c,
 * source_tier.c) ---- */

/* Request latency histogram: bucket i counts requests that took at most
 * APBI_LAT_BOUNDS_US[i] microseconds; the last bucket counts the rest. */
#define APBI_LAT_BUCKETS 12
extern const uint64_t APBI_LAT_BOUNDS_US[APBI_LAT_BUCKETS - 1];

/**
 * Counters of a source, for .stats/.metrics.  Filled by apbi_source_get_stats;
 * every counter is monotonic since open (a snapshot, not atomic as a whole).
 */
typedef struct apbi_source_stats {
	uint64_t net_bytes;        /* body bytes received over HTTP (ranges asked for) */
	uint64_t net_requests;     /* HTTP requests sent, retries included */
	uint64_t net_retries;      /* of those, retries after a transient failure */
	uint64_t net_errors;       /* reads that failed after every retry */
	uint64_t latency_us_sum;   /* sum of request latencies (first byte to last) */
	uint64_t latency[APBI_LAT_BUCKETS]; /* request latencies, see APBI_LAT_BOUNDS_US */
	uint64_t tier_bytes;       /* bytes served from the disk tier */
	uint64_t tier_hits, tier_misses; /* reads served wholly by the tier, or not */
	uint64_t tier_stored;      /* bytes the tier holds now */
	uint64_t tier_commits;     /* ranges written to the tier */
	uint64_t tier_evictions;   /* ranges removed to stay under the size bound */
	int offline;               /* 1: opened from the tier, the server unreachable */
} apbi_source_stats;

/** Zeroes *out, then fills it from s (NULL allowed: stays zero). */
void apbi_source_get_stats(apbi_source *s, apbi_source_stats *out);

/**
 * Opens a bundle by path or URL: "http://" and "https://" (any case) open
 * an HTTP source (apbi_source_open_http), wrapped in a disk tier when
 * opt->disk_cache is set (apbi_source_tier_wrap; if the server cannot be
 * reached the tier opens offline from the last version it saw); anything
 * else is a local path (apbi_source_open_file).  opt may be NULL for the
 * defaults.  Errors: as the source kinds below; -EINVAL for bad options.
 */
int apbi_source_open(const char *path_or_url, const struct apb_open_options *opt,
                     apbi_source **out);

/**
 * Opens url (http or https) as a source: one ranged GET fixes size, ETag
 * and Last-Modified.  s->name is the URL without user:password, query or
 * fragment.  Errors: -EINVAL (bad URL or options, with a detail),
 * -ECONNREFUSED / -ETIMEDOUT / -EHOSTDOWN (server unreachable, too slow, or
 * answering 5xx after every retry: worth an offline open from a tier),
 * -ENOENT (404), -EACCES (401/403), -EIO (anything else: no range support,
 * a malformed reply, TLS failure), -ENOMEM.
 */
int apbi_source_open_http(const char *url, const struct apb_open_options *opt,
                          apbi_source **out);

/**
 * Writes url's public name, scheme://host[:port]/path (no user:password,
 * query or fragment), to out.  Returns 0, or -EINVAL (not a URL, or longer
 * than cap - 1).
 */
int apbi_source_url_name(const char *url, char *out, size_t cap);

/** True for the open errors after which a tier may serve offline. */
int apbi_source_err_unreachable(int err);

/**
 * Wraps inner in a disk tier kept in dir (created if missing), holding at
 * most size_limit bytes for this object (key: the name without
 * credentials; each version, by identity, in its own subdirectory).  Reads
 * the tier holds wholly are served from disk without touching inner;
 * others go to inner.  apbi_source_commit stores the verified range
 * (crash-safe: temp file, fsync, rename; ranges that overlap a stored one
 * are not stored).  On success the tier owns inner (closes it).
 * inner == NULL opens offline: size and identity come from the last
 * version recorded for name in dir, and reads the tier does not hold fail
 * with -EIO; inner_err (the error that made inner unavailable) is quoted
 * in that detail.  On failure inner is closed too.
 * Errors: negative errno from the directory (-EACCES, -ENOTDIR), -ENOENT
 * (offline and no version recorded for name), -ENOMEM.
 */
int apbi_source_tier_wrap(apbi_source *inner, const char *name, int inner_err,
                          const char *dir, uint64_t size_limit, apbi_source **out);

/** Opens the inner source again (an offline tier's way back to the server). */
typedef int (*apbi_reopen_fn)(void *ctx, apbi_source **out);

/**
 * Lets an offline tier (opened with inner == NULL) try the server again: a
 * read the tier does not hold calls fn at most every 5 s (one thread at a
 * time; the others fail at once); if the source it opens has the identity
 * and size the tier serves, the tier goes online for good, otherwise it
 * closes it and stays offline (the detail says the object changed).  The
 * tier owns ctx and frees it with ctx_free (may be NULL) when closed.
 * Call right after apbi_source_tier_wrap, before any read.
 */
void apbi_source_tier_reconnect(apbi_source *tier, apbi_reopen_fn fn, void *ctx,
                                void (*ctx_free)(void *));

#endif
