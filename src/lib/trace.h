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
 * Records one lookup.  Called under the cache lock: never does I/O; waits
 * only when the writer is a whole buffer behind.
 */
void apbi_trace_add(apbi_trace *t, uint32_t model, uint64_t page);

/** Writes what is buffered, stops the writer, closes; the first write error or 0. */
int apbi_trace_close(apbi_trace *t);

/** paged.c: the cache of pb (for paged_trace.c). */
struct apbi_cache *apbi_paged_cache(apb_paged *pb);

#endif
