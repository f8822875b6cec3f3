/*
 * policy.c - the one table of eviction policies: enum value, name (as the
 * mount's eviction= option and the CLI take it), implementation and a
 * one-line description.  Every front end maps names through the public
 * apb_eviction_* functions below, never by hand.
 *
 * Invariants: rows are indexed by their apb_eviction value (checked by
 * tests/check_policy.c); names are unique, lower case, without spaces.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "policy.h"

typedef struct policy_row {
	apb_eviction e;
	const apbi_policy_ops *ops;
	const char *describe;
} policy_row;

static const policy_row rows[APB_EVICT_COUNT] = {
	{ APB_EVICT_LRU, &apbi_policy_lru,
	  "least recently used: for working sets that fit the budget; a scan larger "
	  "than the cache flushes it" },
	{ APB_EVICT_LFU, &apbi_policy_lfu,
	  "least frequently used with aging: for a few models read over and over; "
	  "slow to follow a shift in popularity" },
	{ APB_EVICT_SIEVE, &apbi_policy_sieve,
	  "SIEVE, a FIFO with visited bits: LRU-like, cheaper hits, keeps pages "
	  "reused since they came in" },
	{ APB_EVICT_S3FIFO, &apbi_policy_s3fifo,
	  "S3-FIFO, small + main + ghost FIFOs: pages read once leave quickly; "
	  "for whole-model loads larger than the cache" },
	{ APB_EVICT_2Q, &apbi_policy_2q,
	  "2Q, a FIFO for new pages and an LRU for reused ones: scan-resistant, "
	  "for mixed partial and whole-model reads" },
	{ APB_EVICT_TINYLFU, &apbi_policy_tinylfu,
	  "W-TinyLFU, admission by a frequency sketch: for skewed (Zipf) model "
	  "popularity under a small budget" },
};

static const policy_row *row(apb_eviction e)
{
	if ((unsigned)e >= APB_EVICT_COUNT)
		return NULL;
	return &rows[e];
}

/** Returns the table for e, or NULL for an unknown value. */
const apbi_policy_ops *apbi_policy_get(apb_eviction e)
{
	const policy_row *r = row(e);
	return r ? r->ops : NULL;
}

/** See apbundle.h. */
const char *apb_eviction_name(apb_eviction e)
{
	const policy_row *r = row(e);
	return r ? r->ops->name : NULL;
}

/** See apbundle.h. */
const char *apb_eviction_describe(apb_eviction e)
{
	const policy_row *r = row(e);
	return r ? r->describe : NULL;
}

/** See apbundle.h. */
int apb_eviction_parse(const char *name, apb_eviction *out)
{
	char names[128];
	size_t len = 0;
	for (unsigned i = 0; i < APB_EVICT_COUNT; i++) {
		if (name && !strcmp(name, rows[i].ops->name)) {
			*out = rows[i].e;
			return 0;
		}
		len += (size_t)snprintf(names + len, sizeof names - len, "%s%s",
		                        i ? ", " : "", rows[i].ops->name);
	}
	return apbi_set_error(-EINVAL, "unknown eviction policy \"%.64s\": expected one of %s",
	                      name ? name : "(null)", names);
}
