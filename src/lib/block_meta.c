/*
 * block_meta.c - the block layer's map of cache objects (models, their
 * tables and table indexes), the cursor that reads checksum entries
 * through the cache, and the ring of recent failures.
 *
 * Invariants: the object map is built once at creation and never changes;
 * it costs 8 + 4 bytes per object plus 8 per model, and objects are at most
 * 3 per model, so metadata grows with the model count only, never with a
 * model's size.  A cursor holds at most one pinned page (or one page-sized
 * buffer of its own when the cache had nothing to pin) and releases it in
 * apbi_cursor_done.  The ring keeps the RING_N most recent failures; the
 * failure counter counts every one.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "block_priv.h"
#include "internal.h"

/* Smallest power of two >= v (v >= 1), at least 512. */
static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 512;
	while (p < v && p < (1ull << 62))
		p <<= 1;
	return p;
}

uint32_t apbi_table_obj(const apbi_blocks *bl, uint32_t m)
{
	return bl->tslot[m] == APBI_NO_OBJ ? APBI_NO_OBJ : bl->n + 2 * bl->tslot[m];
}

/* Model bytes: blocks checked against the table, or one block against the checksum. */
static void data_extent(const apbi_blocks *bl, uint32_t m, extent *e)
{
	const apbi_model *mod = &bl->m->models[m];
	e->kind = OBJ_DATA;
	e->model = m;
	e->base = bl->m->data_start + mod->offset;
	e->size = mod->size;
	e->verify = mod->block_size != 0 && mod->has_checksum;
	e->unit = mod->block_size ? mod->block_size : pow2_at_least(mod->size);
	e->sums_obj = mod->has_block_table ? apbi_table_obj(bl, m) : APBI_NO_OBJ;
	e->entry_size = mod->has_block_table ? mod->entry_size : 8;
	e->sum = mod->checksum;
	e->coded = mod->codec != APBI_CODEC_NONE;
}

void apbi_extent_of(const apbi_blocks *bl, uint32_t obj, extent *e)
{
	const apbi_model *mod;
	uint32_t slot;
	memset(e, 0, sizeof *e);
	e->obj = obj;
	if (obj < bl->n) {
		data_extent(bl, obj, e);
		return;
	}
	slot = (obj - bl->n) / 2;
	e->model = bl->tmodel[slot];
	mod = &bl->m->models[e->model];
	e->verify = true;
	e->entry_size = 8;
	if ((obj - bl->n) % 2 == 0) {        /* the table, checked chunk by chunk */
		e->kind = OBJ_TABLE;
		e->base = bl->m->data_start + mod->blocks_offset;
		e->size = apbi_table_bytes(mod);
		e->unit = APBI_TABLE_CHUNK;
		e->sums_obj = obj + 1;
		return;
	}
	e->kind = OBJ_INDEX;                 /* the index, checked whole */
	e->size = apbi_index_bytes(mod);
	e->unit = pow2_at_least(e->size);
	e->sums_obj = APBI_NO_OBJ;
	e->virtual_index = !mod->has_index;
	e->base = mod->has_index ? bl->m->data_start + mod->index_offset : 0;
	e->sum = mod->index_checksum;
}

/* Fills the per-object sizes and load units (pages per verification unit). */
static void map_objects(apbi_blocks *bl)
{
	for (uint32_t o = 0; o < bl->nobj; o++) {
		extent e;
		uint64_t pages;
		apbi_extent_of(bl, o, &e);
		bl->sizes[o] = e.size;
		pages = e.verify && e.unit > bl->page_size ? e.unit >> bl->shift : 1;
		bl->units[o] = (uint32_t)(pages < 64 ? pages : 64);
	}
}

/** See block.h. */
int apbi_blocks_new(apbi_source *src, const apbi_manifest *m, uint32_t page_size,
                    apbi_blocks **out)
{
	apbi_blocks *bl = calloc(1, sizeof *bl);
	uint64_t n = m->n_models, ntab = 0;
	*out = NULL;
	for (uint64_t i = 0; i < n; i++)
		ntab += m->models[i].has_block_table;
	if (!bl)
		return apbi_set_error(-ENOMEM, "out of memory");
	if (n + 2 * ntab >= UINT32_MAX) {
		free(bl);
		return apbi_set_error(-EINVAL, "%llu models: too many for one cache",
		                      (unsigned long long)n);
	}
	bl->src = src;
	bl->m = m;
	bl->page_size = page_size;
	bl->shift = (uint32_t)__builtin_ctz(page_size);
	bl->n = (uint32_t)n;
	bl->ntab = (uint32_t)ntab;
	bl->nobj = (uint32_t)(n + 2 * ntab);
	pthread_mutex_init(&bl->lock, NULL);
	bl->tslot = malloc((n ? n : 1) * sizeof *bl->tslot);
	bl->tmodel = malloc((ntab ? ntab : 1) * sizeof *bl->tmodel);
	bl->sizes = malloc((bl->nobj ? bl->nobj : 1) * sizeof *bl->sizes);
	bl->units = malloc((bl->nobj ? bl->nobj : 1) * sizeof *bl->units);
	if (!bl->tslot || !bl->tmodel || !bl->sizes || !bl->units) {
		apbi_blocks_free(bl);
		return apbi_set_error(-ENOMEM, "out of memory for %llu models", (unsigned long long)n);
	}
	for (uint32_t i = 0, t = 0; i < n; i++) {
		bl->tslot[i] = m->models[i].has_block_table ? t : APBI_NO_OBJ;
		if (m->models[i].has_block_table)
			bl->tmodel[t++] = i;
		if (m->models[i].codec != APBI_CODEC_NONE && m->models[i].block_size > bl->max_coded_block)
			bl->max_coded_block = m->models[i].block_size;
	}
	map_objects(bl);
	*out = bl;
	return 0;
}

