/*
 * simulate.c - replays of a parsed trace (sim_trace.c) through the real
 * eviction policies and through Belady's optimal offline policy
 * (apb_simulate_policy, apb_simulate_belady).
 *
 * Accounting is the live cache's (cache.c): a byte budget where a model's
 * short last page counts its length, at most apbi_cache_max_entries()
 * entries, eviction before the new page enters the policy, a page larger
 * than the whole budget read without caching (a miss).  A recorded trace
 * also says what the cache did between lookups (its "#@ " records): pages
 * claimed for a load take budget before they enter the policy, metadata
 * pages (block tables) take budget and policy places, prefetched pages
 * enter unasked, pinned victims are parked; a policy replays those too,
 * so its ratio is the live one.  A plain trace (lookups only) replays each
 * miss as evict-then-insert.  Belady replays the counted lookups only
 * (the bound of what any policy could do with the whole budget).
 *
 * Memory: 48 bytes per distinct page (policy node, length, state), plus for
 * Belady 8 bytes per lookup (its page, its next use) and a heap of up to
 * one 16-byte entry per lookup.  Nothing here is inside any cache budget: this is an
 * offline tool.
 */
#include <errno.h>
#include <stdlib.h>

#include "cache.h"
#include "internal.h"
#include "policy.h"
#include "sim.h"

typedef struct sim {
	const apb_sim_trace *t;
	uint64_t max_memory, used, entries, max_entries;
	uint32_t page_size;
	uint32_t *len;         /* by id: bytes the page counts */
	uint8_t *st;           /* by id: enum page_state */
	uint64_t prev;         /* the event before this one: id << 8 | ev; none: UINT64_MAX */
} sim;

/* A page's state in a replay; CLAIMED and PARKED take budget outside the policy. */
enum page_state { P_OUT = 0, P_IN, P_CLAIMED, P_PARKED };

/* Checks the arguments and fills the page lengths (s->len). */
static int sim_init(sim *s, const apb_sim_trace *t, uint64_t max_memory, uint32_t page_size)
{
	uint32_t ps = page_size ? page_size : t->page_size ? t->page_size : APB_DEFAULT_PAGE_SIZE;
	*s = (sim){ .t = t, .max_memory = max_memory, .page_size = ps, .prev = UINT64_MAX };
	if (!max_memory || ps < 512 || (ps & (ps - 1)) || (t->page_size && ps != t->page_size))
		return apbi_set_error(-EINVAL, "simulate: bad budget or page size %u (trace: %u; "
		                      "replaying at another page size is not supported)",
		                      ps, t->page_size);
	s->max_entries = apbi_cache_max_entries(max_memory, ps);
	s->len = malloc(((size_t)t->n_ids + 1) * sizeof *s->len);
	s->st = calloc((size_t)t->n_ids + 1, sizeof *s->st);
	if (!s->len || !s->st)
		return apbi_set_error(-ENOMEM, "simulate: out of memory");
	for (uint32_t id = 0; id < t->n_ids; id++) {
		uint64_t size = t->models[sim_model_of(t, id)].size, off = sim_page_of(t, id) * ps;
		if (size == SIM_SIZE_UNKNOWN) {
			s->len[id] = ps;
		} else if (off >= size) {
			return apbi_set_error(-EINVAL, "simulate: page %llu of model \"%.200s\" is beyond "
			                      "its end at page size %u", (unsigned long long)sim_page_of(t, id),
			                      t->models[sim_model_of(t, id)].name, ps);
		} else {
			s->len[id] = size - off < ps ? (uint32_t)(size - off) : ps;
		}
	}
	return 0;
}

static void sim_fini(sim *s)
{
	free(s->len);
	free(s->st);
}

static void sim_result(const sim *s, uint64_t hits, apb_sim_result *out)
{
	out->accesses = s->t->n_acc;
	out->hits = hits;
	out->capacity_pages = s->max_memory / s->page_size;
}

/* Evicts resident page vid (the policy's victim). */
static void evict(sim *s, const apbi_policy_ops *ops, void *pol, apbi_pol_node *nodes, uint32_t vid)
{
	ops->remove(pol, &nodes[vid], true);
	s->st[vid] = P_OUT;
	s->used -= s->len[vid];
	s->entries--;
}

/* Room for id under the budget and the entry bound, evicting victims. */
static bool policy_reserve(sim *s, const apbi_policy_ops *ops, void *pol, apbi_pol_node *nodes,
                           uint32_t id)
{
	if (s->len[id] > s->max_memory)
		return false;
	while (s->used + s->len[id] > s->max_memory || s->entries + 1 > s->max_entries) {
		apbi_pol_node *v = ops->victim(pol);
		if (!v)
			return false;
		evict(s, ops, pol, nodes, (uint32_t)(v - nodes));
	}
	return true;
}

