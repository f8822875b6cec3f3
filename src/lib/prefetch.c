/*
 * prefetch.c - readahead, next-model prediction and hints (see prefetch.h).
 *
 * Invariants: all state is guarded by pf->lock, which is never held while
 * a worker loads pages, with one exception, so that readers hitting at
 * random do not meet on the lock: a read of the model read last that
 * neither continues nor starts its stream (the stream has no window, and
 * the read is neither at page 0 nor where the stream's last read ended,
 * or it is but the SEEK_GLANCE pages after it are all resident: nothing
 * to read ahead) only moves the stream's `next` (seek_only), without the
 * lock and without a place in `recent`; it is counted in the thread's lane
 * of `notes` (NOTE_LANES lines, summed when a prediction reads them).
 * For a model's shared stream (readers without their own, from any
 * thread) that `next` is the thread's own (seek_tl), so random readers on
 * two cores write nothing they share: a stream of the shared kind starts
 * at page 0, where the stream's last locked read left `next`, or where
 * the same thread's last read of the model ended.  So a stream's next and
 * window, last_model and notes
 * are read and written atomically (ALOAD, ASTORE) everywhere.
 *
 * Requests wait in a fixed ring of QCAP entries (no
 * allocation after creation); a full ring drops readahead (retried on the
 * next read) and refuses hints.  Per-model state is fixed-size: a readahead
 * stream for readers without their own, the note count of the last
 * prediction, and the TOPK most frequent successors counted with the
 * space-saving algorithm, so memory is O(models) whatever the access
 * pattern; a reader's own stream (apbi_ra) is the reader's memory.  A
 * queued or in-flight request of a reader's stream refers to it only until
 * apbi_prefetch_ra_done, which removes the queued ones and detaches the
 * one in flight.
 *
 * Readahead (the read window of issue 13): a stream starts when a read
 * begins at page 0 or exactly where the stream's previous read ended, and
 * a page within SEEK_GLANCE pages after it is absent, with
 * a window of about RA_INIT_BYTES; every later read within `window` pages
 * of the expected position (FUSE hands reads to several threads, so they
 * arrive slightly out of order) continues it and doubles the window; any
 * other read (a seek) ends it.  When less than half a window is left ahead
 * of the reader, readahead is queued up to one window ahead, from and to
 * load-unit (checksum block) boundaries, so no block is read in two parts,
 * in pieces of one load each, so several workers can load them at once
 * (a remote source keeps that many requests in flight).
 *
 * Bounds, so that readahead pays for itself: every window is at most the
 * cap; the cap is at most max_window (a quarter of the budget, at most
 * RA_MAX_BYTES) divided among the streams that have a window and were
 * read by one of the last RECENT reads (a reader that stopped reading
 * gives its share back), so the readahead in flight fits a quarter of the
 * budget; the cap halves
 * whenever prefetched pages were evicted unused (prefetch_wasted grew) and
 * doubles again after a cap's worth of prefetched pages were used.  A
 * readahead load that stops short (the cache would have had to evict pages
 * read after the request, or unused prefetches) halves that stream's
 * window and pulls its issued end back, so the pages it skipped are asked
 * for again instead of being left as a hole the reader fills on demand.
 *
 * Prediction: on a switch from model A to model B the transition A->B is
 * counted, and B's most frequent successors are queued (the first
 * max_memory/(prefetch_count+1) bytes of each) when B is read from its
 * start, otherwise at most once per PREDICT_GAP reads, so that readers
 * interleaving models do not flood the workers.  Predicted and hinted
 * pages enter the policy at its cold end (apbi_cache_prefetch); readahead
 * enters it as the reader's own reads would (apbi_cache_readahead).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "prefetch.h"

#define QCAP 256u
#define TOPK 4u
#define RA_INIT_BYTES (1u << 20)
#define RA_MAX_BYTES (64u << 20)
#define PREDICT_GAP 64u
#define SEEK_GLANCE 64u     /* pages seek_only looks at ahead of a read */
#define NOTE_LANES 8u       /* lines the count of reads is spread over (by thread) */
#define RECENT 16u          /* reads remembered to count the streams sharing the cap */

