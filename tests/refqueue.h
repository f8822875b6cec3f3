/*
 * refqueue.h - reference models of the queue-based eviction policies
 * (SIEVE, S3-FIFO, 2Q, W-TinyLFU) for check_policies.c: each queue is a
 * plain array (index 0 the oldest / least recent), every step an O(n)
 * shift, written from the papers' descriptions rather than from the
 * intrusive-list code.  Ghosts are an array of (id, live) in push order.
 * W-TinyLFU's frequencies come from its own instance of the real sketch
 * (sketch.c, checked separately), fed the same accesses.
 */
#ifndef APB_REFQUEUE_H
#define APB_REFQUEUE_H

#include <stdbool.h>
#include <string.h>

#include "sketch.h"

#define RQ_N 64
#define RQ_GHOST 4096

typedef struct rq {
	int v[RQ_N];
	int n;
} rq;

static inline int rq_pos(const rq *q, int x)
{
	for (int i = 0; i < q->n; i++)
		if (q->v[i] == x)
			return i;
	return -1;
}

static inline void rq_insert_at(rq *q, int pos, int x)
{
	memmove(q->v + pos + 1, q->v + pos, (size_t)(q->n - pos) * sizeof(int));
	q->v[pos] = x;
	q->n++;
}

static inline void rq_push(rq *q, int x)
{
	rq_insert_at(q, q->n, x);
}

static inline bool rq_del(rq *q, int x)
{
	int p = rq_pos(q, x);
	if (p < 0)
		return false;
	memmove(q->v + p, q->v + p + 1, (size_t)(q->n - p - 1) * sizeof(int));
	q->n--;
	return true;
}

typedef struct rghost {
	int id[RQ_GHOST];
	bool live[RQ_GHOST];
	int n;
} rghost;

static inline void rg_push(rghost *g, int x, int limit)
{
	if (limit > RQ_GHOST)
		limit = RQ_GHOST;
	if (limit < 1)
		limit = 1;
	while (g->n >= limit) {
		memmove(g->id, g->id + 1, (size_t)(g->n - 1) * sizeof(int));
		memmove(g->live, g->live + 1, (size_t)(g->n - 1) * sizeof(bool));
		g->n--;
	}
	for (int i = 0; i < g->n; i++)
		if (g->id[i] == x)
			g->live[i] = false;
	g->id[g->n] = x;
	g->live[g->n++] = true;
}

static inline bool rg_take(rghost *g, int x)
{
	for (int i = 0; i < g->n; i++)
		if (g->id[i] == x && g->live[i]) {
			g->live[i] = false;
			return true;
		}
	return false;
}

/* The state of every reference policy; kind selects which one runs. */
typedef struct rpol {
	int kind;           /* 0 SIEVE, 1 S3-FIFO, 2 2Q, 3 W-TinyLFU */
	int cap;            /* capacity passed to create (ghost bound) */
	rq a, b, c;         /* SIEVE: a. S3: a small, b main. 2Q: a A1in, b Am.
	                     * TinyLFU: a window, b probation, c protected */
	int flag[RQ_N];     /* SIEVE visited; S3 frequency */
	int hand;           /* SIEVE: entry under the hand, -1 none */
	rghost g;
	apbi_sketch *sk;
	uint64_t ids[RQ_N];
} rpol;

static inline int rp_total(const rpol *r)
{
	return r->a.n + r->b.n + r->c.n;
}

static inline void rp_insert(rpol *r, int x, bool pf)
{
	r->flag[x] = 0;
	switch (r->kind) {
	case 0:
		if (!pf)
			rq_push(&r->a, x);
		else if (r->hand >= 0) {
			rq_insert_at(&r->a, rq_pos(&r->a, r->hand), x);
			r->hand = x;
		} else
			rq_insert_at(&r->a, 0, x);
		break;
	case 1:
	case 2:
		if (!pf && rg_take(&r->g, x))
			rq_push(&r->b, x);
		else if (pf)
			rq_insert_at(&r->a, 0, x);
		else
			rq_push(&r->a, x);
		break;
	default:
		if (pf) {
			rq_insert_at(&r->a, 0, x);
		} else {
			apbi_sketch_add(r->sk, r->ids[x]);
			rq_push(&r->a, x);
		}
	}
}

