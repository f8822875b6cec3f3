/*
 * apbundle.h - public API of libapbundle: model bundles, whole or paged.
 *
 * A bundle is one file holding many models (opaque byte strings with a name
 * and optional metadata).  This header is the whole public interface; the
 * on-disk format is described in docs/FORMAT.md.
 *
 * Conventions, for every function below:
 *  - Functions returning int return 0 on success (ssize_t ones a byte
 *    count) and a negative code on failure: a negative errno value where
 *    one fits (-ENOENT, -EIO, -ENOMEM, -EINVAL, -EFBIG, ...) or one of the
 *    APB_E_* format codes (all below -1000).
 *  - After a failure, apb_last_error() gives a one-line description naming
 *    the file, field or model involved.
 *  - Destructors (apb_*_free, apb_paged_close) accept NULL.
 *  - The library never prints, never exits and never writes to a bundle it
 *    reads.
 *  - Strings returned by the library are owned by the handle they came from
 *    and stay valid until that handle is freed, unless stated otherwise.
 *  - apb_bundle and apb_builder handles are not thread-safe; an apb_paged
 *    handle may be used from any number of threads at once.
 */
#ifndef APBUNDLE_H
#define APBUNDLE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Version                                                              */
/* ------------------------------------------------------------------ */

#define APB_VERSION_MAJOR 0
#define APB_VERSION_MINOR 1
#define APB_VERSION_PATCH 0
#define APB_VERSION_STRING "0.1.0"

/**
 * Highest on-disk format version this library reads (it reads 1 and 2).
 * Writers write 1 unless some model is compressed, which makes the bundle 2
 * (docs/FORMAT.md).
 */
#define APB_FORMAT_VERSION 2

/** Returns the library's version string ("MAJOR.MINOR.PATCH"); static. */
const char *apb_version(void);

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

enum apb_error {
	APB_E_BADMAGIC  = -1001, /* not a bundle: the first 8 bytes are not "APBUNDLE" */
	APB_E_VERSION   = -1002, /* format version this library cannot read */
	APB_E_MANIFEST  = -1003, /* manifest is not valid JSON or a field is missing/mistyped */
	APB_E_CORRUPT   = -1004, /* structure inconsistent: ranges outside the file, overlaps, counts */
	APB_E_CHECKSUM  = -1005, /* model bytes do not match their checksum */
	APB_E_TRUNCATED = -1006, /* file ends before the header, manifest or a model */
	APB_E_NAME      = -1007, /* invalid model name (empty, "..", control char, too long ...) */
	APB_E_DUPLICATE = -1008, /* two models with the same name */
};

/**
 * Returns a static English description of code (negative errno or APB_E_*).
 * Never returns NULL; unknown codes give "unknown error".
 */
const char *apb_strerror(int code);

/**
 * Maps any code returned by this library to a positive errno value suitable
 * for a FUSE reply or errno: format errors map to EIO (APB_E_NAME and
 * APB_E_DUPLICATE to EINVAL), negative errno values to their absolute value,
 * 0 to 0.
 */
int apb_errno(int code);

/**
 * Returns a description of the most recent failure of a library call made
 * by the calling thread, naming the file, field or model involved (for
 * example "models[3] \"enc\": offset+size beyond end of file").  Falls back
 * to apb_strerror() of the code when no detail was recorded.  The string is
 * thread-local and valid until the next library call from the same thread.
 * Returns "" when no call has failed yet.
 */
const char *apb_last_error(void);

/* ------------------------------------------------------------------ */
/* Sizes                                                                */
/* ------------------------------------------------------------------ */

/**
 * Parses a size such as "4096", "64K", "8MiB", "1G" or "2T" into *out:
 * decimal digits, then optionally K, M, G or T (either case; binary
 * multiples) followed by "iB" or "B", or a bare "B".  The whole string
 * must be used.  *out is untouched on failure.  Errors: -EINVAL (NULL,
 * empty, a sign, junk or a bad suffix), -ERANGE (over 64 bits).
 */
int apb_parse_size(const char *s, uint64_t *out);

/**
 * Formats bytes in binary units into buf ("512 B", "1.5 KiB", "64.0 MiB",
 * one decimal), truncated to cap bytes including the NUL.  Returns buf.
 */
const char *apb_format_size(uint64_t bytes, char *buf, size_t cap);

/* ------------------------------------------------------------------ */
/* Model metadata (mirrors aprender's ModelMetadata)                    */
/* ------------------------------------------------------------------ */

/** How a model's blocks are stored (docs/FORMAT.md, version 2). */
typedef enum apb_codec {
	APB_CODEC_NONE = 0,       /* stored as served: zero-copy, mmap-friendly */
	APB_CODEC_ZSTD = 1,       /* each block one independent zstd frame (or raw
	                             when it does not shrink) */
} apb_codec;

/** The byte filter applied to each block before its codec. */
typedef enum apb_filter {
	APB_FILTER_AUTO = -1,     /* builder only: picked per model from samples */
	APB_FILTER_NONE = 0,
	APB_FILTER_BYTEGROUP2 = 2, /* byte planes of 16-bit values (BF16, FP16) */
	APB_FILTER_BYTEGROUP4 = 4, /* byte planes of 32-bit values (FP32) */
} apb_filter;

/** "none", "zstd"; NULL for a value that is not an apb_codec.  Static. */
const char *apb_codec_name(apb_codec codec);
/** "auto", "none", "bytegroup2", "bytegroup4"; NULL otherwise.  Static. */
const char *apb_filter_name(apb_filter filter);

typedef struct apb_kv {
	const char *key;
	const char *value;
} apb_kv;

/**
 * Metadata of one model.  Every field may be NULL / zero-length.  When read
 * from a bundle the strings are owned by the bundle handle.
 */
typedef struct apb_metadata {
	const char *version;
	const char *architecture;
	const apb_kv *hyperparameters; /* sorted by key when read back */
	size_t n_hyperparameters;
	const apb_kv *custom;          /* sorted by key when read back */
	size_t n_custom;
} apb_metadata;

/**
 * Description of one model in an open bundle.  Pointers are owned by the
 * handle the info came from (apb_bundle or apb_paged).
 */
