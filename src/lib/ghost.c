/*
 * ghost.c - bounded FIFO of remembered identities (see ghost.h).
 *
 * A ring of 32-bit fingerprints in FIFO order plus an open-addressed table
 * (linear probing, backward-shift deletion, load <= 1/2) mapping each
 * remembered fingerprint to the sequence number of its newest ring entry.
 * A ring entry whose fingerprint was pushed again or taken since is stale:
 * popping it leaves the table alone.  Memory: 4 bytes per ring slot and 8
 * per table slot, about 20 bytes per ghost of capacity (0.5% of a 4 KiB
 * page, 0.03% of a 64 KiB page).  Two identities sharing a fingerprint
 * (odds 2^-32 per pair) only make one admission decision wrong.
 *
 * Invariants: live = remembered fingerprints = table entries <= ring
 * entries (count) <= cap; a table entry's seq is within the last count
 * pushes.
 */
#include <stdlib.h>

#include "ghost.h"

typedef struct slot {
	uint32_t fp;    /* 0: empty */
	uint32_t seq;   /* low bits of the push sequence of its newest entry */
} slot;

struct apbi_ghost {
	uint32_t *ring;
	size_t cap, count;
	uint64_t seq;    /* pushes so far; ring[(seq - count .. seq) % cap] live */
	slot *tab;
	size_t mask;
};

static uint32_t fingerprint(uint64_t id)
{
	uint64_t h = id * 0x9E3779B97F4A7C15ull;
	uint32_t fp = (uint32_t)(h >> 32) ^ (uint32_t)h;
	return fp ? fp : 1;
}

apbi_ghost *apbi_ghost_new(size_t cap)
{
	apbi_ghost *g = calloc(1, sizeof *g);
	size_t n = 16;
	if (!g)
		return NULL;
	g->cap = cap ? cap : 1;
	while (n < 2 * g->cap)
		n <<= 1;
	g->mask = n - 1;
	g->ring = calloc(g->cap, sizeof *g->ring);
	g->tab = calloc(n, sizeof *g->tab);
	if (!g->ring || !g->tab) {
		apbi_ghost_free(g);
		return NULL;
	}
	return g;
}

void apbi_ghost_free(apbi_ghost *g)
{
	if (!g)
		return;
	free(g->ring);
	free(g->tab);
	free(g);
}

static size_t find(const apbi_ghost *g, uint32_t fp)
{
	size_t i = fp & g->mask;
	while (g->tab[i].fp && g->tab[i].fp != fp)
		i = (i + 1) & g->mask;
	return i;
}

/* Deletes table slot i, shifting later members of its cluster back. */
static void tab_delete(apbi_ghost *g, size_t i)
{
	size_t j = i;
	for (;;) {
		j = (j + 1) & g->mask;
		if (!g->tab[j].fp)
			break;
		size_t home = g->tab[j].fp & g->mask;
		/* move j to i unless its home lies cyclically in (i, j] */
		if (((j - home) & g->mask) >= ((j - i) & g->mask)) {
			g->tab[i] = g->tab[j];
			i = j;
		}
	}
	g->tab[i].fp = 0;
}

static void pop_oldest(apbi_ghost *g)
{
	uint64_t s = g->seq - g->count;
	uint32_t fp = g->ring[s % g->cap];
	size_t i = find(g, fp);
	if (g->tab[i].fp && g->tab[i].seq == (uint32_t)s)
		tab_delete(g, i);
	g->count--;
}

void apbi_ghost_push(apbi_ghost *g, uint64_t id, size_t limit)
{
	uint32_t fp = fingerprint(id);
	size_t i;
	if (limit > g->cap)
		limit = g->cap;
	if (!limit)
		limit = 1;
	while (g->count >= limit)
		pop_oldest(g);
	g->ring[g->seq % g->cap] = fp;
	i = find(g, fp);
	g->tab[i].fp = fp;
	g->tab[i].seq = (uint32_t)g->seq;
	g->seq++;
	g->count++;
}

bool apbi_ghost_take(apbi_ghost *g, uint64_t id)
{
	size_t i = find(g, fingerprint(id));
	if (!g->tab[i].fp)
		return false;
	tab_delete(g, i);
	return true;
}
