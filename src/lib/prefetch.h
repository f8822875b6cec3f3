/*
 * prefetch.h - speculative loading for the PagedBundle (prefetch.c):
 * per-reader sequential readahead with an adaptive window, a next-model
 * predictor and explicit hints, all executed by background workers through
 * apbi_cache_readahead() / apbi_cache_prefetch().
 *
 * The workers are started lazily (first request) or explicitly, never at
 * creation, so a process may fork between creating and using them.
 * Everything they load obeys the cache's prefetch rule: free budget, or
 * pages last used before the request was made; never an unused prefetch.
 */
#ifndef APB_PREFETCH_H
#define APB_PREFETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"

typedef struct apbi_prefetch apbi_prefetch;

/** Most workers (loads in flight for readahead and predictions). */
#define APBI_PREFETCH_MAX_WORKERS 4u

typedef struct apbi_prefetch_config {
	uint32_t n_models;
	uint32_t prefetch_count;   /* successors to prefetch on a model switch (0: none) */
	uint64_t max_memory;       /* bounds the readahead windows and predicted loads */
	uint32_t page_size;
	uint32_t run_pages;        /* pages one load reads at most (the cache's max_run) */
	const uint32_t *model_align; /* per model: pages per load unit (borrowed; NULL: 1) */
	uint32_t workers;          /* 1..APBI_PREFETCH_MAX_WORKERS (0: 1) */
	const uint32_t *gid;       /* model i is cache object gid[i] (NULL: i); outlives pf */
} apbi_prefetch_config;

/**
 * One reader's readahead stream.  The prefetcher keeps one per model for
 * readers without their own (apbi_prefetch_note); a reader with its own
 * (apb_reader) embeds one and registers it with apbi_prefetch_ra_init.
 * Fields are guarded by the prefetcher's lock: read them only through
 * apbi_prefetch_ra_info.
 */
typedef struct apbi_ra {
	uint64_t next;      /* page after the furthest read so far */
	uint64_t ra_end;    /* readahead issued up to here */
	uint32_t window;    /* pages; 0: no sequential stream now */
	uint32_t m;         /* the model */
	uint64_t seq_reads; /* reads that continued the stream */
	uint64_t seeks;     /* reads that ended it */
} apbi_ra;

typedef struct apbi_prefetch_counters {
	uint64_t window_cap;   /* bytes: the adaptive bound on every window now */
	uint64_t seq_reads;    /* reads that continued a sequential stream */
	uint64_t seeks;        /* reads that ended one */
	uint64_t shrinks;      /* times wasted prefetches or a full budget shrank windows */
	uint32_t streams;      /* streams with a window among the last reads */
} apbi_prefetch_counters;

/** Creates the prefetcher for cache c (borrowed).  Errors: -ENOMEM. */
int apbi_prefetch_new(apbi_cache *c, const apbi_prefetch_config *cfg, apbi_prefetch **out);

/** Stops and joins the workers (pending requests are dropped), frees.  NULL ok. */
void apbi_prefetch_free(apbi_prefetch *pf);

/** Starts the workers now; idempotent.  Errors: negative errno of pthread_create. */
int apbi_prefetch_start(apbi_prefetch *pf);

/**
 * Reports a demand read of pages [page, page+n) of model m by a reader
 * without its own stream.  Updates model m's readahead stream (queuing
 * readahead when it is sequential) and the model-transition statistics
 * (queuing the likely successors when m differs from the previously read
 * model).  Never blocks on I/O.  pf NULL: nothing.
 */
void apbi_prefetch_note(apbi_prefetch *pf, uint32_t m, uint64_t page, uint64_t n);

/** apbi_prefetch_note for a reader with its own stream s (registered for m). */
void apbi_prefetch_note_ra(apbi_prefetch *pf, apbi_ra *s, uint64_t page, uint64_t n);

/** Registers s, a reader's stream of model m (pf NULL: just zeroes it). */
void apbi_prefetch_ra_init(apbi_prefetch *pf, apbi_ra *s, uint32_t m);

/**
 * Unregisters s: its queued readahead is dropped and a load in flight for
 * it no longer reports to it.  s may be freed on return.  pf NULL: nothing.
 */
void apbi_prefetch_ra_done(apbi_prefetch *pf, apbi_ra *s);

/** Copies s (under the lock) into *out, with the window it has now (capped). */
void apbi_prefetch_ra_info(apbi_prefetch *pf, const apbi_ra *s, apbi_ra *out);

/** The prefetcher's counters (zeros for NULL). */
void apbi_prefetch_stats(apbi_prefetch *pf, apbi_prefetch_counters *out);

/** Queues a load of the whole model m.  Errors: -EAGAIN (queue full), -ENOMEM/-errno (no worker). */
int apbi_prefetch_hint(apbi_prefetch *pf, uint32_t m);

#endif