/** See block.h. */
void apbi_blocks_free(apbi_blocks *bl)
{
	if (!bl)
		return;
	for (unsigned i = 0; i < SCRATCH_N; i++)
		if (bl->scratch[i])
			munmap(bl->scratch[i], SCRATCH_SIZE);
	apbi_codec_pool_free(bl);
	pthread_mutex_destroy(&bl->lock);
	free(bl->tslot);
	free(bl->tmodel);
	free(bl->sizes);
	free(bl->units);
	free(bl);
}

uint32_t apbi_blocks_nobjects(const apbi_blocks *bl)
{
	return bl->nobj;
}

const uint64_t *apbi_blocks_sizes(const apbi_blocks *bl)
{
	return bl->sizes;
}

const uint32_t *apbi_blocks_units(const apbi_blocks *bl)
{
	return bl->units;
}

void apbi_blocks_attach(apbi_blocks *bl, apbi_cache *c, const uint32_t *gid)
{
	bl->cache = c;
	bl->gid = gid;
}

uint64_t apbi_blocks_block_size(const apbi_blocks *bl, uint32_t m)
{
	extent e;
	data_extent(bl, m, &e);
	return e.verify ? e.unit : 0;
}

void apbi_blocks_decode_stats(const apbi_blocks *bl, uint64_t *bytes, uint64_t *ns)
{
	*bytes = __atomic_load_n(&bl->decoded_bytes, __ATOMIC_RELAXED);
	*ns = __atomic_load_n(&bl->decode_ns, __ATOMIC_RELAXED);
}

uint64_t apbi_blocks_failures(const apbi_blocks *bl)
{
	return __atomic_load_n(&bl->failures, __ATOMIC_RELAXED);
}

/* ---- checksum cursor ---- */

void apbi_cursor_init(cursor *c, apbi_blocks *bl, uint32_t obj, uint32_t esize)
{
	memset(c, 0, sizeof *c);
	c->bl = bl;
	c->obj = bl->gid && obj < bl->nobj ? bl->gid[obj] : obj;   /* the cache's id of it */
	c->esize = esize;
}

static void cursor_release(cursor *c)
{
	if (c->pg)
		apbi_cache_unpin(c->bl->cache, &c->pg, 1);
	c->pg = NULL;
	c->have = false;
}

/* Loads page p of the cursor's object: pinned in the cache, or (nothing
 * can be pinned) read uncached into the cursor's own buffer. */
static int cursor_load(cursor *c, uint64_t p)
{
	uint32_t k = 0;
	ssize_t r = apbi_cache_get_run(c->bl->cache, c->obj, p, 1, &c->pg, &k);
	if (r == 0) {
		c->data = apbi_page_data(c->pg);
	} else if (r == -ENOBUFS) {
		c->pg = NULL;
		if (!c->own && !(c->own = malloc(c->bl->page_size)))
			return apbi_set_error(-ENOMEM, "out of memory for a block table page");
		if ((r = apbi_cache_read_uncached(c->bl->cache, c->obj, p, c->own)) < 0)
			return (int)r;
		c->data = c->own;
	} else {
		c->pg = NULL;
		return (int)r;
	}
	c->page = p;
	c->have = true;
	return 0;
}

int apbi_cursor_entry(cursor *c, uint64_t idx, const uint8_t **e)
{
	uint64_t at = idx * c->esize, p = at >> c->bl->shift;
	int r;
	if (!c->have || c->page != p) {
		cursor_release(c);
		if ((r = cursor_load(c, p)) < 0)
			return r;
	}
	*e = c->data + (at & (c->bl->page_size - 1));
	return 0;
}

void apbi_cursor_done(cursor *c)
{
	cursor_release(c);
	free(c->own);
	c->own = NULL;
}

/* ---- failures ---- */

void apbi_blocks_note_bad(apbi_blocks *bl, uint32_t m, int where, uint64_t block, int code)
{
	__atomic_add_fetch(&bl->failures, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&bl->lock);
	bl->ring[bl->ring_next] = (bad_rec){ m, where, code, block, true };
	bl->ring_next = (bl->ring_next + 1) % RING_N;
	pthread_mutex_unlock(&bl->lock);
}

/* Fills *out from r for model m (block ranges in model bytes). */
static void fill_error(const apbi_blocks *bl, const bad_rec *r, apb_block_error *out)
{
	const apbi_model *mod = &bl->m->models[r->model];
	uint64_t bs = apbi_blocks_block_size(bl, r->model);
	out->code = r->code;
	out->model = r->model;
	out->where = (apb_block_where)r->where;
	out->block = r->where == APB_WHERE_BLOCK ? r->block : 0;
	out->offset = r->where == APB_WHERE_BLOCK ? r->block * bs : 0;
	out->length = r->where == APB_WHERE_BLOCK ?
	              (mod->size - out->offset < bs ? mod->size - out->offset : bs) : mod->size;
}

/** See block.h. */
bool apbi_blocks_find_bad(apbi_blocks *bl, uint32_t m, uint64_t lo, uint64_t hi,
                          apb_block_error *out)
{
	uint64_t bs = apbi_blocks_block_size(bl, m);
	bool found = false;
	pthread_mutex_lock(&bl->lock);
	for (unsigned k = 1; k <= RING_N && !found; k++) {
		const bad_rec *r = &bl->ring[(bl->ring_next + RING_N - k) % RING_N];
		if (!r->used || r->model != m)
			continue;
		if (r->where == APB_WHERE_BLOCK && bs &&
		    (r->block * bs >= hi || r->block * bs + bs <= lo))
			continue;
		fill_error(bl, r, out);
		found = true;
	}
	pthread_mutex_unlock(&bl->lock);
	return found;
}
