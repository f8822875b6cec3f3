/*
 * paged_stream.c - apb_paged_stream (a model read start to end, block by
 * block, verified, around the page cache) and apb_paged_bundle_info.
 *
 * Invariants: a stream hands out only bytes of blocks that matched their
 * checksums, each exactly once and in order; bad blocks are reported
 * (bad_block) and skipped, never delivered; when every block was good the
 * whole-model checksum is checked too, so a table changed together with
 * its blocks (possible only where the manifest does not bind the table)
 * is still caught.  A stream holds one buffer of at most RUN_BYTES (or one
 * block when blocks are larger), outside the cache's budget, and caches
 * nothing but the block-table pages its blocks need.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "paged_priv.h"

#define MAX_CHUNK_BLOCKS (RUN_BYTES / 512u)   /* blocks per chunk at most */

typedef struct stream {
	apb_paged *pb;
	uint32_t m;
	const apb_stream_ops *ops;
	void *ctx;
	apb_stream_result *res;
	uint64_t b0;                              /* first block of the chunk */
	uint8_t bad[MAX_CHUNK_BLOCKS / 8];        /* bad blocks of the chunk */
	XXH3_state_t *st;
	int stop;                                 /* bad_block()'s value that stopped */
} stream;

/* Block layer callback: one bad block. */
static int on_bad(void *ctx, const apb_block_error *e)
{
	stream *s = ctx;
	uint64_t k = e->block - s->b0;
	s->bad[k / 8] |= (uint8_t)(1u << (k % 8));
	s->res->bad_blocks++;
	apbi_set_block_error(e);
	s->stop = s->ops->bad_block ? s->ops->bad_block(s->ctx, e) : e->code;
	return s->stop;
}

/* Hands the good blocks of a chunk (model bytes off.. of buf) to data(), in runs. */
static int deliver(stream *s, const uint8_t *buf, uint64_t off, uint64_t len, uint64_t bs)
{
	uint64_t nb = (len + bs - 1) / bs, k = 0;
	while (k < nb) {
		uint64_t j = k, a, b;
		int r;
		if (s->bad[k / 8] & (1u << (k % 8))) {
			k++;
			continue;
		}
		while (j < nb && !(s->bad[j / 8] & (1u << (j % 8))))
			j++;
		a = k * bs;
		b = j * bs < len ? j * bs : len;
		XXH3_64bits_update(s->st, buf + a, (size_t)(b - a));
		s->res->blocks += j - k;
		s->res->bytes += b - a;
		if (s->ops->data && (r = s->ops->data(s->ctx, off + a, buf + a, (size_t)(b - a))) != 0)
			return r;
		k = j;
	}
	return 0;
}

/* The whole-model checksum, once every block was good. */
static int check_whole(stream *s)
{
	const apbi_model *mod = &s->pb->man->models[s->m];
	apb_block_error e = { APB_E_CHECKSUM, s->m, APB_WHERE_MODEL, 0, 0, mod->size };
	char want[22], got[22];
	uint64_t h = XXH3_64bits_digest(s->st);
	if (h == mod->checksum)
		return 0;
	apbi_checksum_format(mod->checksum, want);
	apbi_checksum_format(h, got);
	apbi_set_error(APB_E_CHECKSUM, "model \"%.200s\": every block matches its table but the "
	               "model does not match its checksum (manifest %s, bytes %s): the table "
	               "is not the one the manifest describes", mod->name, want, got);
	apbi_set_block_error(&e);
	return APB_E_CHECKSUM;
}

/* Streams a model that has checksums, chunk by chunk. */
static int stream_blocks(stream *s, uint8_t *buf, uint64_t chunk, uint64_t bs)
{
	uint64_t size = s->pb->man->models[s->m].size;
	int first = 0, r;
	for (uint64_t off = 0; off < size; off += chunk) {
		uint64_t len = chunk < size - off ? chunk : size - off, nb = (len + bs - 1) / bs;
		uint64_t before = s->res->bad_blocks;
		s->b0 = off / bs;
		memset(s->bad, 0, sizeof s->bad);
		r = apbi_blocks_read(s->pb->bl, s->m, s->b0, nb, buf, on_bad, s);
		if (s->stop)
			return s->stop;
		if (r && s->res->bad_blocks == before)    /* I/O, or the table itself */
			return apbi_paged_read_error(s->pb, r, s->m, off, off + len);
		if (r && !first)
			first = r;
		if ((r = deliver(s, buf, off, len, bs)) != 0)
			return r;
		if (s->ops->progress && (r = s->ops->progress(s->ctx, off + len, size)) != 0)
			return r;
	}
	return first ? first : check_whole(s);
}

