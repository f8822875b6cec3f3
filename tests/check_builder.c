/*
 * check_builder.c - tests of the writer (format_write.c, builder.c).
 *
 * Bundles are built with apb_builder_* and checked byte by byte with json-c
 * and xxhash directly, independently of the library's own reader: header,
 * manifest key order and padding, alignment, model bytes, checksums, block
 * tables; then reproducibility, -EFBIG and atomicity under
 * failures (changing sources, unwritable targets, injected I/O faults),
 * under cancellation (after every write in turn, inside a hole) and the
 * flock the builder holds on its temporary file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <valgrind/valgrind.h>
#include <xxhash.h>

#include "apbundle.h"
#include "format_write.h"
#include "internal.h"
#include "testutil.h"

/* A built bundle read back raw. */
typedef struct {
	uint8_t *file;
	size_t len;
	uint32_t mlen;
	uint64_t data_start;
	json_object *man;
} raw_bundle;

static uint64_t rd_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;
	ck_assert_msg(json_object_object_get_ex(o, key, &v), "missing key %s", key);
	return v;
}

static int64_t jint(json_object *o, const char *key)
{
	return json_object_get_int64(jget(o, key));
}

/* Reads path (only its header and manifest when head_only) and parses it. */
static void raw_open_ex(raw_bundle *rb, const char *path, bool head_only)
{
	if (head_only) {
		uint8_t h[16];
		int fd = open(path, O_RDONLY);
		ck_assert_int_eq(pread(fd, h, 16, 0), 16);
		rb->len = 16 + (size_t)rd_le(h + 12, 4);
		rb->file = malloc(rb->len);
		ck_assert_int_eq(pread(fd, rb->file, rb->len, 0), (ssize_t)rb->len);
		close(fd);
	} else {
		rb->file = tu_read_file(path, &rb->len);
	}
	ck_assert_uint_ge(rb->len, 16);
	ck_assert_int_eq(memcmp(rb->file, "APBUNDLE", 8), 0);
	ck_assert_uint_eq(rd_le(rb->file + 8, 4), 1);
	rb->mlen = (uint32_t)rd_le(rb->file + 12, 4);
	rb->data_start = 16 + (uint64_t)rb->mlen;
	ck_assert_uint_le(rb->data_start, rb->len);
	ck_assert_uint_eq(rb->file[16], '{');
	json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
	                       JSON_TOKENER_VALIDATE_UTF8);
	rb->man = json_tokener_parse_ex(tok, (const char *)rb->file + 16, (int)rb->mlen);
	ck_assert_msg(rb->man != NULL, "manifest does not parse");
	json_tokener_free(tok);
	size_t end = rb->mlen; /* the JSON text ends with its last '}' */
	while (end > 0 && rb->file[16 + end - 1] != '}')
		end--;
	ck_assert_uint_gt(end, 0);
	for (size_t i = end; i < rb->mlen; i++)
		ck_assert_msg(rb->file[16 + i] == ' ', "manifest padding byte %zu is not a space", i);
	ck_assert_uint_eq((16 + rb->mlen) % (uint64_t)jint(rb->man, "alignment"), 0);
}

static void raw_open(raw_bundle *rb, const char *path)
{
	raw_open_ex(rb, path, false);
}

static void raw_close(raw_bundle *rb)
{
	json_object_put(rb->man);
	free(rb->file);
}

/* Asserts that o's keys are exactly the NULL-terminated list, in order. */
static void assert_keys(json_object *o, const char *const *keys)
{
	size_t i = 0;
	json_object_object_foreach(o, k, v) {
		(void)v;
		ck_assert_msg(keys[i] != NULL, "unexpected key %s", k);
		ck_assert_str_eq(k, keys[i]);
		i++;
	}
	ck_assert_ptr_null(keys[i]);
}

static json_object *model_at(raw_bundle *rb, size_t i)
{
	return json_object_array_get_idx(jget(rb->man, "models"), i);
}

