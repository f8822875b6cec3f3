/*
 * check_simulate.c - the trace parser and the simulator (sim_trace.c,
 * simulate.c): malformed traces and "#@ " records are refused with the
 * line named, names round-trip through the escaping, a replay gives
 * exactly the hits of the live cache (cache.c with a loader that loads
 * nothing) for every policy, both for plain lookups and for a trace the
 * cache recorded itself while serving runs, metadata, prefetches and
 * pinned pages, each record does what the live cache did, and Belady's
 * bound equals a naive O(n^2) MIN and is never beaten.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "sim.h"
#include "trace.h"
#include "testutil.h"

#define PS 512u

static apb_sim_trace *parse_ok(const char *text)
{
	apb_sim_trace *t = NULL;
	int r = apb_simulate_parse(text, strlen(text), &t);
	ck_assert_msg(r == 0, "parse: %d %s", r, apb_last_error());
	return t;
}

static void parse_bad(const char *text, const char *want)
{
	apb_sim_trace *t = (apb_sim_trace *)1;
	ck_assert_int_eq(apb_simulate_parse(text, strlen(text), &t), -EINVAL);
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(apb_last_error(), want), "error \"%s\" lacks \"%s\"",
	              apb_last_error(), want);
}

START_TEST(malformed_lines_are_refused)
{
	parse_bad("a\t1\nb 2\n", "line 2: expected NAME<TAB>PAGE");
	parse_bad("a\t-1\n", "line 1");
	parse_bad("a\t1x\n", "line 1");
	parse_bad("\t1\n", "line 1");
	parse_bad("a\t\n", "line 1");
	parse_bad("a\t1099511627776\n", "line 1");       /* 2^40 */
	parse_bad("a\\q\t1\n", "line 1: bad model name");
	parse_bad("a\\\t1\n", "line 1");
	parse_bad("# page_size 1000\n", "line 1: bad or late page_size");
	parse_bad("# page_size 512\n# page_size 1024\n", "line 2");
	parse_bad("a\t0\n# page_size 512\n", "line 2");
	parse_bad("# page_size 512\n# model a 1024\na\t2\n", "line 3: page 2 is beyond");
	parse_bad("# model a 10\n# model a 11\n", "line 2: model declared again");
	parse_bad("a\t0\n# model a 10\n", "line 2");
	parse_bad("# model a\n", "line 1: expected \"# model NAME SIZE\"");
	parse_bad("# model  5\n", "line 1: bad model name");
}
END_TEST

START_TEST(malformed_records_are_refused)
{
	const char *h = "# page_size 512\n# model a 1024\n";
	char text[256];
#define BAD(rec, want) (snprintf(text, sizeof text, "%s%s", h, rec), parse_bad(text, want))
	BAD("#@ claim 1 0\n", "line 3: object 1 is not declared");
	BAD("#@ meta 0 0\n", "line 3: object 0 is not declared as metadata");
	BAD("#@ claim 0 2\n", "line 3: page 2 is beyond the end of object 0");
	BAD("#@ claim 0\n", "line 3: expected \"#@ claim OBJECT PAGE\"");
	BAD("#@ claim 0 1 2\n", "line 3: expected");
	BAD("#@ claim  0 1\n", "line 3: expected");
	BAD("#@ claim 0 1 \n", "line 3: expected");
	BAD("#@ fill 0 1\n", "line 3: expected \"#@ fill OBJECT PAGE KIND\"");
	BAD("#@ fill 0 1 3\n", "line 3: expected");
	BAD("#@ park 0 x\n", "line 3: expected");
	BAD("#@ object 1\n", "line 3: expected \"#@ object K SIZE\"");
	BAD("#@ object 0 100\n", "line 3: object 0 declared again");
	BAD("#@ object 1 100\n#@ object 1 100\n", "line 4: object 1 declared again");
	BAD("#@ object 16777216 100\n", "line 3: object 16777216 declared again or out of range");
	BAD("#@ object 1 100\n# model b 10\n", "line 4: model declared after a \"#@ \" record");
	parse_bad("# model a 1024\n#@ claim 0 5\n# page_size 512\n", "line 3: bad or late page_size");
#undef BAD
}
END_TEST

