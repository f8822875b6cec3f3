/*
 * sim.h - the parsed trace shared by sim_trace.c (parser, name escaping)
 * simulate.c (replays) and trace.c (the recorder's name escaping).
 */
#ifndef APB_SIM_H
#define APB_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "apbundle.h"

#define SIM_SIZE_UNKNOWN UINT64_MAX
#define SIM_MAX_PAGE ((uint64_t)1 << 40)
#define SIM_MAX_MODELS ((uint32_t)1 << 24)

typedef struct sim_model {
	char *name;            /* unescaped; metadata: "#@ object K" (not looked up by name) */
	uint64_t size;         /* SIM_SIZE_UNKNOWN when not declared */
	uint32_t obj;          /* the cache's object number (policy ids): see objs */
	bool used, meta;       /* meta: declared by "#@ object", lookups not counted */
} sim_model;

/* What an event of the replay does (the "#@ " records of a recorded trace,
 * apbundle.h; a plain line is SIM_EV_LOOKUP). */
enum sim_ev {
	SIM_EV_LOOKUP = 0,     /* a counted lookup */
	SIM_EV_META,           /* a lookup of a metadata page, not counted */
	SIM_EV_CLAIM,          /* budget taken for a page about to load, not in the policy */
	SIM_EV_FILL_DEMAND,    /* a claimed page enters the policy unasked, as DEMAND */
	SIM_EV_FILL_PREFETCH,  /* ... as PREFETCH */
	SIM_EV_FILL_READAHEAD, /* ... as READAHEAD */
	SIM_EV_DROP,           /* a claimed page failed to load and left (a lookup
	                        * of it that follows at once is that load's miss) */
	SIM_EV_WAIT,           /* the lookup that follows at once waited for a load: a miss */
	SIM_EV_KEEP,           /* a claim asked the policy for a victim and did not evict it */
	SIM_EV_PARK,           /* a pinned victim leaves the policy, keeping its bytes */
	SIM_EV_UNPARK,         /* a parked page re-enters the policy as DEMAND */
	SIM_EV_COUNT
};

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
	uint32_t *acc;         /* the counted lookups, as ids (Belady replays these) */
	uint64_t n_acc, cap_acc;
	/* every event in order (policies replay these) */
	struct sim_event { uint32_t id; uint8_t ev; } *evs;   /* ev: enum sim_ev */
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

#endif
