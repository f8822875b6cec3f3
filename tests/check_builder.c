/*
 * check_builder.c - tests of the writer (format_write.c, builder.c,
 * builder_meta.c): layout and contents of what it builds.
 *
 * Bundles are built with apb_builder_* and checked byte by byte with json-c
 * and xxhash directly (tests/rawbundle.c), independently of the library's
 * own reader: header, manifest key order and padding, alignment, model
 * bytes, checksums, block tables; then reproducibility, metadata, argument
 * errors, -EFBIG and a sparse source over 4 GiB.  Atomicity under failures
 * and cancellation, and the temporary file's flock, are tested in
 * check_builder_atomic.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <valgrind/valgrind.h>
#include <xxhash.h>

#include "apbundle.h"
#include "format_write.h"
#include "internal.h"
#include "rawbundle.h"
#include "testutil.h"

static const char *const top_keys[] = { "format", "version", "alignment", "model_count", "manifest_checksum", "models", NULL };

/* ---------------------------------------------------------------- */

static const uint64_t odd_sizes[] = { 0, 1, 65537, 65536, 131072, 4095, 4097, 200001 };
#define N_ODD (sizeof odd_sizes / sizeof odd_sizes[0])

static void build_odd(const char *out, uint32_t align, uint32_t bs, bool from_files, uint8_t **datas)
{
	apb_builder *bb = apb_builder_new(out);
	char name[64];

	ck_assert_ptr_nonnull(bb);
	ck_assert_int_eq(apb_builder_set_alignment(bb, align), 0);
	ck_assert_int_eq(apb_builder_set_block_size(bb, bs), 0);
	for (size_t i = 0; i < N_ODD; i++) {
		datas[i] = malloc(odd_sizes[i] + 1);
		tu_fill_random(datas[i], odd_sizes[i], i + 1);
		snprintf(name, sizeof name, "dir%zu/sub/m%zu.bin", i % 3, i);
		if (from_files) {
			char srcname[32];
			snprintf(srcname, sizeof srcname, "src%zu.bin", i);
			char *src = tu_path(srcname);
			tu_write_file(src, datas[i], odd_sizes[i]);
			ck_assert_int_eq(apb_builder_add_file(bb, name, src), 0);
			free(src);
		} else {
			ck_assert_int_eq(apb_builder_add_model(bb, name, datas[i], odd_sizes[i]), 0);
		}
	}
	ck_assert_msg(apb_builder_build(bb) == 0, "build: %s", apb_last_error());
	apb_builder_free(bb);
}

static void check_odd(const char *out, uint32_t align, uint32_t bs, uint8_t **datas)
{
	raw_bundle rb;
	char name[64];
	uint64_t prev_end = 0;

	raw_open(&rb, out);
	assert_keys(rb.man, top_keys);
	ck_assert_str_eq(json_object_get_string(jget(rb.man, "format")), "apbundle");
	ck_assert_int_eq(jint(rb.man, "version"), 1);
	ck_assert_int_eq(jint(rb.man, "alignment"), align);
	ck_assert_int_eq(jint(rb.man, "model_count"), N_ODD);
	ck_assert_uint_eq(rb.data_start % align, 0);
	for (size_t i = 0; i < N_ODD; i++) {
		snprintf(name, sizeof name, "dir%zu/sub/m%zu.bin", i % 3, i);
		check_model(&rb, i, name, datas[i], odd_sizes[i], align, bs);
		json_object *m = model_at(&rb, i);
		const char *mk[] = { "name", "offset", "size", "checksum",
		                     odd_sizes[i] > bs ? "blocks" : NULL, NULL };
		assert_keys(m, mk);
		uint64_t off = (uint64_t)jint(m, "offset");
		ck_assert_uint_ge(off, prev_end); /* in order, no overlap */
		for (uint64_t p = prev_end; p < off; p++)
			ck_assert_uint_eq(rb.file[rb.data_start + p], 0);
		prev_end = off + odd_sizes[i];
		free(datas[i]);
	}
	raw_close(&rb);
}