typedef struct request {
	uint32_t m;
	uint64_t page, n, stamp;
	apbi_ra *ra;        /* the stream whose readahead this is (NULL: prediction, hint) */
} request;

typedef struct succ {
	uint32_t m;
	uint32_t count;    /* 0: slot empty */
} succ;

struct apbi_prefetch {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	apbi_cache *c;
	apbi_prefetch_config cfg;
	apbi_ra *ra;          /* per model: readers without their own stream */
	uint64_t *predicted;  /* per model: note count + 1 when its successors were queued */
	succ *next;           /* TOPK per model, allocated on the first switch */
	uint32_t init_window, min_window, max_window, cap;   /* pages */
	apbi_ra *recent[RECENT];   /* the streams of the last RECENT reads (ring) */
	uint32_t recent_at;
	uint64_t seen_wasted, grow_from;   /* cache counters at the last adaptation */
	uint64_t seq_reads, seeks, shrinks;
	/* read by every read (seek_only), written on a switch of model only:
	 * a line of its own, away from what every locked note writes */
	int64_t last_model __attribute__((aligned(64)));
	/* demand reads seen, each counted in its thread's lane (atomic), so
	 * threads reading at random do not pass one line back and forth */
	struct {
		uint64_t n;
	} __attribute__((aligned(64))) notes[NOTE_LANES];
	request q[QCAP] __attribute__((aligned(64)));
	uint32_t head, len;
	bool stop;
	uint32_t started;     /* workers running */
	apbi_ra *inflight[APBI_PREFETCH_MAX_WORKERS];
	pthread_t thread[APBI_PREFETCH_MAX_WORKERS];
};

/* The cache's id of model m (a shared cache numbers objects its own way). */
static uint32_t gid(const apbi_prefetch *pf, uint32_t m)
{
	return pf->cfg.gid ? pf->cfg.gid[m] : m;
}

typedef struct worker_arg {
	apbi_prefetch *pf;
	uint32_t i;
} worker_arg;

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Distinct streams with a window among the last RECENT reads (lock held). */
static uint32_t live_streams(const apbi_prefetch *pf)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < RECENT; i++) {
		const apbi_ra *s = pf->recent[i];
		uint32_t j = 0;
		if (!s || !s->window)
			continue;
		while (j < i && pf->recent[j] != s)
			j++;
		n += j == i;
	}
	return n;
}

/* The bound on every window now: the cap, shared among the live streams (lock held). */
static uint32_t limit(const apbi_prefetch *pf)
{
	uint32_t live = live_streams(pf), share = pf->max_window / (live ? live : 1);
	uint32_t l = pf->cap < share ? pf->cap : share;
	return l ? l : 1;
}

/* Shrinks or grows the cap from the cache's counters (lock held). */
static void adapt(apbi_prefetch *pf, const apbi_cache_counters *k)
{
	if (k->prefetch_wasted > pf->seen_wasted) {
		pf->seen_wasted = k->prefetch_wasted;
		pf->grow_from = k->prefetch_hits;
		if (pf->cap > pf->min_window) {
			pf->cap = pf->cap / 2 > pf->min_window ? pf->cap / 2 : pf->min_window;
			pf->shrinks++;
		}
	} else if (k->prefetch_hits >= pf->grow_from + pf->cap && pf->cap < pf->max_window) {
		pf->grow_from = k->prefetch_hits;
		pf->cap = pf->cap * 2 < pf->max_window ? pf->cap * 2 : pf->max_window;
	}
}

/* Removes s's queued readahead from page `from` on (lock held). */
static void scrub(apbi_prefetch *pf, const apbi_ra *s, uint64_t from)
{
	uint32_t keep = 0;
	for (uint32_t i = 0; i < pf->len; i++) {
		request r = pf->q[(pf->head + i) % QCAP];
		if (r.ra == s && r.page + r.n > from)
			continue;
		pf->q[(pf->head + keep++) % QCAP] = r;
	}
	pf->len = keep;
}