/* Hits of simulating text with policy e at budget bytes (page size 512). */
static uint64_t sim_hits(const char *text, apb_eviction e, uint64_t budget, uint64_t *acc)
{
	apb_sim_trace *t = parse_ok(text);
	apb_sim_result r;
	ck_assert_int_eq(apb_simulate_policy(t, e, budget, 0, &r), 0);
	*acc = r.accesses;
	apb_simulate_free(t);
	return r.hits;
}

START_TEST(records_replay_what_the_cache_did)
{
	const char *h = "# page_size 512\n# model a 2048\n#@ object 1 512\n#@ unknown words\n";
	char text[512];
	uint64_t acc;
#define HITS(e, body, budget) (snprintf(text, sizeof text, "%s%s", h, body), \
                               sim_hits(text, APB_EVICT_##e, budget, &acc))
	/* plain: a0 a1 a0 with room for two is one hit */
	ck_assert_uint_eq(HITS(LRU, "a\t0\na\t1\na\t0\n", 1024), 1);
	ck_assert_uint_eq(acc, 3);
	/* a metadata page takes budget and a policy place, and is not counted */
	ck_assert_uint_eq(HITS(LRU, "a\t0\n#@ meta 1 0\na\t1\na\t0\n", 1024), 0);
	ck_assert_uint_eq(acc, 3);
	/* pages claimed together take their room before any enters the policy:
	 * a3's victim is an old page (LFU), not a2 as in a plain replay */
	ck_assert_uint_eq(HITS(LFU, "a\t0\na\t0\na\t0\na\t1\na\t1\na\t1\na\t2\na\t3\na\t2\n",
	                       1536), 4);
	ck_assert_uint_eq(HITS(LFU, "a\t0\na\t0\na\t0\na\t1\na\t1\na\t1\n#@ claim 0 2\n"
	                       "#@ claim 0 3\na\t2\na\t3\na\t2\n", 1536), 5);
	/* a prefetched page (fill) is resident; a lookup that waited for
	 * another's load of it is a miss all the same */
	ck_assert_uint_eq(HITS(LRU, "#@ claim 0 0\n#@ fill 0 0 1\na\t0\n", 1024), 1);
	ck_assert_uint_eq(HITS(LRU, "#@ claim 0 0\n#@ fill 0 0 1\n#@ wait 0 0\na\t0\na\t0\n",
	                       1024), 1);
	/* a failed load leaves nothing: its own miss, a miss that loads, a hit */
	ck_assert_uint_eq(HITS(LRU, "#@ claim 0 0\n#@ drop 0 0\na\t0\na\t0\na\t0\n", 1024), 1);
	/* a parked page keeps its bytes and is no victim; unparked, it is the
	 * policy's newest (LRU: a2 evicts a1, not a0) */
	ck_assert_uint_eq(HITS(LRU, "a\t0\na\t1\n#@ park 0 0\na\t2\na\t0\na\t1\n", 1024), 1);
	ck_assert_uint_eq(HITS(LRU, "a\t0\na\t1\na\t2\na\t1\n", 1024), 1);
	ck_assert_uint_eq(HITS(LRU, "a\t0\na\t1\n#@ park 0 0\n#@ unpark 0 0\na\t2\na\t1\n",
	                       1024), 0);
#undef HITS
}
END_TEST

START_TEST(valid_trace_parses)
{
	apb_sim_trace *t = parse_ok("# a comment\n# page_size 512\n# model x y 1000\n\n"
	                            "x y\t1\nz\t7\nx y\t1\n# another\nz\t7");
	ck_assert_uint_eq(apb_simulate_page_size(t), 512);
	ck_assert_uint_eq(apb_simulate_accesses(t), 4);
	ck_assert_uint_eq(t->n_ids, 2);
	ck_assert_uint_eq(t->n_models, 2);
	ck_assert_str_eq(t->models[0].name, "x y");
	ck_assert_uint_eq(t->models[0].size, 1000);
	ck_assert_uint_eq(t->models[1].size, SIM_SIZE_UNKNOWN);
	apb_simulate_free(t);
}
END_TEST

START_TEST(names_round_trip_through_escaping)
{
	static const char *names[] = { "plain", "tab\there", "new\nline", "back\\slash",
	                               "cr\r", "\\t literal", "# not a comment" };
	char text[4096] = "", esc[128];
	size_t n = 0;
	apb_sim_trace *t;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		ck_assert_uint_lt(apbi_trace_escape(names[i], esc, sizeof esc), sizeof esc);
		ck_assert_ptr_null(strchr(esc, '\t'));
		ck_assert_ptr_null(strchr(esc, '\n'));
		n += (size_t)snprintf(text + n, sizeof text - n, "%s\t%zu\n", esc, i);
	}
	ck_assert_ptr_nonnull(strstr(text, "\\# not a comment\t6\n"));
	t = parse_ok(text);
	ck_assert_uint_eq(t->n_models, sizeof names / sizeof *names);
	for (uint32_t i = 0; i < t->n_models; i++)
		ck_assert_str_eq(t->models[i].name, names[i]);
	apb_simulate_free(t);
	/* truncation: the needed length is returned, out stays terminated */
	ck_assert_uint_eq(apbi_trace_escape("a\tb", esc, 3), 4);
	ck_assert_str_eq(esc, "a");
}
END_TEST

