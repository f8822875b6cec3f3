/*
 * check_paged_shared.c - apb_paged_open_shared: a second bundle on the
 * first one's cache and budget (the mount's reload).  Unchanged models keep
 * their pages (hits, no misses), changed ones read the new bytes through the
 * new handle and the old bytes through the old one, either handle may close
 * first (the shared objects are then loaded by the other), a bad bundle
 * changes nothing, and memory_used stays within the one max_memory; a
 * reader of the old handle keeps reading right bytes while newer handles
 * open and close around it (threads: run under TSan too); a reader of a
 * later generation reads ahead in its own model's cache object.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apbundle.h"
#include "tbundle.h"
#include "testutil.h"

#define MAXMEM (1u << 20)

/* v2 of t: "A" the same bytes, "B" other bytes of another size, a new "C". */
typedef struct v2 {
	char *path;
	uint8_t *b, *c;
	size_t nb, nc;
} v2;

static void build_v2(const tb *t, v2 *v)
{
	apb_builder *bb;
	v->path = tu_path("t2.apbundle");
	v->nb = 120000;
	v->nc = 5000;
	v->b = malloc(v->nb);
	v->c = malloc(v->nc);
	ck_assert(v->b && v->c);
	tu_fill_random(v->b, v->nb, 99);
	tu_fill_random(v->c, v->nc, 98);
	bb = apb_builder_new(v->path);
	ck_assert_ptr_nonnull(bb);
	ck_assert_int_eq(apb_builder_add_model(bb, "A", t->data[0], t->size[0]), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "B", v->b, v->nb), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "C", v->c, v->nc), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
}

static void free_v2(v2 *v)
{
	free(v->b);
	free(v->c);
	free(v->path);
}