START_TEST(test_roundtrip_memory)
{
	uint8_t *datas[N_ODD];
	char *out = tu_path("m.apbundle");
	build_odd(out, 4096, 65536, false, datas);
	check_odd(out, 4096, 65536, datas);
	struct stat st;
	ck_assert_int_eq(stat(out, &st), 0);
	mode_t um = umask(0);
	umask(um);
	ck_assert_uint_eq(st.st_mode & 0777, 0644 & ~um);
	free(out);
}
END_TEST

START_TEST(test_roundtrip_files_small_blocks)
{
	static const uint32_t aligns[] = { 1, 8, 512, 65536 };
	uint8_t *datas[N_ODD];
	char *out = tu_path("f.apbundle");
	for (size_t a = 0; a < 4; a++) {
		build_odd(out, aligns[a], 512, true, datas);
		check_odd(out, aligns[a], 512, datas);
	}
	free(out);
}
END_TEST

START_TEST(test_many_models)
{
	char *out = tu_path("many.apbundle");
	apb_builder *bb = apb_builder_new(out);
	char name[64];
	uint8_t buf[700];
	raw_bundle rb;

	ck_assert_int_eq(apb_builder_set_alignment(bb, 64), 0);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 512), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "group%d/model-%04d", i % 10, i);
		tu_fill_random(buf, sizeof buf, (uint64_t)i);
		ck_assert_int_eq(apb_builder_add_model(bb, name, buf, (size_t)(i % 700)), 0);
	}
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	raw_open(&rb, out);
	ck_assert_int_eq(jint(rb.man, "model_count"), 1000);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "group%d/model-%04d", i % 10, i);
		tu_fill_random(buf, sizeof buf, (uint64_t)i);
		check_model(&rb, (size_t)i, name, buf, (uint64_t)(i % 700), 64, 512);
	}
	raw_close(&rb);
	free(out);
}
END_TEST

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 100,000 names: the name index and layout stay usable at scale (the time is
 * printed for the log; speed is measured by benchmarks, never asserted here). */
START_TEST(test_100k_names)
{
	char *out = tu_path("100k.apbundle");
	apb_builder *bb = apb_builder_new(out);
	char name[64];
	double t0 = now_s();

	ck_assert_int_eq(apb_builder_set_alignment(bb, 1), 0);
	for (int i = 0; i < 100000; i++) {
		snprintf(name, sizeof name, "m/%d", i);
		ck_assert_int_eq(apb_builder_add_model(bb, name, name, strlen(name)), 0);
	}
	ck_assert_int_eq(apb_builder_add_model(bb, "m/99999", "x", 1), APB_E_DUPLICATE);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	double dt = now_s() - t0;
	fprintf(stderr, "# adding and building 100,000 models took %.2f s\n", dt);
	raw_bundle rb;
	raw_open(&rb, out);
	ck_assert_int_eq(jint(rb.man, "model_count"), 100000);
	check_model(&rb, 99999, "m/99999", "m/99999", 7, 1, 65536);
	raw_close(&rb);
	free(out);
}
END_TEST

/* Builds a small fixed bundle (optionally with a timestamp) at out. */
static void build_fixed(const char *out, bool stamp)
{
	apb_builder *bb = apb_builder_new(out);
	uint8_t buf[3000];

	tu_fill_random(buf, sizeof buf, 42);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 1024), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "a", buf, sizeof buf), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "b/c", buf, 10), 0);
	ck_assert_int_eq(apb_builder_set_description(bb, "fixed \"bundle\" a/b"), 0);
	apb_builder_set_timestamp(bb, stamp);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
}

