/*
 * paged_shared.c - PagedBundles that share one page cache and its budget
 * (apb_paged_open_shared): a bundle reopened after its file was replaced
 * serves new readers while the old handle still serves the readers that
 * opened it.
 *
 * Invariants: every handle of a share uses the same cache, so the one
 * max_memory bounds them all; a model whose bytes are the same in the new
 * bundle (same checksum, size, block size and block table checksum) maps
 * to the same cache object, so its pages stay; every live object is
 * loaded through a live handle that uses it (apbi_share_leave hands the
 * objects of a closing handle to the others first), and the cache is
 * freed by the last handle.  share->lock orders opens and closes of the
 * handles of one share; reads never take it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "paged_priv.h"

struct apbi_share {
	pthread_mutex_t lock;
	apb_paged *handles;        /* every live handle, newest first */
	uint64_t generations;      /* handles ever opened on the cache */
};

/** See paged_priv.h. */
int apbi_share_new(apb_paged *pb)
{
	struct apbi_share *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->handles = pb;
	s->generations = pb->generation = 1;
	pb->share = s;
	return 0;
}

/* Hands the objects pb loads and another handle uses to that handle (share locked). */
static void hand_over(apb_paged *pb)
{
	for (apb_paged *k = pb->share->handles; k; k = k->share_next)
		if (k != pb)
			apbi_cache_rebind_from(pb->cache, pb->bl, k->bl, apbi_blocks_nobjects(k->bl),
			                       k->gid);
}

/** See paged_priv.h. */
void apbi_share_leave(apb_paged *pb)
{
	struct apbi_share *s = pb->share;
	apb_paged **pp;
	bool last;
	pthread_mutex_lock(&s->lock);
	for (pp = &s->handles; *pp != pb; pp = &(*pp)->share_next)
		;
	*pp = pb->share_next;
	last = !s->handles;
	if (!last) {
		hand_over(pb);
		apbi_cache_unbind_objects(pb->cache, pb->bl, apbi_blocks_nobjects(pb->bl), pb->gid);
	}
	pthread_mutex_unlock(&s->lock);
	pb->share = NULL;
	if (last) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		apbi_cache_free(pb->cache);
	}
	pb->cache = NULL;
}

/* True when model a of one manifest and b of another have the same bytes in the same units. */
static bool same_bytes(const apbi_model *a, const apbi_model *b)
{
	return a->has_checksum && b->has_checksum && a->checksum == b->checksum &&
	       a->size == b->size && a->block_size && a->block_size == b->block_size &&
	       a->has_block_table == b->has_block_table &&
	       (!a->has_block_table || (a->has_table_checksum && b->has_table_checksum &&
	                                a->table_checksum == b->table_checksum &&
	                                a->entry_size == b->entry_size));
}

/*
 * Fills pb->gid: the cache id of old's model of the same name and bytes
 * for the models that did not change, new ids for everything else.
 */
static int bind_objects(apb_paged *pb, apb_paged *old)
{
	uint32_t n = apbi_blocks_nobjects(pb->bl);
	apbi_cache_objects o = {
		.ctx = pb->bl, .n = n, .sizes = apbi_blocks_sizes(pb->bl),
		.units = apbi_blocks_units(pb->bl), .first_meta = (uint32_t)pb->man->n_models,
	};
	if (!(pb->gid = malloc((n ? n : 1) * sizeof *pb->gid)))
		return apbi_set_error(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		int64_t j = i < pb->man->n_models ?
		            apbi_manifest_find(old->man, pb->man->models[i].name) : -1;
		pb->gid[i] = UINT32_MAX;
		if (j >= 0 && same_bytes(&pb->man->models[i], &old->man->models[j]))
			pb->gid[i] = apbi_paged_gid(old, (uint32_t)j);
	}
	/* before the bind: from its first instant a reader of old may load a
	 * rebound model through pb->bl, whose block-table cursor needs both */
	apbi_blocks_attach(pb->bl, pb->cache, pb->gid);
	if (apbi_cache_bind_objects(pb->cache, &o, pb->gid) < 0)
		return apbi_set_error(-ENOMEM, "out of memory for the cache's object table");
	return 0;
}

/* Opens and validates path like apb_paged_open_with, with old's paging config. */
static int open_bundle(apb_paged *old, const char *path, const apb_open_options *opt,
                       apb_paged *pb)
{
	int r;
	pb->cfg = old->cfg;
	pb->shift = old->shift;
	if (!(pb->path = strdup(path)))
		return apbi_set_error(-ENOMEM, "out of memory");
	if ((r = apbi_source_open(path, opt, &pb->src)) < 0 ||
	    (r = apbi_manifest_read_source(pb->src, &pb->man)) < 0 ||
	    (r = apbi_blocks_new(pb->src, pb->man, pb->cfg.page_size, &pb->bl)) < 0)
		return r;
	return apbi_paged_check_config(&pb->cfg, pb->man);
}

/** See apbundle.h. */
int apb_paged_open_shared(apb_paged *old, const char *path, const apb_open_options *opt,
                          apb_paged **out)
{
	apb_paged *pb;
	int r;
	apbi_clear_error();
	if (!old || !path || !out || !old->share)
		return apbi_set_error(-EINVAL, "apb_paged_open_shared: bad argument");
	*out = NULL;
	if (!(pb = calloc(1, sizeof *pb)))
		return apbi_set_error(-ENOMEM, "out of memory");
	if ((r = open_bundle(old, path, opt, pb)) < 0) {
		apb_paged_close(pb);
		return r;
	}
	pb->cache = old->cache;
	pthread_mutex_lock(&old->share->lock);
	if ((r = bind_objects(pb, old)) == 0) {
		pb->share = old->share;
		pb->share_next = pb->share->handles;
		pb->share->handles = pb;
		pb->generation = ++pb->share->generations;
	}
	pthread_mutex_unlock(&old->share->lock);
	if (r == 0)
		r = apbi_paged_start_prefetch(pb);
	if (r < 0) {
		if (!pb->share)
			pb->cache = NULL;    /* not ours: nothing was bound */
		apb_paged_close(pb);
		return r;
	}
	*out = pb;
	return 0;
}

/** See apbundle.h. */
uint64_t apb_paged_generation(apb_paged *pb)
{
	return pb ? pb->generation : 0;
}
