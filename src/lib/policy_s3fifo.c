/*
 * policy_s3fifo.c - S3-FIFO eviction (Yang et al., "FIFO queues are all
 * you need for cache eviction", SOSP 2023).
 *
 * Three FIFOs: S (small, about 10% of the entries) takes new entries, M
 * (main) the rest, G (ghost, ghost.c) remembers the identities of entries
 * S evicted, as many as there are linked entries.  Each entry has a 2-bit
 * frequency, raised by a touch.  victim() looks at S's oldest entry while
 * S holds 10% or more (or M is empty): reused (frequency >= 1) it moves to
 * M, else it is the victim (and becomes a ghost when evicted).  Otherwise
 * M's oldest entry: with frequency > 0 it is reinserted with frequency - 1,
 * else it is the victim.  A demand insert whose identity is a ghost goes
 * straight to M.  A prefetch enters S at its old end.  So pages read once
 * (one load of a model) pass through S and leave, and models loaded again
 * come back into M.
 *
 * Invariants: nsmall/nmain count the entries of S/M; every operation is
 * O(1) but victim(), amortized O(1) (each move is paid by a touch or an
 * insert).  Memory: the ghost FIFO, about 20 bytes per entry of capacity.
 */
#include <stdlib.h>

#include "ghost.h"
#include "policy.h"

#define FREQ 3u
#define IN_MAIN 4u

typedef struct s3fifo {
	apbi_pol_node small, main;   /* sentinels; .next newest */
	size_t nsmall, nmain;
	apbi_ghost *ghost;
} s3fifo;

static void s3_destroy(void *pol)
{
	s3fifo *q = pol;
	if (!q)
		return;
	apbi_ghost_free(q->ghost);
	free(q);
}

static void *s3_create(size_t capacity)
{
	s3fifo *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	apbi_pol_list_init(&q->small);
	apbi_pol_list_init(&q->main);
	q->ghost = apbi_ghost_new(capacity);
	if (!q->ghost) {
		s3_destroy(q);
		return NULL;
	}
	return q;
}

static void to_main(s3fifo *q, apbi_pol_node *n, uint32_t freq)
{
	apbi_pol_link_after(&q->main, n);
	n->flags = IN_MAIN | freq;
	q->nmain++;
}

static void s3_insert(void *pol, apbi_pol_node *n, enum apbi_pol_kind kind)
{
	s3fifo *q = pol;
	if (kind == APBI_POL_DEMAND && apbi_ghost_take(q->ghost, n->id)) {
		to_main(q, n, 0);
		return;
	}
	n->flags = 0;
	apbi_pol_link_after(kind == APBI_POL_PREFETCH ? q->small.prev : &q->small, n);
	q->nsmall++;
}

static void s3_touch(void *pol, apbi_pol_node *n)
{
	(void)pol;
	if ((n->flags & FREQ) < FREQ)
		n->flags++;
}

static void s3_remove(void *pol, apbi_pol_node *n, bool evicted)
{
	s3fifo *q = pol;
	if (n->flags & IN_MAIN) {
		q->nmain--;
	} else {
		q->nsmall--;
		if (evicted)
			apbi_ghost_push(q->ghost, n->id, q->nsmall + q->nmain + 1);
	}
	apbi_pol_unlink(n);
}

static apbi_pol_node *s3_victim(void *pol)
{
	s3fifo *q = pol;
	for (;;) {
		size_t total = q->nsmall + q->nmain;
		if (!total)
			return NULL;
		if (q->nsmall && (q->nsmall * 10 >= total || !q->nmain)) {
			apbi_pol_node *t = q->small.prev;
			if (!(t->flags & FREQ))
				return t;
			apbi_pol_unlink(t);
			q->nsmall--;
			to_main(q, t, 0);
		} else {
			apbi_pol_node *t = q->main.prev;
			if (!(t->flags & FREQ))
				return t;
			apbi_pol_unlink(t);
			apbi_pol_link_after(&q->main, t);
			t->flags--;
		}
	}
}

const apbi_policy_ops apbi_policy_s3fifo = {
	.name = "s3fifo",
	.create = s3_create,
	.destroy = s3_destroy,
	.insert = s3_insert,
	.touch = s3_touch,
	.remove = s3_remove,
	.victim = s3_victim,
};