START_TEST(test_reproducible)
{
	char *p1 = tu_path("r1.apbundle"), *p2 = tu_path("r2.apbundle");
	size_t l1, l2;
	uint8_t *b1, *b2;
	raw_bundle rb;

	unsetenv("SOURCE_DATE_EPOCH");
	build_fixed(p1, false);
	sleep(1);
	build_fixed(p2, false);
	b1 = tu_read_file(p1, &l1);
	b2 = tu_read_file(p2, &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert_int_eq(memcmp(b1, b2, l1), 0);
	free(b1);
	free(b2);
	raw_open(&rb, p1);
	const char *keys[] = { "format", "version", "alignment", "model_count", "manifest_checksum", "description", "models", NULL };
	assert_keys(rb.man, keys);
	ck_assert_str_eq(json_object_get_string(jget(rb.man, "description")), "fixed \"bundle\" a/b");
	raw_close(&rb);

	setenv("SOURCE_DATE_EPOCH", "1700000123", 1);
	build_fixed(p1, true);
	raw_open(&rb, p1);
	const char *tkeys[] = { "format", "version", "alignment", "model_count", "manifest_checksum", "description",
	                        "created_at", "models", NULL };
	assert_keys(rb.man, tkeys);
	ck_assert_int_eq(jint(rb.man, "created_at"), 1700000123);
	raw_close(&rb);
	setenv("SOURCE_DATE_EPOCH", "12abc", 1);
	apb_builder *bb = apb_builder_new(p2);
	apb_builder_set_timestamp(bb, true);
	ck_assert_int_eq(apb_builder_build(bb), -EINVAL);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "SOURCE_DATE_EPOCH"));
	apb_builder_free(bb);
	unsetenv("SOURCE_DATE_EPOCH");
	time_t before = time(NULL);
	build_fixed(p1, true);
	raw_open(&rb, p1);
	ck_assert_int_ge(jint(rb.man, "created_at"), before);
	ck_assert_int_le(jint(rb.man, "created_at"), time(NULL));
	raw_close(&rb);
	free(p1);
	free(p2);
}
END_TEST

START_TEST(test_metadata_json)
{
	char *out = tu_path("md.apbundle");
	apb_builder *bb = apb_builder_new(out);
	apb_kv hp[] = { { "layers", "6" }, { "heads", "8" }, { "dim", "512" } };
	apb_kv cu[] = { { "license", "MIT/x" } };
	apb_metadata md = { .version = "1.2", .architecture = "transformer", .hyperparameters = hp,
	                    .n_hyperparameters = 3, .custom = cu, .n_custom = 1 };
	apb_metadata partial = { .architecture = "cnn" };
	apb_kv dup[] = { { "k", "1" }, { "k", "2" } };
	apb_metadata bad = { .hyperparameters = dup, .n_hyperparameters = 2 };
	apb_kv badutf[] = { { "k", "\xc3\x28" } };
	raw_bundle rb;

	ck_assert_int_eq(apb_builder_add_model(bb, "enc", "abc", 3), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "dec", "abcd", 4), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "plain", "", 0), 0);
	ck_assert_int_eq(apb_builder_set_metadata(bb, "nope", &md), -ENOENT);
	ck_assert_int_eq(apb_builder_set_metadata(bb, "enc", &bad), -EINVAL);
	bad.hyperparameters = badutf;
	bad.n_hyperparameters = 1;
	ck_assert_int_eq(apb_builder_set_metadata(bb, "enc", &bad), -EINVAL);
	ck_assert_int_eq(apb_builder_set_metadata(bb, "enc", &partial), 0);
	ck_assert_int_eq(apb_builder_set_metadata(bb, "enc", &md), 0); /* replaces */
	ck_assert_int_eq(apb_builder_set_metadata(bb, "dec", &partial), 0);
	hp[0].value = "changed after the call"; /* deep copy: must not show */
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	raw_open(&rb, out);
	json_object *m = jget(model_at(&rb, 0), "metadata");
	const char *keys[] = { "version", "architecture", "hyperparameters", "custom", NULL };
	assert_keys(m, keys);
	ck_assert_str_eq(json_object_get_string(jget(m, "version")), "1.2");
	ck_assert_str_eq(json_object_get_string(jget(m, "architecture")), "transformer");
	const char *hk[] = { "dim", "heads", "layers", NULL }; /* sorted */
	assert_keys(jget(m, "hyperparameters"), hk);
	ck_assert_str_eq(json_object_get_string(jget(jget(m, "hyperparameters"), "layers")), "6");
	ck_assert_str_eq(json_object_get_string(jget(jget(m, "custom"), "license")), "MIT/x");
	m = jget(model_at(&rb, 1), "metadata");
	const char *pk[] = { "architecture", "hyperparameters", "custom", NULL };
	assert_keys(m, pk);
	ck_assert_int_eq(json_object_object_length(jget(m, "custom")), 0);
	ck_assert_int_eq(json_object_object_get_ex(model_at(&rb, 2), "metadata", NULL), 0);
	ck_assert_ptr_null(strstr((char *)rb.file, "\\/")); /* NOSLASHESCAPE */
	raw_close(&rb);
	free(out);
}
END_TEST