/* Checks model i of rb against name/data: placement, bytes, checksum, blocks. */
static void check_model(raw_bundle *rb, size_t i, const char *name, const void *data,
                        uint64_t size, uint32_t align, uint32_t bs)
{
	json_object *m = model_at(rb, i);
	char sum[22];
	uint64_t off, nb = size / bs + (size % bs != 0);

	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_object_get_string(jget(m, "name")), name);
	off = (uint64_t)jint(m, "offset");
	ck_assert_uint_eq((uint64_t)jint(m, "size"), size);
	ck_assert_uint_eq(off % align, 0);
	ck_assert_uint_le(rb->data_start + off + size, rb->len);
	if (data)
		ck_assert_int_eq(memcmp(rb->file + rb->data_start + off, data, size), 0);
	apbi_checksum_format(XXH3_64bits(rb->file + rb->data_start + off, size), sum);
	ck_assert_str_eq(json_object_get_string(jget(m, "checksum")), sum);
	json_object *blk = NULL;
	ck_assert_int_eq(json_object_object_get_ex(m, "blocks", &blk), nb > 1);
	if (nb <= 1)
		return;
	const char *bkeys[] = { "size", "checksums_offset", "table_checksum", NULL };
	assert_keys(blk, bkeys);
	ck_assert_uint_eq((uint64_t)jint(blk, "size"), bs);
	uint64_t toff = (uint64_t)jint(blk, "checksums_offset");
	ck_assert_uint_eq(toff % 8, 0);
	ck_assert_uint_ge(toff, off + size);
	ck_assert_uint_le(rb->data_start + toff + nb * 8, rb->len);
	/* the table is bound to the manifest: XXH3-64 of its bytes as stored */
	snprintf(sum, sizeof sum, "xxh3:%016llx",
	         (unsigned long long)XXH3_64bits(rb->file + rb->data_start + toff, nb * 8));
	ck_assert_str_eq(json_object_get_string(jget(blk, "table_checksum")), sum);
	for (uint64_t k = 0; k < nb; k++) {
		uint64_t blen = k + 1 < nb ? bs : size - k * bs;
		uint64_t want = XXH3_64bits(rb->file + rb->data_start + off + k * bs, blen);
		ck_assert_msg(rd_le(rb->file + rb->data_start + toff + 8 * k, 8) == want,
		              "model %s block %llu checksum", name, (unsigned long long)k);
	}
}

static const char *const top_keys[] = { "format", "version", "alignment", "model_count", "models", NULL };

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

START_TEST(test_100k_names_fast)
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
	ck_assert_msg(dt < (RUNNING_ON_VALGRIND ? 60.0 : 10.0), "100,000 models took %.1f s", dt);
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
	const char *keys[] = { "format", "version", "alignment", "model_count", "description", "models", NULL };
	assert_keys(rb.man, keys);
	ck_assert_str_eq(json_object_get_string(jget(rb.man, "description")), "fixed \"bundle\" a/b");
	raw_close(&rb);

	setenv("SOURCE_DATE_EPOCH", "1700000123", 1);
	build_fixed(p1, true);
	raw_open(&rb, p1);
	const char *tkeys[] = { "format", "version", "alignment", "model_count", "description",
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

/* Asserts that the test's directory holds no temporary file. */
static void assert_no_temp(void)
{
	DIR *d = opendir(tu_tmpdir());
	struct dirent *e;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "temp file %s left", e->d_name);
	closedir(d);
}

/* Asserts no temporary file and that path is absent or holds old. */
static void assert_clean(const char *path, const void *old, size_t old_len)
{
	assert_no_temp();
	if (!old) {
		ck_assert_msg(access(path, F_OK) == -1 && errno == ENOENT, "%s exists", path);
		return;
	}
	size_t len;
	uint8_t *now = tu_read_file(path, &len);
	ck_assert_uint_eq(len, old_len);
	ck_assert_int_eq(memcmp(now, old, len), 0);
	free(now);
}

/* Fault injection through the I/O seam: call number fail_at fails. */
static int io_calls, io_fail_at;
static int io_fail_errno = EIO;

static bool io_should_fail(void)
{
	return io_calls++ == io_fail_at;
}

