/*
 * metrics.h - what the daemon itself measures for .metrics: FUSE reads.
 *
 * Lock-free counters updated by every request thread with relaxed atomics;
 * a reader (the .metrics render) may see a read counted in one counter and
 * not yet in another, never a torn value.  Fixed size, no allocation.
 */
#ifndef APBM_METRICS_H
#define APBM_METRICS_H

#include <stdint.h>

/* Upper bounds of the latency buckets, in nanoseconds (+Inf is implied). */
#define APBM_LAT_BUCKETS 16

typedef struct apbm_metrics {
	uint64_t reads;                        /* model reads answered */
	uint64_t read_errors;                  /* ... with an error */
	uint64_t read_bytes;                   /* bytes returned by them */
	uint64_t lat_count[APBM_LAT_BUCKETS + 1]; /* per bucket (not cumulative); last = +Inf */
	uint64_t lat_sum_ns;
} apbm_metrics;

/** Bucket bounds in nanoseconds, ascending. */
extern const uint64_t apbm_lat_bounds_ns[APBM_LAT_BUCKETS];

/** Monotonic time in nanoseconds. */
uint64_t apbm_now_ns(void);

/** Counts one model read that took ns nanoseconds and returned bytes (< 0: an error). */
void apbm_metrics_read(apbm_metrics *m, uint64_t ns, int64_t bytes);

#endif
