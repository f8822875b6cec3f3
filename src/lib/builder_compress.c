/*
 * builder_compress.c - block compression for the builder: a pool of two
 * worker threads that compress runs of blocks in order-independent slots,
 * written back in block order, and the per-model choice of filter.
 *
 * Invariants kept here:
 *  - Blocks are numbered in the order fed and grouped in slots of up to
 *    `per` consecutive blocks (about 1 MiB: one hand-over per 64 KiB block
 *    cost more in thread wake-ups on a VM than the compression gained);
 *    slots are numbered too, slot k in s[k % nslots], and at most nslots
 *    are in flight ([head, tail)).  Workers take any READY slot and
 *    compress each of its blocks into its own frame, the frames back to
 *    back in the slot's out buffer; only the calling (main) thread copies
 *    input in, writes output (through the caller's write function, in
 *    block order) and records stored offsets.  Every frame depends only
 *    on its block, filter and level (codec.h), so the output is the same
 *    bytes whatever the thread timing or grouping.
 *  - Slot states change only under the mutex; a slot's buffers belong to
 *    the main thread while FREE, to one worker while BUSY, and are handed
 *    over by the READY and DONE transitions (made and seen under the mutex).
 *  - A worker's error detail is thread-local: it is copied into its slot
 *    and re-raised by the main thread when that block is written.
 *  - Memory: nslots x per x (block + its frame bound) (8 MiB at most for
 *    blocks up to 1 MiB, 4 slots of 1 MiB of blocks) plus n_blocks u64 offsets
 *    of the model being written; nothing grows with the model otherwise.
 *  - After an error the pool is reset (all in-flight slots waited for)
 *    before another model starts or the pool is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder_compress.h"
#include "internal.h"

#define NTHREADS 2
#define MAX_SLOTS 4
#define RUN_BYTES (1u << 20)            /* input bytes per slot, when blocks are smaller */
#define MAX_PER 16u                     /* blocks per slot */
#define SAMPLES 4                       /* blocks tried per model by the filter choice */
#define SAMPLE_MAX (256u << 10)         /* bytes tried per sampled block */

enum slot_state { FREE, READY, BUSY, DONE };

struct slot {
	uint8_t *in, *out;
	size_t n, out_len;                /* input bytes; frames' bytes, back to back */
	uint32_t nb, bad;                 /* blocks; on error, the one that failed */
	uint32_t lens[MAX_PER];           /* each block's frame length */
	uint64_t first;                   /* the first block's number */
	enum slot_state state;
	enum apbi_filter f;
	int rc;
	char err[256];
	uint64_t seq;
};

struct apbi_cpool {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	pthread_t th[NTHREADS];
	int nth, ids;                     /* threads started; ids handed out */
	bool stop;
	apbi_encoder *enc[NTHREADS + 1];  /* one per worker, the last for the filter choice */
	struct slot s[MAX_SLOTS];
	unsigned nslots;
	uint32_t bs, per;                 /* block size; blocks per slot */
	size_t cap;                       /* frame buffer size (one block's bound) */
	/* the model being written */
	enum apbi_filter f;
	uint64_t size, n_blocks, head, tail, stored;
	uint64_t fed;                     /* blocks completed into slots */
	uint32_t cur_nb;                  /* whole blocks in the slot being filled */
	size_t fill;                      /* bytes of its partial block so far */
	uint64_t *offsets;
	apbi_cpool_write_fn write;
	void *wctx;
};

static struct slot *next_ready(apbi_cpool *p)
{
	struct slot *best = NULL;

	for (unsigned k = 0; k < p->nslots; k++)
		if (p->s[k].state == READY && (!best || p->s[k].seq < best->seq))
			best = &p->s[k];
	return best;
}

/* Compresses the blocks of slot s, frames back to back (each fits: out has
 * room for nb frame bounds); on error records the block and the detail. */
static int encode_slot(const apbi_cpool *p, apbi_encoder *enc, struct slot *s)
{
	size_t at = 0, pos = 0;
	for (uint32_t b = 0; b < s->nb; b++) {
		size_t len = s->n - at < p->bs ? s->n - at : p->bs, out = 0;
		int rc = apbi_encode(enc, s->f, s->in + at, len, s->out + pos, p->cap, &out);
		if (rc != 0) {
			s->bad = b;
			snprintf(s->err, sizeof s->err, "%s", apb_last_error());
			return rc;
		}
		s->lens[b] = (uint32_t)out;
		pos += out;
		at += len;
	}
	s->out_len = pos;
	return 0;
}

