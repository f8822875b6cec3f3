/*
 * prefetch.c - readahead, next-model prediction and hints (see prefetch.h).
 *
 * Invariants: all state is guarded by pf->lock, which is never held while
 * the worker loads pages.  Requests wait in a fixed ring of QCAP entries
 * (no allocation after creation); a full ring drops readahead and refuses
 * hints.  Per-model state is fixed-size: a readahead stream (expected next
 * page, window, how far readahead has been issued) and the TOPK most
 * frequent successors counted with the space-saving algorithm, so memory
 * is O(models) whatever the access pattern.
 *
 * Readahead: a stream starts when a read begins at page 0 or exactly where
 * the previous read of the model ended; later reads within `window` pages
 * of the expected position (FUSE hands reads to several threads, so they
 * arrive slightly out of order) keep it going and double the window, up to
 * a quarter of the budget.  When less than half a window is left ahead of
 * the reader, the next window is queued.  A read elsewhere ends the stream.
 *
 * Prediction: on a switch from model A to model B the transition A->B is
 * counted, and B's most frequent successors are queued (the first
 * max_memory/(prefetch_count+1) bytes of each) when B is read from its
 * start, otherwise at most once per PREDICT_GAP reads, so that readers
 * interleaving models do not flood the worker.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "prefetch.h"

#define QCAP 64u
#define TOPK 4u
#define RA_INIT 4u
#define RA_MAX 1024u
#define PREDICT_GAP 64u

typedef struct request {
	uint32_t m;
	uint64_t page, n, stamp;
} request;

typedef struct stream {
	uint64_t next;     /* page after the furthest read so far */
	uint64_t ra_end;   /* readahead issued up to here */
	uint32_t window;   /* 0: no stream */
	uint64_t predicted; /* note count + 1 when m's successors were last queued */
} stream;

typedef struct succ {
	uint32_t m;
	uint32_t count;    /* 0: slot empty */
} succ;

struct apbi_prefetch {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	apbi_cache *c;
	apbi_prefetch_config cfg;
	stream *ra;
	succ *next;        /* TOPK per model, allocated on the first switch */
	uint32_t max_window;
	int64_t last_model;
	uint64_t notes;    /* demand reads seen */
	request q[QCAP];
	uint32_t head, len;
	bool started, stop, busy;
	pthread_t thread;
};

/* The cache's id of model m (a shared cache numbers objects its own way). */
static uint32_t gid(const apbi_prefetch *pf, uint32_t m)
{
	return pf->cfg.gid ? pf->cfg.gid[m] : m;
}

static void *worker(void *arg)
{
	apbi_prefetch *pf = arg;
	pthread_mutex_lock(&pf->lock);
	for (;;) {
		request r;
		while (!pf->len && !pf->stop)
			pthread_cond_wait(&pf->wake, &pf->lock);
		if (pf->stop)
			break;
		r = pf->q[pf->head];
		pf->head = (pf->head + 1) % QCAP;
		pf->len--;
		pf->busy = true;
		pthread_mutex_unlock(&pf->lock);
		apbi_cache_prefetch(pf->c, gid(pf, r.m), r.page, r.n, r.stamp);
		pthread_mutex_lock(&pf->lock);
		pf->busy = false;
	}
	pthread_mutex_unlock(&pf->lock);
	return NULL;
}

static int start_locked(apbi_prefetch *pf)
{
	int r;
	if (pf->started)
		return 0;
	r = pthread_create(&pf->thread, NULL, worker, pf);
	if (r)
		return -r;
	pf->started = true;
	return 0;
}

/** See prefetch.h. */
int apbi_prefetch_start(apbi_prefetch *pf)
{
	int r;
	pthread_mutex_lock(&pf->lock);
	r = start_locked(pf);
	pthread_mutex_unlock(&pf->lock);
	return r;
}

/* Queues a request (lock held); skips duplicates.  -EAGAIN when full. */
static int enqueue(apbi_prefetch *pf, uint32_t m, uint64_t page, uint64_t n)
{
	int r;
	if (!n)
		return 0;
	for (uint32_t i = 0; i < pf->len; i++) {
		const request *q = &pf->q[(pf->head + i) % QCAP];
		if (q->m == m && q->page == page && q->n >= n)
			return 0;
	}
	if (pf->len == QCAP)
		return -EAGAIN;
	if ((r = start_locked(pf)))
		return r;
	pf->q[(pf->head + pf->len) % QCAP] = (request){
		.m = m, .page = page, .n = n, .stamp = apbi_cache_now(pf->c) + 1,
	};
	pf->len++;
	pthread_cond_signal(&pf->wake);
	return 0;
}

