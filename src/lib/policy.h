/*
 * policy.h - the eviction-policy interface of the page cache (cache.c).
 *
 * A policy orders the unpinned, resident cache entries and names the next
 * victim.  It never allocates per call on the hot path, never blocks and
 * every operation is O(1).  Nodes are intrusive (embedded in the cache's
 * page descriptors); the policy only links and unlinks them.  The cache
 * serializes all calls (they run under its lock), so policies need no
 * locking of their own.  Adding a policy is one new file exporting an
 * apbi_policy_ops table plus one line in apbi_policy_get().
 */
#ifndef APB_POLICY_H
#define APB_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apbundle.h"

/** Intrusive node: embedded in every cache entry the policy orders. */
typedef struct apbi_pol_node {
	struct apbi_pol_node *prev, *next;
	void *aux;       /* policy-private (LFU: the frequency bucket) */
	uint64_t key;    /* policy-private (LFU: frequency key incl. aging) */
} apbi_pol_node;

/** How an entry enters the policy. */
enum apbi_pol_kind {
	APBI_POL_DEMAND = 0,   /* loaded or returned because a reader used it */
	APBI_POL_PREFETCH = 1, /* loaded speculatively: first in line to go */
};

/**
 * Operations table.  insert() takes a node not in the policy; touch() and
 * remove() a node in it.  victim() only peeks: it returns the node that
 * should be evicted next (NULL when empty) without unlinking it; the cache
 * then calls remove(n, true) if it evicts it, or remove(n, false) if it
 * sets it aside (pinned).  remove(.., true) lets the policy age (LFU).
 */
typedef struct apbi_policy_ops {
	const char *name;
	/* capacity: most nodes ever linked at once; NULL when out of memory */
	void *(*create)(size_t capacity);
	void (*destroy)(void *pol);         /* nodes still linked are forgotten */
	void (*insert)(void *pol, apbi_pol_node *n, enum apbi_pol_kind kind);
	void (*touch)(void *pol, apbi_pol_node *n);
	void (*remove)(void *pol, apbi_pol_node *n, bool evicted);
	apbi_pol_node *(*victim)(void *pol);
} apbi_policy_ops;

/** LRU: one intrusive list; demand entries at the hot end, prefetches at the cold end. */
extern const apbi_policy_ops apbi_policy_lru;
/** LFU with dynamic aging (LFU-DA) over O(1) frequency buckets. */
extern const apbi_policy_ops apbi_policy_lfu;

/** Returns the table for e, or NULL for an unknown value. */
const apbi_policy_ops *apbi_policy_get(apb_eviction e);

#endif
