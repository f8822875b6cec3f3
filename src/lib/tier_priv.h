/*
 * tier_priv.h - the disk tier's state, shared by source_tier.c (reads,
 * commits, eviction) and tier_open.c (directories, versions, offline open).
 *
 * Invariants: ext[0..n) is sorted by off and non-overlapping; stored is
 * the sum of their lengths and <= limit after every commit; all index
 * fields are guarded by lock; inner == NULL means offline.
 */
#ifndef APB_TIER_PRIV_H
#define APB_TIER_PRIV_H

#include <pthread.h>
#include <stdint.h>

#include "source.h"

#define TIER_HDR 48                  /* range file header bytes */
#define TIER_MAGIC "APBTIER1"
#define TIER_IOBUF (64u * 1024u)     /* verification read size */
#define TIER_PIECES 64               /* ranges one read may combine */
#define TIER_RETRY_MS 5000           /* offline: how often a miss retries the server */

typedef struct extent {
	uint64_t off, len;
	uint64_t used;                   /* LRU clock */
	int verified;                    /* data checked since open */
} extent;

typedef struct piece {               /* one extent's part of a read */
	extent e;
	uint64_t from, to;
	int fd;
} piece;

typedef struct tier {
	apbi_source head;
	apbi_source *inner;              /* NULL: offline; set once (atomic) on reconnect */
	char why[160];                   /* offline: why the server was not used */
	apbi_reopen_fn reopen;           /* offline: how to try the server again */
	void *reopen_ctx;
	void (*reopen_free)(void *);
	pthread_mutex_t reopen_lock;     /* one reconnect attempt at a time; guards why */
	uint64_t next_try;               /* monotonic ms of the next attempt */
	int vfd;                         /* the version directory */
	uint64_t idhash, limit, stored, clock, tmpseq;
	pthread_mutex_t lock;
	extent *ext;
	size_t n, cap;
	apbi_source_stats st;            /* tier_* counters */
} tier;

extern const apbi_source_ops apbi_tier_ops;

/** Indexes (or removes, if invalid or a dead temp file) range file nm. */
void apbi_tier_adopt(tier *t, const char *nm);

/** CLOCK_MONOTONIC in milliseconds. */
uint64_t apbi_tier_now_ms(void);

/** Evicts until the limit holds. */
void apbi_tier_trim(tier *t);

#endif