static ssize_t f_pread(int fd, void *b, size_t l, off_t o) { return pread(fd, b, l, o); }
static ssize_t f_pwrite(int fd, const void *b, size_t l, off_t o)
{
	if (io_should_fail()) {
		errno = io_fail_errno;
		return -1;
	}
	return pwrite(fd, b, l > 1000 ? l / 2 : l, o); /* short writes must be retried */
}
static ssize_t f_read(int fd, void *b, size_t l)
{
	if (io_should_fail()) {
		errno = io_fail_errno;
		return -1;
	}
	return read(fd, b, l > 4096 ? 4096 : l); /* short reads must be retried */
}
static ssize_t f_read_eof(int fd, void *b, size_t l)
{
	return io_should_fail() ? 0 : read(fd, b, l > 4096 ? 4096 : l);
}
static int f_fsync(int fd)
{
	if (io_should_fail()) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static const apbi_io_ops faulty = { f_pread, f_pwrite, f_read, f_fsync };
static const apbi_io_ops early_eof = { f_pread, pwrite, f_read_eof, fsync };

static volatile sig_atomic_t cancel_flag; /* build_mixed's cancel flag */

/* Builds models from memory and from a file; returns the build's code. */
static int build_mixed(const char *out, const char *src)
{
	apb_builder *bb = apb_builder_new(out);
	static uint8_t buf[70000];
	int rc;

	tu_fill_random(buf, sizeof buf, 7);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 4096), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "mem", buf, sizeof buf), 0);
	ck_assert_int_eq(apb_builder_add_file(bb, "file", src), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "tail", buf, 100), 0);
	apb_builder_set_cancel(bb, &cancel_flag);
	rc = apb_builder_build(bb);
	apb_builder_free(bb);
	return rc;
}

/* Every I/O call of a build fails in turn; each failure leaves no trace. */
static void fault_sweep(const apbi_io_ops *ops, const char *out, const char *src,
                        const void *old, size_t old_len)
{
	int rc = -1, n;

	for (n = 0; n < 500 && rc != 0; n++) {
		io_calls = 0;
		io_fail_at = n;
		apbi_io_set(ops);
		rc = build_mixed(out, src);
		apbi_io_set(NULL);
		if (rc == 0)
			break;
		ck_assert_msg(rc == -EIO, "fault %d gave %d", n, rc);
		ck_assert_str_ne(apb_last_error(), "");
		if (strstr(apb_last_error(), "syncing its directory")) {
			/* Past the rename: the new bundle is complete at path. */
			raw_bundle rb;
			raw_open(&rb, out);
			ck_assert_int_eq(jint(rb.man, "model_count"), 3);
			raw_close(&rb);
			assert_no_temp();
			continue;
		}
		assert_clean(out, old, old_len);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_gt(n, 3); /* really failed several distinct calls */
}

START_TEST(test_atomic_io_faults)
{
	char *out = tu_path("a.apbundle"), *src = tu_path("src.bin");
	static uint8_t data[300000];
	raw_bundle rb;

	tu_fill_random(data, sizeof data, 3);
	tu_write_file(src, data, sizeof data);
	fault_sweep(&faulty, out, src, NULL, 0);
	raw_open(&rb, out);
	check_model(&rb, 1, "file", data, sizeof data, 4096, 4096);
	raw_close(&rb);
	/* A pre-existing bundle survives every failed build. */
	size_t old_len;
	uint8_t *old = tu_read_file(out, &old_len);
	data[0] ^= 1;
	tu_write_file(src, data, sizeof data);
	fault_sweep(&faulty, out, src, old, old_len);
	free(old);
	raw_open(&rb, out);
	check_model(&rb, 1, "file", data, sizeof data, 4096, 4096);
	raw_close(&rb);
	unlink(out);
	/* A source that ends early while being read. */
	io_calls = 0;
	io_fail_at = 3;
	apbi_io_set(&early_eof);
	ck_assert_int_eq(build_mixed(out, src), -EIO);
	apbi_io_set(NULL);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "shrank"));
	assert_clean(out, NULL, 0);
	free(out);
	free(src);
}
END_TEST