/* Readahead for a demand read of [page, end) of model m (lock held). */
static void readahead(apbi_prefetch *pf, uint32_t m, uint64_t page, uint64_t end)
{
	stream *s = &pf->ra[m];
	uint64_t tol = s->window > 8 ? s->window : 8, np, from;
	if (s->window && page + tol >= s->next && page <= s->next + tol) {
		if (s->window < pf->max_window)
			s->window = s->window * 2 < pf->max_window ? s->window * 2 : pf->max_window;
	} else if (page == 0 || (page == s->next && s->next)) {
		s->window = RA_INIT < pf->max_window ? RA_INIT : pf->max_window;
		s->ra_end = end;
	} else {
		s->window = 0;
		s->next = end;
		return;
	}
	if (end > s->next)
		s->next = end;
	if (s->ra_end >= s->next + s->window / 2)
		return;
	np = apbi_cache_npages(pf->c, gid(pf, m));
	from = s->ra_end > s->next ? s->ra_end : s->next;
	s->ra_end = s->next + s->window < np ? s->next + s->window : np;
	if (from < s->ra_end && enqueue(pf, m, from, s->ra_end - from))
		s->ra_end = from;   /* queue full: try again on the next read */
}

/* Space-saving count of the transition from -> to (lock held). */
static void count_transition(apbi_prefetch *pf, uint32_t from, uint32_t to)
{
	succ *t = &pf->next[(uint64_t)from * TOPK], *min = t;
	for (uint32_t i = 0; i < TOPK; i++) {
		if (t[i].count && t[i].m == to) {
			t[i].count++;
			return;
		}
		if (t[i].count < min->count)
			min = &t[i];
	}
	min->m = to;
	min->count++;
}

/* Queues the most frequent successors of m (lock held). */
static void predict(apbi_prefetch *pf, uint32_t m)
{
	succ top[TOPK];
	uint32_t n = pf->cfg.prefetch_count < TOPK ? pf->cfg.prefetch_count : TOPK;
	uint64_t cap = pf->cfg.max_memory / (n + 1) / pf->cfg.page_size;
	for (uint32_t i = 0; i < TOPK; i++)
		top[i] = pf->next[(uint64_t)m * TOPK + i];
	for (uint32_t i = 0; i < n; i++) {
		uint32_t best = i;
		for (uint32_t j = i + 1; j < TOPK; j++)
			if (top[j].count > top[best].count)
				best = j;
		succ tmp = top[i];
		top[i] = top[best];
		top[best] = tmp;
		if (!top[i].count)
			break;
		uint64_t np = apbi_cache_npages(pf->c, gid(pf, top[i].m));
		(void)enqueue(pf, top[i].m, 0, np < cap ? np : (cap ? cap : 1));
	}
}

/** See prefetch.h. */
void apbi_prefetch_note(apbi_prefetch *pf, uint32_t m, uint64_t page, uint64_t n)
{
	if (!pf || m >= pf->cfg.n_models || !n)
		return;
	pthread_mutex_lock(&pf->lock);
	if (pf->max_window >= 2)
		readahead(pf, m, page, page + n);
	if (pf->last_model != (int64_t)m && pf->cfg.prefetch_count) {
		if (!pf->next)
			pf->next = calloc((size_t)pf->cfg.n_models * TOPK, sizeof *pf->next);
		if (pf->next) {
			if (pf->last_model >= 0)
				count_transition(pf, (uint32_t)pf->last_model, m);
			/* readers interleaving models switch on every read: predict
			 * when m is read from its start, else at most once per
			 * PREDICT_GAP reads */
			if (page == 0 || !pf->ra[m].predicted ||
			    pf->notes + 1 - pf->ra[m].predicted > PREDICT_GAP) {
				pf->ra[m].predicted = pf->notes + 1;
				predict(pf, m);
			}
		}
	}
	pf->last_model = m;
	pf->notes++;
	pthread_mutex_unlock(&pf->lock);
}

/** See prefetch.h. */
int apbi_prefetch_hint(apbi_prefetch *pf, uint32_t m)
{
	int r;
	if (m >= pf->cfg.n_models)
		return -ENOENT;
	pthread_mutex_lock(&pf->lock);
	r = enqueue(pf, m, 0, apbi_cache_npages(pf->c, gid(pf, m)));
	pthread_mutex_unlock(&pf->lock);
	return r;
}

/** See prefetch.h. */
int apbi_prefetch_new(apbi_cache *c, const apbi_prefetch_config *cfg, apbi_prefetch **out)
{
	apbi_prefetch *pf = calloc(1, sizeof *pf);
	uint64_t w = cfg->max_memory / 4 / cfg->page_size;
	*out = NULL;
	if (!pf)
		return -ENOMEM;
	pf->ra = calloc(cfg->n_models ? cfg->n_models : 1, sizeof *pf->ra);
	if (!pf->ra) {
		free(pf);
		return -ENOMEM;
	}
	pf->c = c;
	pf->cfg = *cfg;
	pf->max_window = (uint32_t)(w < RA_MAX ? w : RA_MAX);
	pf->last_model = -1;
	pthread_mutex_init(&pf->lock, NULL);
	pthread_cond_init(&pf->wake, NULL);
	*out = pf;
	return 0;
}

/** See prefetch.h. */
void apbi_prefetch_free(apbi_prefetch *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->lock);
	pf->stop = true;
	pthread_cond_signal(&pf->wake);
	pthread_mutex_unlock(&pf->lock);
	if (pf->started)
		pthread_join(pf->thread, NULL);
	pthread_mutex_destroy(&pf->lock);
	pthread_cond_destroy(&pf->wake);
	free(pf->next);
	free(pf->ra);
	free(pf);
}