/* Reads model name of pb whole and compares it with want[0..n). */
static void read_eq(apb_paged *pb, const char *name, const uint8_t *want, size_t n)
{
	uint8_t *buf = malloc(n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(apb_paged_read(pb, name, buf, n + 1, 0), (ssize_t)n);
	ck_assert(memcmp(buf, want, n) == 0);
	free(buf);
}

static void open_pair(tb *t, v2 *v, apb_paged **p1, apb_paged **p2)
{
	const size_t sizes[2] = { 200000, 100000 };
	tb_build(t, 2, sizes, 0);
	build_v2(t, v);
	*p1 = tb_open(t, MAXMEM, 4096, APB_EVICT_LRU, false);
	read_whole(*p1, t, 0);
	read_whole(*p1, t, 1);
	ck_assert_int_eq(apb_paged_open_shared(*p1, v->path, NULL, p2), 0);
	ck_assert_uint_eq(apb_paged_generation(*p1), 1);
	ck_assert_uint_eq(apb_paged_generation(*p2), 2);
}

START_TEST(unchanged_model_keeps_its_pages)
{
	apb_paging_stats s0, s1;
	apb_paged *p1, *p2;
	tb t;
	v2 v;
	open_pair(&t, &v, &p1, &p2);
	apb_paged_stats(p1, &s0);
	read_eq(p2, "A", t.data[0], t.size[0]);
	apb_paged_stats(p2, &s1);
	ck_assert_uint_eq(s1.misses, s0.misses);
	ck_assert_uint_gt(s1.hits, s0.hits);
	ck_assert(apb_paged_is_cached(p2, "A"));
	read_eq(p2, "B", v.b, v.nb);           /* changed: the new bytes */
	read_eq(p2, "C", v.c, v.nc);
	read_eq(p1, "B", t.data[1], t.size[1]); /* the old handle: the old bytes */
	ck_assert_int_eq(apb_paged_find(p1, "C"), -ENOENT);
	check_budget(p2, MAXMEM);
	apb_paged_close(p1);                    /* hands "A" to p2 */
	apb_paged_clear_cache(p2);
	read_eq(p2, "A", t.data[0], t.size[0]);  /* loaded through p2 now */
	read_eq(p2, "B", v.b, v.nb);
	check_budget(p2, MAXMEM);
	apb_paged_close(p2);
	free_v2(&v);
	tb_free(&t);
}
END_TEST

START_TEST(new_handle_closes_first)
{
	apb_paged *p1, *p2;
	tb t;
	v2 v;
	open_pair(&t, &v, &p1, &p2);
	read_eq(p2, "B", v.b, v.nb);
	apb_paged_close(p2);                    /* "A" goes back to p1 */
	read_eq(p1, "A", t.data[0], t.size[0]);
	apb_paged_clear_cache(p1);
	read_eq(p1, "A", t.data[0], t.size[0]);
	read_eq(p1, "B", t.data[1], t.size[1]);
	check_budget(p1, MAXMEM);
	apb_paged_close(p1);
	free_v2(&v);
	tb_free(&t);
}
END_TEST

START_TEST(chain_of_generations)
{
	apb_paged *p[4];
	tb t;
	v2 v;
	open_pair(&t, &v, &p[0], &p[1]);
	ck_assert_int_eq(apb_paged_open_shared(p[1], t.path, NULL, &p[2]), 0);
	ck_assert_int_eq(apb_paged_open_shared(p[2], v.path, NULL, &p[3]), 0);
	ck_assert_uint_eq(apb_paged_generation(p[3]), 4);
	apb_paged_close(p[1]);                  /* a middle one first */
	apb_paged_close(p[3]);
	apb_paged_clear_cache(p[0]);
	read_eq(p[0], "A", t.data[0], t.size[0]);
	read_eq(p[2], "B", t.data[1], t.size[1]);
	read_eq(p[0], "B", t.data[1], t.size[1]);
	apb_paged_close(p[0]);
	read_eq(p[2], "A", t.data[0], t.size[0]);
	check_budget(p[2], MAXMEM);
	apb_paged_close(p[2]);
	free_v2(&v);
	tb_free(&t);
}
END_TEST

START_TEST(bad_bundle_changes_nothing)
{
	const size_t sizes[2] = { 200000, 100000 };
	char *bad = tu_path("bad.apbundle");
	apb_paged *p1, *p2 = (apb_paged *)1;
	FILE *f;
	tb t;
	tb_build(&t, 2, sizes, 0);
	p1 = tb_open(&t, MAXMEM, 4096, APB_EVICT_LRU, false);
	read_whole(p1, &t, 0);
	f = fopen(bad, "wb");
	ck_assert_ptr_nonnull(f);
	fwrite("APBUNDLE", 1, 8, f);
	fclose(f);
	ck_assert_int_lt(apb_paged_open_shared(p1, bad, NULL, &p2), 0);
	ck_assert_ptr_null(p2);
	ck_assert_str_ne(apb_last_error(), "");
	ck_assert_int_eq(apb_paged_open_shared(p1, "/nonexistent/x.apbundle", NULL, &p2), -ENOENT);
	ck_assert_int_eq(apb_paged_open_shared(NULL, t.path, NULL, &p2), -EINVAL);
	ck_assert(apb_paged_is_cached(p1, "A"));
	read_whole(p1, &t, 0);
	read_whole(p1, &t, 1);
	apb_paged_close(p1);
	free(bad);
	tb_free(&t);
}
END_TEST

typedef struct reader {
	apb_paged *pb;
	const tb *t;
	int stop;       /* atomic */
	long rounds;
} reader;

/* Reads "A" and "B" of the old handle, clearing the cache now and then,
 * so that loads run through whichever handle "A" is bound to. */
static void *read_loop(void *arg)
{
	reader *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		read_eq(r->pb, "A", r->t->data[0], r->t->size[0]);
		read_eq(r->pb, "B", r->t->data[1], r->t->size[1]);
		if (++r->rounds % 3 == 0)
			apb_paged_clear_cache(r->pb);
	}
	return NULL;
}