START_TEST(test_atomic_source_changes)
{
	char *out = tu_path("c.apbundle"), *src = tu_path("src.bin");
	static uint8_t data[10000];
	apb_builder *bb;

	tu_write_file(out, "OLD", 3);
	for (int grow = 0; grow < 2; grow++) {
		tu_write_file(src, data, sizeof data);
		bb = apb_builder_new(out);
		ck_assert_int_eq(apb_builder_add_model(bb, "first", data, 5000), 0);
		ck_assert_int_eq(apb_builder_add_file(bb, "f", src), 0);
		ck_assert_int_eq(truncate(src, grow ? 20000 : 9999), 0);
		ck_assert_int_eq(apb_builder_build(bb), -EIO);
		ck_assert_ptr_nonnull(strstr(apb_last_error(), "changed size"));
		apb_builder_free(bb);
		assert_clean(out, "OLD", 3);
	}
	free(out);
	free(src);
}
END_TEST

START_TEST(test_atomic_bad_targets)
{
	char *dir = tu_path("sub"), *out = tu_path("sub/x.apbundle");
	char *nodir = tu_path("nodir/x.apbundle");
	apb_builder *bb;

	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(mkdir(out, 0755), 0); /* rename over a directory fails late */
	bb = apb_builder_new(out);
	ck_assert_int_eq(apb_builder_add_model(bb, "m", "data", 4), 0);
	ck_assert_int_eq(apb_builder_build(bb), -EISDIR);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "renaming"));
	apb_builder_free(bb);
	DIR *d = opendir(dir);
	struct dirent *e;
	int entries = 0;
	while ((e = readdir(d)) != NULL)
		entries += e->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(entries, 1); /* only the directory itself, no temp file */
	ck_assert_int_eq(rmdir(out), 0);

	bb = apb_builder_new(nodir);
	ck_assert_int_eq(apb_builder_add_model(bb, "m", "data", 4), 0);
	ck_assert_int_eq(apb_builder_build(bb), -ENOENT);
	apb_builder_free(bb);

	if (geteuid() != 0) { /* root ignores directory permissions */
		ck_assert_int_eq(chmod(dir, 0555), 0);
		bb = apb_builder_new(out);
		ck_assert_int_eq(apb_builder_add_model(bb, "m", "data", 4), 0);
		ck_assert_int_eq(apb_builder_build(bb), -EACCES);
		apb_builder_free(bb);
		chmod(dir, 0755);
	}
	ck_assert_int_eq(access(out, F_OK), -1);
	free(dir);
	free(out);
	free(nodir);
}
END_TEST

/* ---- cancellation and the temp file's lock ---- */

static int cancel_after;      /* pwrite calls before the flag is set (-1: never) */
static int writes, writes_after_flag;

/* Whole writes (no short ones), setting cancel_flag after cancel_after of them. */
static ssize_t c_pwrite(int fd, const void *b, size_t l, off_t o)
{
	writes_after_flag += cancel_flag != 0;
	if (writes++ == cancel_after)
		cancel_flag = 1;
	return pwrite(fd, b, l, o);
}
static const apbi_io_ops cancelling = { f_pread, c_pwrite, read, fsync };

/* Cancels after every pwrite of a build in turn: each one leaves no trace. */
static void cancel_sweep(const char *out, const char *src, const void *old, size_t old_len)
{
	int rc = -1, n;

	for (n = 0; rc != 0; n++) {
		cancel_flag = 0;
		cancel_after = n;
		writes = writes_after_flag = 0;
		apbi_io_set(&cancelling);
		rc = build_mixed(out, src);
		apbi_io_set(NULL);
		if (rc == 0)
			break;
		ck_assert_msg(rc == -ECANCELED, "cancel after write %d gave %d (%s)", n, rc,
		              apb_last_error());
		ck_assert_ptr_nonnull(strstr(apb_last_error(), "cancelled"));
		ck_assert_int_eq(writes_after_flag, 0); /* stopped at once */
		assert_clean(out, old, old_len);
	}
	ck_assert_int_eq(writes, n); /* succeeded only once no write set the flag */
	ck_assert_int_eq(n, 10);     /* 5 file chunks, 2 memory models, 2 block tables, the head */
	cancel_flag = 0;
}