/* A readahead load of s stopped at page `stopped` short of its end (lock held). */
static void stopped_short(apbi_prefetch *pf, apbi_ra *s, uint64_t stopped)
{
	scrub(pf, s, stopped);
	if (s->ra_end > stopped)
		s->ra_end = stopped;
	if (s->window > pf->min_window) {
		ASTORE(s->window, s->window / 2 > pf->min_window ? s->window / 2 : pf->min_window);
		pf->shrinks++;
	}
}

/* Runs request r (lock not held); returns true when it stopped short. */
static bool run_request(apbi_prefetch *pf, const request *r, uint64_t *stopped)
{
	if (!r->ra) {
		apbi_cache_prefetch(pf->c, gid(pf, r->m), r->page, r->n, r->stamp);
		return false;
	}
	*stopped = apbi_cache_readahead(pf->c, gid(pf, r->m), r->page, r->n, r->stamp);
	return *stopped < min64(r->page + r->n, apbi_cache_npages(pf->c, gid(pf, r->m)));
}

static void *worker(void *arg)
{
	worker_arg *wa = arg;
	apbi_prefetch *pf = wa->pf;
	uint32_t me = wa->i;
	free(wa);
	pthread_mutex_lock(&pf->lock);
	for (;;) {
		apbi_cache_counters k;
		uint64_t stopped = 0;
		bool short_load;
		request r;
		while (!pf->len && !pf->stop)
			pthread_cond_wait(&pf->wake, &pf->lock);
		if (pf->stop)
			break;
		r = pf->q[pf->head];
		pf->head = (pf->head + 1) % QCAP;
		pf->len--;
		pf->inflight[me] = r.ra;
		pthread_mutex_unlock(&pf->lock);
		short_load = run_request(pf, &r, &stopped);
		apbi_cache_stats(pf->c, &k);
		pthread_mutex_lock(&pf->lock);
		adapt(pf, &k);
		if (short_load && pf->inflight[me])
			stopped_short(pf, pf->inflight[me], stopped);
		pf->inflight[me] = NULL;
	}
	pthread_mutex_unlock(&pf->lock);
	return NULL;
}

static int start_locked(apbi_prefetch *pf)
{
	uint32_t want = pf->cfg.workers ? pf->cfg.workers : 1;
	if (want > APBI_PREFETCH_MAX_WORKERS)
		want = APBI_PREFETCH_MAX_WORKERS;
	while (pf->started < want) {
		worker_arg *wa = malloc(sizeof *wa);
		int r;
		if (!wa)
			return pf->started ? 0 : -ENOMEM;
		*wa = (worker_arg){ pf, pf->started };
		r = pthread_create(&pf->thread[pf->started], NULL, worker, wa);
		if (r) {
			free(wa);
			return pf->started ? 0 : -r;
		}
		pf->started++;
	}
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
static int enqueue(apbi_prefetch *pf, uint32_t m, uint64_t page, uint64_t n, apbi_ra *ra)
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
		.m = m, .page = page, .n = n, .stamp = apbi_cache_now(pf->c) + 1, .ra = ra,
	};
	pf->len++;
	pthread_cond_signal(&pf->wake);
	return 0;
}

/* page rounded up to a load-unit boundary of model m (at most np). */
static uint64_t unit_up(const apbi_prefetch *pf, uint32_t m, uint64_t page, uint64_t np)
{
	uint32_t al = pf->cfg.model_align ? pf->cfg.model_align[m] : 1;
	if (al > 1)
		page = (page + al - 1) / al * al;
	return page < np ? page : np;
}