START_TEST(test_argument_errors)
{
	char *out = tu_path("e.apbundle");
	apb_builder *bb = apb_builder_new(out);
	char *missing = tu_path("missing");

	ck_assert_ptr_null(apb_builder_new(NULL));
	ck_assert_int_eq(apb_builder_set_alignment(bb, 0), -EINVAL);
	ck_assert_int_eq(apb_builder_set_alignment(bb, 3000), -EINVAL);
	ck_assert_int_eq(apb_builder_set_alignment(bb, 1u << 31), -EINVAL);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 256), -EINVAL);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 1000), -EINVAL);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 1u << 31), -EINVAL);
	ck_assert_int_eq(apb_builder_set_description(bb, "\xff"), -EINVAL);
	ck_assert_int_eq(apb_builder_add_file(bb, "m", missing), -ENOENT);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "missing"));
	ck_assert_int_eq(apb_builder_add_file(bb, "m", tu_tmpdir()), -EISDIR);
	ck_assert_int_eq(apb_builder_add_file(bb, "m", "/dev/null"), -EINVAL);
	ck_assert_int_eq(apb_builder_add_file(bb, "m", NULL), -EINVAL);
	ck_assert_int_eq(apb_builder_set_description(bb, NULL), 0);
	ck_assert_int_eq(apb_builder_build(NULL), -EINVAL);
	apb_builder_free(bb);
	apb_builder_free(NULL);
	ck_assert_int_eq(access(out, F_OK), -1);
	free(out);
	free(missing);
}
END_TEST

START_TEST(test_efbig)
{
	apbi_wmodel w[2] = { { .name = "a", .size = (uint64_t)INT64_MAX - 100 }, { .name = "b", .size = 1 } };
	apbi_wbundle wb = { .alignment = 4096, .block_size = 65536, .n_models = 2, .models = w };
	char *text = NULL, *out = tu_path("big.apbundle");
	size_t len;
	static const uint8_t dummy[1];

	ck_assert_int_eq(apbi_layout_plan(&wb), -EFBIG);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "\"b\""));
	wb.n_models = 1; /* the model fits alone, its block table does not */
	w[0].size = (uint64_t)INT64_MAX - 16;
	wb.block_size = 1u << 30;
	ck_assert_int_eq(apbi_layout_plan(&wb), -EFBIG);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "block table"));
	/* a data section that fits alone, but not after the header and manifest */
	w[0] = (apbi_wmodel){ .name = "a", .size = 10, .n_blocks = 1 };
	wb.alignment = 1;
	wb.data_size = (uint64_t)INT64_MAX - 10;
	ck_assert_int_eq(apbi_manifest_encode(&wb, &text, &len), -EFBIG);
	ck_assert_ptr_null(text);

	/* Through the builder: sizes are only looked at, never read. */
	apb_builder *bb = apb_builder_new(out);
	ck_assert_int_eq(apbi_builder_add_ref(bb, "x", dummy, (size_t)1 << 62), 0);
	ck_assert_int_eq(apbi_builder_add_ref(bb, "y", dummy, (size_t)1 << 62), 0);
	ck_assert_int_eq(apb_builder_build(bb), -EFBIG);
	apb_builder_free(bb);
	ck_assert_int_eq(access(out, F_OK), -1);
	free(out);
}
END_TEST