typedef struct apb_model_info {
	const char *name;
	uint64_t size;            /* bytes */
	uint64_t file_offset;     /* absolute offset of the first byte in the file */
	uint64_t checksum;        /* XXH3-64 of the model bytes; valid if has_checksum */
	bool has_checksum;        /* false only for aprender legacy bundles */
	uint32_t block_size;      /* checksum block size; 0 when unverifiable (legacy) */
	const apb_metadata *metadata; /* never NULL; fields empty when absent */
	uint64_t n_blocks;        /* checksum blocks (0 when empty or unverifiable) */
	bool has_block_table;     /* false: at most one block, checked by checksum */
	bool table_bound;         /* the block table is bound to the manifest by a
	                             checksum (true when there is no table) */
	apb_codec codec;          /* APB_CODEC_NONE unless compressed (version 2) */
	apb_filter filter;        /* APB_FILTER_NONE unless compressed */
	uint64_t stored_size;     /* bytes the model occupies in the file: == size
	                             when uncompressed; size is what readers get */
	uint32_t name_clash;      /* APB_CLASH_* bits: 0 for a name that fits a tree */
} apb_model_info;

/*
 * Names that cannot coexist in one directory tree (apb_model_info.name_clash).
 * Writers (apb_builder_build, apb_bundle_save) refuse them with APB_E_NAME;
 * readers open bundles written before that rule and flag the names here, so
 * a front end can say which models it cannot show or write:
 */
#define APB_CLASH_DIR      1u  /* the name is also a directory of other models
                                  ("a" beside "a/b"): a tree holds only one */
#define APB_CLASH_UNDER    2u  /* a directory on the name's path is itself a
                                  model ("a/b" beside "a") */
#define APB_CLASH_RESERVED 4u  /* the first component is one that apbundle-mount
                                  serves at its root: ".stats", ".stats.json",
                                  ".metrics" or ".control" */

/* ------------------------------------------------------------------ */
/* ModelBundle: a whole bundle in memory                                */
/* ------------------------------------------------------------------ */

typedef struct apb_bundle apb_bundle;

/** Returns a new empty in-memory bundle, or NULL when out of memory. */
apb_bundle *apb_bundle_new(void);

/**
 * Copies size bytes from data into the bundle as model name.
 * Errors: -EINVAL (NULL argument), APB_E_NAME, APB_E_DUPLICATE, -ENOMEM.
 */
int apb_bundle_add_model(apb_bundle *b, const char *name, const void *data, size_t size);

/**
 * Writes the bundle to path in format v1 (default alignment and block
 * size), atomically: either the complete file is at path or path is
 * untouched.  Errors: negative errno from the file system, -EINVAL.
 */
int apb_bundle_save(const apb_bundle *b, const char *path);

/**
 * Reads a whole bundle (v1 or aprender legacy layout) into memory, verifying
 * every checksum.  On success *out is a new handle the caller frees with
 * apb_bundle_free().  Errors: negative errno (-ENOENT, -EACCES, -ENOMEM,
 * -EFBIG when it cannot fit in the address space), any APB_E_* code.
 */
int apb_bundle_load(const char *path, apb_bundle **out);

/**
 * Looks up model name.  On success *data points at its bytes (valid until
 * apb_bundle_free or the next apb_bundle_add_model) and *size is its length.
 * Errors: -ENOENT.
 */
int apb_bundle_get_model(const apb_bundle *b, const char *name, const void **data, size_t *size);

/** Returns the number of models. */
size_t apb_bundle_model_count(const apb_bundle *b);

/**
 * Returns the name of model i (insertion order for new bundles, file order
 * for loaded ones), or NULL when i is out of range.  Owned by b.
 */
const char *apb_bundle_model_name(const apb_bundle *b, size_t i);

/**
 * Fills *out with the description of model i.  Errors: -ENOENT (i out of
 * range).  For bundles built in memory file_offset is 0 and has_checksum false.
 */
int apb_bundle_model_info(const apb_bundle *b, size_t i, apb_model_info *out);

/** Frees the bundle and everything it owns.  NULL is allowed. */
void apb_bundle_free(apb_bundle *b);

/* ------------------------------------------------------------------ */
/* BundleBuilder: streaming, atomic writer                              */
/* ------------------------------------------------------------------ */

typedef struct apb_builder apb_builder;

#define APB_DEFAULT_ALIGNMENT  4096u
#define APB_DEFAULT_BLOCK_SIZE 65536u
#define APB_MAX_NAME_LEN       4096u  /* bytes, whole name */
#define APB_MAX_COMPONENT_LEN  255u   /* bytes, one '/'-separated component */

/**
 * Returns a builder that will write a bundle to path when apb_builder_build
 * is called, or NULL when out of memory or path is NULL.  Nothing is written
 * before apb_builder_build.
 */
apb_builder *apb_builder_new(const char *path);

/**
 * Adds a model from memory.  The bytes are copied.  Errors: -EINVAL,
 * APB_E_NAME, APB_E_DUPLICATE, -ENOMEM.
 */
int apb_builder_add_model(apb_builder *bb, const char *name, const void *data, size_t size);

/**
 * Adds a model whose bytes are the contents of src_path.  The file is only
 * stat()ed now and streamed in chunks by apb_builder_build, so models larger
 * than memory are fine; it must not change in between.  Errors: -EINVAL,
 * APB_E_NAME, APB_E_DUPLICATE, negative errno from stat (-ENOENT, -EACCES),
 * -EISDIR or -EINVAL when src_path is not a regular file.
 */
int apb_builder_add_file(apb_builder *bb, const char *name, const char *src_path);

/**
 * Sets the data alignment (a power of two between 1 and 1 GiB; default
 * 4096).  Errors: -EINVAL.
 */
int apb_builder_set_alignment(apb_builder *bb, uint32_t alignment);

/**
 * Sets the checksum block size (a power of two between 512 and 1 GiB;
 * default 65536).  Errors: -EINVAL.
 */
int apb_builder_set_block_size(apb_builder *bb, uint32_t block_size);

