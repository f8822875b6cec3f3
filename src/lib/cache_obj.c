/*
 * cache_obj.c - the cache's object table: which objects (models' bytes,
 * block tables, indexes) exist, their sizes and load units, who loads
 * them, and their per-object counters.
 *
 * Several PagedBundles can share one cache (apb_paged_open_shared): each
 * binds its objects here and gets cache ids for them.  An object whose
 * bytes are the same in two bundles keeps its id (and its pages): the
 * newer bundle rebinds it to its own loader.  Invariants: ids live in
 * chunks that never move once allocated, so a record is read without the
 * lock by whoever owns the id (size, align and meta are fixed while it is
 * live); ids below nobj were handed out; a freed id has no pages in the
 * hash (they are dropped first) and is reused only after that.  Cost
 * outside max_memory: one record (about 80 bytes) per live object plus
 * the 8 MiB of chunk pointers, reserved but untouched beyond the chunks
 * in use.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache_priv.h"

/* A record for a new id (lock held, or before the cache is shared): OBJ_NONE when out. */
static uint32_t obj_alloc(apbi_cache *c)
{
	uint32_t id = c->free_obj;
	if (id != OBJ_NONE) {
		c->free_obj = OBJ(c, id)->next_free;
		return id;
	}
	id = c->nobj;
	if (id == OBJ_NONE)
		return OBJ_NONE;
	if (!c->objs[id >> OBJ_SHIFT] &&
	    !(c->objs[id >> OBJ_SHIFT] = calloc(OBJ_CHUNK, sizeof(apbi_cobj))))
		return OBJ_NONE;
	__atomic_store_n(&c->nobj, id + 1, __ATOMIC_RELEASE);
	return id;
}

static void obj_set(apbi_cache *c, uint32_t id, void *ctx, uint32_t local, uint64_t size,
                    uint32_t align, bool meta)
{
	apbi_cobj *o = OBJ(c, id);
	memset(o, 0, sizeof *o);
	o->size = size;
	o->ctx = ctx;
	o->local = local;
	o->align = align ? align : 1;
	o->meta = meta;
	o->live = true;
	o->next_free = OBJ_NONE;
}

/** See cache_priv.h. */
int apbi_cache_objs_init(apbi_cache *c)
{
	const apbi_cache_config *cfg = &c->cfg;
	c->free_obj = OBJ_NONE;
	if (!(c->objs = calloc(OBJ_MAX_CHUNKS, sizeof *c->objs)))
		return -ENOMEM;
	for (uint32_t i = 0; i < cfg->n_models; i++) {
		if (obj_alloc(c) != i)
			return -ENOMEM;
		obj_set(c, i, cfg->load_ctx, i, cfg->model_sizes[i],
		        cfg->model_align ? cfg->model_align[i] : 1,
		        cfg->first_meta && i >= cfg->first_meta);
	}
	return 0;
}

/** See cache_priv.h. */
void apbi_cache_objs_free(apbi_cache *c)
{
	if (!c->objs)
		return;
	for (uint32_t k = 0; k < OBJ_MAX_CHUNKS && c->objs[k]; k++)
		free(c->objs[k]);
	free(c->objs);
}

/** See cache_priv.h. */
void apbi_cache_binding(apbi_cache *c, uint32_t m, void **ctx, uint32_t *local)
{
	pthread_mutex_lock(&c->lock);
	*ctx = OBJ(c, m)->ctx;
	*local = OBJ(c, m)->local;
	OBJ(c, m)->loading++;
	pthread_mutex_unlock(&c->lock);
}

/** See cache_priv.h. */
void apbi_cache_binding_done(apbi_cache *c, uint32_t m)
{
	CACHE_CHECK(OBJ(c, m)->loading > 0);
	if (--OBJ(c, m)->loading == 0)
		pthread_cond_broadcast(&c->loaded);
}