START_TEST(test_cancel)
{
	char *out = tu_path("k.apbundle"), *src = tu_path("src.bin");
	static uint8_t data[(4u << 20) + 3];
	size_t old_len;
	uint8_t *old;
	raw_bundle rb;

	tu_fill_random(data, sizeof data, 5);
	tu_write_file(src, data, sizeof data);
	cancel_flag = 1; /* set before the build: nothing is written at all */
	writes = 0;
	apbi_io_set(&cancelling);
	ck_assert_int_eq(build_mixed(out, src), -ECANCELED);
	apbi_io_set(NULL);
	ck_assert_int_eq(writes, 0);
	assert_clean(out, NULL, 0);
	cancel_sweep(out, src, NULL, 0);
	raw_open(&rb, out);
	check_model(&rb, 1, "file", data, sizeof data, 4096, 4096);
	raw_close(&rb);
	old = tu_read_file(out, &old_len); /* an existing bundle survives every cancel */
	cancel_sweep(out, src, old, old_len);
	free(old);
	free(out);
	free(src);
}
END_TEST

static uint64_t progress_bytes;

static void cancel_at_3m(void *ctx, uint64_t n)
{
	(void)ctx;
	progress_bytes += n;
	if (progress_bytes >= (3u << 20))
		cancel_flag = 1;
}

START_TEST(test_cancel_in_hole)
{
	char *out = tu_path("h.apbundle"), *src = tu_path("hole.bin");
	int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
	apb_builder *bb = apb_builder_new(out);

	ck_assert_int_eq(ftruncate(fd, 1ll << 30), 0); /* 1 GiB hole: hashed, not written */
	close(fd);
	ck_assert_int_eq(apb_builder_add_file(bb, "hole", src), 0);
	cancel_flag = 0;
	progress_bytes = 0;
	apb_builder_set_cancel(bb, &cancel_flag);
	apbi_builder_set_progress(bb, cancel_at_3m, NULL);
	ck_assert_int_eq(apb_builder_build(bb), -ECANCELED);
	ck_assert_uint_eq(progress_bytes, 3u << 20); /* stopped after the chunk that set it */
	apb_builder_free(bb);
	assert_clean(out, NULL, 0);
	cancel_flag = 0;
	free(out);
	free(src);
}
END_TEST

static int lock_probes, lock_busy;

/* Opens the one temp file in the test directory and tries to lock it. */
static void probe_lock(void)
{
	DIR *d = opendir(tu_tmpdir());
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "l.apbundle.tmp.", 15) != 0 || strlen(e->d_name) != 21)
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY);
		lock_probes++;
		lock_busy += fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
}
static ssize_t l_pwrite(int fd, const void *b, size_t l, off_t o)
{
	probe_lock();
	return pwrite(fd, b, l, o);
}
static int l_fsync(int fd)
{
	probe_lock(); /* the file's sync (temp present) and the directory's (renamed) */
	return fsync(fd);
}
static const apbi_io_ops lock_probing = { f_pread, l_pwrite, read, l_fsync };

START_TEST(test_temp_locked)
{
	char *out = tu_path("l.apbundle"), *src = tu_path("src.bin");
	static uint8_t data[3u << 20];
	int fd;

	tu_fill_random(data, sizeof data, 9);
	tu_write_file(src, data, sizeof data);
	lock_probes = lock_busy = 0;
	apbi_io_set(&lock_probing);
	ck_assert_msg(build_mixed(out, src) == 0, "%s", apb_last_error());
	apbi_io_set(NULL);
	ck_assert_int_gt(lock_probes, 5);       /* every chunk, the tables, the head, the sync */
	ck_assert_int_eq(lock_busy, lock_probes); /* locked each time it was seen */
	fd = open(out, O_RDONLY); /* once built, nothing holds the lock */
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
	close(fd);
	assert_no_temp();
	free(out);
	free(src);
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
	tcase_add_test(tc, test_100k_names_fast);
	tcase_add_test(tc, test_reproducible);
	tcase_add_test(tc, test_metadata_json);
	tcase_add_test(tc, test_argument_errors);
	tcase_add_test(tc, test_efbig);
	tcase_add_test(tc, test_atomic_io_faults);
	tcase_add_test(tc, test_atomic_source_changes);
	tcase_add_test(tc, test_atomic_bad_targets);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_cancel_in_hole);
	tcase_add_test(tc, test_temp_locked);
	tcase_add_test(tc, test_sparse_over_4g);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