/** Sets the bundle description (copied; NULL clears).  Errors: -ENOMEM, -EINVAL (bad UTF-8). */
int apb_builder_set_description(apb_builder *bb, const char *text);

/**
 * Asks for a "created_at" timestamp in the manifest: SOURCE_DATE_EPOCH when
 * set in the environment, else the current time.  Off by default so that
 * bundles are byte-for-byte reproducible.
 */
void apb_builder_set_timestamp(apb_builder *bb, bool on);

/**
 * Compresses every model of the bundle (aprender's
 * BundleConfig::with_compression): codec APB_CODEC_ZSTD at level (1..19;
 * 0 means 3), each block one independent zstd frame after filter
 * (APB_FILTER_AUTO tries none, bytegroup2 and bytegroup4 on a few blocks
 * of each model and keeps the smallest); a block that does not shrink is
 * stored raw.  Models of 0 bytes stay uncompressed.  Any compressed model
 * makes the bundle format version 2, which readers before it refuse.
 * Unless apb_builder_set_alignment was called, such a bundle is aligned to
 * 16 bytes, not 4096: compressed blocks are decoded, never mapped, so page
 * alignment would only add padding.
 * APB_CODEC_NONE turns compression off again (level and filter ignored).
 * The build then compresses on 2 threads; the output is the same bytes
 * whatever the thread timing.  Memory: a few blocks per thread (at most 8
 * blocks in flight, each with its frame) plus 16 bytes per block of the
 * model being written.
 * Errors: -EINVAL (NULL builder, unknown codec or filter, level out of range).
 */
int apb_builder_set_compression(apb_builder *bb, apb_codec codec, int level, apb_filter filter);

/**
 * Attaches metadata to an already added model (deep-copied).  Errors:
 * -ENOENT (no such model), -EINVAL (bad UTF-8 or NULL key), -ENOMEM.
 */
int apb_builder_set_metadata(apb_builder *bb, const char *name, const apb_metadata *md);

/**
 * Lets the caller cancel apb_builder_build, typically from a signal
 * handler: the build reads *flag after every chunk of at most 1 MiB
 * (copied from a source or hashed over a hole), before every model and
 * before renaming its temporary file; once *flag is non-zero it stops,
 * removes the temporary file and returns -ECANCELED (detail "... cancelled"),
 * leaving path untouched.  The rename is the commit point: a flag set
 * after it is not looked at and the build completes.  I/O already under
 * way (a slow read, the fsync) is not interrupted.  flag must stay valid
 * until the build returns; NULL (the default) turns the check off.
 */
void apb_builder_set_cancel(apb_builder *bb, const volatile sig_atomic_t *flag);

/** Receives n more source bytes consumed by apb_builder_build (holes included). */
typedef void (*apb_progress_fn)(void *ctx, uint64_t n);

/**
 * Has apb_builder_build call fn(ctx, n) in the building thread after every
 * chunk of at most 1 MiB it copies from a source or hashes over a hole, so
 * the calls add up to the total size of the models (for a progress line).
 * fn must not call into bb.  NULL (the default) turns it off.
 */
void apb_builder_set_progress(apb_builder *bb, apb_progress_fn fn, void *ctx);

/**
 * Writes the bundle: to "path.tmp.XXXXXX" in the same directory, fsync,
 * rename over path, fsync the directory.  On any failure before the rename
 * the temporary file is removed and path is untouched.  The rename is the
 * commit point: if only the final fsync of the directory fails, the call
 * returns that error but the new, complete bundle is already at path (its
 * durability across a power loss is then not guaranteed).  A builder can
 * build once.
 * While it exists the temporary file is locked with flock(LOCK_EX) on the
 * builder's descriptor, so a cleaner can tell it from one left by a killed
 * process, which nobody locks: remove "path.tmp.XXXXXX" files only after
 * taking their lock with flock(LOCK_EX | LOCK_NB).
 * Errors: negative errno (I/O, a source file that changed size: -EIO),
 * -ECANCELED (see apb_builder_set_cancel), -EINVAL (already built),
 * -EFBIG (offsets would overflow).
 */
int apb_builder_build(apb_builder *bb);

/** Frees the builder (does not remove a built bundle).  NULL is allowed. */
void apb_builder_free(apb_builder *bb);

/* ------------------------------------------------------------------ */
/* PagedBundle: serve models under a hard memory budget                 */
/* ------------------------------------------------------------------ */

typedef struct apb_paged apb_paged;

/*
 * Eviction policies of the page cache.  Every policy is O(1) per cache
 * operation (SIEVE, S3-FIFO and 2Q amortized) and keeps its bookkeeping in
 * memory fixed at open: see apb_eviction_describe for when to pick which.
 * The policy sees every hit of a single thread.  When threads hit at once
 * and one finds the cache's lock busy, the policy sees one in 8 of that
 * thread's hits for its next 16 batches of up to 64 (the hit counters
 * still count every one), so that two threads serve hits nearly twice as
 * fast as one (docs/BENCHMARKS.md); while a trace is recorded every hit
 * reaches the policy, so the replay stays exact.
 */
typedef enum {
	APB_EVICT_LRU = 0,
	APB_EVICT_LFU = 1,
	APB_EVICT_SIEVE = 2,
	APB_EVICT_S3FIFO = 3,
	APB_EVICT_2Q = 4,
	APB_EVICT_TINYLFU = 5,
} apb_eviction;

/** Number of apb_eviction values (they are 0..APB_EVICT_COUNT-1). */
#define APB_EVICT_COUNT 6

/**
 * Name of policy e as the mount's eviction= option and the CLI take it
 * ("lru", "lfu", "sieve", "s3fifo", "2q", "tinylfu"): a static string, or
 * NULL when e is not an apb_eviction value.
 */
const char *apb_eviction_name(apb_eviction e);

/**
 * Parses a policy name (exact, lower case) into *out.  Returns 0, or
 * -EINVAL for NULL or an unknown name (*out untouched), with an
 * apb_last_error() text that lists the valid names.
 */
int apb_eviction_parse(const char *name, apb_eviction *out);

