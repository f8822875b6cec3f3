/*
 * cache_hit.c - the cache's hit path without the cache lock: a lock-free
 * walk of the hash, a pin taken by compare-and-swap on the page's pin word,
 * and the hit recorded in the calling thread's slot, applied to counters
 * and policy later under the lock (see cache.c for the cache's invariants).
 *
 * Why it is safe (the rules every writer under the lock keeps, cache_priv.h):
 *  - Descriptors live in a pool that never moves or shrinks and buckets
 *    are never reallocated, so a walker's pointer always names a
 *    descriptor; chains change with atomic stores, so a walk sees some
 *    chain (perhaps a stale one, perhaps the free list: then it misses or
 *    gives up after MAX_WALK steps and takes the locked path).
 *  - A pin is taken only on a word without PW_DEAD: a descriptor is DEAD
 *    from its free until its claim, and an unpinned root is made DEAD
 *    (count 0 -> DEAD by CAS) before it is evicted or destroyed, so a pin
 *    taken here keeps its descriptor and buffer alive until it is dropped.
 *  - After the pin the page is checked again (READY with acquire, same key,
 *    not a view, still in the hash): a pin on a recycled or leaving
 *    descriptor is dropped at once and the locked path runs instead.
 *  - The last pin of a root that left the hash or the policy meanwhile is
 *    dropped under the lock (apbi_cache_unpin_one), which frees or re-lists
 *    it; any other pin is dropped here.
 *  - So the budget, single flight (only READY pages are taken here) and
 *    pins are the locked path's.  What is delayed is the policy's view of
 *    a hit: at most HIT_BUF hits per thread, applied in that thread's
 *    order before its next miss, when its slot fills, and before counters
 *    are read.  While a trace is recorded every hit takes the lock, so a
 *    trace lists accesses in the order the policy saw them.
 *  - Slots: HIT_SLOTS per cache (about 25 KiB, outside the budget); a
 *    thread uses slot (its arrival number % HIT_SLOTS); two threads that
 *    share a slot, or a drainer, meet on its busy flag: a recorder that
 *    finds it busy applies its hit under the lock instead.
 */
#include <pthread.h>
#include <sched.h>

#include "cache_priv.h"

#define MAX_WALK 64u

static uint32_t my_slot(void)
{
	static uint32_t arrivals;
	static __thread uint32_t mine;   /* slot + 1; 0: not chosen yet */
	if (!mine)
		mine = __atomic_fetch_add(&arrivals, 1, __ATOMIC_RELAXED) % HIT_SLOTS + 1;
	return mine - 1;
}

/** See cache_priv.h. */
bool apbi_cache_unpin_fast(apbi_page *e)
{
	uint32_t v = pw_load(e);
	do {
		CACHE_CHECK(v & PW_COUNT);
		if ((v & PW_COUNT) == 1 && (v & (PW_OFFHASH | PW_PARKED)))
			return false;
	} while (!__atomic_compare_exchange_n(&e->pins, &v, v - 1, false, __ATOMIC_ACQ_REL,
	                                      __ATOMIC_ACQUIRE));
	return true;
}

static void unpin(apbi_cache *c, apbi_page *e)
{
	if (apbi_cache_unpin_fast(e))
		return;
	pthread_mutex_lock(&c->lock);
	apbi_cache_unpin_one(c, e);
	pthread_mutex_unlock(&c->lock);
}

/* The descriptor of page p of m on a lock-free walk, or NULL. */
static apbi_page *walk(const apbi_cache *c, uint32_t m, uint64_t p)
{
	apbi_page *e = __atomic_load_n(&c->buckets[hash_key(c, m, p)], __ATOMIC_ACQUIRE);
	for (uint32_t steps = 0; e; steps++) {
		if (steps == MAX_WALK)
			return NULL;
		if (ALOAD(e->page) == p && ALOAD(e->model) == m)
			return e;
		e = __atomic_load_n(&e->hnext, __ATOMIC_ACQUIRE);
	}
	return NULL;
}

/* Pins page p of m if it is a plain resident page (not a view, not
 * loading, in the hash); NULL: take the locked path. */
