/*
 * block_codec.c - reads of compressed models' blocks (format version 2):
 * table entries locate each block's stored bytes, one read fetches a run
 * of them, and each block is decoded (codec.c) and checked against the
 * XXH3-64 of its decoded bytes before anything uses it.
 *
 * Invariants: an entry is used only through apbi_block_locate (stored
 * range inside the model's stored bytes, never longer than the block
 * decodes to, offsets never decreasing), so a lying table costs that block
 * (APB_E_CORRUPT), never an over-read; a frame that does not decode to
 * exactly the block's length is APB_E_CORRUPT for that block; bytes are
 * decoded straight into their destination (a cache page or a load buffer)
 * and are used only once their checksum matched.  Decoding contexts come
 * from a pool of SCRATCH_N kept per bundle (each one zstd context plus one
 * block of scratch, outside the budget); a load that finds all busy makes
 * a one-off context.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block_priv.h"
#include "codec.h"
#include "internal.h"

#define BATCH 256u   /* blocks located per stored read */

typedef struct located {
	apbi_block_loc loc;
	int err;             /* 0, or the code locating it gave */
} located;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- decoding contexts ---- */

static apbi_codec_ctx *ctx_get(apbi_blocks *bl, bool *kept)
{
	apbi_codec_ctx *c = NULL;
	pthread_mutex_lock(&bl->lock);
	for (unsigned i = 0; i < SCRATCH_N && !c; i++) {
		if (bl->cbusy[i])
			continue;
		if (!bl->cctx[i] && apbi_codec_ctx_new(bl->max_coded_block, &bl->cctx[i]) < 0)
			break;
		bl->cbusy[i] = true;
		c = bl->cctx[i];
	}
	pthread_mutex_unlock(&bl->lock);
	*kept = c != NULL;
	if (!c && apbi_codec_ctx_new(bl->max_coded_block, &c) < 0)
		c = NULL;
	return c;
}

static void ctx_put(apbi_blocks *bl, apbi_codec_ctx *c, bool kept)
{
	if (!kept) {
		apbi_codec_ctx_free(c);
		return;
	}
	pthread_mutex_lock(&bl->lock);
	for (unsigned i = 0; i < SCRATCH_N; i++)
		if (bl->cctx[i] == c)
			bl->cbusy[i] = false;
	pthread_mutex_unlock(&bl->lock);
}

/** See block_priv.h. */
void apbi_codec_pool_free(apbi_blocks *bl)
{
	for (unsigned i = 0; i < SCRATCH_N; i++)
		apbi_codec_ctx_free(bl->cctx[i]);
}

/* ---- locating ---- */

/*
 * Locates blocks u.. (at most BATCH, not past u1, and stored in at most
 * SCRATCH_SIZE bytes unless the first alone is larger) into out; stops
 * after the first that cannot be located (its err set, its loc unset),
 * since the stored range of the ones after it is not known to follow.
 * Returns how many were filled, or a negative code when the table itself
 * could not be read.
 */
static int locate_batch(apbi_blocks *bl, const extent *e, cursor *cur, uint64_t u, uint64_t u1,
                        located *out)
{
	const apbi_model *mod = &bl->m->models[e->model];
	uint8_t ent[16], next[16];
	const uint8_t *p;
	int k = 0, r;
	if ((r = apbi_cursor_entry(cur, u, &p)) < 0)
		return r;
	memcpy(ent, p, 16);
	while (u + (uint64_t)k < u1 && k < (int)BATCH) {
		uint64_t b = u + (uint64_t)k;
		bool last = b + 1 >= mod->n_blocks;
		if (!last) {
			if ((r = apbi_cursor_entry(cur, b + 1, &p)) < 0)
				return r;
			memcpy(next, p, 16);
		}
		out[k].err = apbi_block_locate(mod, e->model, b, ent, last ? NULL : next, &out[k].loc);
		if (out[k].err)
			return k + 1;
		/* the batch's stored bytes fit one kept load buffer (but a block
		 * larger than one is a batch of its own) */
		if (k && out[k].loc.offset + out[k].loc.stored_len - out[0].loc.offset > SCRATCH_SIZE)
			return k;
		k++;
		memcpy(ent, next, 16);
	}
	return k;
}

/* ---- decoding a run ---- */

typedef struct dst_walk {
	const struct iovec *iov;
	int niov, i;
	size_t pos;
} dst_walk;