/* Streams a model without checksums (legacy), unverified. */
static int stream_raw(stream *s, uint8_t *buf, uint64_t chunk)
{
	uint64_t size = s->pb->man->models[s->m].size;
	int r;
	for (uint64_t off = 0; off < size; off += chunk) {
		uint64_t len = chunk < size - off ? chunk : size - off;
		if ((r = apbi_blocks_read_raw(s->pb->bl, s->m, off, len, buf)) < 0)
			return apbi_paged_read_error(s->pb, r, s->m, off, off + len);
		s->res->bytes += len;
		if (s->ops->data && (r = s->ops->data(s->ctx, off, buf, (size_t)len)) != 0)
			return r;
		if (s->ops->progress && (r = s->ops->progress(s->ctx, off + len, size)) != 0)
			return r;
	}
	return 0;
}

/** See apbundle.h. */
int apb_paged_stream(apb_paged *pb, size_t index, const apb_stream_ops *ops, void *ctx,
                     apb_stream_result *res)
{
	apb_stream_result local;
	stream s = { .pb = pb, .m = (uint32_t)index, .ops = ops, .ctx = ctx };
	uint64_t bs, chunk, size;
	uint8_t *buf;
	int r;
	apbi_clear_error();
	if (!pb || !ops)
		return apbi_set_error(-EINVAL, "apb_paged_stream: NULL argument");
	if (index >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", index);
	s.res = res ? res : &local;
	memset(s.res, 0, sizeof *s.res);
	size = pb->man->models[index].size;
	bs = apbi_blocks_block_size(pb->bl, s.m);
	s.res->verified = bs != 0;
	chunk = !bs ? RUN_BYTES : bs >= RUN_BYTES ? bs : RUN_BYTES / bs * bs;
	if (chunk > size)
		chunk = size ? size : 1;
	if (chunk > SIZE_MAX || !(buf = malloc((size_t)chunk)) || !(s.st = XXH3_createState())) {
		free(buf);
		return apbi_set_error(-ENOMEM, "out of memory for a %llu-byte read buffer",
		                      (unsigned long long)chunk);
	}
	XXH3_64bits_reset(s.st);
	r = bs ? stream_blocks(&s, buf, chunk, bs) : stream_raw(&s, buf, chunk);
	XXH3_freeState(s.st);
	free(buf);
	return r;
}

/** See apbundle.h. */
int apb_paged_bundle_info(apb_paged *pb, apb_bundle_info *out)
{
	const apbi_manifest *m;
	if (!pb || !out)
		return apbi_set_error(-EINVAL, "apb_paged_bundle_info: NULL argument");
	m = pb->man;
	memset(out, 0, sizeof *out);
	out->path = pb->path;
	out->format_version = m->version;
	out->legacy = m->layout == APBI_LAYOUT_LEGACY;
	out->alignment = m->alignment;
	out->block_size = m->block_size;
	out->file_size = m->file_size;
	out->data_start = m->data_start;
	out->description = m->description;
	out->has_created_at = m->has_created_at;
	out->created_at = m->created_at;
	out->model_count = (size_t)m->n_models;
	out->manifest_bound = m->manifest_bound;
	out->name_clashes = (size_t)m->n_clashes;
	out->tables_bound = true;
	out->tables_indexed = true;
	for (uint64_t i = 0; i < m->n_models; i++) {
		if (!m->models[i].has_block_table)
			continue;
		out->tables_bound &= m->models[i].has_table_checksum;
		out->tables_indexed &= m->models[i].has_index;
	}
	return 0;
}

/** See paged_priv.h. */
apbi_manifest *apbi_paged_manifest(apb_paged *pb)
{
	return pb->man;
}

/** See paged_priv.h. */
void apbi_paged_take_manifest(apb_paged *pb)
{
	pb->man = NULL;
}

/** See apbundle.h. */
uint64_t apb_latency_bound_us(unsigned i)
{
	return i < APB_LATENCY_BUCKETS - 1 ? APBI_LAT_BOUNDS_US[i] : UINT64_MAX;
}

/** See apbundle.h. */
void apb_paged_source_stats(apb_paged *pb, apb_source_stats *out)
{
	apbi_source_stats s;
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	out->kind = pb ? pb->src->ops->kind : "file";
	if (!pb)
		return;
	apbi_source_get_stats(pb->src, &s);
	out->bytes_read = __atomic_load_n(&pb->src->bytes_read, __ATOMIC_RELAXED);
	out->reads = __atomic_load_n(&pb->src->reads, __ATOMIC_RELAXED);
	out->net_bytes = s.net_bytes;
	out->net_requests = s.net_requests;
	out->net_retries = s.net_retries;
	out->net_errors = s.net_errors;
	out->latency_us_sum = s.latency_us_sum;
	memcpy(out->latency, s.latency, sizeof out->latency);
	out->tier_bytes = s.tier_bytes;
	out->tier_hits = s.tier_hits;
	out->tier_misses = s.tier_misses;
	out->tier_stored = s.tier_stored;
	out->tier_commits = s.tier_commits;
	out->tier_evictions = s.tier_evictions;
	out->offline = s.offline != 0;
	apbi_blocks_load_stats(pb->bl, &out->loads, &out->load_us_sum, out->load_latency);
}
