/*
 * cache_priv.h - internals shared by the cache's files only (cache.c,
 * cache_hit.c, cache_stats.c, cache_view.c, cache_obj.c, cache_ahead.c).
 *
 * Everything here runs under apbi_cache.lock unless said otherwise; the
 * invariants are listed at the top of cache.c, the lock-free hit path's
 * rules at the top of cache_hit.c.
 */
#ifndef APB_CACHE_PRIV_H
#define APB_CACHE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "internal.h"
#include "trace.h"

#define MAX_RUN APBI_CACHE_MAX_RUN
#define EXTRA_DESCS 1024u
#define MMAP_MIN (64u * 1024u)

enum { ST_FREE = 0, ST_LOADING, ST_READY, ST_FAILED };
enum {
	F_INHASH = 1, F_INPOL = 2, F_PARKED = 4, F_UNUSED_PF = 8,
	F_SLAB = 16, F_VIEW = 32, F_WAITING = 64,
};

/*
 * The pin word (apbi_page.pins): a count of pins and four bits.  Lock-free
 * hits (cache_hit.c) add and drop pins with compare-and-swap, so every
 * access to it is atomic (the pw_* helpers below), under the lock or not.
 *  PW_DEAD:    no pin may be taken: a free descriptor, a view's non-head
 *              page, or a root being evicted or destroyed (set with count 0).
 *  PW_OFFHASH: the root left the hash while pinned: its last unpin frees it.
 *  PW_PARKED:  the root left the policy while pinned: its last unpin
 *              re-lists it.
 *  PW_VIEW:    a view's head: hits on it take the lock (one use per call).
 * A lock-free unpin never drops the last pin of an OFFHASH or PARKED root;
 * that one runs under the lock (apbi_cache_unpin_one).
 */
#define PW_DEAD    0x80000000u
#define PW_OFFHASH 0x40000000u
#define PW_PARKED  0x20000000u
#define PW_VIEW    0x10000000u
#define PW_COUNT   0x0fffffffu

/*
 * Fields read by lock-free hits before they hold a pin (hnext, page, model,
 * owner, state: the chain walk and the check after the pin) are written
 * only with atomic stores (ASTORE, internal.h); under the lock they may be
 * read plainly.
 */

/*
 * Two cache lines: the first holds what a hit reads (written at a claim,
 * a publish or an eviction), the second what applying a hit writes, so
 * threads hitting the same pages do not bounce the line they read.
 */
struct apbi_page {
	apbi_page *hnext;    /* hash chain, or free list (ASTORE) */
	apbi_page *owner;    /* view pages: the view head; else NULL (ASTORE) */
	uint64_t page;       /* (ASTORE) */
	uint8_t *data;
	uint32_t model;      /* (ASTORE) */
	uint32_t pins;       /* the pin word: pw_* only */
	uint32_t len;
	uint32_t gen;        /* bumped at every allocation (recorded hits) */
	uint8_t state;       /* (ASTORE; READY published with release) */
	uint8_t flags;
	bool fresh;          /* slab slot never touched: set by buf_alloc under
	                      * the lock, read only by the thread loading it */
	int err;
	apbi_pol_node pol __attribute__((aligned(64)));
	apbi_page *vnext;    /* view: next page of the view */
	uint64_t stamp;      /* clock of the last use (prefetch: of the request) */
} __attribute__((aligned(64)));

typedef struct vref {
	const void *data;
	apbi_page *root;
	struct vref *next;
} vref;

/*
 * One cache object (a model's bytes, a block table or its index) as the
 * cache numbers it (cache_obj.c).  size, align and meta never change while
 * the object is live; ctx and local (who loads it, under which number)
 * change only by apbi_cache_bind_objects, under the lock.
 */
typedef struct apbi_cobj {
	uint64_t size;
	void *ctx;             /* the loader's ctx */
	uint32_t local;        /* the object's number for that loader */
	uint32_t align;        /* pages per load unit (model_align), >= 1 */
	uint32_t next_free;    /* free list link while not live */
	uint32_t loading;      /* loader calls in flight through ctx */
	bool meta, live;       /* meta: lookups not counted (first_meta) */
	bool traced;           /* live when the running trace started: declared in it */
	apb_model_stats st;
} apbi_cobj;

/*
 * Hits taken without the lock are recorded in the slot of the thread that
 * took them and applied to the counters and the policy, in that thread's
 * order, under the lock (cache_hit.c): when the slot fills, when the
 * thread next takes the lock for a miss, and before anything reads the
 * counters.  A slot's records are its owner's until busy is released.
 */
