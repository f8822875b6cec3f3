/*
 * cache.c - byte-budgeted page cache: hash of page descriptors, pins,
 * single-flight loads, pluggable eviction policy (see cache.h; whole-model
 * views are in cache_view.c, the prefetch path in cache_ahead.c, the hit
 * path without the lock in cache_hit.c, counters and trace in
 * cache_stats.c, the shared internals in cache_priv.h).
 *
 * One mutex guards all metadata; it is held only for hash lookups, policy
 * calls and counters, never across the loader or a memcpy of page data,
 * so hits never wait on I/O, and a hit does not take it at all (cache_hit.c
 * says how: lock-free lookup, pins by CAS or brief holds, hits recorded per
 * thread and applied here later).  Invariants kept under the lock:
 *  - used (memory_used) = bytes of every page buffer that exists: resident
 *    pages, pages being loaded, pinned orphans, views.  Budget is reserved
 *    (evicting first) before a buffer is allocated, so used <= max_memory
 *    at every instant.
 *  - A descriptor is in the hash iff F_INHASH; at most one per key.  A
 *    READY descriptor in the hash is "resident" (counted in cached_pages).
 *  - The policy holds exactly the READY, unpinned-or-not-yet-noticed roots
 *    (F_INPOL).  A pinned root met as victim is unlinked and flagged
 *    F_PARKED; its last unpin puts it back as a fresh demand entry (a
 *    root only held briefly waits on c->waiting for the next sweep
 *    instead).  So victim selection is amortized O(1) and never frees a
 *    pinned or held page: a root is freed only after pin_kill made it DEAD.
 *  - Pins and policy membership are on the root: a page itself, or for a
 *    get_model view (one contiguous buffer for a whole model) its head.
 *  - A page whose load failed leaves the hash at once; a descriptor that
 *    left the hash while pinned (failed, or replaced by a view) is freed
 *    by its last unpin (or, held briefly, by the sweep after its release).
 *  - Descriptors come from a pool of max_memory/page_size + 1024 entries,
 *    so metadata is bounded; full-size pages live in a slab of
 *    max_memory/page_size slots (no malloc, bounded RSS), short tail
 *    pages and views are allocated individually.  Outside the budget:
 *    the pool (128 bytes a descriptor), the hash (8 bytes a bucket) and
 *    HIT_SLOTS hit slots (about 26 KiB).
 * CACHE_CHECK (cache_priv.h) asserts these in debug and sanitizer builds.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cache_priv.h"

#define SLAB_ALIGN ((size_t)2 << 20)   /* a huge page on x86-64 and arm64 */

/** See cache_priv.h. */
void apbi_cache_check_failed(const char *what, const char *file, int line)
{
	/* the one message the library prints: a bug, just before abort() */
	fprintf(stderr, "apbundle: cache invariant broken: %s (%s:%d)\n", what, file, line);
	abort();
}