/* Queues s's readahead [from, to) in pieces of one load (lock held). */
static void issue(apbi_prefetch *pf, apbi_ra *s, uint64_t from, uint64_t to, uint64_t np)
{
	uint64_t piece = pf->cfg.run_pages ? pf->cfg.run_pages : 1;
	/* a worker woken for pages already here costs more than the hits it serves */
	from = apbi_cache_first_absent(pf->c, gid(pf, s->m), from, to);
	while (from < to) {
		uint64_t end = unit_up(pf, s->m, from + piece, np);
		if (end > to)
			end = to;
		if (end <= from)
			end = to;
		if (enqueue(pf, s->m, from, end - from, s)) {
			s->ra_end = from;   /* queue full: try again on the next read */
			return;
		}
		from = end;
	}
}


/* Readahead for a demand read of pages [page, end) through stream s (lock held). */
static void readahead(apbi_prefetch *pf, apbi_ra *s, uint64_t page, uint64_t end)
{
	uint64_t tol = s->window > 8 ? s->window : 8, np = apbi_cache_npages(pf->c, gid(pf, s->m));
	uint64_t from, to, w, next = ALOAD(s->next);
	if (s->window && page + tol >= next && page <= next + tol) {
		ASTORE(s->window, (uint32_t)min64((uint64_t)s->window * 2, limit(pf)));
		s->seq_reads++;
		pf->seq_reads++;
	} else if (page == 0 || (page == next && next)) {
		ASTORE(s->window, 1);   /* live: counted in limit() */
		ASTORE(s->window, (uint32_t)min64(pf->init_window, limit(pf)));
		s->ra_end = end;
	} else {
		if (s->window) {
			s->seeks++;
			pf->seeks++;
		}
		ASTORE(s->window, 0);
		ASTORE(s->next, end);
		return;
	}
	if (end > next)
		ASTORE(s->next, next = end);
	if (next >= np) {
		ASTORE(s->window, 0);   /* read to its end: nothing left to read ahead */
		return;
	}
	w = min64(s->window, limit(pf));
	if (s->ra_end >= next + w / 2)
		return;
	from = unit_up(pf, s->m, s->ra_end > next ? s->ra_end : next, np);
	to = unit_up(pf, s->m, next + w, np);
	if (s->ra_end < to)
		s->ra_end = to;
	issue(pf, s, from, to, np);
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
		(void)enqueue(pf, top[i].m, 0, np < cap ? np : (cap ? cap : 1), NULL);
	}
}

/* Counts a demand read in the calling thread's lane of pf->notes (with
 * or without the lock). */
static void count_note(apbi_prefetch *pf)
{
	static uint32_t arrivals;
	static __thread uint32_t lane;   /* lane + 1; 0: not chosen yet */
	if (!lane)
		lane = __atomic_fetch_add(&arrivals, 1, __ATOMIC_RELAXED) % NOTE_LANES + 1;
	__atomic_fetch_add(&pf->notes[lane - 1].n, 1, __ATOMIC_RELAXED);
}

/* Demand reads seen so far (every lane). */
static uint64_t notes_seen(const apbi_prefetch *pf)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < NOTE_LANES; i++)
		n += __atomic_load_n(&pf->notes[i].n, __ATOMIC_RELAXED);
	return n;
}

/* Model-switch statistics and prediction for a read of model m at page (lock held). */
static void switched(apbi_prefetch *pf, uint32_t m, uint64_t page)
{
	if (!pf->next)
		pf->next = calloc((size_t)pf->cfg.n_models * TOPK, sizeof *pf->next);
	if (!pf->next)
		return;
	if (pf->last_model >= 0)
		count_transition(pf, (uint32_t)pf->last_model, m);
	/* readers interleaving models switch on every read: predict when m is
	 * read from its start, else at most once per PREDICT_GAP reads */
	uint64_t notes = notes_seen(pf);
	if (page == 0 || !pf->predicted[m] || notes + 1 - pf->predicted[m] > PREDICT_GAP) {
		pf->predicted[m] = notes + 1;
		predict(pf, m);
	}
}

/* A demand read of [page, page+n) of model m through stream s (lock held). */
static void noted(apbi_prefetch *pf, apbi_ra *s, uint32_t m, uint64_t page, uint64_t n)
{
	pf->recent[pf->recent_at++ % RECENT] = s;
	if (pf->max_window >= 2)
		readahead(pf, s, page, page + n);
	if (pf->last_model != (int64_t)m && pf->cfg.prefetch_count)
		switched(pf, m, page);
	ASTORE(pf->last_model, (int64_t)m);
	count_note(pf);
}

