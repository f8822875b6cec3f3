/*
 * fuzz_trace.c - libFuzzer target for the trace parser of `apbundle
 * simulate` (apb_simulate_parse, sim_trace.c) and the replays on what it
 * accepts (simulate.c).
 *
 * On success checks the parsed trace's promises: every lookup and "#@ "
 * record names a known page (a metadata lookup a metadata object's),
 * pages are inside their model's declared size, model names are unique
 * and survive escaping (apbi_trace_escape) and parsing again;
 * then replays it through LRU, W-TinyLFU and Belady with a 4-page budget
 * and checks hits <= lookups.  Any violation aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void check_names(const apb_sim_trace *t)
{
	for (uint32_t i = 0; i < t->n_models; i++) {
		const char *name = t->models[i].name;
		if (t->models[i].meta)
			continue;   /* "#@ object K": found by number, not by name */
		size_t need = apbi_trace_escape(name, NULL, 0) + 16;
		char *line = malloc(need + 4);
		apb_sim_trace *u = NULL;
		CHECK(line);
		apbi_trace_escape(name, line, need);
		strcat(line, "\t0\n");
		CHECK(apb_simulate_parse(line, strlen(line), &u) == 0);
		CHECK(u->n_models == 1 && !strcmp(u->models[0].name, name));
		apb_simulate_free(u);
		free(line);
		for (uint32_t j = 0; j < i; j++)
			CHECK(t->models[j].meta || strcmp(t->models[j].name, name) != 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	apb_sim_trace *t = NULL;
	apb_sim_result r;
	uint64_t n_lookups;
	uint32_t ps;
	if (apb_simulate_parse((const char *)data, size, &t) != 0) {
		CHECK(t == NULL);
		return 0;
	}
	ps = t->page_size ? t->page_size : 512;
	n_lookups = 0;
	for (uint64_t i = 0; i < t->n_ev; i++) {
		const struct sim_event *e = &t->evs[i];
		bool meta = e->id < t->n_ids && t->models[sim_model_of(t, e->id)].meta;
		CHECK(e->id < t->n_ids && e->ev < APBI_TR_COUNT && e->ev != APBI_TR_OBJECT);
		CHECK(e->ev == APBI_TR_LOOKUP ? !meta : e->ev == APBI_TR_META ? meta : true);
		CHECK(e->kind <= APBI_POL_READAHEAD && (e->ev == APBI_TR_FILL || !e->kind));
		n_lookups += e->ev == APBI_TR_LOOKUP;
	}
	CHECK(n_lookups == t->n_acc);
	for (uint32_t id = 0; id < t->n_ids; id++) {
		uint64_t sz = t->models[sim_model_of(t, id)].size;
		CHECK(sim_model_of(t, id) < t->n_models);
		CHECK(!t->page_size || sz == SIM_SIZE_UNKNOWN || sim_page_of(t, id) * ps < sz);
	}
	check_names(t);
	if (apb_simulate_policy(t, APB_EVICT_LRU, 4ull * ps, ps, &r) == 0)
		CHECK(r.hits <= r.accesses && r.accesses == t->n_acc);
	if (apb_simulate_policy(t, APB_EVICT_TINYLFU, 4ull * ps, ps, &r) == 0)
		CHECK(r.hits <= r.accesses);
	if (apb_simulate_belady(t, 4ull * ps, ps, &r) == 0)
		CHECK(r.hits <= r.accesses);
	apb_simulate_free(t);
	return 0;
}
