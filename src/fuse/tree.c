/*
 * tree.c - builds and searches the mount's inode tree (see tree.h).
 *
 * The build sorts the model names (O(n log n)) and walks them once,
 * creating each directory the first time a name needs it; a stack of the
 * previous name's directories makes that O(total name length).  Lookups go
 * through an open-addressing hash of (parent, name) with at least twice as
 * many slots as nodes, so a probe sequence always ends at an empty slot.
 * Invariants after a successful build: a directory's children are a run of
 * t->children in sorted-name order (readdir offsets are stable); every node
 * but the root has a non-empty, '/'-free name and a directory as parent;
 * each model appears at most once, and shown + hidden = model count.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

typedef struct sorted_name {
	const char *name;
	uint64_t size;
	uint32_t idx;
} sorted_name;

#define WHY_VFILE "a virtual file of the mount has this name"
#define WHY_DIR   "a model has the name of one of its directories"

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const sorted_name *)a)->name, ((const sorted_name *)b)->name);
}

static uint32_t hash_key(uint32_t parent, const char *name, uint32_t len)
{
	uint64_t h = 1469598103934665603ull ^ ((uint64_t)parent * 0x9e3779b97f4a7c15ull);

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 32));
}

static bool same(const apbm_node *n, uint32_t parent, const char *name, uint32_t len)
{
	return n->parent == parent && n->name_len == len && memcmp(n->name, name, len) == 0;
}

uint32_t apbm_tree_find(const apbm_tree *t, uint32_t parent, const char *name, size_t len)
{
	if (!t->slots || len > UINT32_MAX)
		return UINT32_MAX;
	for (uint32_t s = hash_key(parent, name, (uint32_t)len) & t->mask;; s = (s + 1) & t->mask) {
		uint32_t v = t->slots[s];
		if (v == 0)
			return UINT32_MAX;
		if (same(&t->nodes[v - 1], parent, name, (uint32_t)len))
			return v - 1;
	}
}

/* Appends a node (hashed unless absent); returns its index, or UINT32_MAX when taken. */
static uint32_t tree_add(apbm_tree *t, uint32_t parent, const char *name, uint32_t len,
                         int64_t model, uint64_t size)
{
	uint32_t s = hash_key(parent, name, len) & t->mask;

	if (model != APBM_ABSENT) {
		for (; t->slots[s] != 0; s = (s + 1) & t->mask)
			if (same(&t->nodes[t->slots[s] - 1], parent, name, len))
				return UINT32_MAX;
	}
	uint32_t i = t->n_nodes++;
	t->nodes[i] = (apbm_node){ .name = name, .name_len = len, .parent = parent,
	                           .model = model, .size = size };
	if (model != APBM_ABSENT)
		t->slots[s] = i + 1;
	return i;
}

/* Why a name that is taken in directory parent cannot be shown. */
static const char *why_taken(const apbm_tree *t, uint32_t parent, const char *name, uint32_t len)
{
	uint32_t i = apbm_tree_find(t, parent, name, len);

	return i != UINT32_MAX && t->nodes[i].model < APBM_DIR ? WHY_VFILE : WHY_DIR;
}

/*
 * Adds one model, creating the directories of its name.  stack[d] is the
 * directory node at depth d of the previous name; *depth its length (a
 * cache: a directory not on it is looked up).  Returns NULL, or why the
 * name cannot be shown.
 */
static const char *tree_add_model(apbm_tree *t, const sorted_name *sn, uint32_t *stack,
                                  uint32_t *depth)
{
	const char *p = sn->name, *slash;
	uint32_t d = 0, len;

	while ((slash = strchr(p, '/')) != NULL) {
		len = (uint32_t)(slash - p);
		uint32_t dir = d + 1 < *depth && same(&t->nodes[stack[d + 1]], stack[d], p, len)
		               ? stack[d + 1] : apbm_tree_find(t, stack[d], p, len);
		if (dir == UINT32_MAX)
			dir = tree_add(t, stack[d], p, len, APBM_DIR, 0);
		else if (t->nodes[dir].model != APBM_DIR)
			return why_taken(t, stack[d], p, len);
		if (d + 1 >= *depth || dir != stack[d + 1])
			*depth = d + 2;	/* the cached path ends here */
		stack[++d] = dir;
		p = slash + 1;
	}
	*depth = d + 1;
	len = (uint32_t)strlen(p);
	if (tree_add(t, stack[d], p, len, sn->idx, sn->size) != UINT32_MAX)
		return NULL;
	return why_taken(t, stack[d], p, len);
}