/**
 * One line (static string, no newline) saying what policy e does and when
 * to pick it, for help texts; NULL when e is not an apb_eviction value.
 */
const char *apb_eviction_describe(apb_eviction e);

#define APB_DEFAULT_MAX_MEMORY    (100u * 1024u * 1024u)
#define APB_DEFAULT_PAGE_SIZE     65536u
#define APB_DEFAULT_PREFETCH_COUNT 2u

typedef struct apb_paging_config {
	uint64_t max_memory;      /* bytes of cached model data; default 100 MiB */
	uint32_t page_size;       /* power of two, >= 512; default 64 KiB */
	bool prefetch;            /* default true */
	uint32_t prefetch_count;  /* next-likely models to prefetch; default 2 */
	apb_eviction eviction;    /* default APB_EVICT_TINYLFU (docs/BENCHMARKS.md) */
	bool huge_pages;          /* back the page cache with transparent huge pages
	                             (MADV_HUGEPAGE) when it is 2 MiB or more; default
	                             true: it halves the CPU of filling a cold cache on
	                             a VM (docs/BENCHMARKS.md).  Best effort; with THP
	                             "defrag" set to madvise (Debian's default) a first
	                             touch may wait for compaction on a fragmented
	                             machine: false avoids that. */
} apb_paging_config;

/** Fills cfg with the defaults above. */
void apb_paging_config_init(apb_paging_config *cfg);

typedef struct apb_paging_stats {
	uint64_t hits, misses, evictions;   /* counted per page lookup */
	uint64_t bytes_loaded;              /* bytes read from the bundle (stored bytes:
	                                       compressed as stored; block tables too) */
	uint64_t memory_used;               /* cached payload bytes now; <= max_memory always */
	uint64_t prefetches, prefetch_hits; /* pages prefetched; of those, later used */
	uint64_t cached_pages;              /* pages resident now */
	uint64_t checksum_failures;         /* blocks refused since open */
	uint64_t prefetch_wasted;           /* prefetched pages evicted before any use */
	uint64_t bytes_decoded;             /* bytes of compressed blocks decoded */
	uint64_t decode_ns;                 /* time spent decoding them (ns) */
	uint64_t readahead_window;          /* bytes: the bound on every reader's read
	                                       window now (0: prefetch off) */
	uint64_t sequential_reads;          /* reads that continued a sequential stream */
	uint64_t readahead_seeks;           /* reads that ended one (its window reset) */
	uint64_t readahead_shrinks;         /* windows halved: prefetches evicted unused,
	                                       or readahead that did not fit the budget */
} apb_paging_stats;

/** Returns hits / (hits + misses), or 0.0 when there were no lookups. */
double apb_paging_stats_hit_rate(const apb_paging_stats *s);

/**
 * Opens path (v1 or legacy layout) for paged access and validates its
 * structure (not the model bytes: those are verified page by page as they
 * are read).  cfg may be NULL for the defaults.  Starts no thread: the
 * prefetch worker starts on first need or with apb_paged_start_worker.
 * On success *out must be closed with apb_paged_close.
 * max_memory must hold the pages one read needs, for every model: its
 * checksum block (at most the model) rounded up to whole pages and, when
 * the model has a block table, the table chunk (at most 64 KiB) and the
 * index that verify it, each rounded up to pages (an object's last page
 * holds only its bytes).  With less, a block is cached only in part and
 * every page miss reads and verifies the whole block again, so it is
 * refused: -EINVAL, apb_last_error() naming the model and the minimum
 * (65,672 bytes for a 1 MiB model of 64 KiB blocks: the block, its
 * 128-byte table and 8-byte index; 100 bytes for one 100-byte model).
 * An edited manifest (one whose "manifest_checksum" does not match, see
 * docs/FORMAT.md 2.4) is refused with APB_E_CHECKSUM.
 * Errors: -EINVAL (bad config: page_size not a power of two >= 512,
 * max_memory 0 or below the minimum above; path not a regular file: a
 * FIFO or device is refused without blocking), negative errno from
 * open/fstat, any APB_E_* format code.
 */
int apb_paged_open(const char *path, const apb_paging_config *cfg, apb_paged **out);

/**
 * Copies up to len bytes of model name starting at offset into buf, through
 * the cache.  Returns the number of bytes copied (0 at or past the end).
 * Errors: -ENOENT (no such model), APB_E_CHECKSUM (a block in the range is
 * corrupt; nothing from it is cached), APB_E_CORRUPT (a compressed block in
 * the range does not decode), -EIO and other negative errno.  Only blocks
 * in the range matter: when blocks are smaller than pages, a page holding a
 * bad block is not cached, and the good blocks of it that the range asks
 * for are read and verified uncached, block by block.
 */
ssize_t apb_paged_read(apb_paged *pb, const char *name, void *buf, size_t len, uint64_t offset);

/**
 * Returns the whole model as one contiguous, verified, pinned view: *data
 * stays valid until apb_paged_release(pb, *data).  The view's bytes count
 * against max_memory.  Errors: -ENOENT, -EFBIG (the model is larger than
 * max_memory; the cache is left as it was: use apb_paged_read), -ENOBUFS
 * (not enough unpinned memory right now: everything else is pinned), APB_E_CHECKSUM, -EIO, -ENOMEM.
 */
int apb_paged_get_model(apb_paged *pb, const char *name, const void **data, size_t *size);

/** Releases a view returned by apb_paged_get_model.  NULL is ignored. */
void apb_paged_release(apb_paged *pb, const void *data);

/** Returns true when every page of model name is resident. */
bool apb_paged_is_cached(apb_paged *pb, const char *name);

/**
 * Drops the model's unpinned pages from the cache.  Returns false when the
 * model does not exist, true otherwise.
 */
bool apb_paged_evict(apb_paged *pb, const char *name);

/** Drops every unpinned page. */
void apb_paged_clear_cache(apb_paged *pb);

/**
 * Asks the background worker to load model name (as much as fits without
 * evicting pages used more recently).  Returns at once; 0 when queued.
 * Errors: -ENOENT, -EAGAIN (prefetch disabled or queue full).
 */
int apb_paged_prefetch_hint(apb_paged *pb, const char *name);

