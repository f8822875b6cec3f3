/*
 * policy_sieve.c - SIEVE eviction (Zhang et al., "SIEVE is simpler than
 * LRU", NSDI 2024).
 *
 * One FIFO list (sentinel.next newest, sentinel.prev oldest), a visited
 * bit per entry and a hand.  A touch only sets the bit.  victim() walks the
 * hand from where it stopped toward newer entries, wrapping to the oldest,
 * clearing bits until it finds an entry without one; that entry is the
 * victim and the hand stays on it until it leaves.  Demand inserts enter
 * at the new end unvisited; a prefetch enters at the hand (or the old end),
 * so an unused prefetch is the next victim.
 *
 * Invariants: hand is NULL or a linked entry; every operation is O(1)
 * except victim(), amortized O(1) (each bit it clears was set by a touch).
 * No memory beyond the sentinel.
 */
#include <stdlib.h>

#include "policy.h"

#define VISITED 1u

typedef struct sieve {
	apbi_pol_node head;   /* sentinel */
	apbi_pol_node *hand;  /* next entry to examine; NULL: the oldest */
} sieve;

static void *sieve_create(size_t capacity)
{
	(void)capacity;
	sieve *s = calloc(1, sizeof *s);
	if (s)
		apbi_pol_list_init(&s->head);
	return s;
}

static void sieve_destroy(void *pol)
{
	free(pol);
}

static void sieve_insert(void *pol, apbi_pol_node *n, enum apbi_pol_kind kind)
{
	sieve *s = pol;
	n->flags = 0;
	if (kind == APBI_POL_DEMAND) {
		apbi_pol_link_after(&s->head, n);
	} else if (s->hand) {
		apbi_pol_link_after(s->hand, n);   /* just older than the hand */
		s->hand = n;
	} else {
		apbi_pol_link_after(s->head.prev, n);
	}
}

static void sieve_touch(void *pol, apbi_pol_node *n)
{
	(void)pol;
	n->flags |= VISITED;
}

static void sieve_remove(void *pol, apbi_pol_node *n, bool evicted)
{
	sieve *s = pol;
	(void)evicted;
	if (s->hand == n)
		s->hand = n->prev == &s->head ? NULL : n->prev;
	apbi_pol_unlink(n);
}

static apbi_pol_node *sieve_victim(void *pol)
{
	sieve *s = pol;
	apbi_pol_node *h = s->hand ? s->hand : s->head.prev;
	if (h == &s->head)
		return NULL;
	while (h->flags & VISITED) {
		h->flags &= ~VISITED;
		h = h->prev == &s->head ? s->head.prev : h->prev;
	}
	s->hand = h;
	return h;
}

const apbi_policy_ops apbi_policy_sieve = {
	.name = "sieve",
	.create = sieve_create,
	.destroy = sieve_destroy,
	.insert = sieve_insert,
	.touch = sieve_touch,
	.remove = sieve_remove,
	.victim = sieve_victim,
};