/* ---- replays against the live cache and a naive MIN ---- */

#define NM 6
#define NACC 3000

typedef struct gen {
	uint64_t sizes[NM];
	uint32_t m[NACC];
	uint64_t p[NACC];
	char text[NACC * 16 + 512];
} gen;

/* Random models (short last pages unless uniform) and lookups: runs of
 * consecutive pages of a model picked with a skew, as model loads are. */
static void gen_trace(gen *g, uint64_t seed, bool uniform)
{
	uint64_t s = seed;
	size_t n = (size_t)snprintf(g->text, sizeof g->text, "# page_size %u\n", PS);
	for (int m = 0; m < NM; m++) {
		g->sizes[m] = (1 + tu_rand(&s) % 24) * PS - (uniform ? 0 : tu_rand(&s) % PS);
		n += (size_t)snprintf(g->text + n, sizeof g->text - n, "# model m%d %llu\n", m,
		                      (unsigned long long)g->sizes[m]);
	}
	for (int i = 0; i < NACC;) {
		uint32_t m = (uint32_t)(tu_rand(&s) % (1 + tu_rand(&s) % NM));
		uint64_t np = (g->sizes[m] + PS - 1) / PS, p = tu_rand(&s) % 3 ? 0 : tu_rand(&s) % np;
		for (; p < np && i < NACC; p++, i++) {
			g->m[i] = m;
			g->p[i] = p;
			n += (size_t)snprintf(g->text + n, sizeof g->text - n, "m%u\t%llu\n", m,
			                      (unsigned long long)p);
		}
	}
}

static ssize_t null_load(void *ctx, uint32_t m, uint64_t first, uint32_t n,
                         uint8_t *const dst[], int res[])
{
	(void)ctx;
	(void)m;
	(void)first;
	(void)dst;
	for (uint32_t i = 0; i < n; i++)
		res[i] = 0;
	return 0;
}

/* Hits of the live cache replaying g's lookups one page at a time. */
static uint64_t live_hits(const gen *g, const apbi_policy_ops *ops, uint64_t budget)
{
	apbi_cache_config cfg = {
		.max_memory = budget, .page_size = PS, .policy = ops, .n_models = NM,
		.model_sizes = g->sizes, .load = null_load,
	};
	apbi_cache_counters st;
	apbi_cache *c;
	ck_assert_int_eq(apbi_cache_new(&cfg, &c), 0);
	for (int i = 0; i < NACC; i++) {
		apbi_page *pg;
		uint32_t n;
		ck_assert_int_eq(apbi_cache_get_run(c, g->m[i], g->p[i], 1, &pg, &n), 0);
		apbi_cache_unpin(c, &pg, n);
	}
	apbi_cache_stats(c, &st);
	ck_assert_uint_eq(st.hits + st.misses, NACC);
	apbi_cache_free(c);
	return st.hits;
}

START_TEST(replay_matches_the_live_cache)
{
	static gen g;
	apb_sim_trace *t;
	uint64_t s = 99 + (uint64_t)_i, budget;
	gen_trace(&g, 1000 + (uint64_t)_i, _i % 2);
	t = parse_ok(g.text);
	ck_assert_uint_eq(apb_simulate_accesses(t), NACC);
	budget = (2 + tu_rand(&s) % 40) * PS + tu_rand(&s) % PS;
	for (int e = 0; e < APB_EVICT_COUNT; e++) {
		apb_sim_result r;
		uint64_t live = live_hits(&g, apbi_policy_get((apb_eviction)e), budget);
		ck_assert_int_eq(apb_simulate_policy(t, (apb_eviction)e, budget, 0, &r), 0);
		ck_assert_uint_eq(r.accesses, NACC);
		ck_assert_uint_eq(r.capacity_pages, budget / PS);
		ck_assert_msg(r.hits == live, "%s, budget %llu: simulated %llu hits, live %llu",
		              apb_eviction_name((apb_eviction)e), (unsigned long long)budget,
		              (unsigned long long)r.hits, (unsigned long long)live);
	}
	apb_simulate_free(t);
}
END_TEST