static apbi_page *pin_hit(apbi_cache *c, uint32_t m, uint64_t p)
{
	apbi_page *e = walk(c, m, p);
	uint32_t v;
	if (!e)
		return NULL;
	v = pw_load(e);
	do {
		if (v & (PW_DEAD | PW_OFFHASH | PW_VIEW))
			return NULL;
	} while (!__atomic_compare_exchange_n(&e->pins, &v, v + 1, false, __ATOMIC_ACQ_REL,
	                                      __ATOMIC_ACQUIRE));
	if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == ST_READY && ALOAD(e->page) == p &&
	    ALOAD(e->model) == m && !ALOAD(e->owner) && !(pw_load(e) & (PW_OFFHASH | PW_VIEW)))
		return e;
	unpin(c, e);   /* recycled or leaving meanwhile */
	return NULL;
}

/* Applies one recorded hit (lock held): counted always, used only if its
 * descriptor still holds the page it was recorded for. */
static void apply(apbi_cache *c, const hit_rec *r)
{
	apbi_page *e = r->e;
	if (e->gen == r->gen && e->state == ST_READY && (e->flags & F_INHASH) && !e->owner &&
	    e->model == r->model && e->page == r->page) {
		apbi_cache_touch(c, e, true);
		return;
	}
	__atomic_store_n(&c->clock, c->clock + 1, __ATOMIC_RELAXED);
	count_lookup(c, r->model, r->page, true);
}

/* Applies and empties slot s (lock held). */
static void drain(apbi_cache *c, hit_slot *s)
{
	for (unsigned spins = 0; __atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE); spins++)
		if (spins > 64)
			sched_yield();   /* its recorder was preempted holding it */
	for (uint32_t i = 0; i < s->n; i++)
		apply(c, &s->rec[i]);
	s->n = 0;
	__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

/** See cache_priv.h. */
void apbi_cache_drain_mine(apbi_cache *c)
{
	drain(c, &c->hits[my_slot()]);
}

/** See cache_priv.h. */
void apbi_cache_drain_all(apbi_cache *c)
{
	for (uint32_t i = 0; i < HIT_SLOTS; i++)
		if (__atomic_load_n(&c->hits[i].n, __ATOMIC_RELAXED))
			drain(c, &c->hits[i]);
}

/* Records the hit on pinned e in slot s; applies it (or the full slot)
 * under the lock when s is busy (or full). */
static void record(apbi_cache *c, hit_slot *s, apbi_page *e, uint32_t m, uint64_t p)
{
	uint32_t n;
	if (__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&c->lock);
		apbi_cache_touch(c, e, true);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	s->rec[s->n] = (hit_rec){ .e = e, .page = p, .model = m, .gen = e->gen };
	__atomic_store_n(&s->n, s->n + 1, __ATOMIC_RELAXED);
	n = s->n;
	__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
	/* from half full on, drain when the lock is free; wait for it only when full */
	if (n >= HIT_BUF / 2 && (n == HIT_BUF ? pthread_mutex_lock(&c->lock) == 0
	                                      : pthread_mutex_trylock(&c->lock) == 0)) {
		drain(c, s);
		pthread_mutex_unlock(&c->lock);
	}
}

/** See cache_priv.h. */
uint32_t apbi_cache_hit_run(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                            apbi_page **pages)
{
	hit_slot *s;
	uint32_t n = 0;
	if (__atomic_load_n(&c->trace, __ATOMIC_ACQUIRE))
		return 0;
	s = &c->hits[my_slot()];
	while (n < max_n) {
		apbi_page *e = pin_hit(c, m, page + n);
		if (!e)
			break;
		record(c, s, e, m, page + n);
		pages[n++] = e;
	}
	return n;
}

/** See cache.h. */
uint64_t apbi_cache_first_absent(apbi_cache *c, uint32_t m, uint64_t from, uint64_t to)
{
	for (; from < to; from++) {
		apbi_page *e = walk(c, m, from);
		if (!e || __atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != ST_READY)
			break;
	}
	return from;
}