/* Reads len bytes at off of path. */
static void pread_at(int fd, void *buf, size_t len, uint64_t off)
{
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
}

START_TEST(test_sparse_over_4g)
{
	const uint64_t big = 5ull << 30;
	char *src = tu_path("sparse.bin"), *out = tu_path("s.apbundle");
	static const uint64_t marks[] = { 0, (4ull << 30) + 12345, (5ull << 30) - 8 };
	int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint8_t got[8], zeros[65536] = { 0 }, blk[65536];
	raw_bundle rb;

	if (RUNNING_ON_VALGRIND) { /* hashing 5 GiB takes minutes there; run in the native and ASan builds */
		fprintf(stderr, "# sparse 5 GiB test skipped under valgrind\n");
		close(fd);
		free(src);
		free(out);
		return;
	}
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)big), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pwrite(fd, "MARK0123", 8, (off_t)marks[i]), 8);
	close(fd);
	apb_builder *bb = apb_builder_new(out);
	ck_assert_int_eq(apb_builder_add_model(bb, "head", "h", 1), 0);
	ck_assert_int_eq(apb_builder_add_file(bb, "huge", src), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "after", "after4g", 7), 0);
	double t0 = now_s();
	ck_assert_msg(apb_builder_build(bb) == 0, "%s", apb_last_error());
	double dt = now_s() - t0;
	fprintf(stderr, "# building a bundle with a sparse 5 GiB model took %.2f s\n", dt);
	apb_builder_free(bb);
	ck_assert_msg(dt < 40.0, "5 GiB build took %.1f s", dt);

	raw_open_ex(&rb, out, true); /* only the manifest: the file is 5 GiB */
	fd = open(out, O_RDONLY);
	uint64_t ds = rb.data_start;
	json_object *h = model_at(&rb, 1), *a = model_at(&rb, 2);
	ck_assert_uint_eq((uint64_t)jint(h, "offset"), 4096);
	ck_assert_uint_eq((uint64_t)jint(h, "size"), big);
	ck_assert_uint_eq((uint64_t)jint(a, "offset"), 4096 + big);
	for (int i = 0; i < 3; i++) {
		pread_at(fd, got, 8, ds + 4096 + marks[i]);
		ck_assert_int_eq(memcmp(got, "MARK0123", 8), 0);
	}
	pread_at(fd, got, 7, ds + 4096 + big);
	ck_assert_int_eq(memcmp(got, "after4g", 7), 0);
	char sum[22];
	apbi_checksum_format(XXH3_64bits("after4g", 7), sum);
	ck_assert_str_eq(json_object_get_string(jget(a, "checksum")), sum);
	/* Block table: a zero block and the block of the mark above 4 GiB. */
	uint64_t toff = (uint64_t)jint(jget(h, "blocks"), "checksums_offset");
	ck_assert_uint_ge(toff, 4096 + big + 7);
	pread_at(fd, got, 8, ds + toff + 8 * 1000);
	ck_assert_uint_eq(rd_le(got, 8), XXH3_64bits(zeros, sizeof zeros));
	uint64_t k = marks[1] / 65536;
	pread_at(fd, blk, sizeof blk, ds + 4096 + k * 65536);
	pread_at(fd, got, 8, ds + toff + 8 * k);
	ck_assert_uint_eq(rd_le(got, 8), XXH3_64bits(blk, sizeof blk));
	close(fd);
	raw_close(&rb);
	free(src);
	free(out);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("builder");
	TCase *tc = tcase_create("builder");

	tu_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_roundtrip_memory);
	tcase_add_test(tc, test_roundtrip_files_small_blocks);
	tcase_add_test(tc, test_many_models);
	tcase_add_test(tc, test_100k_names);
	tcase_add_test(tc, test_reproducible);
	tcase_add_test(tc, test_metadata_json);
	tcase_add_test(tc, test_argument_errors);
	tcase_add_test(tc, test_efbig);
	tcase_add_test(tc, test_sparse_over_4g);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