/*
 * A reserve that met page id as a victim and did not evict it (kept: a
 * prefetch's claim stops there; parked: pinned): asks for victims and
 * evicts them until id comes up, as the live loop did before it recorded
 * id.  Returns false when id is not a resident policy entry.
 */
static bool victims_until(sim *s, const apbi_policy_ops *ops, void *pol, apbi_pol_node *nodes,
                          uint32_t id)
{
	apbi_pol_node *v;
	if (s->st[id] != P_IN)
		return false;
	while ((v = ops->victim(pol)) != NULL && v != &nodes[id])
		evict(s, ops, pol, nodes, (uint32_t)(v - nodes));
	return v != NULL;
}

/* Takes budget for id (evicting) without entering the policy. */
static bool claim(sim *s, const apbi_policy_ops *ops, void *pol, apbi_pol_node *nodes, uint32_t id)
{
	if (!policy_reserve(s, ops, pol, nodes, id))
		return false;
	s->st[id] = P_CLAIMED;
	s->used += s->len[id];
	s->entries++;
	return true;
}

/* A claimed page enters the policy as kind. */
static void enter(sim *s, const apbi_policy_ops *ops, void *pol, apbi_pol_node *nodes,
                  uint32_t id, enum apbi_pol_kind kind)
{
	s->st[id] = P_IN;
	/* the id the live cache gives it (W-TinyLFU's sketch hashes it) */
	nodes[id].id = APBI_POL_ID(s->t->models[sim_model_of(s->t, id)].obj, sim_page_of(s->t, id));
	ops->insert(pol, &nodes[id], kind);
}

/* A lookup of id as the live cache counts it; returns 1 for a hit. */
static int lookup(sim *s, const apbi_policy_ops *ops, void *pol, apbi_pol_node *nodes, uint32_t id)
{
	bool waited = s->prev == ((uint64_t)id << 8 | APBI_TR_WAIT);   /* for a load: a miss */
	if (s->prev == ((uint64_t)id << 8 | APBI_TR_DROP))
		return 0;   /* the failed load's own miss */
	switch (s->st[id]) {
	case P_IN:
		ops->touch(pol, &nodes[id]);
		return !waited;
	case P_PARKED:
		return !waited;   /* resident, out of the policy until unparked */
	case P_CLAIMED:
		enter(s, ops, pol, nodes, id, APBI_POL_DEMAND);   /* the load that claimed it */
		return 0;
	default:
		if (claim(s, ops, pol, nodes, id))
			enter(s, ops, pol, nodes, id, APBI_POL_DEMAND);
		return 0;
	}
}

/* Replays event e; returns 1 for a counted hit.  Records that do not fit
 * the replay's state (it cannot diverge from a consistent recording) are
 * skipped. */
static int replay_event(sim *s, const apbi_policy_ops *ops, void *pol, apbi_pol_node *nodes,
                        const struct sim_event *e)
{
	uint32_t id = e->id;
	switch (e->ev) {
	case APBI_TR_LOOKUP:
		return lookup(s, ops, pol, nodes, id);
	case APBI_TR_META:
		lookup(s, ops, pol, nodes, id);
		return 0;
	case APBI_TR_CLAIM:
		if (s->st[id] == P_OUT)
			claim(s, ops, pol, nodes, id);
		return 0;
	case APBI_TR_FILL:
		if (s->st[id] == P_CLAIMED)
			enter(s, ops, pol, nodes, id, (enum apbi_pol_kind)e->kind);
		return 0;
	case APBI_TR_DROP:
		if (s->st[id] == P_CLAIMED) {
			s->st[id] = P_OUT;
			s->used -= s->len[id];
			s->entries--;
		}
		return 0;
	case APBI_TR_WAIT:
		return 0;   /* read by the lookup that follows */
	case APBI_TR_KEEP:
		victims_until(s, ops, pol, nodes, id);
		return 0;
	case APBI_TR_PARK:
		if (victims_until(s, ops, pol, nodes, id)) {
			ops->remove(pol, &nodes[id], false);
			s->st[id] = P_PARKED;
		}
		return 0;
	case APBI_TR_UNPARK:
		if (s->st[id] == P_PARKED)
			enter(s, ops, pol, nodes, id, APBI_POL_DEMAND);
		return 0;
	}
	return 0;
}

