/*
 * trace.h - the page-lookup trace recorder (trace.c) behind
 * apb_paged_trace_start/stop (paged_trace.c), fed by the cache's lookup
 * accounting (cache.c, cache_view.c).
 */
#ifndef APB_TRACE_H
#define APB_TRACE_H

#include <stdint.h>

#include "apbundle.h"

typedef struct apbi_trace apbi_trace;
struct apbi_cache;

/**
 * Creates or truncates path, writes the header ("# page_size", one
 * "# model NAME SIZE" per model, names escaped) and starts the writer
 * thread.  names/sizes are copied.  Errors: negative errno (open, write,
 * pthread_create), -ENOMEM.
 */
int apbi_trace_open(const char *path, uint32_t page_size, uint32_t n_models,
                    const char *const names[], const uint64_t sizes[], apbi_trace **out);

/**
 * What the cache did, beside the counted lookups, that a replay needs to
 * do the same (written as "#@ " lines, see apb_paged_trace_start):
 * arg is the policy entry kind for FILL, 0 otherwise; for OBJECT page is
 * the object's size in bytes.
 */
enum apbi_trace_ev {
	APBI_TR_LOOKUP = 0,   /* a counted lookup: "NAME<TAB>PAGE" */
	APBI_TR_META,         /* a lookup of a metadata object (not counted) */
	APBI_TR_CLAIM,        /* page claimed for loading: budget taken, not in the policy yet */
	APBI_TR_FILL,         /* a claimed page not looked up entered the policy as kind arg */
	APBI_TR_DROP,         /* a claimed page failed to load and left the cache */
	APBI_TR_PARK,         /* a pinned victim left the policy, keeping its bytes */
	APBI_TR_UNPARK,       /* a parked page re-entered the policy (DEMAND) */
	APBI_TR_OBJECT,       /* metadata object obj has page bytes */
	APBI_TR_WAIT,         /* the next lookup waited for another's load: a miss */
	APBI_TR_KEEP,         /* a claim asked for a victim, got this page, did not evict it */
	APBI_TR_COUNT
};

/**
 * Records one event.  Called under the cache lock: never does I/O; waits
 * only when the writer is a whole buffer behind.
 */
void apbi_trace_event(apbi_trace *t, enum apbi_trace_ev ev, uint32_t obj, uint64_t page,
                      uint64_t arg);

/** Writes what is buffered, stops the writer, closes; the first write error or 0. */
int apbi_trace_close(apbi_trace *t);

/** paged.c: the cache of pb (for paged_trace.c). */
struct apbi_cache *apbi_paged_cache(apb_paged *pb);

#endif