/**
 * Snapshot of the statistics (consistent per counter).  The cache's
 * counters (hits, misses, evictions, bytes_loaded, memory_used,
 * prefetches, cached_pages) are those of the cache, shared by every
 * handle of apb_paged_open_shared; checksum_failures and the decode
 * counters are this handle's.
 */
void apb_paged_stats(apb_paged *pb, apb_paging_stats *out);

/**
 * Stops the worker and closes the file.  Views still held become invalid.
 * The pages are freed with the last handle sharing the cache
 * (apb_paged_open_shared); before that, the pages only this handle used
 * are dropped.  NULL is allowed.
 */
void apb_paged_close(apb_paged *pb);

/* Extensions beyond the aprender API, used by the CLI and the mount. */

/** Returns the number of models. */
size_t apb_paged_model_count(apb_paged *pb);

/** Fills *out for model index i.  Errors: -ENOENT. */
int apb_paged_model_info(apb_paged *pb, size_t i, apb_model_info *out);

/** Returns the index of model name, or -ENOENT. */
ssize_t apb_paged_find(apb_paged *pb, const char *name);

/** apb_paged_read by model index (no name lookup).  Errors as apb_paged_read. */
ssize_t apb_paged_read_index(apb_paged *pb, size_t index, void *buf, size_t len, uint64_t offset);

typedef struct apb_model_stats {
	uint64_t cached_bytes;
	uint64_t hits, misses;
} apb_model_stats;

/** Per-model counters for model index i.  Errors: -ENOENT. */
int apb_paged_model_stats(apb_paged *pb, size_t i, apb_model_stats *out);

/** The configuration in force (defaults filled in). */
void apb_paged_config(apb_paged *pb, apb_paging_config *out);

/**
 * Starts the background worker now (for callers that fork, such as a
 * daemonizing mount: call after the fork).  Idempotent.  Errors: negative
 * errno from pthread_create.
 */
int apb_paged_start_worker(apb_paged *pb);

/* ------------------------------------------------------------------ */
/* Traces: record the cache's page lookups, replay them offline         */
/* ------------------------------------------------------------------ */

/*
 * Trace text format (one page lookup per line, in the order the cache
 * counted them): "NAME<TAB>PAGE\n", PAGE the decimal page index.  Lines
 * starting with '#' are comments, except "# page_size N" and
 * "# model NAME SIZE" (SIZE in bytes, after the last space), which a
 * recorded trace writes first.  Empty lines are ignored.  In NAME a
 * backslash, tab, newline and carriage return are written "\\", "\t",
 * "\n" and "\r", and a leading '#' as "\#" (so that it is not a
 * comment); any other backslash sequence is an error.
 *
 * A recorded trace also holds "#@ WORD OBJECT PAGE" records of what the
 * cache did between lookups, so that a replay can do the same (readers
 * that do not know them take them for comments).  OBJECT is the cache's
 * object number: the i-th "# model" line is object i (from 0); a model's
 * block table and its index are metadata objects, declared by
 * "#@ object K SIZE" after the models.  The words: "claim" (the page's
 * bytes were reserved for a load, evicting what the policy chose; it
 * enters the policy when its lookup or "fill" follows), "fill ... KIND"
 * (a claimed page that nobody looked up entered the policy: KIND 1 a
 * prefetch, 2 a readahead, 0 a demand), "meta" (a lookup of a metadata
 * page: it takes budget and a policy place, and is not counted), "wait"
 * (the lookup that follows waited for another reader's load of the page:
 * counted as a miss), "drop" (a claimed page failed to load), "keep" (a
 * claim met this page as the policy's victim and did not evict it),
 * "park" and "unpark" (a victim pinned by a reader left the policy,
 * keeping its bytes, and came back when unpinned).  A known word with
 * malformed numbers, an undeclared object, a page beyond its object or a
 * "# model" line after a record is an error; unknown words are comments.
 */

/**
 * Starts recording every page lookup the cache counts (each hit and each
 * miss of apb_paging_stats, one line each) into a new file at path
 * (created or truncated, mode 0644 before umask), after the header lines,
 * with the "#@ " records a replay needs to account pages as the cache did.
 * While a trace runs every hit takes the cache lock, so the file's order
 * is the order the policy saw.  The trace keeps to the cache objects live
 * when it started: after a reload (apb_paged_open_shared) a model the new
 * bundle shares with the old one is still recorded, a new one is not.
 * A background thread formats and writes; the readers only append to a
 * buffer of 1 MiB (outside max_memory) and wait only when the writer is a
 * whole buffer behind.  Errors: -EBUSY (a trace is already running),
 * negative errno from open or pthread_create, -ENOMEM.
 */
int apb_paged_trace_start(apb_paged *pb, const char *path);

/**
 * Stops the trace: writes what is buffered, closes the file.  Returns 0,
 * -ENOENT when no trace runs, or the first write error (negative errno;
 * the file is then incomplete).  apb_paged_close stops a running trace
 * itself (discarding its error).
 */
int apb_paged_trace_stop(apb_paged *pb);

/** A parsed trace (immutable; any number of simulations may read it). */
typedef struct apb_sim_trace apb_sim_trace;

/**
 * Parses len bytes of trace text.  On success *out must be freed with
 * apb_simulate_free.  Errors: -EINVAL (with apb_last_error() naming the
 * line and the problem: a malformed line, a page beyond its model's
 * declared size, a model declared twice with different sizes or after its
 * first access, a bad page_size, more than 2^32-1 accesses), -ENOMEM.
 */
int apb_simulate_parse(const char *text, size_t len, apb_sim_trace **out);

/** Reads and parses the trace file at path.  Errors: as above, negative errno. */
int apb_simulate_load(const char *path, apb_sim_trace **out);

/** Frees a trace.  NULL is allowed. */
void apb_simulate_free(apb_sim_trace *t);

/** Page lookups in the trace. */
uint64_t apb_simulate_accesses(const apb_sim_trace *t);

/** The trace's "# page_size" value, or 0 when it has none. */
uint32_t apb_simulate_page_size(const apb_sim_trace *t);

