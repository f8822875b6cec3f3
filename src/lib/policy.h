/*
 * policy.h - the eviction-policy interface of the page cache (cache.c) and
 * of the trace simulator (simulate.c).
 *
 * A policy orders the unpinned, resident cache entries and names the next
 * victim.  It never allocates after create(), never blocks and every
 * operation is O(1) (SIEVE, S3-FIFO and 2Q: amortized, victim() may move
 * entries between its queues or clear their bits before it answers).
 * Nodes are intrusive (embedded in the cache's page descriptors); the
 * policy only links and unlinks them.  Policies that remember evicted
 * entries (ghosts: S3-FIFO, 2Q, W-TinyLFU) keep their identities, never
 * pointers, in memory allocated by create() and bounded by its capacity.
 * The cache serializes all calls (they run under its lock), so policies
 * need no locking of their own.  Adding a policy is one new file exporting
 * an apbi_policy_ops table plus one row in policy.c's table.
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
	uint64_t id;     /* set by the cache before insert: the entry's identity
	                  * (APBI_POL_ID); read-only for the policy */
	uint32_t flags;  /* policy-private (SIEVE, S3-FIFO: visited bits, queue) */
} apbi_pol_node;

/** Identity of page p of model m (a whole-model view uses its page 0). */
#define APBI_POL_ID(m, p) (((uint64_t)(m) << 40) ^ (uint64_t)(p))

/** Empties the circular list around sentinel h. */
static inline void apbi_pol_list_init(apbi_pol_node *h)
{
	h->prev = h->next = h;
}

/** Links n right after pos (h->next is the hot end of a list around h). */
static inline void apbi_pol_link_after(apbi_pol_node *pos, apbi_pol_node *n)
{
	n->prev = pos;
	n->next = pos->next;
	pos->next->prev = n;
	pos->next = n;
}

/** Unlinks n from its list. */
static inline void apbi_pol_unlink(apbi_pol_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

/** How an entry enters the policy. */
enum apbi_pol_kind {
	APBI_POL_DEMAND = 0,   /* loaded or returned because a reader used it */
	APBI_POL_PREFETCH = 1, /* loaded speculatively: first in line to go */
	/* loaded ahead of a sequential reader, who reads it next: a policy
	 * treats it as DEMAND unless it says otherwise (W-TinyLFU keeps it
	 * apart until its first use, which then counts as its demand insert) */
	APBI_POL_READAHEAD = 2,
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

/** SIEVE (Zhang et al., NSDI 2024): a FIFO with visited bits and a moving hand. */
extern const apbi_policy_ops apbi_policy_sieve;
/** S3-FIFO (Yang et al., SOSP 2023): small FIFO, main FIFO, ghost FIFO. */
extern const apbi_policy_ops apbi_policy_s3fifo;
/** 2Q (Johnson and Shasha, VLDB 1994): A1in FIFO, A1out ghosts, Am LRU. */
extern const apbi_policy_ops apbi_policy_2q;
/** W-TinyLFU (Einziger et al., 2017): window LRU, SLRU main, sketch admission. */
extern const apbi_policy_ops apbi_policy_tinylfu;

/** Returns the table for e, or NULL for an unknown value (policy.c). */
const apbi_policy_ops *apbi_policy_get(apb_eviction e);

#endif