/*
 * The calling thread's memory of where its last read of a model through
 * the model's shared stream ended (one model at a time: the last one it
 * read), so that seek_only need not store that into the shared stream.
 */
static __thread struct {
	const apbi_prefetch *pf;
	uint32_t m;
	uint64_t next;
} seek_tl;

/* The page after the calling thread's last read of m through the shared
 * stream s, or s's next when it has none. */
static uint64_t shared_next(const apbi_prefetch *pf, const apbi_ra *s, uint32_t m)
{
	return seek_tl.pf == pf && seek_tl.m == m ? seek_tl.next : ALOAD(s->next);
}

/* The calling thread's last read of m through the shared stream ended at next. */
static void shared_moved(const apbi_prefetch *pf, uint32_t m, uint64_t next)
{
	seek_tl.pf = pf;
	seek_tl.m = m;
	seek_tl.next = next;
}

/* A read of [page, page+n) of m through s that only moves s's next
 * (see the file comment), done here without the lock: true; false when
 * the read needs noted().  shared: s is m's shared stream, whose next the
 * thread keeps to itself here (seek_tl). */
static bool seek_only(apbi_prefetch *pf, apbi_ra *s, uint32_t m, uint64_t page, uint64_t n,
                      bool shared)
{
	uint64_t next, np, ahead;
	if (ALOAD(pf->last_model) != (int64_t)m || ALOAD(s->window))
		return false;
	if (pf->max_window < 2) {
		count_note(pf);   /* no readahead: noted() would only count the read */
		return true;
	}
	next = shared ? shared_next(pf, s, m) : ALOAD(s->next);
	if (page == 0 || page == next) {
		/* it would start a stream: worth it (and the lock) only if pages
		 * ahead are absent; else the stream starts at the first read that
		 * has absent pages within SEEK_GLANCE */
		np = apbi_cache_npages(pf->c, gid(pf, m));
		ahead = min64(page + n + min64(pf->init_window, SEEK_GLANCE), np);
		if (apbi_cache_first_absent(pf->c, gid(pf, m), min64(page + n, np), ahead) < ahead) {
			if (shared && page && ALOAD(s->next) != page)
				ASTORE(s->next, page);   /* readahead() starts a stream there */
			return false;
		}
	}
	if (shared)
		shared_moved(pf, m, page + n);
	else if (next != page + n)
		ASTORE(s->next, page + n);
	count_note(pf);
	return true;
}

/** See prefetch.h. */
void apbi_prefetch_note(apbi_prefetch *pf, uint32_t m, uint64_t page, uint64_t n)
{
	if (!pf || m >= pf->cfg.n_models || !n || seek_only(pf, &pf->ra[m], m, page, n, true))
		return;
	pthread_mutex_lock(&pf->lock);
	noted(pf, &pf->ra[m], m, page, n);
	pthread_mutex_unlock(&pf->lock);
	shared_moved(pf, m, page + n);   /* as the locked read moved next */
}

/** See prefetch.h. */
void apbi_prefetch_note_ra(apbi_prefetch *pf, apbi_ra *s, uint64_t page, uint64_t n)
{
	if (!pf || !s || s->m >= pf->cfg.n_models || !n || seek_only(pf, s, s->m, page, n, false))
		return;
	pthread_mutex_lock(&pf->lock);
	noted(pf, s, s->m, page, n);
	pthread_mutex_unlock(&pf->lock);
}

/** See prefetch.h. */
void apbi_prefetch_ra_init(apbi_prefetch *pf, apbi_ra *s, uint32_t m)
{
	(void)pf;
	memset(s, 0, sizeof *s);
	s->m = m;
}

