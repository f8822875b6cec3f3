/*
 * policy_lru.c - least-recently-used eviction as one intrusive list.
 *
 * Invariants: the list is circular around a sentinel; sentinel.next is the
 * most recently used entry, sentinel.prev the victim.  Demand inserts and
 * touches move an entry to the hot end; prefetched entries enter at the
 * cold end, so an unused prefetch goes before anything a reader has used.
 * Every operation is O(1) and allocation-free.
 */
#include <stdlib.h>

#include "policy.h"

typedef struct lru {
	apbi_pol_node head;   /* sentinel */
} lru;

static void *lru_create(size_t capacity)
{
	(void)capacity;
	lru *l = calloc(1, sizeof *l);
	if (l)
		apbi_pol_list_init(&l->head);
	return l;
}

static void lru_destroy(void *pol)
{
	free(pol);
}

static void lru_insert(void *pol, apbi_pol_node *n, enum apbi_pol_kind kind)
{
	lru *l = pol;
	apbi_pol_link_after(kind == APBI_POL_PREFETCH ? l->head.prev : &l->head, n);
}

static void lru_touch(void *pol, apbi_pol_node *n)
{
	lru *l = pol;
	if (l->head.next == n)
		return;
	apbi_pol_unlink(n);
	apbi_pol_link_after(&l->head, n);
}

static void lru_remove(void *pol, apbi_pol_node *n, bool evicted)
{
	(void)pol;
	(void)evicted;
	apbi_pol_unlink(n);
}

static apbi_pol_node *lru_victim(void *pol)
{
	lru *l = pol;
	return l->head.prev == &l->head ? NULL : l->head.prev;
}

const apbi_policy_ops apbi_policy_lru = {
	.name = "lru",
	.create = lru_create,
	.destroy = lru_destroy,
	.insert = lru_insert,
	.touch = lru_touch,
	.remove = lru_remove,
	.victim = lru_victim,
};
