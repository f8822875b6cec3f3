/*
 * prefetch.h - speculative loading for the PagedBundle (prefetch.c):
 * sequential readahead, a next-model predictor and explicit hints, all
 * executed by one background worker through apbi_cache_prefetch().
 *
 * The worker thread is started lazily (first request) or explicitly, never
 * at creation, so a process may fork between creating and using it.
 * Everything it loads obeys the cache's prefetch rule: free budget, or
 * pages last used before the request was made; never an unused prefetch.
 */
#ifndef APB_PREFETCH_H
#define APB_PREFETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"

typedef struct apbi_prefetch apbi_prefetch;

typedef struct apbi_prefetch_config {
	uint32_t n_models;
	uint32_t prefetch_count;   /* successors to prefetch on a model switch (0: none) */
	uint64_t max_memory;       /* bounds the readahead window and predicted loads */
	uint32_t page_size;
	const uint32_t *gid;       /* model i is cache object gid[i] (NULL: i); outlives pf */
} apbi_prefetch_config;

/** Creates the prefetcher for cache c (borrowed).  Errors: -ENOMEM. */
int apbi_prefetch_new(apbi_cache *c, const apbi_prefetch_config *cfg, apbi_prefetch **out);

/** Stops and joins the worker (pending requests are dropped), frees.  NULL ok. */
void apbi_prefetch_free(apbi_prefetch *pf);

/** Starts the worker now; idempotent.  Errors: negative errno of pthread_create. */
int apbi_prefetch_start(apbi_prefetch *pf);

/**
 * Reports a demand read of pages [page, page+n) of model m.  Updates the
 * model's readahead stream (queuing readahead when it is sequential) and
 * the model-transition statistics (queuing the likely successors when m
 * differs from the previously read model).  Never blocks on I/O.
 */
void apbi_prefetch_note(apbi_prefetch *pf, uint32_t m, uint64_t page, uint64_t n);

/** Queues a load of the whole model m.  Errors: -EAGAIN (queue full), -ENOMEM/-errno (no worker). */
int apbi_prefetch_hint(apbi_prefetch *pf, uint32_t m);

#endif