/** See prefetch.h. */
void apbi_prefetch_ra_done(apbi_prefetch *pf, apbi_ra *s)
{
	if (!pf || !s)
		return;
	pthread_mutex_lock(&pf->lock);
	scrub(pf, s, 0);
	for (uint32_t i = 0; i < APBI_PREFETCH_MAX_WORKERS; i++)
		if (pf->inflight[i] == s)
			pf->inflight[i] = NULL;
	for (uint32_t i = 0; i < RECENT; i++)
		if (pf->recent[i] == s)
			pf->recent[i] = NULL;
	pthread_mutex_unlock(&pf->lock);
}

/** See prefetch.h. */
void apbi_prefetch_ra_info(apbi_prefetch *pf, const apbi_ra *s, apbi_ra *out)
{
	if (!pf) {
		*out = *s;
		return;
	}
	pthread_mutex_lock(&pf->lock);
	*out = (apbi_ra){ .next = ALOAD(s->next), .ra_end = s->ra_end, .m = s->m,
	                  .seq_reads = s->seq_reads, .seeks = s->seeks };
	out->window = (uint32_t)min64(s->window, limit(pf));
	pthread_mutex_unlock(&pf->lock);
}

/** See prefetch.h. */
void apbi_prefetch_stats(apbi_prefetch *pf, apbi_prefetch_counters *out)
{
	memset(out, 0, sizeof *out);
	if (!pf)
		return;
	pthread_mutex_lock(&pf->lock);
	out->window_cap = (uint64_t)limit(pf) * pf->cfg.page_size;
	out->seq_reads = pf->seq_reads;
	out->seeks = pf->seeks;
	out->shrinks = pf->shrinks;
	out->streams = live_streams(pf);
	pthread_mutex_unlock(&pf->lock);
}

/** See prefetch.h. */
int apbi_prefetch_hint(apbi_prefetch *pf, uint32_t m)
{
	int r;
	if (m >= pf->cfg.n_models)
		return -ENOENT;
	pthread_mutex_lock(&pf->lock);
	r = enqueue(pf, m, 0, apbi_cache_npages(pf->c, gid(pf, m)), NULL);
	pthread_mutex_unlock(&pf->lock);
	return r;
}

/* The window bounds in pages, from the budget (see the file comment). */
static void set_bounds(apbi_prefetch *pf)
{
	uint64_t page = pf->cfg.page_size, w = min64(pf->cfg.max_memory / 4, RA_MAX_BYTES) / page;
	uint64_t init = (RA_INIT_BYTES + page - 1) / page;
	pf->max_window = (uint32_t)w;
	pf->init_window = (uint32_t)min64(init, w ? w : 1);
	pf->min_window = pf->init_window / 8 ? pf->init_window / 8 : 1;
	pf->cap = pf->max_window ? pf->max_window : 1;
}

/** See prefetch.h. */
int apbi_prefetch_new(apbi_cache *c, const apbi_prefetch_config *cfg, apbi_prefetch **out)
{
	apbi_prefetch *pf = aligned_alloc(64, sizeof *pf);   /* its lines: see the struct */
	size_t n = cfg->n_models ? cfg->n_models : 1;
	*out = NULL;
	if (!pf)
		return -ENOMEM;
	memset(pf, 0, sizeof *pf);
	pf->ra = calloc(n, sizeof *pf->ra);
	pf->predicted = calloc(n, sizeof *pf->predicted);
	if (!pf->ra || !pf->predicted) {
		free(pf->ra);
		free(pf->predicted);
		free(pf);
		return -ENOMEM;
	}
	for (uint32_t m = 0; m < cfg->n_models; m++)
		pf->ra[m].m = m;
	pf->c = c;
	pf->cfg = *cfg;
	set_bounds(pf);
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
	pthread_cond_broadcast(&pf->wake);
	pthread_mutex_unlock(&pf->lock);
	for (uint32_t i = 0; i < pf->started; i++)
		pthread_join(pf->thread[i], NULL);
	pthread_mutex_destroy(&pf->lock);
	pthread_cond_destroy(&pf->wake);
	free(pf->next);
	free(pf->predicted);
	free(pf->ra);
	free(pf);
}