#define HIT_SLOTS 16u
#define HIT_BUF 64u
#define HP_N 4u                /* brief holds per slot (see cache_hit.c) */

typedef struct hit_rec {
	apbi_page *e;
	uint64_t page;
	uint32_t model, gen;
} hit_rec;

typedef struct hit_slot {
	apbi_page *hp[HP_N];   /* pages held by brief hits (CAS; seq_cst) */
	int busy;              /* a spin flag: the recording thread or a drainer */
	uint32_t n;
	uint32_t shed;         /* drains left that shed hits (atomic; cache_hit.c) */
	uint32_t seq;          /* records shed mode applied (lock held) */
	hit_rec rec[HIT_BUF];
} __attribute__((aligned(64))) hit_slot;

#define OBJ_SHIFT 12u
#define OBJ_CHUNK (1u << OBJ_SHIFT)
#define OBJ_MAX_CHUNKS (1u << (32 - OBJ_SHIFT))
#define OBJ_NONE UINT32_MAX

/*
 * Read-mostly fields first (what a lock-free hit reads), then, from the
 * next cache line on, what changes under the lock, so that applying hits
 * and misses does not evict the hit path's line from the other cores.
 */
struct apbi_cache {
	apbi_cache_config cfg;
	void *pol;
	unsigned shift;
	uint32_t max_run;     /* pages per coalesced load, <= MAX_RUN */
	apbi_page **buckets;
	uint64_t hmask;
	apbi_page *pool;
	uint64_t pool_cap;
	uint8_t *slab;        /* slot 0, aligned to SLAB_ALIGN inside the mapping */
	void *slab_map;       /* the mapping itself, slab_map_len bytes */
	size_t slab_map_len;
	uint32_t *slots;      /* stack of free slot indices */
	uint64_t nslots;
	apbi_cobj **objs;      /* OBJ_MAX_CHUNKS chunk pointers; chunks never move */
	uint32_t nobj;         /* ids below this were handed out (atomic) */
	uint32_t slots_used;   /* bit i: slot i has been used (atomic; only grows) */
	apbi_trace *trace;     /* records every counted lookup; NULL: off (ASTORE:
	                        * the hit path takes the lock while it is set) */
	hit_slot *hits;        /* HIT_SLOTS slots of lock-free hits (cache_hit.c) */

	pthread_mutex_t lock __attribute__((aligned(64)));
	pthread_cond_t loaded;
	apbi_page *free_descs;
	uint64_t pool_hw, ndesc;
	uint64_t nfree_slots, slab_hw;
	uint64_t used, clock;
	apbi_cache_counters st;
	uint32_t free_obj;     /* head of the free ids, OBJ_NONE: none */
	vref *views;
	apbi_page *last_view;  /* root of the latest use (see apbi_cache_use) */
	apbi_pol_node waiting; /* roots a brief hold kept from being freed or
	                        * re-listed (F_WAITING; linked through their
	                        * policy node, unused while out of the policy) */
};

#define ROOT(e) ((e)->owner ? (e)->owner : (e))

static inline uint32_t pw_load(const apbi_page *e)
{
	return __atomic_load_n(&e->pins, __ATOMIC_ACQUIRE);
}

/** Adds n pins to root e, which is not DEAD (lock held). */
static inline void pin_add(apbi_page *e, uint32_t n)
{
	__atomic_fetch_add(&e->pins, n, __ATOMIC_ACQ_REL);
}

/** Sets bits in e's pin word. */
static inline void pw_set(apbi_page *e, uint32_t bits)
{
	__atomic_fetch_or(&e->pins, bits, __ATOMIC_ACQ_REL);
}

/** Clears bits in e's pin word. */
static inline void pw_clear(apbi_page *e, uint32_t bits)
{
	__atomic_fetch_and(&e->pins, ~bits, __ATOMIC_ACQ_REL);
}

/** True when a brief hit holds e (cache_hit.c; seq_cst loads: see there). */
bool apbi_cache_held_brief(const apbi_cache *c, const apbi_page *e);

enum { KILL_DONE, KILL_PINNED, KILL_HELD };

/**
 * Makes root e DEAD (lock held): KILL_DONE; KILL_PINNED when a pin is on
 * it (its last unpin settles it), KILL_HELD when a brief hit holds it (the
 * caller puts it on the waiting list, or gives up).
 */
