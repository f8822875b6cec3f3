/*
 * policy_tinylfu.c - W-TinyLFU eviction (Einziger, Friedman and Manes,
 * "TinyLFU: a highly efficient cache admission policy", 2017), as in
 * Caffeine: a window LRU of 1% of the entries in front of a segmented LRU
 * main space (probation, and protected holding up to 80% of main), with
 * admission by a frequency sketch (sketch.c).
 *
 * Demand inserts and touches record the identity in the sketch (prefetches
 * do not: they are not accesses).  New entries enter the window (a
 * prefetch at its old end).  Readahead, which its reader is about to use,
 * waits in a fourth queue (AHEAD) outside the segments: its first use
 * moves it to the window's new end and counts it in the sketch, exactly
 * as a demand insert would have, so a scan read ahead is admitted no more
 * than one read on demand; AHEAD is evicted from only when nothing else
 * is left (the prefetcher keeps it within a quarter of the budget).  When the window is over its share, victim()
 * moves its oldest entry (the candidate) into probation and weighs it
 * against probation's oldest: the candidate stays if the sketch has seen
 * it strictly more often, else it is the victim.  A touch in
 * probation promotes to protected, whose overflow falls back to
 * probation's new end.
 *
 * Invariants: n[q] counts queue q (flags = q); touch() moves at most two
 * entries, victim() one window entry per insert since the last call plus
 * one demotion: amortized O(1).  Memory: the sketch, about 5 bytes per entry
 * of capacity (rounded up to a power of two).
 */
#include <stdlib.h>

#include "policy.h"
#include "sketch.h"

/* AHEAD: read ahead for a sequential reader and not used yet */
enum { WINDOW = 0, PROBATION = 1, PROTECTED = 2, AHEAD = 3, NQ = 4 };

typedef struct tinylfu {
	apbi_pol_node q[NQ];   /* sentinels; .next most recent */
	size_t n[NQ];
	apbi_sketch *sk;
} tinylfu;

static void tl_destroy(void *pol)
{
	tinylfu *t = pol;
	if (!t)
		return;
	apbi_sketch_free(t->sk);
	free(t);
}

static void *tl_create(size_t capacity)
{
	tinylfu *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	for (int i = 0; i < NQ; i++)
		apbi_pol_list_init(&t->q[i]);
	t->sk = apbi_sketch_new(capacity);
	if (!t->sk) {
		tl_destroy(t);
		return NULL;
	}
	return t;
}

/* Moves n (linked in any queue) to the hot end of queue q. */
static void move_to(tinylfu *t, apbi_pol_node *n, uint32_t q)
{
	apbi_pol_unlink(n);
	t->n[n->flags]--;
	apbi_pol_link_after(&t->q[q], n);
	n->flags = q;
	t->n[q]++;
}

static void tl_insert(void *pol, apbi_pol_node *n, enum apbi_pol_kind kind)
{
	tinylfu *t = pol;
	if (kind == APBI_POL_READAHEAD) {
		/* waits apart until its reader uses it (tl_touch) */
		n->flags = AHEAD;
		t->n[AHEAD]++;
		apbi_pol_link_after(&t->q[AHEAD], n);
		return;
	}
	n->flags = WINDOW;
	t->n[WINDOW]++;
	if (kind == APBI_POL_PREFETCH) {
		apbi_pol_link_after(t->q[WINDOW].prev, n);
		return;
	}
	apbi_sketch_add(t->sk, n->id);
	apbi_pol_link_after(&t->q[WINDOW], n);
}

static void tl_touch(void *pol, apbi_pol_node *n)
{
	tinylfu *t = pol;
	apbi_sketch_add(t->sk, n->id);
	if (n->flags == AHEAD) {   /* its first use: from here on a demand insert */
		move_to(t, n, WINDOW);
		return;
	}
	if (n->flags == WINDOW || n->flags == PROTECTED) {
		move_to(t, n, n->flags);
		return;
	}
	move_to(t, n, PROTECTED);
	if (t->n[PROTECTED] * 10 > (t->n[PROBATION] + t->n[PROTECTED]) * 8)
		move_to(t, t->q[PROTECTED].prev, PROBATION);
}

static void tl_remove(void *pol, apbi_pol_node *n, bool evicted)
{
	tinylfu *t = pol;
	(void)evicted;
	t->n[n->flags]--;
	apbi_pol_unlink(n);
}

/*
 * Window entries over the window's share move to probation's new end (the
 * last one moved is the candidate); main is then over its share by what
 * moved, and the candidate competes with probation's oldest entry.
 */
static apbi_pol_node *tl_victim(void *pol)
{
	tinylfu *t = pol;
	size_t total = t->n[WINDOW] + t->n[PROBATION] + t->n[PROTECTED];
	size_t wmax = total / 100 ? total / 100 : 1;
	apbi_pol_node *cand = NULL, *vic;
	if (!total)
		return t->n[AHEAD] ? t->q[AHEAD].prev : NULL;   /* the oldest unused readahead */
	while (t->n[WINDOW] > wmax) {
		cand = t->q[WINDOW].prev;
		move_to(t, cand, PROBATION);
	}
	if (!t->n[PROBATION] && t->n[PROTECTED])
		move_to(t, t->q[PROTECTED].prev, PROBATION);
	if (!t->n[PROBATION])
		return t->q[WINDOW].prev;
	vic = t->q[PROBATION].prev;
	if (!cand || apbi_sketch_freq(t->sk, cand->id) > apbi_sketch_freq(t->sk, vic->id))
		return vic;
	return cand;
}

const apbi_policy_ops apbi_policy_tinylfu = {
	.name = "tinylfu",
	.create = tl_create,
	.destroy = tl_destroy,
	.insert = tl_insert,
	.touch = tl_touch,
	.remove = tl_remove,
	.victim = tl_victim,
};
