/*
 * sim.h - the parsed trace shared by sim_trace.c (parser, name escaping)
 * simulate.c (replays) and trace.c (the recorder's name escaping and
 * record words).
 */
#ifndef APB_SIM_H
#define APB_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "apbundle.h"
#include "trace.h"

#define SIM_SIZE_UNKNOWN UINT64_MAX
#define SIM_MAX_PAGE ((uint64_t)1 << 40)
#define SIM_MAX_MODELS ((uint32_t)1 << 24)

typedef struct sim_model {
	char *name;            /* unescaped; metadata: "#@ object K" (not looked up by name) */
	uint64_t size;         /* SIM_SIZE_UNKNOWN when not declared */
	uint32_t obj;          /* the cache's object number (policy ids): see objs */
	bool used, meta;       /* meta: declared by "#@ object", lookups not counted */
} sim_model;

struct apb_sim_trace {
	uint32_t page_size;    /* 0: none given */
	sim_model *models;
	uint32_t n_models, cap_models;
	uint32_t *name_tab;    /* open addressing: model index + 1, 0 empty */
	size_t name_mask;
	/* distinct pages: key = APBI_POL_ID(model, page) */
	uint64_t *keys;        /* by id */
	uint32_t n_ids, cap_ids;
	uint32_t *key_tab;     /* open addressing: id + 1, 0 empty */
	size_t key_mask;
	uint64_t n_acc;        /* counted lookups (events LOOKUP) */
	/* every line that does something, in order: a lookup or a "#@ " record
	 * (ev: enum apbi_trace_ev, never OBJECT; kind: FILL's policy entry kind) */
	struct sim_event { uint32_t id; uint8_t ev, kind; } *evs;
	uint64_t n_ev, cap_ev;
	/* cache object numbers of the "#@ " records: the i-th "# model" is
	 * object i, "#@ object K" declares metadata object K; model index or
	 * UINT32_MAX */
	uint32_t *objs;
	uint32_t n_objs, cap_objs, n_declared;
	bool records;          /* a "#@ " record was seen: no "# model" after it */
};

/** Model of id (key >> 40) and its page. */
static inline uint32_t sim_model_of(const apb_sim_trace *t, uint32_t id)
{
	return (uint32_t)(t->keys[id] >> 40);
}

static inline uint64_t sim_page_of(const apb_sim_trace *t, uint32_t id)
{
	return t->keys[id] & (SIM_MAX_PAGE - 1);
}

/**
 * Writes name escaped for a trace line (backslash, tab, newline, CR as
 * \\ \t \n \r, a leading '#' as \#) into out (cap bytes, NUL-terminated); returns the length it
 * needs without the NUL (out is complete when that is < cap).
 */
size_t apbi_trace_escape(const char *name, char *out, size_t cap);

/** The word of each "#@ " record, by event (LOOKUP: NULL, a plain line);
 * the one table of the writer (trace.c) and the parser (sim_trace.c). */
extern const char *const apbi_trace_words[APBI_TR_COUNT];

#endif
