/*
 * refpol.h - reference models of the eviction policies for the tests: the
 * obvious O(n) formulation (victim = minimum over all entries), against
 * which the O(1) implementations are compared step by step.
 *
 * LRU: rank is an order value, victim = minimum (prefetches enter below
 * everything).  LFU-DA: rank is the key, ties go to the entry that got its
 * key first (seq); demand inserts take floor+1, prefetches floor, a touch
 * adds 1, an eviction raises floor to the victim's key.
 */
#ifndef APB_REFPOL_H
#define APB_REFPOL_H

#include <stdbool.h>
#include <stdint.h>

#define NN 64

typedef struct ref_pol {
	bool lfu, in[NN];
	int64_t rank[NN];     /* LRU: order value (victim = min); LFU: key */
	uint64_t seq[NN];     /* LFU: time of entering the current bucket */
	int64_t hi, lo;
	uint64_t clock, floor;
} ref_pol;

static inline void ref_insert(ref_pol *r, int i, bool pf)
{
	r->in[i] = true;
	r->seq[i] = ++r->clock;
	if (r->lfu)
		r->rank[i] = (int64_t)(r->floor + (pf ? 0 : 1));
	else
		r->rank[i] = pf ? --r->lo : ++r->hi;
}

static inline void ref_touch(ref_pol *r, int i)
{
	r->seq[i] = ++r->clock;
	r->rank[i] = r->lfu ? r->rank[i] + 1 : ++r->hi;
}

static inline int ref_victim(const ref_pol *r)
{
	int best = -1;
	for (int i = 0; i < NN; i++) {
		if (!r->in[i])
			continue;
		if (best < 0 || r->rank[i] < r->rank[best] ||
		    (r->lfu && r->rank[i] == r->rank[best] && r->seq[i] < r->seq[best]))
			best = i;
	}
	return best;
}

/* Evicts the reference victim v (LFU: raises the floor). */
static inline void ref_evict(ref_pol *r, int v)
{
	if (r->lfu && (uint64_t)r->rank[v] > r->floor)
		r->floor = (uint64_t)r->rank[v];
	r->in[v] = false;
}

#endif
