/*
 * policy_lfu.c - least-frequently-used eviction with dynamic aging, O(1).
 *
 * Structure (Shah, Mitra and Matani, "An O(1) algorithm for implementing
 * the LFU cache eviction scheme", 2010): a list of frequency buckets in
 * increasing key order, each holding its entries in a FIFO list.  Aging is
 * LFU-DA: the policy keeps a floor L, the key of the last evicted entry; a
 * demand insert enters with key L+1, a prefetch with key L, a touch adds 1.
 * As entries are evicted L rises, so a page that was popular long ago
 * (large key, no recent touches) eventually falls to the floor and goes:
 * early popularity cannot lock the cache forever.
 *
 * Invariants: bucket keys strictly increase along the list and no bucket
 * is empty; every linked entry's key >= L, so the buckets for L and L+1
 * are always the first or second one (insert is O(1)); the victim is the
 * oldest entry of the first bucket.  There are never more buckets than
 * linked entries plus one (a touch creates the next bucket before it drops
 * the old one), so create() allocates capacity+1 buckets in one array and
 * no operation ever allocates or fails.
 */
#include <stdlib.h>

#include "policy.h"

typedef struct bucket {
	struct bucket *prev, *next;
	uint64_t key;
	apbi_pol_node nodes;   /* sentinel of the FIFO of entries */
} bucket;

typedef struct lfu {
	bucket head;           /* sentinel of the bucket list */
	bucket *spare;         /* free buckets, linked through next */
	bucket *pool;          /* capacity+1 buckets */
	size_t pool_used;      /* pool[0..pool_used) have been handed out */
	size_t pool_size;
	uint64_t floor;        /* L: key of the last evicted entry */
} lfu;

static void *lfu_create(size_t capacity)
{
	lfu *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->pool_size = capacity + 1;
	f->pool = calloc(f->pool_size, sizeof *f->pool);
	if (!f->pool) {
		free(f);
		return NULL;
	}
	f->head.prev = f->head.next = &f->head;
	return f;
}

static void lfu_destroy(void *pol)
{
	lfu *f = pol;
	if (!f)
		return;
	free(f->pool);
	free(f);
}

/* A new empty bucket with key, linked after pos (never fails: see top). */
static bucket *bucket_new(lfu *f, bucket *pos, uint64_t key)
{
	bucket *b = f->spare;
	if (b)
		f->spare = b->next;
	else
		b = &f->pool[f->pool_used++];
	b->key = key;
	b->nodes.prev = b->nodes.next = &b->nodes;
	b->prev = pos;
	b->next = pos->next;
	pos->next->prev = b;
	pos->next = b;
	return b;
}

static void bucket_drop_if_empty(lfu *f, bucket *b)
{
	if (b->nodes.next != &b->nodes)
		return;
	b->prev->next = b->next;
	b->next->prev = b->prev;
	b->next = f->spare;
	f->spare = b;
}

static void node_append(bucket *b, apbi_pol_node *n)
{
	n->aux = b;
	n->key = b->key;
	n->next = &b->nodes;
	n->prev = b->nodes.prev;
	b->nodes.prev->next = n;
	b->nodes.prev = n;
}

static void node_unlink(apbi_pol_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

/* The bucket with key, created after pos if pos->next does not have it. */
static bucket *bucket_at(lfu *f, bucket *pos, uint64_t key)
{
	bucket *b = pos->next;
	if (b != &f->head && b->key == key)
		return b;
	return bucket_new(f, pos, key);
}

static void lfu_insert(void *pol, apbi_pol_node *n, enum apbi_pol_kind kind)
{
	lfu *f = pol;
	uint64_t key = f->floor + (kind == APBI_POL_PREFETCH ? 0 : 1);
	bucket *first = f->head.next, *b;
	if (first != &f->head && first->key < key)
		b = bucket_at(f, first, key);      /* first is the floor bucket */
	else
		b = bucket_at(f, &f->head, key);
	node_append(b, n);
}

static void lfu_touch(void *pol, apbi_pol_node *n)
{
	lfu *f = pol;
	bucket *b = n->aux, *nb;
	nb = bucket_at(f, b, b->key + 1);
	node_unlink(n);
	node_append(nb, n);
	bucket_drop_if_empty(f, b);
}

static void lfu_remove(void *pol, apbi_pol_node *n, bool evicted)
{
	lfu *f = pol;
	bucket *b = n->aux;
	if (evicted && n->key > f->floor)
		f->floor = n->key;
	node_unlink(n);
	n->aux = NULL;
	bucket_drop_if_empty(f, b);
}

static apbi_pol_node *lfu_victim(void *pol)
{
	lfu *f = pol;
	bucket *b = f->head.next;
	if (b == &f->head)
		return NULL;
	return b->nodes.next;
}

const apbi_policy_ops apbi_policy_lfu = {
	.name = "lfu",
	.create = lfu_create,
	.destroy = lfu_destroy,
	.insert = lfu_insert,
	.touch = lfu_touch,
	.remove = lfu_remove,
	.victim = lfu_victim,
};
