/*
 * tree.h - the mount's inode tree: model names as directories and files.
 *
 * The tree is built once from the models of an open apb_paged handle and
 * never changes: node i is inode i + 1, node 0 is the root, the virtual
 * files follow (in the order the caller lists them, so their inode numbers
 * are fixed), then the bundle's directories and models in sorted name
 * order, so inode numbers are stable across mounts of the same bundle with
 * the same virtual files.  A name that cannot be shown (it is also a
 * directory, or a virtual file has it) is hidden and reported to the
 * caller; nothing here logs, allocates after the build, or calls libfuse,
 * so the fuzz target (tests/fuzz/fuzz_mount.c) links this file alone.
 * Cost: about 64 bytes per model and directory while mounted, plus 24
 * bytes per model during the build (outside max_memory; see
 * apbundle-mount(1), MEMORY).
 */
#ifndef APBM_TREE_H
#define APBM_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apbundle.h"

/* Node kinds stored in apbm_node.model when it is not a model index. */
#define APBM_DIR     (-1)
#define APBM_VSTATS  (-2)   /* .stats */
#define APBM_VJSON   (-3)   /* .stats.json */
#define APBM_VMETRICS (-4)  /* .metrics */
#define APBM_VCONTROL (-5)  /* .control */
#define APBM_ABSENT  (-6)   /* a virtual file not enabled: an inode, no name */

#define APBM_ROOT_NODE 0u

/* One file or directory.  name points into the model name (not NUL-ended). */
typedef struct apbm_node {
	const char *name;
	uint32_t name_len;
	uint32_t parent;       /* node index */
	int64_t model;         /* model index >= 0, or APBM_DIR / APBM_V* */
	uint64_t size;         /* model size; 0 for the others */
	uint32_t first_child;  /* directories: index into apbm_tree.children */
	uint32_t n_children;
	uint32_t n_subdirs;
} apbm_node;

typedef struct apbm_tree {
	apbm_node *nodes;
	uint32_t n_nodes;
	uint32_t first_model_node; /* after the root and the virtual files */
	uint32_t *children;    /* per directory, a run of node indexes */
	uint32_t *slots;       /* hash of (parent, name) -> node index + 1 */
	uint32_t mask;
	uint32_t n_hidden;     /* models not shown (see apbm_hidden_fn) */
} apbm_tree;

/* A virtual file in the root: its name, kind (APBM_V*) and whether it is shown. */
typedef struct apbm_vfile_spec {
	const char *name;
	int64_t kind;
	bool present;
} apbm_vfile_spec;

/*
 * Called once per model that is not shown, with why: "a virtual file has
 * this name" or "a model has the name of a directory of it".
 */
typedef void (*apbm_hidden_fn)(void *ctx, const char *name, const char *why);

/**
 * Builds t from the models of pb, with the nv virtual files v in the root
 * (absent ones keep their inode but have no name).  hidden may be NULL.
 * t must be zeroed.  Returns 0, -ENOMEM or -EFBIG (more than 2^30 models
 * or path components); on error t may be partly built: apbm_tree_free it.
 * v[].name must outlive t.
 */
int apbm_tree_build(apbm_tree *t, apb_paged *pb, const apbm_vfile_spec *v, size_t nv,
                    apbm_hidden_fn hidden, void *ctx);

/** The node index of name in directory parent, or UINT32_MAX. */
uint32_t apbm_tree_find(const apbm_tree *t, uint32_t parent, const char *name, size_t len);

/** Frees t and zeroes it.  Safe on a zeroed or partly built tree. */
void apbm_tree_free(apbm_tree *t);

/** The node of inode ino, or NULL when there is none (or it is absent). */
static inline const apbm_node *apbm_tree_node(const apbm_tree *t, uint64_t ino)
{
	if (ino == 0 || ino > t->n_nodes || t->nodes[ino - 1].model == APBM_ABSENT)
		return NULL;
	return &t->nodes[ino - 1];
}

#endif