START_TEST(reader_across_opens_and_closes)
{
	apb_paged *p1, *p2;
	pthread_t th;
	reader r = { 0 };
	tb t;
	v2 v;
	open_pair(&t, &v, &p1, &p2);
	r.pb = p1;
	r.t = &t;
	ck_assert_int_eq(pthread_create(&th, NULL, read_loop, &r), 0);
	for (int i = 0; i < 10; i++) {
		apb_paged *next;
		read_eq(p2, "A", t.data[0], t.size[0]);
		read_eq(p2, "B", v.b, v.nb);
		ck_assert_int_eq(apb_paged_open_shared(p2, i % 2 ? v.path : t.path, NULL, &next), 0);
		apb_paged_close(p2);    /* its "A" goes to next, after loads in flight */
		p2 = next;
		if (i % 2 == 0) {       /* next is v1 again: every model shared with p1 */
			read_eq(p2, "B", t.data[1], t.size[1]);
			apb_paged_close(p2);
			ck_assert_int_eq(apb_paged_open_shared(p1, v.path, NULL, &p2), 0);
		}
		check_budget(p1, MAXMEM);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_gt(r.rounds, 0);
	apb_paged_close(p2);
	read_eq(p1, "A", t.data[0], t.size[0]);
	apb_paged_close(p1);
	free_v2(&v);
	tb_free(&t);
}
END_TEST

/* Bytes of model i of pb in the cache now. */
static uint64_t cached(apb_paged *pb, size_t i)
{
	apb_model_stats ms;
	ck_assert_int_eq(apb_paged_model_stats(pb, i, &ms), 0);
	return ms.cached_bytes;
}

/*
 * A reader of a later generation reads ahead in its own model's cache
 * object: p2's "B" is a new object (not p1's "B", which has p2's index).
 * After sequential reads of its first 24 KiB (inside its first 64 KiB
 * load unit) through an apb_reader of p2's "B", the worker's readahead
 * brings the rest of it (120000 bytes, waited for up to 10 s) into the
 * cache, nothing of p1's "B" comes in, and every byte read is right.
 */
START_TEST(reader_of_a_later_generation_reads_ahead)
{
	const size_t sizes[2] = { 200000, 100000 }, head = 3 * 8192;
	apb_reader_stats rs;
	apb_paged *p1, *p2;
	apb_reader *rd;
	uint8_t buf[8192];
	ssize_t b;
	tb t;
	v2 v;
	tb_build(&t, 2, sizes, 0);
	build_v2(&t, &v);
	p1 = tb_open(&t, MAXMEM, 4096, APB_EVICT_LRU, true);
	ck_assert_int_eq(apb_paged_open_shared(p1, v.path, NULL, &p2), 0);
	b = apb_paged_find(p2, "B");
	ck_assert_int_eq(b, apb_paged_find(p1, "B"));
	ck_assert_int_eq(apb_reader_open(p2, (size_t)b, &rd), 0);
	for (size_t off = 0; off < v.nb; off += sizeof buf) {
		size_t n = v.nb - off < sizeof buf ? v.nb - off : sizeof buf;
		ck_assert_int_eq(apb_reader_read(rd, buf, sizeof buf, off), (ssize_t)n);
		ck_assert(memcmp(buf, v.b + off, n) == 0);
		if (off + n != head)
			continue;
		apb_reader_info(rd, &rs);
		ck_assert_uint_gt(rs.window, 0);
		for (int ms = 0; ms < 10000 && cached(p2, (size_t)b) < v.nb; ms += 10)
			usleep(10000);
		ck_assert_uint_eq(cached(p2, (size_t)b), v.nb);
	}
	apb_reader_close(rd);
	apb_paged_close(p2);    /* stops its prefetcher: no readahead in flight */
	ck_assert_uint_eq(cached(p1, (size_t)b), 0);
	check_budget(p1, MAXMEM);
	apb_paged_close(p1);
	free_v2(&v);
	tb_free(&t);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("paged_shared");
	TCase *tc = tcase_create("shared");
	tu_add_fixture(tc);
	tcase_add_test(tc, unchanged_model_keeps_its_pages);
	tcase_add_test(tc, new_handle_closes_first);
	tcase_add_test(tc, chain_of_generations);
	tcase_add_test(tc, bad_bundle_changes_nothing);
	tcase_add_test(tc, reader_across_opens_and_closes);
	tcase_add_test(tc, reader_of_a_later_generation_reads_ahead);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