/* The next len bytes of the destination (segments hold whole blocks). */
static uint8_t *dst_next(dst_walk *w, size_t len)
{
	uint8_t *p;
	if (w->i < w->niov && w->pos == w->iov[w->i].iov_len) {
		w->i++;
		w->pos = 0;
	}
	if (w->i >= w->niov || w->iov[w->i].iov_len - w->pos < len)
		return NULL;
	p = (uint8_t *)w->iov[w->i].iov_base + w->pos;
	w->pos += len;
	return p;
}

/* Decodes and checks one located block into dst; 0 or the block's code. */
static int decode_one(apbi_blocks *bl, const extent *e, apbi_codec_ctx *cc, const located *l,
                      const uint8_t *stored, uint8_t *dst, apbi_commit_run *run)
{
	const apbi_model *mod = &bl->m->models[e->model];
	int r;
	if (l->err)
		return l->err;
	uint64_t t0 = now_ns();
	r = apbi_codec_decode(cc, mod->codec, mod->filter, stored, l->loc.stored_len, dst, l->loc.len);
	__atomic_add_fetch(&bl->decode_ns, now_ns() - t0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bl->decoded_bytes, l->loc.len, __ATOMIC_RELAXED);
	if (r < 0)
		return r == -EINVAL ? APB_E_CORRUPT : r;
	if (apbi_xxh3(dst, l->loc.len) != l->loc.checksum)
		return APB_E_CHECKSUM;
	apbi_commit_add(bl->src, run, e->base + l->loc.offset, stored, l->loc.stored_len);
	return 0;
}

/*
 * Reads the stored bytes of n located blocks with one read into a load
 * buffer, then decodes each into the destination.  Returns 0, a bad()
 * value that stopped, or a negative code (I/O).
 */
static int decode_batch(apbi_blocks *bl, const extent *e, uint64_t u, const located *l, int n,
                        dst_walk *w, apbi_codec_ctx *cc, unit_bad_fn bad, void *ctx,
                        uint64_t *stored)
{
	int good = l[n - 1].err ? n - 1 : n, r = 0;
	uint64_t lo = good ? l[0].loc.offset : 0;
	uint64_t hi = good ? l[good - 1].loc.offset + l[good - 1].loc.stored_len : 0;
	uint8_t *buf = NULL;
	bool kept = false;
	apbi_commit_run run = { 0 };
	if (hi > lo) {
		if (!(buf = apbi_scratch_get(bl, hi - lo, &kept)))
			return -ENOMEM;
		if ((r = apbi_source_read(bl->src, buf, (size_t)(hi - lo), e->base + lo)) < 0) {
			apbi_scratch_put(bl, buf, kept);
			return r;
		}
		*stored += hi - lo;
	}
	for (int k = 0; k < n && r == 0; k++) {
		uint64_t b = u + (uint64_t)k, left = e->size - b * e->unit;
		uint8_t *dst = dst_next(w, (size_t)(left < e->unit ? left : e->unit));
		/* An unlocated block's loc is unset: no pointer is formed from it. */
		const uint8_t *src = l[k].err || !buf ? NULL : buf + (l[k].loc.offset - lo);
		int code = !dst ? apbi_set_error(-EINVAL, "coded read: destination too small") :
		           decode_one(bl, e, cc, &l[k], src, dst, &run);
		if (code == -EINVAL)
			r = code;
		else if (code)
			r = apbi_unit_failed(bl, e, b, code, bad, ctx);
	}
	apbi_commit_flush(bl->src, &run);      /* before buf, which it points into, goes */
	apbi_scratch_put(bl, buf, kept);
	return r;
}

/** See block_priv.h. */
int apbi_read_coded(apbi_blocks *bl, const extent *e, uint64_t u0, uint64_t u1,
                    const struct iovec *iov, int niov, unit_bad_fn bad, void *ctx,
                    uint64_t *stored)
{
	located l[BATCH];
	dst_walk w = { iov, niov, 0, 0 };
	cursor cur;
	bool kept;
	apbi_codec_ctx *cc = ctx_get(bl, &kept);
	int r = 0;
	if (!cc)
		return apbi_set_error(-ENOMEM, "out of memory for a decoding context");
	*stored = 0;
	apbi_cursor_init(&cur, bl, e->sums_obj, e->entry_size);
	for (uint64_t u = u0; u < u1 && r == 0;) {
		int n = locate_batch(bl, e, &cur, u, u1, l);
		if (n < 0) {
			r = n;
			break;
		}
		/* a batch ends after a block whose entry lies; the next starts afresh */
		r = decode_batch(bl, e, u, l, n, &w, cc, bad, ctx, stored);
		u += (uint64_t)n;
	}
	apbi_cursor_done(&cur);
	ctx_put(bl, cc, kept);
	return r;
}