/** See apbundle.h. */
int apb_simulate_policy(const apb_sim_trace *t, apb_eviction e, uint64_t max_memory,
                        uint32_t page_size, apb_sim_result *out)
{
	const apbi_policy_ops *ops = apbi_policy_get(e);
	apbi_pol_node *nodes = NULL;
	void *pol = NULL;
	uint64_t hits = 0;
	sim s;
	int r;
	if (!ops)
		return apbi_set_error(-EINVAL, "simulate: unknown eviction policy %d", (int)e);
	if ((r = sim_init(&s, t, max_memory, page_size)) < 0)
		goto out;
	nodes = calloc((size_t)t->n_ids + 1, sizeof *nodes);
	pol = ops->create((size_t)s.max_entries);
	if (!nodes || !pol) {
		r = apbi_set_error(-ENOMEM, "simulate: out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < t->n_ev; i++) {
		hits += (uint64_t)replay_event(&s, ops, pol, nodes, &t->evs[i]);
		s.prev = (uint64_t)t->evs[i].id << 8 | t->evs[i].ev;
	}
	sim_result(&s, hits, out);
out:
	if (pol)
		ops->destroy(pol);
	free(nodes);
	sim_fini(&s);
	return r;
}

/* ---- Belady ---- */

typedef struct hent {
	uint64_t next;   /* index of the next lookup of id; n_acc: never */
	uint32_t id;
} hent;

typedef struct heap {
	hent *v;
	size_t n;
} heap;

static void heap_push(heap *h, hent x)
{
	size_t i = h->n++;
	while (i && h->v[(i - 1) / 2].next < x.next) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
}

static hent heap_pop(heap *h)
{
	hent top = h->v[0], x = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].next > h->v[c].next)
			c++;
		if (h->v[c].next <= x.next)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = x;
	return top;
}

/* The counted lookups of t in order, as page ids (malloc'ed; NULL: no memory). */
static uint32_t *lookups(const apb_sim_trace *t)
{
	uint32_t *acc = malloc(((size_t)t->n_acc + 1) * sizeof *acc);
	uint64_t n = 0;
	for (uint64_t i = 0; acc && i < t->n_ev; i++)
		if (t->evs[i].ev == APBI_TR_LOOKUP)
			acc[n++] = t->evs[i].id;
	return acc;
}

/* next[i] = index of the next lookup of the same page after i (n: none). */
static uint32_t *next_uses(const apb_sim_trace *t, const uint32_t *acc)
{
	uint32_t *next = malloc(((size_t)t->n_acc + 1) * sizeof *next);
	uint32_t *last = malloc(((size_t)t->n_ids + 1) * sizeof *last);
	if (next && last) {
		for (uint32_t id = 0; id < t->n_ids; id++)
			last[id] = (uint32_t)t->n_acc;
		for (uint64_t i = t->n_acc; i-- > 0;) {
			next[i] = last[acc[i]];
			last[acc[i]] = (uint32_t)i;
		}
	} else {
		free(next);
		next = NULL;
	}
	free(last);
	return next;
}

/* Evicts the resident pages used farthest in the future until s fits. */
static void belady_fit(sim *s, heap *h, const uint64_t *cur)
{
	while (s->used > s->max_memory || s->entries > s->max_entries) {
		hent x = heap_pop(h);
		if (s->st[x.id] != P_IN || cur[x.id] != x.next)
			continue;   /* stale: the page was used again or left */
		s->st[x.id] = P_OUT;
		s->used -= s->len[x.id];
		s->entries--;
	}
}

/** See apbundle.h. */
int apb_simulate_belady(const apb_sim_trace *t, uint64_t max_memory, uint32_t page_size,
                        apb_sim_result *out)
{
	uint32_t *acc = NULL, *next = NULL;
	uint64_t *cur = NULL, hits = 0;
	heap h = { 0 };
	sim s;
	int r;
	if ((r = sim_init(&s, t, max_memory, page_size)) < 0)
		goto out;
	acc = lookups(t);
	next = acc ? next_uses(t, acc) : NULL;
	cur = malloc(((size_t)t->n_ids + 1) * sizeof *cur);
	h.v = malloc(((size_t)t->n_acc + 1) * sizeof *h.v);
	if (!next || !cur || !h.v) {
		r = apbi_set_error(-ENOMEM, "simulate: out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < t->n_acc; i++) {
		uint32_t id = acc[i];
		if (s.st[id] == P_IN) {
			hits++;
		} else if (s.len[id] <= s.max_memory) {
			s.st[id] = P_IN;
			s.used += s.len[id];
			s.entries++;
		} else {
			continue;
		}
		cur[id] = next[i];
		heap_push(&h, (hent){ next[i], id });
		belady_fit(&s, &h, cur);
	}
	sim_result(&s, hits, out);
out:
	free(acc);
	free(next);
	free(cur);
	free(h.v);
	sim_fini(&s);
	return r;
}