/* Serves the run of g's lookups at i as apb_paged_read does (get_run
 * until the run is done); returns its length. */
static int serve_run(apbi_cache *c, const gen *g, int i)
{
	int run = 1;
	uint32_t done = 0;
	while (run < 8 && i + run < NACC && g->m[i + run] == g->m[i] &&
	       g->p[i + run] == g->p[i] + (uint64_t)run)
		run++;
	while (done < (uint32_t)run) {
		apbi_page *pg[8];
		uint32_t n;
		ck_assert_int_eq(apbi_cache_get_run(c, g->m[i], g->p[i] + done, (uint32_t)run - done, pg, &n), 0);
		apbi_cache_unpin(c, pg, n);
		done += n;
	}
	return run;
}

/* The live cache recording its own trace at path while it serves g in runs
 * of up to 8 pages, with metadata lookups (objects NM and NM+1), prefetch,
 * readahead and a page held pinned now and then (parked when chosen as a
 * victim) in between; returns its hits and lookups. */
static uint64_t live_recorded(const gen *g, const apbi_policy_ops *ops, uint64_t budget,
                              const char *path, uint64_t seed, uint64_t *lookups)
{
	static const char *names[NM] = { "m0", "m1", "m2", "m3", "m4", "m5" };
	uint64_t sizes[NM + 2], s = seed;
	apbi_cache_config cfg = {
		.max_memory = budget, .page_size = PS, .policy = ops, .n_models = NM + 2,
		.model_sizes = sizes, .first_meta = NM, .load = null_load,
	};
	apbi_cache_counters st;
	apbi_page *held = NULL;
	apbi_trace *t;
	apbi_cache *c;
	uint32_t n;
	memcpy(sizes, g->sizes, sizeof g->sizes);
	sizes[NM] = 3 * PS - 100;
	sizes[NM + 1] = 700;
	ck_assert_int_eq(apbi_cache_new(&cfg, &c), 0);
	ck_assert_int_eq(apbi_trace_open(path, PS, NM, names, g->sizes, &t), 0);
	ck_assert_int_eq(apbi_cache_set_trace(c, t), 0);
	for (int i = 0; i < NACC;) {
		uint32_t m = g->m[i], mo = NM + (uint32_t)(tu_rand(&s) % 2);
		uint64_t p = g->p[i];
		apbi_page *pg;
		i += serve_run(c, g, i);
		switch (tu_rand(&s) % 8) {
		case 0:
			ck_assert_int_eq(apbi_cache_get_run(c, mo, tu_rand(&s) % (mo == NM ? 3 : 2), 1, &pg, &n), 0);
			apbi_cache_unpin(c, &pg, n);
			break;
		case 1:
			apbi_cache_prefetch(c, m, p + 8, 4, apbi_cache_now(c));
			break;
		case 2:
			apbi_cache_readahead(c, m, p + 8, 4, apbi_cache_now(c));
			break;
		case 3:
			if (held) {
				apbi_cache_unpin(c, &held, 1);
				held = NULL;
			} else {
				ck_assert_int_eq(apbi_cache_get_run(c, m, p, 1, &held, &n), 0);
			}
			break;
		}
	}
	if (held)
		apbi_cache_unpin(c, &held, 1);
	apbi_cache_stats(c, &st);
	ck_assert_ptr_eq(apbi_cache_take_trace(c), t);
	ck_assert_int_eq(apbi_trace_close(t), 0);
	apbi_cache_free(c);
	*lookups = st.hits + st.misses;
	return st.hits;
}