static inline void rp_touch(rpol *r, int x)
{
	switch (r->kind) {
	case 0:
		r->flag[x] = 1;
		break;
	case 1:
		if (r->flag[x] < 3)
			r->flag[x]++;
		break;
	case 2:
		if (rq_del(&r->b, x))
			rq_push(&r->b, x);
		break;
	default:
		apbi_sketch_add(r->sk, r->ids[x]);
		if (rq_del(&r->a, x)) {
			rq_push(&r->a, x);
		} else if (rq_del(&r->c, x)) {
			rq_push(&r->c, x);
		} else {
			rq_del(&r->b, x);
			rq_push(&r->c, x);
			if (r->c.n * 10 > (r->b.n + r->c.n) * 8) {
				int d = r->c.v[0];
				rq_del(&r->c, d);
				rq_push(&r->b, d);
			}
		}
	}
}

static inline void rp_remove(rpol *r, int x, bool evicted)
{
	if (r->kind == 0 && r->hand == x) {
		int p = rq_pos(&r->a, x);
		r->hand = p + 1 < r->a.n ? r->a.v[p + 1] : -1;
	}
	if (rq_del(&r->a, x)) {
		if (evicted && r->kind == 1)
			rg_push(&r->g, x, rp_total(r) + 1 < r->cap ? rp_total(r) + 1 : r->cap);
		else if (evicted && r->kind == 2)
			rg_push(&r->g, x, rp_total(r) / 2 + 1 < r->cap ? rp_total(r) / 2 + 1 : r->cap);
		return;
	}
	if (!rq_del(&r->b, x))
		rq_del(&r->c, x);
}

static inline int rp_victim_sieve(rpol *r)
{
	int h;
	if (!r->a.n)
		return -1;
	h = r->hand >= 0 ? rq_pos(&r->a, r->hand) : 0;
	while (r->flag[r->a.v[h]]) {
		r->flag[r->a.v[h]] = 0;
		h = h + 1 < r->a.n ? h + 1 : 0;
	}
	r->hand = r->a.v[h];
	return r->hand;
}

static inline int rp_victim_s3(rpol *r)
{
	while (rp_total(r)) {
		if (r->a.n && (r->a.n * 10 >= rp_total(r) || !r->b.n)) {
			int t = r->a.v[0];
			if (!r->flag[t])
				return t;
			rq_del(&r->a, t);
			rq_push(&r->b, t);
			r->flag[t] = 0;
		} else {
			int t = r->b.v[0];
			if (!r->flag[t])
				return t;
			rq_del(&r->b, t);
			rq_push(&r->b, t);
			r->flag[t]--;
		}
	}
	return -1;
}

static inline int rp_victim_tinylfu(rpol *r)
{
	int total = rp_total(r), wmax = total / 100 ? total / 100 : 1, cand = -1, vic;
	if (!total)
		return -1;
	while (r->a.n > wmax) {
		cand = r->a.v[0];
		rq_del(&r->a, cand);
		rq_push(&r->b, cand);
	}
	if (!r->b.n && r->c.n) {
		int d = r->c.v[0];
		rq_del(&r->c, d);
		rq_push(&r->b, d);
	}
	if (!r->b.n)
		return r->a.v[0];
	vic = r->b.v[0];
	if (cand < 0 || apbi_sketch_freq(r->sk, r->ids[cand]) > apbi_sketch_freq(r->sk, r->ids[vic]))
		return vic;
	return cand;
}

static inline int rp_victim(rpol *r)
{
	switch (r->kind) {
	case 0:
		return rp_victim_sieve(r);
	case 1:
		return rp_victim_s3(r);
	case 2:
		if (r->a.n && (r->a.n * 4 > rp_total(r) || !r->b.n))
			return r->a.v[0];
		return r->b.n ? r->b.v[0] : -1;
	default:
		return rp_victim_tinylfu(r);
	}
}

#endif