/* Waits until no loader call runs through object m's binding (lock held). */
static void wait_unbusy(apbi_cache *c, uint32_t m)
{
	while (OBJ(c, m)->loading)
		pthread_cond_wait(&c->loaded, &c->lock);
}

/* Undoes the first n entries of a bind (lock held): new ids freed. */
static void unbind(apbi_cache *c, uint32_t n, uint32_t *ids, const bool *fresh)
{
	for (uint32_t i = n; i-- > 0;)
		if (fresh[i]) {
			OBJ(c, ids[i])->live = false;
			OBJ(c, ids[i])->next_free = c->free_obj;
			c->free_obj = ids[i];
			ids[i] = OBJ_NONE;
		}
}

/* Checks that every id given to rebind is live and of the same shape. */
static int check_rebinds(apbi_cache *c, const apbi_cache_objects *o, const uint32_t *ids)
{
	for (uint32_t i = 0; i < o->n; i++) {
		if (ids[i] == OBJ_NONE)
			continue;
		if (!obj_ok(c, ids[i]) || !OBJ(c, ids[i])->live ||
		    OBJ(c, ids[i])->size != o->sizes[i] ||
		    OBJ(c, ids[i])->align != (o->units && o->units[i] ? o->units[i] : 1) ||
		    OBJ(c, ids[i])->meta != (o->first_meta && i >= o->first_meta))
			return -EINVAL;
	}
	return 0;
}

/** See cache.h. */
int apbi_cache_bind_objects(apbi_cache *c, const apbi_cache_objects *o, uint32_t *ids)
{
	bool *fresh = calloc(o->n ? o->n : 1, sizeof *fresh);
	int r = 0;
	if (!fresh)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if ((r = check_rebinds(c, o, ids)) == 0) {
		for (uint32_t i = 0; i < o->n; i++) {
			bool meta = o->first_meta && i >= o->first_meta;
			uint32_t al = o->units ? o->units[i] : 1;
			if (ids[i] != OBJ_NONE) {
				wait_unbusy(c, ids[i]);
				OBJ(c, ids[i])->ctx = o->ctx;    /* same bytes, new loader */
				OBJ(c, ids[i])->local = i;
				continue;
			}
			if ((ids[i] = obj_alloc(c)) == OBJ_NONE) {
				unbind(c, i, ids, fresh);
				r = -ENOMEM;
				break;
			}
			fresh[i] = true;
			obj_set(c, ids[i], o->ctx, i, o->sizes[i], al, meta);
		}
	}
	pthread_mutex_unlock(&c->lock);
	free(fresh);
	return r;
}

/** See cache.h. */
void apbi_cache_rebind_from(apbi_cache *c, void *from, void *to, uint32_t n, const uint32_t *ids)
{
	pthread_mutex_lock(&c->lock);
	for (uint32_t i = 0; i < n; i++) {
		apbi_cobj *o = OBJ(c, ids ? ids[i] : i);
		if (!o->live || o->ctx != from)
			continue;
		wait_unbusy(c, ids ? ids[i] : i);
		o->ctx = to;
		o->local = i;
	}
	pthread_mutex_unlock(&c->lock);
}

/** See cache.h. */
void apbi_cache_unbind_objects(apbi_cache *c, void *ctx, uint32_t n, const uint32_t *ids)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = ids ? ids[i] : i;
		bool mine;
		pthread_mutex_lock(&c->lock);
		mine = OBJ(c, id)->live && OBJ(c, id)->ctx == ctx;
		if (mine)
			wait_unbusy(c, id);
		pthread_mutex_unlock(&c->lock);
		if (!mine)
			continue;    /* another bundle loads it now */
		apbi_cache_drop(c, id);
		pthread_mutex_lock(&c->lock);
		OBJ(c, id)->live = false;
		OBJ(c, id)->next_free = c->free_obj;
		c->free_obj = id;
		pthread_mutex_unlock(&c->lock);
	}
}