static void *worker(void *arg)
{
	apbi_cpool *p = arg;
	int id;
	struct slot *s;

	pthread_mutex_lock(&p->mu);
	id = p->ids++;
	for (;;) {
		while (!p->stop && !(s = next_ready(p)))
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		s->state = BUSY;
		pthread_mutex_unlock(&p->mu);
		s->rc = encode_slot(p, p->enc[id], s);
		pthread_mutex_lock(&p->mu);
		s->state = DONE;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Waits until no worker holds a slot, then frees every slot. */
static void reset(apbi_cpool *p)
{
	pthread_mutex_lock(&p->mu);
	for (unsigned k = 0; k < p->nslots; k++) {
		while (p->s[k].state == BUSY)
			pthread_cond_wait(&p->done, &p->mu);
		p->s[k].state = FREE;
	}
	pthread_mutex_unlock(&p->mu);
	p->head = p->tail = p->fed = 0;
	p->fill = 0;
	p->cur_nb = 0;
}

void apbi_cpool_free(apbi_cpool *p)
{
	if (!p)
		return;
	if (p->nth) {
		reset(p);
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_broadcast(&p->work);
		pthread_mutex_unlock(&p->mu);
		for (int t = 0; t < NTHREADS; t++)
			pthread_join(p->th[t], NULL);
	}
	for (int t = 0; t <= NTHREADS; t++)
		apbi_encoder_free(p->enc[t]);
	for (unsigned k = 0; k < p->nslots; k++) {
		free(p->s[k].in);
		free(p->s[k].out);
	}
	free(p->offsets);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p);
}

static int start_threads(apbi_cpool *p)
{
	for (int t = 0; t < NTHREADS; t++) {
		int e = pthread_create(&p->th[t], NULL, worker, p);
		if (e != 0) {
			pthread_mutex_lock(&p->mu);
			p->stop = true;
			pthread_cond_broadcast(&p->work);
			pthread_mutex_unlock(&p->mu);
			for (int u = 0; u < t; u++)
				pthread_join(p->th[u], NULL);
			return apbi_set_error(-e, "starting a compression thread: %s", strerror(e));
		}
	}
	p->nth = NTHREADS;
	return 0;
}

int apbi_cpool_new(int level, uint32_t block_size, apbi_cpool **out)
{
	apbi_cpool *p = calloc(1, sizeof *p);
	int rc = 0;

	*out = NULL;
	if (!p)
		return apbi_set_error(-ENOMEM, "out of memory for the compression pool");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->bs = block_size;
	p->cap = apbi_encode_bound(block_size);
	p->nslots = block_size <= (1u << 20) ? MAX_SLOTS : NTHREADS + 1;
	p->per = block_size >= RUN_BYTES ? 1 : RUN_BYTES / block_size;
	p->per = p->per < MAX_PER ? p->per : MAX_PER;
	for (int t = 0; t <= NTHREADS && rc == 0; t++)
		rc = apbi_encoder_new(APBI_CODEC_ZSTD, level, block_size, &p->enc[t]);
	for (unsigned k = 0; k < p->nslots && rc == 0; k++) {
		if (!(p->s[k].in = malloc((size_t)p->per * block_size)) ||
		    !(p->s[k].out = malloc(p->per * p->cap)))
			rc = apbi_set_error(-ENOMEM, "out of memory for %u compression buffers of %u bytes",
			                    p->nslots, p->per * block_size);
	}
	if (rc == 0 && (rc = start_threads(p)) == 0) {
		*out = p;
		return 0;
	}
	p->nth = 0;   /* no thread to stop */
	apbi_cpool_free(p);
	return rc;
}

int apbi_cpool_begin(apbi_cpool *p, enum apbi_filter f, uint64_t size,
                     apbi_cpool_write_fn write, void *ctx)
{
	reset(p);
	free(p->offsets);
	p->offsets = NULL;
	p->f = f;
	p->size = size;
	p->n_blocks = size / p->bs + (size % p->bs != 0);
	p->stored = 0;
	p->write = write;
	p->wctx = ctx;
	if (p->n_blocks && !(p->offsets = malloc(p->n_blocks * sizeof *p->offsets)))
		return apbi_set_error(-ENOMEM, "out of memory for %llu block offsets",
		                      (unsigned long long)p->n_blocks);
	return 0;
}

/* Waits for the oldest slot in flight and writes its blocks. */
static int drain_one(apbi_cpool *p)
{
	struct slot *s = &p->s[p->head % p->nslots];
	uint64_t off = p->stored;
	int rc;

	pthread_mutex_lock(&p->mu);
	while (s->state != DONE)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	if (s->rc != 0)
		return apbi_set_error(s->rc, "block %llu: %s", (unsigned long long)(s->first + s->bad),
		                      s->err);
	for (uint32_t b = 0; b < s->nb; b++) {
		p->offsets[s->first + b] = off;
		off += s->lens[b];
	}
	if ((rc = p->write(p->wctx, s->out, s->out_len, p->stored)) != 0)
		return rc;
	p->stored += s->out_len;
	pthread_mutex_lock(&p->mu);    /* workers scan every slot's state */
	s->state = FREE;
	pthread_mutex_unlock(&p->mu);
	p->head++;
	return 0;
}

/* Hands the slot being filled (cur_nb whole blocks) to the workers. */
static void submit(apbi_cpool *p, struct slot *s)
{
	uint64_t end = p->fed * p->bs < p->size ? p->fed * p->bs : p->size;
	pthread_mutex_lock(&p->mu);
	s->nb = p->cur_nb;
	s->first = p->fed - p->cur_nb;
	s->n = (size_t)(end - s->first * p->bs);   /* the last block may be short */
	s->f = p->f;
	s->seq = p->tail++;
	s->state = READY;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	p->cur_nb = 0;
}

int apbi_cpool_feed(apbi_cpool *p, const uint8_t *data, size_t n)
{
	int rc;

	while (n) {
		if (p->fed >= p->n_blocks)
			return apbi_set_error(-EIO, "compression: more bytes than the model's %llu",
			                      (unsigned long long)p->size);
		if (p->tail - p->head == p->nslots && (rc = drain_one(p)) != 0)
			return rc;
		struct slot *s = &p->s[p->tail % p->nslots];
		uint64_t left = p->size - p->fed * p->bs;
		size_t blen = left < p->bs ? (size_t)left : p->bs;
		size_t take = blen - p->fill < n ? blen - p->fill : n;
		memcpy(s->in + (size_t)p->cur_nb * p->bs + p->fill, data, take);
		p->fill += take;
		data += take;
		n -= take;
		if (p->fill < blen)
			continue;
		p->fill = 0;
		p->fed++;
		if (++p->cur_nb == p->per || p->fed == p->n_blocks)
			submit(p, s);
	}
	return 0;
}

int apbi_cpool_end(apbi_cpool *p, uint64_t *stored_size, const uint64_t **offsets)
{
	int rc;

	if (p->fed != p->n_blocks || p->fill || p->cur_nb)
		return apbi_set_error(-EIO, "compression: %llu of %llu blocks fed",
		                      (unsigned long long)p->fed, (unsigned long long)p->n_blocks);
	while (p->head < p->tail)
		if ((rc = drain_one(p)) != 0)
			return rc;
	*stored_size = p->stored;
	*offsets = p->offsets;
	return 0;
}

/* Reads sample j of SAMPLES (evenly spread blocks) into buf; its length or -errno. */
static ssize_t read_sample(const apbi_cpool *p, int fd, const uint8_t *data, uint64_t size,
                           uint64_t blk, uint8_t *buf)
{
	uint64_t off = blk * p->bs, left = size - off;
	size_t n = left < p->bs ? (size_t)left : p->bs;
	int rc;

	n = n < SAMPLE_MAX ? n : SAMPLE_MAX;
	if (data) {
		memcpy(buf, data + off, n);
		return (ssize_t)n;
	}
	rc = apbi_pread_full(fd, buf, n, off);
	return rc < 0 ? rc : (ssize_t)n;
}

int apbi_cpool_pick(apbi_cpool *p, const char *path, const uint8_t *data, uint64_t size,
                    enum apbi_filter *out)
{
	static const enum apbi_filter cand[] = { APBI_FILTER_NONE, APBI_FILTER_BYTEGROUP4,
	                                         APBI_FILTER_BYTEGROUP2 };
	uint64_t nb = size / p->bs + (size % p->bs != 0), total[3] = { 0 }, last = UINT64_MAX;
	int fd = -1, rc = 0;

	*out = APBI_FILTER_NONE;
	if (!size)
		return 0;
	if (!data && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return apbi_set_error(-errno, "opening %s: %s", path, strerror(errno));
	for (uint64_t j = 0; j < SAMPLES && rc == 0; j++) {
		uint64_t blk = j * nb / SAMPLES;
		if (blk == last)
			continue;
		last = blk;
		ssize_t n = read_sample(p, fd, data, size, blk, p->s[0].in);
		if (n < 0) {
			rc = apbi_set_error((int)n, "reading %s to choose a filter: %s", path, strerror((int)-n));
			break;
		}
		for (int c = 0; c < 3 && rc == 0; c++) {
			size_t len = 0;
			rc = apbi_encode(p->enc[NTHREADS], cand[c], p->s[0].in, (size_t)n, p->s[0].out, p->cap, &len);
			total[c] += len;
		}
	}
	if (fd >= 0)
		close(fd);
	for (int c = 1, best = 0; c < 3; c++) {   /* strictly smaller: ties keep the earlier */
		if (total[c] < total[best])
			best = c;
		*out = cand[best];
	}
	return rc;
}