typedef struct apb_sim_result {
	uint64_t accesses, hits;
	uint64_t capacity_pages;   /* max_memory / page_size */
} apb_sim_result;

/**
 * Replays t through the real implementation of policy e with the live
 * cache's accounting: a budget of max_memory bytes (short last pages count
 * their length, as in memory_used), the cache's bound on entries, evict
 * before insert, a page larger than the budget never cached, and the
 * trace's "#@ " records (claims, metadata, prefetches, parked pages) done
 * as the cache did them.  page_size 0 takes the trace's (or the default
 * 64 KiB).  A trace recorded with policy e replayed at the budget it was
 * recorded with gives exactly the live hits, with prefetch on or off and
 * any number of readers; not replayed: whole-model views
 * (apb_paged_get_model) and a change of budget or bundle while recording.
 * A plain trace (lookups only) replays each miss as evict-then-insert.
 * Errors: -EINVAL (a
 * page_size that is not a power of two >= 512 or differs from the trace's,
 * max_memory 0, unknown e), -ENOMEM.
 */
int apb_simulate_policy(const apb_sim_trace *t, apb_eviction e, uint64_t max_memory,
                        uint32_t page_size, apb_sim_result *out);

/**
 * Belady's optimal offline replacement on the same accounting (evict the
 * page whose next use is farthest; a page may be evicted as it enters):
 * the upper bound of every policy's hits.  O(n log n) time, about 24
 * bytes per lookup of memory.  Errors: as apb_simulate_policy.
 */
int apb_simulate_belady(const apb_sim_trace *t, uint64_t max_memory, uint32_t page_size,
                        apb_sim_result *out);

/* Zero-copy access for servers (the FUSE mount replies straight from the
 * cache's pages with fuse_reply_iov / fuse_reply_data). */

struct iovec;

/** Opaque set of pages pinned by apb_paged_pin_range. */
typedef struct apb_pinned apb_pinned;

/**
 * Pins the cache pages holding bytes [offset, offset+len) of model index
 * (clamped to the model's end) and describes them in iov[0..*n_iov), at
 * most max_iov entries (adjacent pages that are contiguous in memory share
 * one entry).  Returns the number of bytes described, which may be less
 * than asked when max_iov pages were not enough, a later page could not
 * be pinned, or the range needs more than half of max_memory (one call
 * never pins more, so replies in flight cannot starve the loads of others):
 * the caller serves that prefix and asks again for the rest.
 * Returns 0 (and *pins = NULL) at or past the end of the model.
 * Missing pages are loaded and verified first, as by apb_paged_read_index,
 * and are counted in the statistics the same way.
 *
 * Ownership: on a positive return *pins must be passed to
 * apb_paged_unpin(pb, *pins) exactly once, after the bytes have been used
 * (for FUSE: after fuse_reply_iov/fuse_reply_data returned).  The iov
 * bases point into the cache and stay valid, read-only, until then.
 * Pinned pages count against max_memory and cannot be evicted, so hold
 * pins only for the duration of one reply.
 *
 * Errors (nothing pinned, *pins = NULL, *n_iov = 0): -ENOBUFS when the
 * range cannot be pinned but can be copied: no page of it can be pinned
 * right now (everything else is pinned), or its first page holds a bad
 * block outside the bytes asked for (blocks smaller than pages: the page
 * fails whole); the caller falls back to copying with
 * apb_paged_read_index, which reads the file directly and serves the good
 * blocks; -ENOENT (index out of range), -EINVAL (NULL argument, max_iov <=
 * 0), APB_E_CHECKSUM or APB_E_CORRUPT (the bytes asked for start in a bad
 * block, or its table is bad), -EIO and other negative errno, -ENOMEM.
 */
ssize_t apb_paged_pin_range(apb_paged *pb, size_t index, uint64_t offset, size_t len,
                            struct iovec *iov, int max_iov, int *n_iov, apb_pinned **pins);

/** Releases pins from apb_paged_pin_range and frees the set.  NULL is ignored. */
void apb_paged_unpin(apb_paged *pb, apb_pinned *pins);

/* Readers: one per open file of a server (the mount keeps one per file
 * handle), each with its own read window. */

/** Opaque reader of one model (apb_reader_open). */
typedef struct apb_reader apb_reader;

/** Most readers open at once on one apb_paged (apb_reader_open: -EMFILE beyond). */
#define APB_MAX_READERS 4096u

/**
 * Opens a reader of model index of pb.  Reads through it (apb_reader_read,
 * apb_reader_pin) serve the same bytes, from the same cache, as
 * apb_paged_read_index and apb_paged_pin_range, but the reader keeps its
 * own read window instead of sharing the model's with every other reader:
 * it opens at about 1 MiB when a read starts at offset 0 or where the
 * reader's previous read ended, doubles on every read that stays
 * sequential (reads up to one window out of order count, as a server's
 * threads deliver them), and closes on any other read (a seek).  While it
 * is open the library loads up to one window ahead of the reader in the
 * background (with several loads in flight for a network source).  Every
 * window is capped so that all readers' windows together fit a quarter of
 * max_memory (at most 64 MiB each), and the cap halves whenever prefetched
 * pages are evicted before use (apb_paging_stats.readahead_shrinks).
 * With prefetch off (apb_paging_config.prefetch) a reader reads exactly
 * like the apb_paged_* calls.
 *
 * Memory: one small allocation (under 100 bytes) outside max_memory; at
 * most APB_MAX_READERS readers are open at once on one pb, so readers
 * cannot grow the process without bound.
 *
 * Errors: -EINVAL (NULL argument), -ENOENT (no model index), -EMFILE
 * (APB_MAX_READERS already open: read with apb_paged_read_index and
 * apb_paged_pin_range, which share the model's window), -ENOMEM.
 *
 * Lifetime: close with apb_reader_close before apb_paged_close(pb).  A
 * reader may be used by several threads at once.
 */
int apb_reader_open(apb_paged *pb, size_t index, apb_reader **out);

/** Closes a reader: its queued readahead is dropped.  NULL is ignored. */
void apb_reader_close(apb_reader *r);

