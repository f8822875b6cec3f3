/*
 * cache_view.c - whole-model views of the page cache (apbi_cache_get_model).
 *
 * A model of more than one page is served as one contiguous buffer that
 * replaces its pages: budget and descriptors for the whole model are
 * reserved first (so memory_used never overshoots), resident pages are
 * copied in (hits) and missing ones loaded straight into it (misses), then
 * the view is published: its pages go into the hash pointing into the
 * buffer, the old pages leave (freed now, or by their last unpin), and the
 * view enters the policy as one entry, evicted as a whole and counted per
 * page.  Outstanding views are found again by their data pointer.  Also
 * here, the other read around the page slots: a page larger than the
 * whole budget, loaded into the caller's buffer (apbi_cache_read_uncached).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache_priv.h"

static int vref_add(apbi_cache *c, const void *data, apbi_page *root)
{
	vref *v = malloc(sizeof *v);
	if (!v)
		return -ENOMEM;
	v->data = data;
	v->root = root;
	v->next = c->views;
	c->views = v;
	return 0;
}

/** See cache.h. */
bool apbi_cache_release(apbi_cache *c, const void *data)
{
	vref **pp, *v = NULL;
	pthread_mutex_lock(&c->lock);
	for (pp = &c->views; *pp; pp = &(*pp)->next) {
		if ((*pp)->data == data) {
			v = *pp;
			*pp = v->next;
			apbi_cache_unpin_one(c, v->root);
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	free(v);
	return v != NULL;
}

/*
 * Fills buf with model m: resident pages are copied (hits), the rest is
 * loaded straight into buf (misses).  Lock not held.
 */
static int view_fill(apbi_cache *c, uint32_t m, uint64_t np, uint8_t *buf)
{
	uint8_t *dst[MAX_RUN] = { 0 };
	int res[MAX_RUN] = { 0 };
	for (uint64_t i = 0; i < np;) {
		apbi_page *e;
		uint32_t k = 0;
		ssize_t got;
		pthread_mutex_lock(&c->lock);
		e = lookup(c, m, i);
		if (e && e->state == ST_READY) {
			apbi_cache_use(c, e, true);
			pthread_mutex_unlock(&c->lock);
			memcpy(buf + (i << c->shift), e->data, e->len);
			apbi_cache_unpin(c, &e, 1);
			i++;
			continue;
		}
		do {
			dst[k] = buf + ((i + k) << c->shift);
			res[k] = 0;
			k++;
		} while (k < MAX_RUN && i + k < np &&
		         (!(e = lookup(c, m, i + k)) || e->state != ST_READY));
		for (uint32_t j = 0; j < k; j++)
			count_lookup(c, m, i + j, false);
		void *ctx = OBJ(c, m)->ctx;
		uint32_t local = OBJ(c, m)->local;
		OBJ(c, m)->loading++;   /* see apbi_cache_binding */
		pthread_mutex_unlock(&c->lock);
		got = c->cfg.load(ctx, local, i, k, dst, res);
		pthread_mutex_lock(&c->lock);
		apbi_cache_binding_done(c, m);
		c->st.bytes_loaded += got > 0 ? (uint64_t)got : 0;
		pthread_mutex_unlock(&c->lock);
		if (got < 0)
			return (int)got;
		for (uint32_t j = 0; j < k; j++)
			if (res[j])
				return res[j];
		i += k;
	}
	return 0;
}

/* Replaces model m's pages by the view head..descs (lock held). */
static void view_publish(apbi_cache *c, uint32_t m, uint64_t np, apbi_page *head, uint8_t *buf)
{
	apbi_page *v = head;
	int k;
	c->last_view = NULL;   /* one use per call */
	for (uint64_t i = 0; i < np; i++, v = v->vnext) {
		apbi_page *old = lookup(c, m, i), *r;
		if (old) {
			r = ROOT(old);
			apbi_cache_detach(c, r);
			k = pin_kill(c, r);
			if (k == KILL_DONE)
				apbi_cache_destroy(c, r);   /* replaced: not an eviction */
			else if (k == KILL_HELD)
				apbi_cache_wait(c, r);      /* freed once let go */
		}
		ASTORE(v->model, m);
		ASTORE(v->page, (uint64_t)i);
		v->len = apbi_cache_page_len(c, m, i);
		v->data = buf + (i << c->shift);
		ASTORE(v->owner, i ? head : NULL);
		__atomic_store_n(&v->state, ST_READY, __ATOMIC_RELEASE);
		hash_insert(c, v);
	}
	head->flags |= F_VIEW | F_INPOL;
	/* pages other than the head stay DEAD: pins are the head's */
	__atomic_store_n(&head->pins, 1u | PW_VIEW, __ATOMIC_RELEASE);
	head->stamp = c->clock;
	head->pol.id = APBI_POL_ID(m, 0);
	c->st.cached_pages += np;
	OBJ(c, m)->st.cached_bytes += OBJ(c, m)->size;
	CACHE_CHECK(c->used <= c->cfg.max_memory && c->st.cached_pages <= c->ndesc);
	c->cfg.policy->insert(c->pol, &head->pol, APBI_POL_DEMAND);
}

/* Reserves size bytes and np descriptors (linked through vnext) for a view. */
static apbi_page *view_reserve(apbi_cache *c, uint32_t m, uint64_t np)
{
	apbi_page *head = NULL, **tail = &head;
	if (!apbi_cache_reserve(c, OBJ(c, m)->size, np, false, 0))
		return NULL;
	for (uint64_t i = 0; i < np; i++) {
		*tail = apbi_cache_desc_alloc(c);
		ASTORE((*tail)->state, ST_LOADING);
		tail = &(*tail)->vnext;
	}
	return head;
}

static void view_unreserve(apbi_cache *c, uint32_t m, apbi_page *head)
{
	apbi_page *nv;
	c->used -= OBJ(c, m)->size;
	for (; head; head = nv) {
		nv = head->vnext;
		apbi_cache_desc_free(c, head);
	}
}

/* A model already held as a view: count np hits, pin once (lock held). */
static const uint8_t *view_hit(apbi_cache *c, apbi_page *head, uint64_t np)
{
	apbi_page *v = head;
	c->last_view = NULL;   /* one use per call */
	for (uint64_t i = 0; i < np; i++, v = v->vnext)
		apbi_cache_use(c, v, true);
	if (np > 1)
		__atomic_fetch_sub(&head->pins, (uint32_t)(np - 1), __ATOMIC_ACQ_REL);
	return head->data;
}

/** See cache.h. */
int apbi_cache_get_model(apbi_cache *c, uint32_t m, const uint8_t **data)
{
	uint64_t np = apbi_cache_npages(c, m), size = OBJ(c, m)->size;
	apbi_page *e, *head;
	uint8_t *buf;
	uint32_t n;
	int r;
	if (size > c->cfg.max_memory)
		return -EFBIG;
	if (np <= 1) {
		*data = (const uint8_t *)"";
		if (!np)
			return 0;
		r = apbi_cache_get_run(c, m, 0, 1, &e, &n);
		if (r)
			return r;
		*data = e->data;
		pthread_mutex_lock(&c->lock);
		r = vref_add(c, e->data, e);
		if (r)
			apbi_cache_unpin_one(c, e);
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	pthread_mutex_lock(&c->lock);
	e = lookup(c, m, 0);
	if (e && (e->flags & F_VIEW) && e->state == ST_READY) {
		*data = view_hit(c, e, np);
		r = vref_add(c, e->data, e);
		if (r)
			apbi_cache_unpin_one(c, e);
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	head = view_reserve(c, m, np);
	pthread_mutex_unlock(&c->lock);
	if (!head)
		return -ENOBUFS;
	buf = apbi_view_alloc(size);
	r = buf ? view_fill(c, m, np, buf) : -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if (!r && !(r = vref_add(c, buf, head))) {
		view_publish(c, m, np, head, buf);
		*data = buf;
	} else {
		view_unreserve(c, m, head);
	}
	pthread_mutex_unlock(&c->lock);
	if (r)
		apbi_view_unmap(buf, size);
	return r;
}

/** See cache.h. */
ssize_t apbi_cache_read_uncached(apbi_cache *c, uint32_t m, uint64_t page, uint8_t *buf)
{
	uint8_t *dst[1] = { buf };
	int res[1] = { 0 };
	void *ctx;
	uint32_t local;
	ssize_t got;
	apbi_cache_binding(c, m, &ctx, &local);
	got = c->cfg.load(ctx, local, page, 1, dst, res);
	pthread_mutex_lock(&c->lock);
	apbi_cache_binding_done(c, m);
	count_lookup(c, m, page, false);
	if (got > 0)
		c->st.bytes_loaded += (uint64_t)got;
	pthread_mutex_unlock(&c->lock);
	if (got < 0)
		return got;
	if (res[0])
		return res[0];
	return apbi_cache_page_len(c, m, page);
}
