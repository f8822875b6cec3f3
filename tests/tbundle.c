/*
 * tbundle.c - test bundles for the PagedBundle suites (see tbundle.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tbundle.h"
#include "testutil.h"

/** Builds a bundle of n models with the given sizes (block_size 0: default). */
void tb_build(tb *t, int n, const size_t *sizes, uint32_t block_size)
{
	apb_builder *bb;
	memset(t, 0, sizeof *t);
	t->path = tu_path("t.apbundle");
	t->n = n;
	bb = apb_builder_new(t->path);
	ck_assert_ptr_nonnull(bb);
	if (block_size)
		ck_assert_int_eq(apb_builder_set_block_size(bb, block_size), 0);
	for (int i = 0; i < n; i++) {
		snprintf(t->names[i], sizeof t->names[i], "%c", 'A' + i);
		t->size[i] = sizes[i];
		t->data[i] = malloc(sizes[i] ? sizes[i] : 1);
		tu_fill_random(t->data[i], sizes[i], (uint64_t)i + 1);
		ck_assert_int_eq(apb_builder_add_model(bb, t->names[i], t->data[i], sizes[i]), 0);
	}
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
}

/** Frees what tb_build allocated (not the file). */
void tb_free(tb *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->data[i]);
	free(t->path);
}

/** Opens the bundle with these settings; fails the test on error. */
apb_paged *tb_open(const tb *t, uint64_t max_memory, uint32_t page_size,
                          apb_eviction ev, bool prefetch)
{
	apb_paging_config cfg;
	apb_paged *pb = NULL;
	apb_paging_config_init(&cfg);
	cfg.max_memory = max_memory;
	cfg.page_size = page_size;
	cfg.eviction = ev;
	cfg.prefetch = prefetch;
	ck_assert_msg(apb_paged_open(t->path, &cfg, &pb) == 0, "open: %s", apb_last_error());
	return pb;
}

/** Reads model i whole through apb_paged_read and checks every byte. */
void read_whole(apb_paged *pb, const tb *t, int i)
{
	uint8_t *buf = malloc(t->size[i] + 1);
	ssize_t r = apb_paged_read(pb, t->names[i], buf, t->size[i] + 1, 0);
	ck_assert_msg(r == (ssize_t)t->size[i], "read %s: %zd (%s)", t->names[i], r, apb_last_error());
	ck_assert_mem_eq(buf, t->data[i], t->size[i]);
	free(buf);
}

/** get_model + check + release. */
void get_whole(apb_paged *pb, const tb *t, int i)
{
	const void *d;
	size_t sz;
	ck_assert_msg(apb_paged_get_model(pb, t->names[i], &d, &sz) == 0, "get %s: %s",
	              t->names[i], apb_last_error());
	ck_assert_uint_eq(sz, t->size[i]);
	ck_assert_mem_eq(d, t->data[i], sz);
	apb_paged_release(pb, d);
}

/** Asserts memory_used <= max. */
void check_budget(apb_paged *pb, uint64_t max)
{
	apb_paging_stats st;
	apb_paged_stats(pb, &st);
	ck_assert_uint_le(st.memory_used, max);
}

/** Asserts iov[0..n) holds exactly want[0..len). */
void check_iov(const struct iovec *iov, int n, const uint8_t *want, ssize_t len)
{
	ssize_t at = 0;
	for (int i = 0; i < n; i++) {
		ck_assert_mem_eq(iov[i].iov_base, want + at, iov[i].iov_len);
		at += (ssize_t)iov[i].iov_len;
	}
	ck_assert_int_eq(at, len);
}

/** Polls (bounded) until the worker is done with model name. */
bool wait_cached(apb_paged *pb, const char *name)
{
	for (int i = 0; i < 400; i++) {
		if (apb_paged_is_cached(pb, name))
			return true;
		usleep(5000);
	}
	return false;
}