static inline int pin_kill(const apbi_cache *c, apbi_page *e)
{
	uint32_t v = pw_load(e);
	do {
		if (v & PW_COUNT)
			return KILL_PINNED;
	} while (!__atomic_compare_exchange_n(&e->pins, &v, v | PW_DEAD, false, __ATOMIC_SEQ_CST,
	                                      __ATOMIC_ACQUIRE));
	if (!apbi_cache_held_brief(c, e))
		return KILL_DONE;
	pw_clear(e, PW_DEAD);
	return KILL_HELD;
}

/** Sets bit on root e if it is pinned (lock held): false when it is not (any more). */
static inline bool pin_mark(apbi_page *e, uint32_t bit)
{
	uint32_t v = pw_load(e);
	do {
		if (!(v & PW_COUNT))
			return false;
	} while (!__atomic_compare_exchange_n(&e->pins, &v, v | bit, false, __ATOMIC_ACQ_REL,
	                                      __ATOMIC_ACQUIRE));
	return true;
}

/** The record of object m (m < nobj). */
static inline apbi_cobj *OBJ(const apbi_cache *c, uint32_t m)
{
	return &c->objs[m >> OBJ_SHIFT][m & (OBJ_CHUNK - 1)];
}

/** True when m names an object that exists (a live one, for callers that own it). */
static inline bool obj_ok(const apbi_cache *c, uint32_t m)
{
	return m < __atomic_load_n(&c->nobj, __ATOMIC_ACQUIRE);
}

/** True when lookups of model m count in the statistics (not metadata). */
static inline bool counted(const apbi_cache *c, uint32_t m)
{
	return !OBJ(c, m)->meta;
}

