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
	char *name;            /* unescaped */
	uint64_t size;         /* SIM_SIZE_UNKNOWN when not declared */
	bool used;
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
	uint32_t *acc;         /* the lookups, as ids */
	uint64_t n_acc, cap_acc;
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