/** apb_paged_read_index(pb, index, buf, len, offset) through reader r. */
ssize_t apb_reader_read(apb_reader *r, void *buf, size_t len, uint64_t offset);

/**
 * apb_paged_pin_range through reader r, with the same contract: on a
 * positive return pass *pins to apb_paged_unpin (with r's pb) exactly once.
 */
ssize_t apb_reader_pin(apb_reader *r, uint64_t offset, size_t len, struct iovec *iov,
                       int max_iov, int *n_iov, apb_pinned **pins);

/** What a reader's read window is now (apb_reader_info). */
typedef struct apb_reader_stats {
	uint64_t window;            /* bytes the library reads ahead of it (0: none now) */
	uint64_t sequential_reads;  /* its reads that continued its stream */
	uint64_t seeks;             /* its reads that ended it */
} apb_reader_stats;

/** Fills *out for reader r (zeros for NULL). */
void apb_reader_info(apb_reader *r, apb_reader_stats *out);

/* ------------------------------------------------------------------ */
/* Bundle description, block-level errors and verified streaming       */
/* ------------------------------------------------------------------ */

/** Description of an open bundle; pointers owned by the handle. */
typedef struct apb_bundle_info {
	const char *path;         /* as given to apb_paged_open */
	uint32_t format_version;  /* the header's version field */
	bool legacy;              /* aprender's binary manifest: no checksums */
	uint32_t alignment;       /* data alignment (1 for legacy) */
	uint32_t block_size;      /* the most common checksum block size; 0 when none */
	uint64_t file_size;
	uint64_t data_start;      /* absolute offset of the data section */
	const char *description;  /* NULL when absent */
	bool has_created_at;
	int64_t created_at;       /* seconds since the epoch, if has_created_at */
	size_t model_count;
	bool tables_bound;        /* every block table is bound to the manifest by a
	                             checksum (false: written by an old writer) */
	bool tables_indexed;      /* every block table has an index, so a read loads
	                             only the table chunks it needs (false: an old
	                             writer; the first read of such a model reads its
	                             whole table once) */
	bool manifest_bound;      /* the manifest carries "manifest_checksum" and it
	                             matched (false: written by an older apbundle;
	                             a mismatch fails the open) */
	size_t name_clashes;      /* models whose name_clash is not 0 */
} apb_bundle_info;

/** Fills *out for the open bundle.  Errors: -EINVAL (NULL argument). */
int apb_paged_bundle_info(apb_paged *pb, apb_bundle_info *out);

/** Where a verification failure was found. */
typedef enum apb_block_where {
	APB_WHERE_BLOCK = 0,      /* a data block: block, offset and length name it */
	APB_WHERE_TABLE = 1,      /* the model's block table (or its index) */
	APB_WHERE_MODEL = 2,      /* the whole-model checksum, every block being good */
} apb_block_where;

/** A failure tied to one block of one model (see apb_last_block_error). */
typedef struct apb_block_error {
	int code;                 /* APB_E_CHECKSUM, APB_E_CORRUPT (a bad frame or
	                             table entry), -EIO ... */
	size_t model;             /* model index */
	apb_block_where where;
	uint64_t block;           /* block index in the model (APB_WHERE_BLOCK) */
	uint64_t offset, length;  /* the block's bytes in the model (as served,
	                             i.e. decoded); for TABLE/MODEL the whole model */
} apb_block_error;

/**
 * Tells which block the calling thread's most recent failed read of a
 * model was about: true and *out filled when that failure (from
 * apb_paged_read*, apb_paged_pin_range, apb_paged_get_model or
 * apb_paged_stream) named a block, table or model checksum; false
 * otherwise (for example after -ENOENT).  Thread-local like
 * apb_last_error(); cleared by the thread's next library call.  The block
 * is named from what the failed load found: nothing is read again.
 */
bool apb_last_block_error(apb_block_error *out);

/** Callbacks of apb_paged_stream. */
typedef struct apb_stream_ops {
	/* Verified bytes [offset, offset+len) of the model, in order, every
	 * byte exactly once (bytes of bad blocks are skipped).  Return 0 to go
	 * on; any other value stops the stream, which returns it. */
	int (*data)(void *ctx, uint64_t offset, const void *buf, size_t len);
	/* A bad block (or table) was found.  NULL: the stream stops at the
	 * first one and returns its code.  Else return 0 to go on with the
	 * next block (a verify that wants every bad block), non-zero to stop
	 * (returned). */
	int (*bad_block)(void *ctx, const apb_block_error *e);
	/* Progress after each chunk read (bytes of the model done so far);
	 * may be NULL.  Return non-zero to stop (returned). */
	int (*progress)(void *ctx, uint64_t done, uint64_t total);
} apb_stream_ops;

typedef struct apb_stream_result {
	uint64_t bytes;           /* bytes handed to data() */
	uint64_t blocks;          /* blocks verified good */
	uint64_t bad_blocks;      /* blocks that failed (bad_block() calls) */
	bool verified;            /* false: the model has no checksums (legacy) */
} apb_stream_result;

/**
 * Reads model index from start to end, block by block, verifying each
 * block and finally the whole-model checksum, and hands the verified bytes
 * to ops->data.  Goes around the page cache (nothing it reads is cached,
 * hits and misses are not counted; block tables are read through the cache
 * as for any read), holding at most one 1 MiB chunk (or one block, if
 * larger) at a time.  res may be NULL.  Returns 0 when every byte was
 * verified and delivered; APB_E_CHECKSUM / APB_E_CORRUPT when a block,
 * table or the whole-model checksum failed (after bad_block() returned 0
 * for every bad block: the first failure's code), with
 * apb_last_block_error() naming it; a callback's non-zero value; -ENOENT,
 * -EIO and other negative errno.
 */
int apb_paged_stream(apb_paged *pb, size_t index, const apb_stream_ops *ops, void *ctx,
                     apb_stream_result *res);

/* ------------------------------------------------------------------ */
/* Remote bundles: http:// and https:// URLs, and a local disk tier     */
/* ------------------------------------------------------------------ */

