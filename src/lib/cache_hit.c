/*
 * cache_hit.c - the cache's hit path without the cache lock: a lock-free
 * walk of the hash, the page held either by a pin taken by compare-and-swap
 * on its pin word (apbi_cache_get_run) or, for a caller that copies it out
 * at once, by a hazard pointer in the thread's slot that writes nothing to
 * the page (apbi_cache_get_brief), and the hit recorded in the thread's
 * slot, applied to counters and policy later under the lock (see cache.c
 * for the cache's invariants).
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
 *  - A brief hold is the page's address in one of its slot's HP_N hazard
 *    pointers, stored by a seq_cst CAS before the pin word is read
 *    (seq_cst); a root is made DEAD by a seq_cst CAS before the hazard
 *    pointers of every used slot are read (pin_kill): so either the hit
 *    sees DEAD and lets go, or the killer sees the hold and gives up.  A
 *    hold is dropped by clearing its pointer, nothing more (one plain
 *    store: the release writes nothing shared); so a root that a kill
 *    found held and that must be freed (it left the hash) or re-listed (it
 *    was met as a victim: parked) waits on c->waiting until a sweep under
 *    the lock, at the next reserve, finds it let go (apbi_cache_sweep).
 *  - The last pin of a root that left the hash or the policy meanwhile is
 *    dropped under the lock (apbi_cache_unpin_one), which frees or re-lists
 *    it; any other pin is dropped here.
 *  - So the budget, single flight (only READY pages are taken here) and
 *    pins are the locked path's.  What is delayed is the policy's view of
 *    a hit: at most HIT_BUF hits per thread, applied in that thread's
 *    order before the next miss of any thread (so a victim is chosen after
 *    every hit recorded before the miss took the lock), when its slot
 *    fills, and before counters are read.  While a trace is recorded
 *    every hit takes the lock, so a trace lists accesses in the order the
 *    policy saw them.
 *  - Shedding: a thread that finds the lock held by another when it comes
 *    to drain its slot sheds for its next SHED_DRAINS drains: of the hits
 *    they apply, one in SHED_EVERY is a full use (policy touch, stamp)
 *    and the others are counted only (apbi_cache_count_use).  A full touch
 *    writes the page's policy line and its neighbours', which the other
 *    core wrote last, so exact touches from two cores serialize on cache
 *    misses under the lock (docs/BENCHMARKS.md, "Hits without the lock");
 *    the counters stay exact, a single thread (whose trylock never fails
 *    but for a prefetch worker's) keeps the exact policy, and so does a
 *    traced cache (no slots).
 *  - Slots: HIT_SLOTS per cache (about 26 KiB, outside the budget); a
 *    thread owns slot i of every cache from its first hit to its exit
 *    (slots_taken, freed by a thread-specific destructor; records it left
 *    are applied by the slot's next owner or the next reader of counters);
 *    beyond HIT_SLOTS live threads, threads share slots.  Two threads that
 *    share a slot, or a drainer, meet on its busy flag: a recorder that
 *    finds it busy applies its hit under the lock instead.
 */
#include <pthread.h>
#include <sched.h>

#include "cache_priv.h"

#define MAX_WALK 64u
#define SHED_DRAINS 16u   /* drains a slot sheds after it found the lock held */
#define SHED_EVERY 8u     /* while shedding, 1 hit in SHED_EVERY reaches the policy */
#define RETRY_EVERY 8u    /* records between two tries of a busy lock */

static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static uint32_t slots_taken;   /* bit i: a live thread owns slot i (of every cache) */

/* At a thread's exit: its slot is free for the next thread. */
static void slot_free(void *v)
{
	__atomic_fetch_and(&slots_taken, ~(1u << ((uint32_t)(uintptr_t)v - 1)), __ATOMIC_RELEASE);
}

static void slot_key_init(void)
{
	if (pthread_key_create(&slot_key, slot_free))
		slot_key = (pthread_key_t)-1;   /* then slots are shared by arrival */
}