/*
 * The invariants listed at the top of cache.c, checked where they could
 * break (budget after every reserve and publish, pins never below zero, a
 * pinned or unloaded page never evicted, descriptors within the pool).
 * Compiled in when NDEBUG is unset and always in sanitizer builds
 * (--enable-asan, --enable-tsan); each check is O(1).  A failure is a bug
 * in the cache: it reports and aborts.
 */
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CACHE_CHECK(cond) \
	((cond) ? (void)0 : apbi_cache_check_failed(#cond, __FILE__, __LINE__))
#else
#define CACHE_CHECK(cond) ((void)0)
#endif

/** Reports a broken cache invariant on stderr and aborts (cache.c). */
void apbi_cache_check_failed(const char *what, const char *file, int line)
	__attribute__((noreturn));

static inline uint64_t hash_key(const apbi_cache *c, uint32_t m, uint64_t p)
{
	uint64_t h = (p + ((uint64_t)m << 40)) * 0x9E3779B97F4A7C15ull;
	return (h ^ (h >> 29)) & c->hmask;
}

static inline apbi_page *lookup(const apbi_cache *c, uint32_t m, uint64_t p)
{
	apbi_page *e = c->buckets[hash_key(c, m, p)];
	while (e && (e->page != p || e->model != m))
		e = e->hnext;
	return e;
}

/* Chains change only under the lock, with atomic stores, a descriptor
 * published into a bucket with release (lock-free walkers acquire). */
static inline void hash_insert(apbi_cache *c, apbi_page *e)
{
	apbi_page **b = &c->buckets[hash_key(c, e->model, e->page)];
	ASTORE(e->hnext, *b);
	__atomic_store_n(b, e, __ATOMIC_RELEASE);
	e->flags |= F_INHASH;
}

/** Records ev in the trace when one is running (lock held; trace.h). */
static inline void trace_ev(apbi_cache *c, enum apbi_trace_ev ev, uint32_t m, uint64_t page,
                            uint64_t arg)
{
	if (c->trace && OBJ(c, m)->traced)   /* not: objects of a later reload */
		apbi_trace_event(c->trace, ev, m, page, arg);
}

/** Counts one lookup of page of model m (a hit or a miss) and traces it; metadata: traced only. */
static inline void count_lookup(apbi_cache *c, uint32_t m, uint64_t page, bool hit)
{
	if (!counted(c, m)) {
		trace_ev(c, APBI_TR_META, m, page, 0);   /* block tables: no counters */
		return;
	}
	if (hit) {
		c->st.hits++;
		OBJ(c, m)->st.hits++;
	} else {
		c->st.misses++;
		OBJ(c, m)->st.misses++;
	}
	trace_ev(c, APBI_TR_LOOKUP, m, page, 0);
}

/** A fresh zeroed descriptor from the pool (the caller reserved it). */
apbi_page *apbi_cache_desc_alloc(apbi_cache *c);
/** Returns a descriptor to the pool. */
void apbi_cache_desc_free(apbi_cache *c, apbi_page *e);
/** Takes root e (and a view's pages) out of the hash and the policy. */
void apbi_cache_detach(apbi_cache *c, apbi_page *e);
/** Frees a detached root: its buffer (unless already freed) and descriptors. */
void apbi_cache_destroy(apbi_cache *c, apbi_page *e);
/**
 * Makes room for bytes and ndesc descriptors by evicting; counts the bytes
 * in used on success.  pf: a prefetch made at stamp (see cache.c).
 */
bool apbi_cache_reserve(apbi_cache *c, uint64_t bytes, uint64_t ndesc, bool pf, uint64_t stamp);
/**
 * Claims up to max_n absent pages of m from page on as LOADING, pinned,
 * budget reserved (pf: a prefetch made at stamp); returns how many (cache.c).
 */
uint32_t apbi_cache_claim_run(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                              bool pf, uint64_t stamp, apbi_page **pages);
/** Ends the load of claimed e with result err; a prefetch enters the policy as kind (cache.c). */
void apbi_cache_publish(apbi_cache *c, apbi_page *e, int err, bool pf, enum apbi_pol_kind kind,
                        uint64_t stamp);
/**
 * Loads claimed pages[0..k) of m from page lo with one loader call, lock
 * not held; [skip, skip+want) are demand pages (see cache.c).
 */
int apbi_cache_load_run(apbi_cache *c, uint32_t m, uint64_t lo, uint32_t k, apbi_page **pages,
                        uint32_t skip, uint32_t want, uint64_t stamp, enum apbi_pol_kind kind);
/** Drops one pin of p's root; the last pin frees or re-lists it. */
void apbi_cache_unpin_one(apbi_cache *c, apbi_page *p);
/** Records a use of p (counters, policy, stamp) without pinning it (lock held). */
void apbi_cache_touch(apbi_cache *c, apbi_page *p, bool hit);
/**
 * The counting part of apbi_cache_touch alone (clock, hit/miss counters, a
 * prefetched page's first use): a hit the policy does not see (a shed hit,
 * cache_hit.c).  Lock held.
 */
void apbi_cache_count_use(apbi_cache *c, apbi_page *p, bool hit);
/** Records a lookup that found p usable (hit or waited miss) and pins its root. */
void apbi_cache_use(apbi_cache *c, apbi_page *p, bool hit);
/**
 * The lock-free hit path (cache_hit.c): pins the READY pages of m from
 * page on (at most max_n, stopping at the first that is not a plain
 * resident page) and records their hits; returns how many (0: take the
 * locked path).
 */
uint32_t apbi_cache_hit_run(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                            apbi_page **pages);
/** Settles root e after its last pin went (lock held): frees an orphan
 * (or sets it waiting while a brief hit holds it), re-lists a parked page. */
void apbi_cache_settle(apbi_cache *c, apbi_page *e);
/** Puts root e (out of the policy) on the waiting list unless it is on it (lock held). */
void apbi_cache_wait(apbi_cache *c, apbi_page *e);
/** Takes root e off the waiting list if it is on it (lock held). */
void apbi_cache_unwait(apbi_cache *c, apbi_page *e);
/** Settles the waiting roots no brief hit holds any more (lock held). */
void apbi_cache_sweep(apbi_cache *c);
/** Drops one pin of root e without the lock unless it is the last of an
 * OFFHASH or PARKED root: false then (call apbi_cache_unpin_one). */
bool apbi_cache_unpin_fast(apbi_page *e);
/** Applies every thread's recorded hits (lock held): before a miss chooses
 * a victim and before counters are read. */
void apbi_cache_drain_all(apbi_cache *c);
/** Buffer for a view of size bytes (mmap from MMAP_MIN on); NULL when out of memory (cache.c). */
uint8_t *apbi_view_alloc(uint64_t size);
/** Creates the object table with cfg's objects, ids 0..n_models-1 (cache_obj.c). */
int apbi_cache_objs_init(apbi_cache *c);
/** Frees the object table (cache_obj.c). */
void apbi_cache_objs_free(apbi_cache *c);
/**
 * The loader ctx and local number of object m, for one loader call: the
 * binding cannot change until apbi_cache_binding_done (cache_obj.c).
 */
void apbi_cache_binding(apbi_cache *c, uint32_t m, void **ctx, uint32_t *local);
/** Ends the loader call begun by apbi_cache_binding (lock held). */
void apbi_cache_binding_done(apbi_cache *c, uint32_t m);
/** Frees a buffer from apbi_view_alloc of that size; NULL ok. */
void apbi_view_unmap(uint8_t *p, uint64_t size);

#endif