static void hash_remove(apbi_cache *c, apbi_page *e)
{
	apbi_page **pp = &c->buckets[hash_key(c, e->model, e->page)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	__atomic_store_n(pp, e->hnext, __ATOMIC_RELEASE);
	ASTORE(e->hnext, NULL);
	e->flags &= (uint8_t)~F_INHASH;
	pw_set(e, PW_OFFHASH);
}

/** Number of pages of model m. */
uint64_t apbi_cache_npages(const apbi_cache *c, uint32_t m)
{
	uint64_t sz = OBJ(c, m)->size;
	return (sz >> c->shift) + ((sz & (c->cfg.page_size - 1)) != 0);
}

/** Length of page p of model m (the last page may be short). */
uint32_t apbi_cache_page_len(const apbi_cache *c, uint32_t m, uint64_t p)
{
	uint64_t left = OBJ(c, m)->size - (p << c->shift);
	return left < c->cfg.page_size ? (uint32_t)left : c->cfg.page_size;
}

/** See cache_priv.h. */
apbi_page *apbi_cache_desc_alloc(apbi_cache *c)
{
	apbi_page *e = c->free_descs;
	CACHE_CHECK(e || c->pool_hw < c->pool_cap);
	uint32_t gen;
	if (e)
		c->free_descs = e->hnext;
	else
		e = &c->pool[c->pool_hw++];
	/* the fields lock-free hits read stay atomic; the word stays DEAD
	 * until its claimant stores its first pin */
	gen = e->gen + 1;
	memset(&e->flags, 0, sizeof *e - offsetof(apbi_page, flags));
	e->gen = gen;
	e->data = NULL;
	e->len = 0;
	ASTORE(e->hnext, NULL);
	ASTORE(e->owner, NULL);
	ASTORE(e->page, 0);
	ASTORE(e->model, 0);
	ASTORE(e->state, ST_FREE);
	__atomic_store_n(&e->pins, PW_DEAD, __ATOMIC_RELEASE);
	c->ndesc++;
	return e;
}

/** See cache_priv.h. */
void apbi_cache_desc_free(apbi_cache *c, apbi_page *e)
{
	CACHE_CHECK(pw_load(e) & PW_DEAD);
	ASTORE(e->state, ST_FREE);
	ASTORE(e->hnext, c->free_descs);
	c->free_descs = e;
	c->ndesc--;
}

/** See cache_priv.h (here, not in cache_view.c, so that cache.c needs
 * nothing from cache_view.c: the dependency goes one way). */
uint8_t *apbi_view_alloc(uint64_t size)
{
	void *p;
	if (size < MMAP_MIN)
		return malloc(size);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/** See cache_priv.h. */
void apbi_view_unmap(uint8_t *p, uint64_t size)
{
	if (size < MMAP_MIN)
		free(p);
	else if (p)
		munmap(p, size);
}

/*
 * Buffer for page e (budget already reserved): a slab slot while one is
 * free, whatever the length, else malloc.  A short page gives the unused
 * tail of its slot back to the kernel, so resident slab memory stays close
 * to the bytes counted in used.
 */
static uint8_t *buf_alloc(apbi_cache *c, apbi_page *e)
{
	if (c->nfree_slots || c->slab_hw < c->nslots) {
		bool fresh = !c->nfree_slots;
		uint64_t s = fresh ? c->slab_hw++ : c->slots[--c->nfree_slots];
		uint8_t *p = c->slab + (s << c->shift);
		uint64_t keep = ((uint64_t)e->len + 4095) & ~(uint64_t)4095;
		if (keep + 4096 <= c->cfg.page_size)
			madvise(p + keep, c->cfg.page_size - keep, MADV_DONTNEED);
		e->flags |= F_SLAB;
		e->fresh = fresh;
		return p;
	}
	e->fresh = false;
	return malloc(e->len ? e->len : 1);
}

/* Frees e's buffer and gives its bytes back to the budget. */
static void buf_free(apbi_cache *c, apbi_page *e)
{
	CACHE_CHECK(c->used >= ((e->flags & F_VIEW) ? OBJ(c, e->model)->size : e->len));
	if (e->flags & F_VIEW) {
		apbi_view_unmap(e->data, OBJ(c, e->model)->size);
		c->used -= OBJ(c, e->model)->size;
	} else {
		if (e->flags & F_SLAB)
			c->slots[c->nfree_slots++] = (uint32_t)((uint64_t)(e->data - c->slab) >> c->shift);
		else
			free(e->data);
		c->used -= e->len;
	}
	e->data = NULL;
	e->flags &= (uint8_t)~F_SLAB;
}

/** Takes root e (and a view's pages) out of the hash and the policy. */
void apbi_cache_detach(apbi_cache *c, apbi_page *e)
{
	apbi_page *v;
	if (e->flags & F_INPOL)
		c->cfg.policy->remove(c->pol, &e->pol, false);
	e->flags &= (uint8_t)~(F_INPOL | F_PARKED);
	for (v = e; v; v = v->vnext) {
		if (!(v->flags & F_INHASH))
			continue;
		hash_remove(c, v);
		if (v->state == ST_READY) {
			c->st.cached_pages--;
			OBJ(c, v->model)->st.cached_bytes -= v->len;
		}
	}
}

/** Frees a detached root: its buffer (unless already freed) and descriptors. */
void apbi_cache_destroy(apbi_cache *c, apbi_page *e)
{
	apbi_page *v, *nv;
	apbi_cache_unwait(c, e);
	if (c->last_view == e)
		c->last_view = NULL;
	if (e->state != ST_FAILED)
		buf_free(c, e);
	for (v = e->vnext; v; v = nv) {
		nv = v->vnext;
		apbi_cache_desc_free(c, v);
	}
	apbi_cache_desc_free(c, e);
}

static void evict(apbi_cache *c, apbi_page *e)
{
	apbi_page *v;
	CACHE_CHECK((pw_load(e) & PW_DEAD) && e->state == ST_READY && (e->flags & F_INPOL));
	c->cfg.policy->remove(c->pol, &e->pol, true);
	e->flags &= (uint8_t)~F_INPOL;
	if ((e->flags & F_UNUSED_PF) && counted(c, e->model))
		c->st.prefetch_wasted++;
	for (v = e; v; v = v->vnext) {
		c->st.evictions++;
		if (c->cfg.on_evict)
			c->cfg.on_evict(c->cfg.evict_ctx, v->model, v->page);
	}
	apbi_cache_detach(c, e);
	apbi_cache_destroy(c, e);
}

/**
 * Makes room for bytes and ndesc descriptors, evicting policy victims.  A
 * prefetch (pf) only evicts pages used before stamp that are not unused
 * prefetches.  On success the bytes are counted in used.
 */
bool apbi_cache_reserve(apbi_cache *c, uint64_t bytes, uint64_t ndesc, bool pf, uint64_t stamp)
{
	apbi_cache_sweep(c);
	while (c->used + bytes > c->cfg.max_memory || c->ndesc + ndesc > c->pool_cap) {
		apbi_pol_node *v = c->cfg.policy->victim(c->pol);
		apbi_page *e;
		int k;
		if (!v)
			return false;
		e = (apbi_page *)((char *)v - offsetof(apbi_page, pol));
		k = pin_kill(c, e);
		if (k != KILL_DONE) {
			if (k == KILL_PINNED && !pin_mark(e, PW_PARKED)) {
				trace_ev(c, APBI_TR_KEEP, e->model, e->page, 0);
				continue;   /* its last pin went meanwhile: meet it again */
			}
			if (k == KILL_HELD)
				pw_set(e, PW_PARKED);   /* for a pin taken before the sweep */
			c->cfg.policy->remove(c->pol, v, false);
			e->flags = (uint8_t)((e->flags & ~F_INPOL) | F_PARKED);
			trace_ev(c, APBI_TR_PARK, e->model, e->page, 0);
			if (k == KILL_HELD)
				apbi_cache_wait(c, e);
			continue;
		}
		if (pf && ((e->flags & F_UNUSED_PF) || e->stamp >= stamp)) {
			pw_clear(e, PW_DEAD);
			trace_ev(c, APBI_TR_KEEP, e->model, e->page, 0);   /* victim() was asked */
			return false;
		}
		evict(c, e);
	}
	c->used += bytes;
	CACHE_CHECK(c->used <= c->cfg.max_memory);
	return true;
}

/** See cache_priv.h. */
void apbi_cache_unpin_one(apbi_cache *c, apbi_page *p)
{
	apbi_page *e = ROOT(p);
	uint32_t v = __atomic_sub_fetch(&e->pins, 1, __ATOMIC_ACQ_REL);
	CACHE_CHECK((v & PW_COUNT) != PW_COUNT);   /* no pin dropped below zero */
	if (!(v & PW_COUNT))
		apbi_cache_settle(c, e);
}

/** See cache_priv.h. */
void apbi_cache_settle(apbi_cache *c, apbi_page *e)
{
	uint32_t v = pw_load(e);
	if (v & (PW_DEAD | PW_COUNT))
		return;   /* being freed, or a pin's last unpin settles it */
	if (!(e->flags & F_INHASH)) {
		int k = pin_kill(c, e);
		if (k == KILL_DONE)
			apbi_cache_destroy(c, e);
		else if (k == KILL_HELD)
			apbi_cache_wait(c, e);
	} else if (e->flags & F_PARKED) {
		apbi_cache_unwait(c, e);
		pw_clear(e, PW_PARKED);
		e->flags = (uint8_t)((e->flags & ~F_PARKED) | F_INPOL);
		c->cfg.policy->insert(c->pol, &e->pol, APBI_POL_DEMAND);
		trace_ev(c, APBI_TR_UNPARK, e->model, e->page, 0);
	}
}

/** See cache_priv.h. */
void apbi_cache_count_use(apbi_cache *c, apbi_page *p, bool hit)
{
	apbi_page *e = ROOT(p);
	__atomic_store_n(&c->clock, c->clock + 1, __ATOMIC_RELAXED);
	count_lookup(c, p->model, p->page, hit);
	if (e->flags & F_UNUSED_PF) {
		c->st.prefetch_hits += counted(c, p->model);
		e->flags &= (uint8_t)~F_UNUSED_PF;
	}
}

/** See cache_priv.h. */
void apbi_cache_touch(apbi_cache *c, apbi_page *p, bool hit)
{
	apbi_page *e = ROOT(p);
	apbi_cache_count_use(c, p, hit);
	/* the lookups of one call within one view are one use of it (LFU: one count) */
	if ((e->flags & F_INPOL) && !(e == c->last_view && (e->flags & F_VIEW)))
		c->cfg.policy->touch(c->pol, &e->pol);
	c->last_view = e;
	e->stamp = c->clock;
}

/** A lookup that found page p usable: counters, policy, pin. */
void apbi_cache_use(apbi_cache *c, apbi_page *p, bool hit)
{
	apbi_cache_touch(c, p, hit);
	pin_add(ROOT(p), 1);
}

/* See cache_priv.h.
 * Claims up to max_n absent pages from page on as LOADING, pinned once
 * each, with budget reserved.  pages[0] must be known absent.  Returns the
 * number claimed (0 when even the first does not fit).
 */
uint32_t apbi_cache_claim_run(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                              bool pf, uint64_t stamp, apbi_page **pages)
{
	uint32_t k = 0;
	while (k < max_n) {
		uint64_t p = page + k;
		uint32_t len = apbi_cache_page_len(c, m, p);
		apbi_page *e;
		if (k > 0 && lookup(c, m, p))
			break;
		if (!apbi_cache_reserve(c, len, 1, pf, stamp))
			break;
		e = apbi_cache_desc_alloc(c);
		ASTORE(e->model, m);
		ASTORE(e->page, p);
		e->len = len;
		e->data = buf_alloc(c, e);
		if (!e->data) {
			c->used -= len;
			apbi_cache_desc_free(c, e);
			break;
		}
		ASTORE(e->state, ST_LOADING);
		__atomic_store_n(&e->pins, 1, __ATOMIC_RELEASE);
		hash_insert(c, e);
		trace_ev(c, APBI_TR_CLAIM, m, p, 0);
		pages[k++] = e;
	}
	return k;
}

/* See cache_priv.h.  Ends the load of e with result err (under the lock); a
 * prefetch (pf) enters the policy as kind. */
void apbi_cache_publish(apbi_cache *c, apbi_page *e, int err, bool pf, enum apbi_pol_kind kind,
                        uint64_t stamp)
{
	if (err) {
		trace_ev(c, APBI_TR_DROP, e->model, e->page, 0);
		if (e->flags & F_INHASH)
			hash_remove(c, e);
		buf_free(c, e);
		ASTORE(e->state, ST_FAILED);
		e->err = err;
		return;
	}
	__atomic_store_n(&e->state, ST_READY, __ATOMIC_RELEASE);
	if (!(e->flags & F_INHASH))
		return;   /* replaced by a view meanwhile: freed at last unpin */
	c->st.cached_pages++;
	OBJ(c, e->model)->st.cached_bytes += e->len;
	CACHE_CHECK(c->used <= c->cfg.max_memory && c->st.cached_pages <= c->ndesc);
	e->flags |= F_INPOL | (pf ? F_UNUSED_PF : 0);
	e->stamp = pf ? stamp : c->clock;
	e->pol.id = APBI_POL_ID(e->model, e->page);
	c->cfg.policy->insert(c->pol, &e->pol, pf ? kind : APBI_POL_DEMAND);
	if (pf) {
		c->st.prefetches += counted(c, e->model);
		trace_ev(c, APBI_TR_FILL, e->model, e->page, kind);
	}
}

/*
 * Faults in the never-touched slab slots among pages[0..k), adjacent ones
 * with one madvise: one call instead of a page fault per 4 KiB, which was
 * about a quarter of the daemon's CPU time on a cold sequential read.
 * Best effort (MADV_POPULATE_WRITE needs Linux 5.14): on failure the
 * loader's writes fault the pages in as before.  Lock not held.
 */
static void populate(apbi_page *const *pages, uint32_t k)
{
#ifdef MADV_POPULATE_WRITE
	uint8_t *start = NULL, *end = NULL;
	for (uint32_t i = 0; i <= k; i++) {
		apbi_page *e = i < k ? pages[i] : NULL;
		uint8_t *p = e && e->fresh ? e->data : NULL;
		size_t len = p ? ((size_t)e->len + 4095) & ~(size_t)4095 : 0;
		if (p && p == end) {
			end += len;
			continue;
		}
		if (start)
			madvise(start, (size_t)(end - start), MADV_POPULATE_WRITE);
		start = p;
		end = p ? p + len : NULL;
	}
#else
	(void)pages;
	(void)k;
#endif
}

/* See cache_priv.h.
 * Loads claimed pages[0..k) (from page lo on) with one loader call; the
 * lock is not held on entry or exit.  Pages [skip, skip+want) are the
 * demand: counted as misses and, when they loaded, left pinned; the others
 * enter as prefetches (stamp; policy entry kind) and are unpinned.  Returns, for want > 0,
 * the number of demand pages that loaded in a row from skip, or the error
 * of the first; for want == 0 the number of pages that loaded.
 */
int apbi_cache_load_run(apbi_cache *c, uint32_t m, uint64_t lo, uint32_t k, apbi_page **pages,
                        uint32_t skip, uint32_t want, uint64_t stamp, enum apbi_pol_kind kind)
{
	uint8_t *dst[MAX_RUN] = { 0 };
	int res[MAX_RUN] = { 0 };
	uint32_t i, ok = 0, good = 0;
	ssize_t got;
	int err = -ENOBUFS;
	for (i = 0; i < k; i++)
		dst[i] = pages[i]->data;
	void *ctx;
	uint32_t local;
	populate(pages, k);
	apbi_cache_binding(c, m, &ctx, &local);
	got = c->cfg.load(ctx, local, lo, k, dst, res);
	pthread_mutex_lock(&c->lock);
	apbi_cache_binding_done(c, m);
	if (got > 0)
		c->st.bytes_loaded += (uint64_t)got;
	for (i = 0; i < k; i++) {
		bool demand = i >= skip && i - skip < want;
		int e = got < 0 ? (int)got : res[i];
		apbi_cache_publish(c, pages[i], e, !demand, kind, demand ? 0 : stamp);
		if (demand) {
			count_lookup(c, m, lo + i, false);
			if (i == skip && e)
				err = e;
			if (!e && ok == i - skip)
				ok++;
		}
		good += !e;
	}
	if (ok)
		__atomic_store_n(&c->clock, c->clock + 1, __ATOMIC_RELAXED);
	for (i = 0; i < k; i++)
		if (i < skip || i >= skip + ok)
			apbi_cache_unpin_one(c, pages[i]);
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->lock);
	if (!want)
		return (int)good;
	return ok ? (int)ok : err;
}

/* Counts and pins the READY pages that follow first (a hit run). */
static uint32_t take_hits(apbi_cache *c, apbi_page *first, uint32_t max_n, apbi_page **pages)
{
	uint32_t n = 0;
	apbi_page *e = first;
	c->last_view = NULL;   /* one use per call */
	while (e && e->state == ST_READY) {
		apbi_cache_use(c, e, true);
		pages[n++] = e;
		if (n == max_n)
			break;
		e = lookup(c, first->model, first->page + n);
	}
	return n;
}

/* Waits for the in-flight load of e (lock held); 0 with e pinned, or its error. */
static int wait_loaded(apbi_cache *c, apbi_page *e)
{
	int err;
	pin_add(ROOT(e), 1);
	while (e->state == ST_LOADING)
		pthread_cond_wait(&c->loaded, &c->lock);
	if (e->state == ST_READY) {
		trace_ev(c, APBI_TR_WAIT, e->model, e->page, 0);
		apbi_cache_use(c, e, false);
		apbi_cache_unpin_one(c, e);
		return 0;
	}
	err = e->err;
	apbi_cache_unpin_one(c, e);
	return err;
}

/*
 * Miss at page (lock held on entry, released here): claims it, the absent
 * pages that follow up to max_n, and the absent rest of its load unit,
 * then loads them all with one loader call.
 */
static int miss_run(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n, uint64_t np,
                    apbi_page **pages, uint32_t *n)
{
	apbi_page *run[MAX_RUN];
	uint32_t al = OBJ(c, m)->align, k, skip;
	uint64_t lo = page, hi = page + (max_n < c->max_run ? max_n : c->max_run);
	int r;
	if (al > 1) {
		uint64_t a0 = page / al * al, a1 = a0 + al < np ? a0 + al : np;
		while (lo > a0 && page - lo < MAX_RUN / 2 && !lookup(c, m, lo - 1))
			lo--;
		if (hi < a1)
			hi = a1;
		if (hi - lo > MAX_RUN)
			hi = lo + MAX_RUN;
	}
	skip = (uint32_t)(page - lo);
	k = apbi_cache_claim_run(c, m, lo, (uint32_t)(hi - lo), false, 0, run);
	pthread_mutex_unlock(&c->lock);
	if (!k)
		return -ENOBUFS;
	r = apbi_cache_load_run(c, m, lo, k, run, skip, max_n, apbi_cache_now(c), APBI_POL_PREFETCH);
	if (r < 0)
		return r;
	memcpy(pages, run + skip, (size_t)r * sizeof *pages);
	*n = (uint32_t)r;
	return 0;
}

/** See cache.h. */
int apbi_cache_get_run(apbi_cache *c, uint32_t m, uint64_t page, uint32_t max_n,
                       apbi_page **pages, uint32_t *n)
{
	apbi_page *e;
	uint64_t np;
	int r;
	*n = 0;
	if (!obj_ok(c, m) || page >= (np = apbi_cache_npages(c, m)) || !max_n)
		return -EINVAL;
	if (max_n > np - page)
		max_n = (uint32_t)(np - page);
	if ((*n = apbi_cache_hit_run(c, m, page, max_n, pages)))
		return 0;
	pthread_mutex_lock(&c->lock);
	apbi_cache_drain_all(c);   /* the hits before this miss come before it */
	e = lookup(c, m, page);
	if (e && e->state == ST_READY) {
		*n = take_hits(c, e, max_n, pages);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (e) {
		r = wait_loaded(c, e);
		pthread_mutex_unlock(&c->lock);
		if (r == 0) {
			pages[0] = e;
			*n = 1;
		}
		return r;
	}
	return miss_run(c, m, page, max_n, np, pages, n);
}

/** See cache.h. */
void apbi_cache_unpin(apbi_cache *c, apbi_page *const *pages, uint32_t n)
{
	uint32_t i = 0;
	while (i < n && apbi_cache_unpin_fast(ROOT(pages[i])))
		i++;
	if (i == n)
		return;
	pthread_mutex_lock(&c->lock);
	for (; i < n; i++)
		if (!apbi_cache_unpin_fast(ROOT(pages[i])))
			apbi_cache_unpin_one(c, pages[i]);
	pthread_mutex_unlock(&c->lock);
}

/** Payload of a pinned page. */
const uint8_t *apbi_page_data(const apbi_page *p)
{
	return p->data;
}

/** Length of a page. */
uint32_t apbi_page_len(const apbi_page *p)
{
	return p->len;
}

/** See cache.h. */
uint64_t apbi_cache_now(apbi_cache *c)
{
	return __atomic_load_n(&c->clock, __ATOMIC_RELAXED);
}
/** See cache.h. */
bool apbi_cache_model_resident(apbi_cache *c, uint32_t m)
{
	uint64_t np = apbi_cache_npages(c, m);
	bool all = true;
	pthread_mutex_lock(&c->lock);
	for (uint64_t i = 0; i < np && all; i++) {
		apbi_page *e = lookup(c, m, i);
		all = e && e->state == ST_READY;
	}
	pthread_mutex_unlock(&c->lock);
	return all;
}

static void drop_root(apbi_cache *c, apbi_page *e)
{
	e = ROOT(e);
	if (e->state != ST_READY || pin_kill(c, e) != KILL_DONE)
		return;
	apbi_cache_detach(c, e);
	apbi_cache_destroy(c, e);
}

/** See cache.h. */
void apbi_cache_drop(apbi_cache *c, uint32_t m)
{
	pthread_mutex_lock(&c->lock);
	apbi_cache_drain_all(c);
	if (m == UINT32_MAX) {
		for (uint64_t b = 0; b <= c->hmask; b++) {
			apbi_page *e = c->buckets[b], *next;
			for (; e; e = next) {
				next = e->hnext;
				while (next && ROOT(next) == ROOT(e))
					next = next->hnext;   /* same view: detached with e */
				drop_root(c, e);
			}
		}
	} else {
		uint64_t np = apbi_cache_npages(c, m);
		for (uint64_t i = 0; i < np; i++) {
			apbi_page *e = lookup(c, m, i);
			if (e)
				drop_root(c, e);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * Maps the slab: nslots slots, reserved (MAP_NORESERVE) and touched only
 * as slots are first used.  Slabs of 2 MiB or more start on a 2 MiB
 * boundary and, with cfg.huge_pages, are marked MADV_HUGEPAGE, so
 * populate() faults them in
 * a huge page at a time: on a VM, a first touch of 4 KiB pages cost
 * 0.85-1.4 s per 256 MiB even after MADV_POPULATE_WRITE, against 0.17-0.34 s
 * with huge pages (docs/BENCHMARKS.md, cold reads).  Resident memory stays
 * within the slab (<= max_memory); a huge page is only ever a part of it.
 */
static int slab_map(apbi_cache *c)
{
	size_t len = (size_t)(c->nslots << c->shift), align = len >= SLAB_ALIGN ? SLAB_ALIGN : 0;
	uint8_t *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	c->slab_map = p;
	c->slab_map_len = len + align;
	c->slab = align ? (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1)) : p;
#ifdef MADV_HUGEPAGE
	if (align && c->cfg.huge_pages)
		madvise(c->slab, len, MADV_HUGEPAGE);   /* best effort */
#endif
	return 0;
}

/** See cache.h. */
uint64_t apbi_cache_max_entries(uint64_t max_memory, uint32_t page_size)
{
	return max_memory / page_size + EXTRA_DESCS;
}

static int cache_alloc(apbi_cache *c)
{
	uint64_t nb = 64;
	c->nslots = c->cfg.max_memory >> c->shift;
	c->pool_cap = apbi_cache_max_entries(c->cfg.max_memory, c->cfg.page_size);
	while (nb < c->pool_cap)
		nb <<= 1;
	c->hmask = nb - 1;
	c->buckets = calloc(nb, sizeof *c->buckets);
	c->pool = aligned_alloc(64, c->pool_cap * sizeof *c->pool);   /* lines: see apbi_page */
	if (c->pool)
		memset(c->pool, 0, c->pool_cap * sizeof *c->pool);
	c->slots = calloc(c->nslots ? c->nslots : 1, sizeof *c->slots);
	c->pol = c->cfg.policy->create(c->pool_cap);
	c->hits = aligned_alloc(64, HIT_SLOTS * sizeof *c->hits);
	if (c->hits)
		memset(c->hits, 0, HIT_SLOTS * sizeof *c->hits);
	if (!c->buckets || !c->pool || !c->slots || !c->pol || !c->hits)
		return -ENOMEM;
	if (apbi_cache_objs_init(c) < 0)
		return -ENOMEM;
	return c->nslots ? slab_map(c) : 0;
}

/** See cache.h. */
int apbi_cache_new(const apbi_cache_config *cfg, apbi_cache **out)
{
	apbi_cache *c;
	int r;
	*out = NULL;
	if (!cfg->max_memory || cfg->page_size < 512 || (cfg->page_size & (cfg->page_size - 1)) ||
	    !cfg->policy || !cfg->load || (cfg->n_models && !cfg->model_sizes) ||
	    (cfg->max_memory >> __builtin_ctz(cfg->page_size)) > UINT32_MAX)
		return -EINVAL;
	c = aligned_alloc(64, sizeof *c);   /* its lines: see cache_priv.h */
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof *c);
	c->cfg = *cfg;
	c->shift = (unsigned)__builtin_ctz(cfg->page_size);
	c->max_run = cfg->max_run && cfg->max_run < MAX_RUN ? cfg->max_run : MAX_RUN;
	pthread_mutex_init(&c->lock, NULL);
	apbi_pol_list_init(&c->waiting);
	pthread_cond_init(&c->loaded, NULL);
	r = cache_alloc(c);
	if (r) {
		apbi_cache_free(c);
		return r;
	}
	*out = c;
	return 0;
}

/** See cache.h. */
void apbi_cache_free(apbi_cache *c)
{
	if (!c)
		return;
	for (uint64_t i = 0; i < c->pool_hw; i++) {
		apbi_page *e = &c->pool[i];
		if (e->state == ST_FREE || e->state == ST_FAILED || e->owner)
			continue;
		if (e->flags & F_VIEW)
			apbi_view_unmap(e->data, OBJ(c, e->model)->size);
		else if (!(e->flags & F_SLAB))
			free(e->data);
	}
	while (c->views) {
		vref *v = c->views;
		c->views = v->next;
		free(v);
	}
	if (c->slab_map)
		munmap(c->slab_map, c->slab_map_len);
	if (c->pol)
		c->cfg.policy->destroy(c->pol);
	apbi_trace_close(c->trace);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->loaded);
	free(c->slots);
	apbi_cache_objs_free(c);
	free(c->pool);
	free(c->buckets);
	free(c->hits);
	free(c);
}
