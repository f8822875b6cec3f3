/*
 * fuzz_mount.c - libFuzzer target: the mount's view of an arbitrary bundle.
 *
 * The input, written to a memfd, is opened paged and handed to the mount's
 * inode-tree builder (apbm_tree_build, src/fuse/tree.c) and .stats renderers
 * (apbm_vfile_render, src/fuse/vfiles.c, into src/fuse/obuf.c buffers),
 * which turn untrusted model names into directories and JSON.  Checked, each violation an abort: every node
 * but the root has a non-empty, '/'-free name and a directory as parent;
 * children lists stay in bounds; each model appears at most once, and shown
 * plus hidden models add up to the model count, each hidden one reported
 * once with a reason; lookups find every shown node; .stats.json parses as one
 * strict JSON object whose "models" array names every model exactly;
 * .stats holds no control character but newlines; .metrics (with per-model
 * series) renders, newline-terminated, without a NUL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>

#include "mount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static const apbm_vfile_spec vfiles[] = {
	{ ".stats", APBM_VSTATS, true },
	{ ".stats.json", APBM_VJSON, true },
	{ ".metrics", APBM_VMETRICS, true },
	{ ".absent", APBM_VCONTROL, false },
};
#define N_VFILES (sizeof(vfiles) / sizeof(vfiles[0]))

static size_t n_reported;

static void on_hidden(void *ctx, const char *name, const char *why)
{
	CHECK(name != NULL && why != NULL && ctx == &n_reported);
	n_reported++;
}

static void check_tree(const apbm_fs *fs, size_t n_models)
{
	const apbm_tree *t = &fs->cur->tree;
	uint8_t *seen = calloc(n_models + 1, 1);
	size_t shown = 0;

	CHECK(seen != NULL);
	CHECK(t->n_nodes >= 1 + N_VFILES && t->first_model_node == 1 + N_VFILES);
	CHECK(t->nodes[0].model == APBM_DIR);
	CHECK(apbm_tree_node(t, N_VFILES + 1) == NULL);	/* the absent virtual file */
	for (uint32_t i = 1; i < t->n_nodes; i++) {
		const apbm_node *nd = &t->nodes[i];
		if (nd->model == APBM_ABSENT)
			continue;
		CHECK(nd->parent < t->n_nodes && t->nodes[nd->parent].model == APBM_DIR);
		CHECK(apbm_tree_find(t, nd->parent, nd->name, nd->name_len) == i);
		CHECK(nd->name_len > 0 && memchr(nd->name, '/', nd->name_len) == NULL);
		if (nd->model >= 0) {
			CHECK((size_t)nd->model < n_models && !seen[nd->model]);
			seen[nd->model] = 1;
			shown++;
		}
	}
	for (uint32_t i = 0; i < t->n_nodes; i++) {
		const apbm_node *nd = &t->nodes[i];
		if (nd->model != APBM_DIR)
			continue;
		CHECK((uint64_t)nd->first_child + nd->n_children <= t->n_nodes);
		for (uint32_t k = 0; k < nd->n_children; k++)
			CHECK(t->nodes[t->children[nd->first_child + k]].parent == i);
	}
	CHECK(shown + t->n_hidden == n_models && n_reported == t->n_hidden);
	free(seen);
}

static void check_vfiles(apbm_fs *fs, size_t n_models)
{
	apbm_obuf b = { 0 };
	apb_paging_stats st;
	json_tokener *tok;
	json_object *o, *models;

	apb_paged_stats(fs->cur->pb, &st);
	CHECK(apbm_vfile_render(fs, APBM_VSTATS, &st, &b) == 0);
	for (size_t i = 0; i < b.len; i++)
		CHECK(b.data[i] == '\n' || ((unsigned char)b.data[i] >= 0x20 && b.data[i] != 0x7f));
	apbm_obuf_free(&b);
	fs->metrics_per_model = true;	/* label escaping of hostile names */
	CHECK(apbm_vfile_render(fs, APBM_VMETRICS, &st, &b) == 0);
	CHECK(b.len > 0 && b.data[b.len - 1] == '\n' && memchr(b.data, '\0', b.len) == NULL);
	apbm_obuf_free(&b);
	CHECK(apbm_vfile_render(fs, APBM_VJSON, &st, &b) == 0);
	CHECK(b.len > 0 && b.data[b.len - 1] == '\n');
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, b.data, (int)b.len - 1);
	CHECK(o != NULL && json_object_is_type(o, json_type_object));
	CHECK(json_object_object_get_ex(o, "models", &models));
	CHECK(json_object_array_length(models) == n_models);
	for (size_t i = 0; i < n_models; i++) {
		apb_model_info info;
		json_object *m = json_object_array_get_idx(models, i), *name;
		CHECK(apb_paged_model_info(fs->cur->pb, i, &info) == 0);
		CHECK(json_object_object_get_ex(m, "name", &name));
		CHECK(strcmp(json_object_get_string(name), info.name) == 0);
	}
	json_object_put(o);
	json_tokener_free(tok);
	apbm_obuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	apbm_fs fs;
	apbm_gen g = { .id = 1, .refs = 1 };
	int fd = memfd_create("fuzz_mount", MFD_CLOEXEC);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	memset(&fs, 0, sizeof fs);
	apb_paging_config_init(&fs.cfg);
	fs.cfg.max_memory = 4096;
	fs.cfg.page_size = 512;
	fs.cfg.prefetch = false;
	fs.bundle_path = path;
	fs.cur = fs.gens = fs.rgen = &g;	/* one generation, as rendered under snap_lock */
	pthread_mutex_init(&fs.gen_lock, NULL);
	if (apb_paged_open(path, &fs.cfg, &g.pb) == -EINVAL) {
		fs.cfg.max_memory = 1u << 20;   /* 4 KiB cannot hold one load (issue 15) */
		apb_paged_open(path, &fs.cfg, &g.pb);
	}
	if (g.pb) {
		size_t n = apb_paged_model_count(g.pb);
		n_reported = 0;
		if (apbm_tree_build(&g.tree, g.pb, vfiles, N_VFILES, on_hidden, &n_reported) == 0) {
			check_tree(&fs, n);
			check_vfiles(&fs, n);
		}
		apbm_tree_free(&g.tree);
		apb_paged_close(g.pb);
	}
	pthread_mutex_destroy(&fs.gen_lock);
	close(fd);
	return 0;
}
