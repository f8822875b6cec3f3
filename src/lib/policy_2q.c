/*
 * policy_2q.c - 2Q eviction (Johnson and Shasha, "2Q: a low overhead high
 * performance buffer management replacement algorithm", VLDB 1994), the
 * full version with a ghost queue.
 *
 * A1in, a FIFO, takes new entries; Am, an LRU, takes entries that come
 * back while remembered in A1out, the ghost FIFO (ghost.c) of identities
 * evicted from A1in, as many as half the linked entries.  Touches in A1in
 * do nothing (correlated references: a page read twice in one pass is not
 * popular); touches in Am move to its hot end.  The victim is A1in's
 * oldest while A1in holds more than a quarter of the entries (or Am is
 * empty), else Am's least recently used.  A prefetch enters A1in at its
 * old end.  A scan therefore only cycles through A1in and leaves Am alone.
 *
 * Invariants: nin/nam count A1in/Am; every operation is O(1), victim()
 * only peeks.  Memory: the ghost FIFO, about 20 bytes per entry of capacity.
 */
#include <stdlib.h>

#include "ghost.h"
#include "policy.h"

#define IN_AM 1u

typedef struct twoq {
	apbi_pol_node a1in, am;   /* sentinels; .next newest / most recent */
	size_t nin, nam;
	apbi_ghost *ghost;
} twoq;

static void tq_destroy(void *pol)
{
	twoq *q = pol;
	if (!q)
		return;
	apbi_ghost_free(q->ghost);
	free(q);
}

static void *tq_create(size_t capacity)
{
	twoq *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	apbi_pol_list_init(&q->a1in);
	apbi_pol_list_init(&q->am);
	q->ghost = apbi_ghost_new(capacity);
	if (!q->ghost) {
		tq_destroy(q);
		return NULL;
	}
	return q;
}

static void tq_insert(void *pol, apbi_pol_node *n, enum apbi_pol_kind kind)
{
	twoq *q = pol;
	if (kind == APBI_POL_DEMAND && apbi_ghost_take(q->ghost, n->id)) {
		n->flags = IN_AM;
		apbi_pol_link_after(&q->am, n);
		q->nam++;
		return;
	}
	n->flags = 0;
	apbi_pol_link_after(kind == APBI_POL_PREFETCH ? q->a1in.prev : &q->a1in, n);
	q->nin++;
}

static void tq_touch(void *pol, apbi_pol_node *n)
{
	twoq *q = pol;
	if (!(n->flags & IN_AM) || q->am.next == n)
		return;
	apbi_pol_unlink(n);
	apbi_pol_link_after(&q->am, n);
}

static void tq_remove(void *pol, apbi_pol_node *n, bool evicted)
{
	twoq *q = pol;
	if (n->flags & IN_AM) {
		q->nam--;
	} else {
		q->nin--;
		if (evicted)
			apbi_ghost_push(q->ghost, n->id, (q->nin + q->nam) / 2 + 1);
	}
	apbi_pol_unlink(n);
}

static apbi_pol_node *tq_victim(void *pol)
{
	twoq *q = pol;
	if (q->nin && (q->nin * 4 > q->nin + q->nam || !q->nam))
		return q->a1in.prev;
	return q->nam ? q->am.prev : NULL;
}

const apbi_policy_ops apbi_policy_2q = {
	.name = "2q",
	.create = tq_create,
	.destroy = tq_destroy,
	.insert = tq_insert,
	.touch = tq_touch,
	.remove = tq_remove,
	.victim = tq_victim,
};