START_TEST(recorded_trace_replays_to_the_live_hits)
{
	static gen g;
	uint64_t s = 7 + (uint64_t)_i, budget, lookups;
	char *path = tu_path("rec.trace");
	gen_trace(&g, 3000 + (uint64_t)_i, _i % 2);
	budget = (3 + tu_rand(&s) % 30) * PS + tu_rand(&s) % PS;
	for (int e = 0; e < APB_EVICT_COUNT; e++) {
		apb_sim_trace *t;
		apb_sim_result r;
		uint64_t live = live_recorded(&g, apbi_policy_get((apb_eviction)e), budget, path, s, &lookups);
		ck_assert_int_eq(apb_simulate_load(path, &t), 0);
		ck_assert_int_eq(apb_simulate_policy(t, (apb_eviction)e, budget, 0, &r), 0);
		ck_assert_uint_eq(r.accesses, lookups);
		ck_assert_msg(r.hits == live, "%s, budget %llu: simulated %llu hits, live %llu",
		              apb_eviction_name((apb_eviction)e), (unsigned long long)budget,
		              (unsigned long long)r.hits, (unsigned long long)live);
		apb_simulate_free(t);
	}
	free(path);
}
END_TEST

/* Belady's MIN the obvious way: scan ahead for every resident page. */
static uint64_t naive_min(const gen *g, uint64_t cap_pages)
{
	static bool in[NM][24];
	uint64_t hits = 0, used = 0;
	memset(in, 0, sizeof in);
	for (int i = 0; i < NACC; i++) {
		if (in[g->m[i]][g->p[i]]) {
			hits++;
			continue;
		}
		in[g->m[i]][g->p[i]] = true;
		if (++used <= cap_pages)
			continue;
		int best_m = -1, best_p = -1, best_next = -1;
		for (int m = 0; m < NM; m++)
			for (int p = 0; p < 24; p++) {
				int nx = NACC;
				if (!in[m][p])
					continue;
				for (int j = i + 1; j < NACC; j++)
					if (g->m[j] == (uint32_t)m && g->p[j] == (uint64_t)p) {
						nx = j;
						break;
					}
				if (nx > best_next) {
					best_next = nx;
					best_m = m;
					best_p = p;
				}
			}
		in[best_m][best_p] = false;
		used--;
	}
	return hits;
}

START_TEST(belady_is_min_and_an_upper_bound)
{
	static gen g;
	apb_sim_trace *t;
	apb_sim_result b, r;
	uint64_t pages = 2 + (uint64_t)_i * 7;
	gen_trace(&g, 2000 + (uint64_t)_i, true);
	t = parse_ok(g.text);
	ck_assert_int_eq(apb_simulate_belady(t, pages * PS, PS, &b), 0);
	ck_assert_uint_eq(b.hits, naive_min(&g, pages));
	for (int e = 0; e < APB_EVICT_COUNT; e++) {
		ck_assert_int_eq(apb_simulate_policy(t, (apb_eviction)e, pages * PS, PS, &r), 0);
		ck_assert_uint_le(r.hits, b.hits);
	}
	apb_simulate_free(t);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
	apb_sim_trace *t = parse_ok("# page_size 1024\na\t0\n");
	apb_sim_result r;
	ck_assert_int_eq(apb_simulate_policy(t, APB_EVICT_LRU, 0, 0, &r), -EINVAL);
	ck_assert_int_eq(apb_simulate_policy(t, APB_EVICT_LRU, 4096, 512, &r), -EINVAL);
	ck_assert_int_eq(apb_simulate_policy(t, (apb_eviction)APB_EVICT_COUNT, 4096, 0, &r), -EINVAL);
	ck_assert_int_eq(apb_simulate_belady(t, 4096, 1000, &r), -EINVAL);
	ck_assert_int_eq(apb_simulate_policy(t, APB_EVICT_LRU, 4096, 1024, &r), 0);
	ck_assert_uint_eq(r.capacity_pages, 4);
	apb_simulate_free(t);
	ck_assert_int_eq(apb_simulate_load("/nonexistent/trace", &t), -ENOENT);
	ck_assert_ptr_null(t);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("simulate");
	TCase *tc = tcase_create("simulate");
	tcase_add_test(tc, malformed_lines_are_refused);
	tcase_add_test(tc, malformed_records_are_refused);
	tcase_add_test(tc, records_replay_what_the_cache_did);
	tcase_add_test(tc, valid_trace_parses);
	tcase_add_test(tc, names_round_trip_through_escaping);
	tcase_add_loop_test(tc, replay_matches_the_live_cache, 0, 8);
	tcase_add_loop_test(tc, recorded_trace_replays_to_the_live_hits, 0, 6);
	tcase_add_loop_test(tc, belady_is_min_and_an_upper_bound, 0, 6);
	tcase_add_test(tc, bad_arguments_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