/* A slot index no live thread owns, claimed for this one; HIT_SLOTS: none. */
static uint32_t slot_claim(void)
{
	uint32_t t = __atomic_load_n(&slots_taken, __ATOMIC_ACQUIRE);
	pthread_once(&slot_once, slot_key_init);
	if (slot_key == (pthread_key_t)-1)
		return HIT_SLOTS;
	while (~t & ((1u << HIT_SLOTS) - 1)) {
		uint32_t i = (uint32_t)__builtin_ctz(~t);
		if (__atomic_compare_exchange_n(&slots_taken, &t, t | (1u << i), false,
		                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			if (pthread_setspecific(slot_key, (void *)(uintptr_t)(i + 1)) == 0)
				return i;
			slot_free((void *)(uintptr_t)(i + 1));
			return HIT_SLOTS;
		}
	}
	return HIT_SLOTS;
}

/* The calling thread's slot index: its own while at most HIT_SLOTS threads
 * live (freed at its exit), else shared with others by arrival. */
static uint32_t my_slot(void)
{
	static uint32_t arrivals;
	static __thread uint32_t mine;   /* slot + 1; 0: not chosen yet */
	if (!mine) {
		uint32_t i = slot_claim();
		if (i == HIT_SLOTS)
			i = __atomic_fetch_add(&arrivals, 1, __ATOMIC_RELAXED) % HIT_SLOTS;
		mine = i + 1;
	}
	return mine - 1;
}

/* The calling thread's slot of c, marked used (the mark only grows, and
 * is written once per slot, so hits only read it). */
static hit_slot *slot_of(apbi_cache *c)
{
	uint32_t i = my_slot();
	if (!(__atomic_load_n(&c->slots_used, __ATOMIC_ACQUIRE) & (1u << i)))
		__atomic_fetch_or(&c->slots_used, 1u << i, __ATOMIC_SEQ_CST);
	return &c->hits[i];
}

/** See cache_priv.h.  A slot is marked used before its first hold, with
 * seq_cst, so a scan that misses the mark also misses the hold. */
bool apbi_cache_held_brief(const apbi_cache *c, const apbi_page *e)
{
	uint32_t used = __atomic_load_n(&c->slots_used, __ATOMIC_SEQ_CST);
	for (; used; used &= used - 1) {
		const hit_slot *s = &c->hits[__builtin_ctz(used)];
		for (uint32_t j = 0; j < HP_N; j++)
			if (__atomic_load_n(&s->hp[j], __ATOMIC_SEQ_CST) == e)
				return true;
	}
	return false;
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
	apbi_cache_unpin(c, &e, 1);   /* recycled or leaving meanwhile */
	return NULL;
}

/* Applies one recorded hit (lock held): counted always, used only if its
 * descriptor still holds the page it was recorded for, seen by the policy
 * only if pol (else shed: see the top of the file). */
static void apply(apbi_cache *c, const hit_rec *r, bool pol)
{
	apbi_page *e = r->e;
	if (e->gen == r->gen && e->state == ST_READY && (e->flags & F_INHASH) && !e->owner &&
	    e->model == r->model && e->page == r->page) {
		if (pol) {
			apbi_cache_touch(c, e, true);
		} else {
			apbi_cache_count_use(c, e, true);
			c->st.hits_shed++;
		}
		return;
	}
	__atomic_store_n(&c->clock, c->clock + 1, __ATOMIC_RELAXED);
	count_lookup(c, r->model, r->page, true);
}

/* Applies and empties slot s (lock held): every record, or while s sheds,
 * every SHED_EVERY-th to the policy and the others to the counters only. */
static void drain(apbi_cache *c, hit_slot *s)
{
	uint32_t shed;
	for (unsigned spins = 0; __atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE); spins++)
		if (spins > 64)
			sched_yield();   /* its recorder was preempted holding it */
	shed = __atomic_load_n(&s->shed, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < s->n; i++)
		apply(c, &s->rec[i], !shed || s->seq++ % SHED_EVERY == 0);
	if (shed)
		__atomic_store_n(&s->shed, shed - 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->n, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

/* Tries the lock for slot s; finding it held by another thread makes s
 * shed for its next SHED_DRAINS drains. */
static bool trylock_for(apbi_cache *c, hit_slot *s)
{
	if (pthread_mutex_trylock(&c->lock) == 0)
		return true;
	__atomic_store_n(&s->shed, SHED_DRAINS, __ATOMIC_RELAXED);
	return false;
}

/* Takes the lock for slot s (see trylock_for). */
static void lock_for(apbi_cache *c, hit_slot *s)
{
	if (!trylock_for(c, s))
		pthread_mutex_lock(&c->lock);
}

/** See cache_priv.h. */
void apbi_cache_drain_all(apbi_cache *c)
{
	uint32_t used = __atomic_load_n(&c->slots_used, __ATOMIC_ACQUIRE);
	for (; used; used &= used - 1) {
		hit_slot *s = &c->hits[__builtin_ctz(used)];
		if (__atomic_load_n(&s->n, __ATOMIC_RELAXED))
			drain(c, s);
	}
}

/* Applies the hit on pinned e under the lock, after slot s's records. */
static void record_locked(apbi_cache *c, hit_slot *s, apbi_page *e)
{
	lock_for(c, s);
	drain(c, s);
	apbi_cache_touch(c, e, true);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Records the hit on pinned e in slot s; applies it under the lock when s
 * is busy or full (full: a thread sharing s filled it and has not drained
 * it yet).
 */
static void record(apbi_cache *c, hit_slot *s, apbi_page *e, uint32_t m, uint64_t p)
{
	uint32_t n;
	if (__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE)) {
		record_locked(c, s, e);
		return;
	}
	if (s->n == HIT_BUF) {
		__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
		record_locked(c, s, e);
		return;
	}
	CACHE_CHECK(s->n < HIT_BUF);
	s->rec[s->n] = (hit_rec){ .e = e, .page = p, .model = m, .gen = e->gen };
	__atomic_store_n(&s->n, s->n + 1, __ATOMIC_RELAXED);
	n = s->n;
	__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
	/* from half full on, drain when the lock is free (looked at every
	 * RETRY_EVERY records, not to pull its line from the holder at each);
	 * wait for it only when full */
	if (n < HIT_BUF / 2 || (n % RETRY_EVERY && n != HIT_BUF))
		return;
	if (n == HIT_BUF)
		lock_for(c, s);
	else if (!trylock_for(c, s))
		return;
	drain(c, s);
	pthread_mutex_unlock(&c->lock);
}

/** See cache_priv.h. */
uint32_t apbi_cache_hit_run(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                            apbi_page **pages)
{
	hit_slot *s;
	uint32_t n = 0;
	if (__atomic_load_n(&c->trace, __ATOMIC_ACQUIRE))
		return 0;
	s = slot_of(c);
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

/* Drops the brief hold in s's pointer j: nothing else (see the top of the
 * file: a root kept by it waits for the next sweep). */
static void let_go(hit_slot *s, uint32_t j)
{
	__atomic_store_n(&s->hp[j], NULL, __ATOMIC_RELEASE);
}

/** See cache_priv.h. */
void apbi_cache_wait(apbi_cache *c, apbi_page *e)
{
	CACHE_CHECK(!(e->flags & F_INPOL));
	if (e->flags & F_WAITING)
		return;   /* a parked page that then left the hash: already here */
	e->flags |= F_WAITING;
	apbi_pol_link_after(&c->waiting, &e->pol);
}

/** See cache_priv.h. */
void apbi_cache_unwait(apbi_cache *c, apbi_page *e)
{
	(void)c;
	if (!(e->flags & F_WAITING))
		return;
	e->flags &= (uint8_t)~F_WAITING;
	apbi_pol_unlink(&e->pol);
}

/** See cache_priv.h.  A waiting root with a pin leaves the list: its last
 * unpin settles it. */
void apbi_cache_sweep(apbi_cache *c)
{
	apbi_pol_node *n, *next;
	for (n = c->waiting.next; n != &c->waiting; n = next) {
		apbi_page *e = (apbi_page *)((char *)n - offsetof(apbi_page, pol));
		next = n->next;
		if (!(pw_load(e) & PW_COUNT) && apbi_cache_held_brief(c, e))
			continue;
		apbi_cache_unwait(c, e);
		apbi_cache_settle(c, e);
	}
}

/*
 * The hazard pointer each of the calling thread's brief holds took, by its
 * place in the pages of apbi_cache_get_brief: put_brief clears exactly
 * that one (two threads sharing a slot may hold the same page, and a
 * search by value could clear the other's pointer twice).
 */
static __thread uint8_t held_at[HP_N];

/* Holds page p of m through a free pointer of s (its index in *at) if it
 * is a plain resident page; NULL: none free, or take the locked path. */
static apbi_page *hold_hit(apbi_cache *c, hit_slot *s, uint32_t m, uint64_t p, uint8_t *at)
{
	apbi_page *e = walk(c, m, p);
	uint32_t j;
	if (!e)
		return NULL;
	for (j = 0; j < HP_N; j++) {
		apbi_page *none = NULL;
		if (__atomic_compare_exchange_n(&s->hp[j], &none, e, false, __ATOMIC_SEQ_CST,
		                                __ATOMIC_RELAXED))
			break;
	}
	if (j == HP_N)
		return NULL;
	*at = (uint8_t)j;
	if (!(__atomic_load_n(&e->pins, __ATOMIC_SEQ_CST) & (PW_DEAD | PW_OFFHASH | PW_VIEW)) &&
	    __atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == ST_READY && ALOAD(e->page) == p &&
	    ALOAD(e->model) == m && !ALOAD(e->owner))
		return e;
	let_go(s, j);   /* recycled, leaving or being evicted */
	return NULL;
}

/** See cache_priv.h. */
int apbi_cache_get_brief(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                         apbi_page **pages, uint32_t *n, bool *brief)
{
	uint32_t k = 0;
	*brief = false;
	/* no look at the object's size (its line changes with its counters):
	 * a page past the end is never resident, so the walk stops there, and
	 * apbi_cache_get_run checks the arguments */
	if (obj_ok(c, m) && !__atomic_load_n(&c->trace, __ATOMIC_ACQUIRE)) {
		hit_slot *s = slot_of(c);
		while (k < max_n && k < HP_N) {
			apbi_page *e = hold_hit(c, s, m, page + k, &held_at[k]);
			if (!e)
				break;
			record(c, s, e, m, page + k);
			pages[k++] = e;
		}
	}
	if (k) {
		*n = k;
		*brief = true;
		return 0;
	}
	return apbi_cache_get_run(c, m, page, max_n, pages, n);
}

/** See cache_priv.h. */
void apbi_cache_put_brief(apbi_cache *c, apbi_page *const *pages, uint32_t n, bool brief)
{
	hit_slot *s;
	if (!brief) {
		apbi_cache_unpin(c, pages, n);
		return;
	}
	s = &c->hits[my_slot()];
	for (uint32_t i = 0; i < n; i++) {
		/* put on the thread that got it, with no brief hold between */
		CACHE_CHECK(i < HP_N && __atomic_load_n(&s->hp[held_at[i]], __ATOMIC_RELAXED) == pages[i]);
		let_go(s, held_at[i]);
	}
}