#define APB_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define APB_DEFAULT_TIMEOUT_MS        30000u
#define APB_DEFAULT_RETRIES           5u
#define APB_DEFAULT_DISK_CACHE_SIZE   (1024ull * 1024u * 1024u)

/**
 * How a bundle named by a URL is fetched.  A local path ignores every
 * field.  Strings are borrowed: they must stay valid until the open call
 * returns (the library copies what it keeps).
 *
 * A URL is read with HTTP/1.1 range requests over kept-alive connections;
 * the object's size, ETag and Last-Modified are fixed at open and sent with
 * every request (If-Match / If-Range), so an object replaced under a live
 * handle makes reads fail with -EIO, never return a mix of versions.
 * Redirects are not followed.  The URL's user:password and query string are
 * used for requests but never appear in error details or names.
 */
typedef struct apb_open_options {
	uint32_t connect_timeout_ms; /* TCP+TLS connect limit; default 5 s */
	uint32_t timeout_ms;         /* longest one read may take, retries included;
	                                default 30 s.  A read that cannot finish in
	                                time fails with -EIO (later reads try again). */
	uint32_t retries;            /* extra attempts per request after a connection
	                                error, a 5xx or a short body, with exponential
	                                backoff (50 ms doubling, at most 2 s); default 5 */
	const char *ca_file;         /* PEM CA bundle for https; NULL: system CAs.
	                                Certificates are always verified. */
	const char *header;          /* one extra request header "Name: value" (a
	                                bearer token, ...); never logged or put in an
	                                error detail; NULL: none */
	const char *disk_cache;      /* directory of the disk tier; NULL: none */
	uint64_t disk_cache_size;    /* bytes the tier may hold for one object;
	                                default 1 GiB */
} apb_open_options;

/** Fills opt with the defaults above (no CA file, header or disk tier). */
void apb_open_options_init(apb_open_options *opt);

/** Returns true when s names a remote bundle (starts with http:// or https://). */
bool apb_is_url(const char *s);

/**
 * apb_paged_open for a path or an http(s):// URL, with opt saying how a
 * URL is fetched (NULL: apb_open_options_init's defaults).  apb_paged_open
 * is this with opt NULL, so it takes URLs too.  Errors as apb_paged_open,
 * plus for URLs: -ECONNREFUSED, -ETIMEDOUT, -EHOSTDOWN (server unreachable
 * and no disk tier that saw the object), -ENOENT (404), -EACCES (401/403),
 * -EIO (no range support, a malformed reply, a TLS failure), -EINVAL (bad
 * URL or options).  With opt->disk_cache the bundle opens offline from the
 * tier when the server cannot be reached (apb_paged_source_stats: offline).
 */
int apb_paged_open_with(const char *path, const apb_paging_config *cfg,
                        const apb_open_options *opt, apb_paged **out);

/**
 * Opens path (a file or URL, opt as in apb_paged_open_with) as a new
 * handle that shares old's page cache, budget (max_memory bounds both
 * together) and paging config: for a bundle replaced under a running
 * service.  The new bundle is validated like apb_paged_open's; a model
 * whose name, checksum, size, block size and block table checksum are
 * the same in both keeps its cached pages and per-model counters (one
 * cache object serves both handles).  old stays open and usable; each
 * handle is closed with apb_paged_close, in any order, and the cache
 * lives until the last handle sharing it closes.  Closing and opening
 * handles of one share from several threads is safe; reads through a
 * handle must end before it is closed.  The new handle's prefetch worker
 * starts like apb_paged_open's.
 * Errors: -EINVAL (NULL argument; old's max_memory cannot hold one load
 * of the new bundle), -ENOMEM, and apb_paged_open's codes for a bundle
 * that does not open or validate (old is unchanged then).
 */
int apb_paged_open_shared(apb_paged *old, const char *path, const apb_open_options *opt,
                          apb_paged **out);

/**
 * The generation of pb within its cache share: 1 for a handle from
 * apb_paged_open / apb_paged_open_with, one more than the last for each
 * apb_paged_open_shared.  0 for NULL.
 */
uint64_t apb_paged_generation(apb_paged *pb);

/** apb_bundle_load for a path or URL, with opt as in apb_paged_open_with. */
int apb_bundle_load_with(const char *path, const apb_open_options *opt, apb_bundle **out);

#define APB_LATENCY_BUCKETS 12

/**
 * Upper bound, in microseconds, of latency bucket i of apb_source_stats
 * (250 us ... 1 s; UINT64_MAX for the last bucket and past it).
 */
uint64_t apb_latency_bound_us(unsigned i);

/** Where a paged bundle's stored bytes came from (counters since open). */
typedef struct apb_source_stats {
	const char *kind;          /* "file" or "http"; static */
	uint64_t bytes_read;       /* stored bytes returned by the source (tier included) */
	uint64_t reads;            /* read calls */
	uint64_t net_bytes;        /* HTTP body bytes received */
	uint64_t net_requests;     /* HTTP requests, retries included */
	uint64_t net_retries;      /* of those, retries after a transient failure */
	uint64_t net_errors;       /* reads that failed after every retry */
	uint64_t latency_us_sum;   /* sum of request latencies */
	uint64_t latency[APB_LATENCY_BUCKETS]; /* requests per latency bucket */
	uint64_t tier_bytes;       /* bytes served by the disk tier */
	uint64_t tier_hits, tier_misses; /* reads served wholly by the tier, or not */
	uint64_t tier_stored;      /* bytes the tier holds now */
	uint64_t tier_commits;     /* ranges written to the tier */
	uint64_t tier_evictions;   /* ranges the tier dropped to stay in its size */
	bool offline;              /* opened from the tier, the server unreachable */
	uint64_t loads;            /* block loads (the cache's loader calls: each reads,
	                              verifies and decodes one run of pages) */
	uint64_t load_us_sum;      /* their total time */
	uint64_t load_latency[APB_LATENCY_BUCKETS]; /* block loads per latency bucket */
} apb_source_stats;

/** Fills *out (zeroed first) for pb; NULL pb gives zeros. */
void apb_paged_source_stats(apb_paged *pb, apb_source_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* APBUNDLE_H */