/* Groups children per directory (node order = sorted order) and counts subdirs. */
static int tree_link(apbm_tree *t)
{
	t->children = malloc(sizeof(uint32_t) * (t->n_nodes ? t->n_nodes : 1));
	if (!t->children)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->n_nodes; i++) {
		if (t->nodes[i].model == APBM_ABSENT)
			continue;
		apbm_node *p = &t->nodes[t->nodes[i].parent];
		p->n_children++;
		if (t->nodes[i].model == APBM_DIR)
			p->n_subdirs++;
	}
	uint32_t next = 0;
	for (uint32_t i = 0; i < t->n_nodes; i++) {
		t->nodes[i].first_child = next;
		next += t->nodes[i].n_children;
		t->nodes[i].n_children = 0;
	}
	for (uint32_t i = 1; i < t->n_nodes; i++) {
		if (t->nodes[i].model == APBM_ABSENT)
			continue;
		apbm_node *p = &t->nodes[t->nodes[i].parent];
		t->children[p->first_child + p->n_children++] = i;
	}
	return 0;
}

/* Sorted (name, size, index) of every model; *slashes counts '/' in all names. */
static sorted_name *collect_names(apb_paged *pb, size_t n, size_t *slashes)
{
	sorted_name *v = malloc(sizeof(*v) * (n ? n : 1));

	if (!v)
		return NULL;
	*slashes = 0;
	for (size_t i = 0; i < n; i++) {
		apb_model_info info;
		if (apb_paged_model_info(pb, i, &info) != 0) {
			free(v);
			return NULL;
		}
		v[i] = (sorted_name){ .name = info.name, .size = info.size, .idx = (uint32_t)i };
		for (const char *s = info.name; (s = strchr(s, '/')) != NULL; s++)
			(*slashes)++;
	}
	qsort(v, n, sizeof(*v), cmp_name);
	return v;
}

static int tree_alloc(apbm_tree *t, size_t cap)
{
	size_t slots = 16;

	while (slots < 2 * cap)
		slots <<= 1;
	t->nodes = malloc(sizeof(apbm_node) * cap);
	t->slots = calloc(slots, sizeof(uint32_t));
	t->mask = (uint32_t)(slots - 1);
	return t->nodes && t->slots ? 0 : -ENOMEM;
}

int apbm_tree_build(apbm_tree *t, apb_paged *pb, const apbm_vfile_spec *v, size_t nv,
                    apbm_hidden_fn hidden, void *ctx)
{
	size_t n = apb_paged_model_count(pb), slashes = 0;
	uint32_t stack[APB_MAX_NAME_LEN / 2 + 2], depth = 1;
	sorted_name *sn = NULL;
	int rc = -ENOMEM;

	if (n > (1u << 30) || nv > 64)
		return -EFBIG;
	sn = collect_names(pb, n, &slashes);
	if (!sn)
		goto out;
	rc = -EFBIG;
	if (slashes > (1u << 30))
		goto out;
	rc = -ENOMEM;
	if (tree_alloc(t, 1 + nv + n + slashes) != 0)
		goto out;
	tree_add(t, 0, "", 0, APBM_DIR, 0);
	for (size_t i = 0; i < nv; i++)
		tree_add(t, APBM_ROOT_NODE, v[i].name, (uint32_t)strlen(v[i].name),
		         v[i].present ? v[i].kind : APBM_ABSENT, 0);
	t->first_model_node = t->n_nodes;
	stack[0] = APBM_ROOT_NODE;
	for (size_t i = 0; i < n; i++) {
		const char *why = tree_add_model(t, &sn[i], stack, &depth);
		if (why) {
			t->n_hidden++;
			if (hidden)
				hidden(ctx, sn[i].name, why);
		}
	}
	rc = tree_link(t);
out:
	free(sn);
	return rc;
}

void apbm_tree_free(apbm_tree *t)
{
	free(t->nodes);
	free(t->children);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}
