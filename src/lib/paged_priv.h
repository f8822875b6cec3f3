/*
 * paged_priv.h - the PagedBundle handle, shared by paged.c (open, reads,
 * views, statistics), paged_stream.c (verified streaming, bundle info) and
 * reader.c (per-reader read windows).
 *
 * Everything here is fixed at open except the count of open readers
 * (reader.c, atomic) and what the cache, the block layer and the
 * prefetcher keep behind their own locks.
 */
#ifndef APB_PAGED_PRIV_H
#define APB_PAGED_PRIV_H

#include "apbundle.h"
#include "block.h"
#include "cache.h"
#include "format.h"
#include "internal.h"
#include "prefetch.h"
#include "source.h"

/* Bytes one coalesced load (and one stream chunk) reads at most. */
#define RUN_BYTES (1u << 20)
/* The same for a source with network latency (fewer, larger requests). */
#define RUN_BYTES_REMOTE (4u << 20)

struct apb_paged {
	char *path;               /* as opened */
	apbi_source *src;
	apbi_manifest *man;
	apbi_blocks *bl;          /* the cache's loader; tables through the cache */
	apb_paging_config cfg;
	unsigned shift;           /* log2(cfg.page_size) */
	apbi_cache *cache;
	apbi_prefetch *pf;        /* NULL when prefetch is off */
	uint32_t readers;         /* apb_reader handles open (atomic) */
	struct apbi_share *share; /* the handles sharing cache (paged_shared.c) */
	apb_paged *share_next;    /* next of them, under share->lock */
	uint32_t *gid;            /* per object of bl: its cache id; NULL: the same */
	uint64_t generation;      /* 1 for the first handle of a cache, then +1 */
};

/** apb_paged_read_index through reader stream ra (NULL: the model's). */
ssize_t apbi_paged_read(apb_paged *pb, size_t index, void *buf, size_t len, uint64_t offset,
                        apbi_ra *ra);

/** apb_paged_pin_range through reader stream ra (NULL: the model's). */
ssize_t apbi_paged_pin(apb_paged *pb, size_t index, uint64_t offset, size_t len,
                       struct iovec *iov, int max_iov, int *n_iov, apb_pinned **pins,
                       apbi_ra *ra);

/** The cache's id of pb's object (model or table) o. */
static inline uint32_t apbi_paged_gid(const apb_paged *pb, uint32_t o)
{
	return pb->gid ? pb->gid[o] : o;
}

/**
 * Checks a paging config alone (m NULL) or against a bundle's manifest
 * (max_memory holds one load of every model).  0 or -EINVAL with the
 * error set.
 */
int apbi_paged_check_config(const apb_paging_config *c, const apbi_manifest *m);

/** Creates pb's prefetcher (when configured) over its cache ids.  0 or an error. */
int apbi_paged_start_prefetch(apb_paged *pb);

/** Makes pb the first handle of a new share of its cache.  -ENOMEM. */
int apbi_share_new(apb_paged *pb);

/**
 * Takes pb out of its share: the objects only it used are dropped and
 * their ids freed, the others are loaded by the remaining handles; the
 * last handle frees the cache.  Call after pb's prefetcher is stopped.
 */
void apbi_share_leave(apb_paged *pb);

/**
 * Records a failed read of model bytes [lo, hi) of model m: names the
 * block (apb_last_block_error) when the block layer recorded a failure
 * there, else keeps this thread's detail of the cause; returns r.
 */
int apbi_paged_read_error(apb_paged *pb, int r, uint32_t m, uint64_t lo, uint64_t hi);

/** The manifest of pb (owned by pb unless taken). */
apbi_manifest *apbi_paged_manifest(apb_paged *pb);

/** Hands pb's manifest to the caller: pb no longer frees it.  Close pb next. */
void apbi_paged_take_manifest(apb_paged *pb);

#endif
