/*
 * check_bundle.c - tests of the whole-bundle API (bundle.c) over the
 * builder and the format decoder.
 *
 * Round trips through save/load and builder/load (sizes 0, 1, odd, exactly
 * one block, many blocks, 1,000 models, nested names, metadata), lookups,
 * errors, hostile names refused at add (builder and bundle), the aprender
 * legacy layout, checksum failures naming the model,
 * truncation at every byte offset and 10,000 random corruptions of a small
 * bundle: a load must fail whenever model bytes were touched, and whenever
 * it succeeds every model's bytes must be the original ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "apbundle.h"
#include "internal.h"
#include "testutil.h"

static const size_t odd_sizes[] = { 0, 1, 65537, 65536, 131072, 4095, 3 * 65536 + 17 };
#define N_ODD (sizeof odd_sizes / sizeof odd_sizes[0])

/* Asserts that b holds model name with exactly data[0..size). */
static void assert_model(const apb_bundle *b, const char *name, const void *data, size_t size)
{
	const void *got = NULL;
	size_t len = 0;

	ck_assert_msg(apb_bundle_get_model(b, name, &got, &len) == 0, "get %s: %s", name, apb_last_error());
	ck_assert_uint_eq(len, size);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(memcmp(got, data, size), 0);
}

START_TEST(test_save_load_roundtrip)
{
	char *path = tu_path("rt.apbundle"), name[64];
	apb_bundle *b = apb_bundle_new(), *l = NULL;
	uint8_t *datas[N_ODD];
	apb_model_info info;

	for (size_t i = 0; i < N_ODD; i++) {
		datas[i] = malloc(odd_sizes[i] + 1);
		tu_fill_random(datas[i], odd_sizes[i], i + 100);
		snprintf(name, sizeof name, "nested/dir%zu/model.%zu", i, odd_sizes[i]);
		ck_assert_int_eq(apb_bundle_add_model(b, name, datas[i], odd_sizes[i]), 0);
	}
	ck_assert_int_eq(apb_bundle_model_info(b, 2, &info), 0);
	ck_assert(!info.has_checksum);
	ck_assert_uint_eq(info.file_offset, 0);
	ck_assert_uint_eq(info.size, 65537);
	ck_assert_ptr_nonnull(info.metadata);
	ck_assert_int_eq(apb_bundle_save(b, path), 0);
	ck_assert_int_eq(apb_bundle_load(path, &l), 0);
	ck_assert_uint_eq(apb_bundle_model_count(l), N_ODD);
	for (size_t i = 0; i < N_ODD; i++) {
		snprintf(name, sizeof name, "nested/dir%zu/model.%zu", i, odd_sizes[i]);
		ck_assert_str_eq(apb_bundle_model_name(l, i), name);
		assert_model(l, name, datas[i], odd_sizes[i]);
		ck_assert_int_eq(apb_bundle_model_info(l, i, &info), 0);
		ck_assert(info.has_checksum);
		ck_assert_uint_eq(info.checksum, XXH3_64bits(datas[i], odd_sizes[i]));
		if (odd_sizes[i] > APB_DEFAULT_BLOCK_SIZE) /* has a block table */
			ck_assert_uint_eq(info.block_size, APB_DEFAULT_BLOCK_SIZE);
		else /* one block: the reader reports a power of two covering it */
			ck_assert_uint_ge(info.block_size, odd_sizes[i]);
		ck_assert_uint_eq(info.file_offset % APB_DEFAULT_ALIGNMENT, 0);
		ck_assert_str_eq(info.name, name);
		ck_assert_ptr_null(info.metadata->version);
		free(datas[i]);
	}
	ck_assert_ptr_null(apb_bundle_model_name(l, N_ODD));
	ck_assert_int_eq(apb_bundle_model_info(l, N_ODD, &info), -ENOENT);
	apb_bundle_free(b);
	apb_bundle_free(l);
	free(path);
}
END_TEST

START_TEST(test_thousand_models)
{
	char *path = tu_path("k.apbundle"), name[64];
	apb_bundle *b = apb_bundle_new(), *l = NULL;
	uint8_t buf[1500];

	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "layer%03d/w%d", i / 10, i);
		tu_fill_random(buf, sizeof buf, (uint64_t)i);
		ck_assert_int_eq(apb_bundle_add_model(b, name, buf, (size_t)(i * 7) % sizeof buf), 0);
	}
	ck_assert_int_eq(apb_bundle_save(b, path), 0);
	ck_assert_int_eq(apb_bundle_load(path, &l), 0);
	ck_assert_uint_eq(apb_bundle_model_count(l), 1000);
	for (int i = 999; i >= 0; i--) {
		snprintf(name, sizeof name, "layer%03d/w%d", i / 10, i);
		tu_fill_random(buf, sizeof buf, (uint64_t)i);
		assert_model(l, name, buf, (size_t)(i * 7) % sizeof buf);
		assert_model(b, name, buf, (size_t)(i * 7) % sizeof buf);
	}
	apb_bundle_free(b);
	apb_bundle_free(l);
	free(path);
}
END_TEST

START_TEST(test_metadata_roundtrip)
{
	char *p1 = tu_path("md1.apbundle"), *p2 = tu_path("md2.apbundle");
	apb_builder *bb = apb_builder_new(p1);
	apb_kv hp[] = { { "layers", "6" }, { "dim", "512" } };
	apb_kv cu[] = { { "license", "MIT" }, { "origin", "ünïcode/x" } };
	apb_metadata md = { "1.2", "transformer", hp, 2, cu, 2 };
	apb_bundle *l = NULL, *l2 = NULL;
	apb_model_info info;

	ck_assert_int_eq(apb_builder_add_model(bb, "enc", "encoder", 7), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "dec", "decoder", 7), 0);
	ck_assert_int_eq(apb_builder_set_metadata(bb, "enc", &md), 0);
	ck_assert_int_eq(apb_builder_set_description(bb, "two models"), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	ck_assert_int_eq(apb_bundle_load(p1, &l), 0);
	ck_assert_int_eq(apb_bundle_model_info(l, 0, &info), 0);
	ck_assert_str_eq(info.metadata->version, "1.2");
	ck_assert_str_eq(info.metadata->architecture, "transformer");
	ck_assert_uint_eq(info.metadata->n_hyperparameters, 2);
	ck_assert_str_eq(info.metadata->hyperparameters[0].key, "dim"); /* sorted */
	ck_assert_str_eq(info.metadata->hyperparameters[0].value, "512");
	ck_assert_str_eq(info.metadata->hyperparameters[1].key, "layers");
	ck_assert_uint_eq(info.metadata->n_custom, 2);
	ck_assert_str_eq(info.metadata->custom[1].value, "ünïcode/x");
	ck_assert_int_eq(apb_bundle_model_info(l, 1, &info), 0);
	ck_assert_uint_eq(info.metadata->n_hyperparameters, 0);
	ck_assert_ptr_null(info.metadata->version);
	/* save keeps metadata and description: the same bytes come out */
	ck_assert_int_eq(apb_bundle_save(l, p2), 0);
	size_t n1, n2;
	uint8_t *b1 = tu_read_file(p1, &n1), *b2 = tu_read_file(p2, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert_int_eq(memcmp(b1, b2, n1), 0);
	free(b1);
	free(b2);
	/* models added to a loaded bundle join it */
	ck_assert_int_eq(apb_bundle_add_model(l, "enc", "x", 1), APB_E_DUPLICATE);
	ck_assert_int_eq(apb_bundle_add_model(l, "extra/one", "xyz", 3), 0);
	ck_assert_int_eq(apb_bundle_add_model(l, "extra/one", "xyz", 3), APB_E_DUPLICATE);
	ck_assert_int_eq(apb_bundle_save(l, p2), 0);
	ck_assert_int_eq(apb_bundle_load(p2, &l2), 0);
	ck_assert_uint_eq(apb_bundle_model_count(l2), 3);
	assert_model(l2, "extra/one", "xyz", 3);
	assert_model(l2, "enc", "encoder", 7);
	ck_assert_int_eq(apb_bundle_model_info(l2, 0, &info), 0);
	ck_assert_str_eq(info.metadata->architecture, "transformer");
	apb_bundle_free(l);
	apb_bundle_free(l2);
	free(p1);
	free(p2);
}
END_TEST

START_TEST(test_errors)
{
	apb_bundle *b = apb_bundle_new(), *l = (apb_bundle *)1;
	char *missing = tu_path("missing.apbundle"), *junk = tu_path("junk");
	const void *d;
	size_t n;

	ck_assert_int_eq(apb_bundle_load(missing, &l), -ENOENT);
	ck_assert_ptr_null(l);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "missing.apbundle"));
	tu_write_file(junk, "NOTABUNDLE-------------------", 29);
	ck_assert_int_eq(apb_bundle_load(junk, &l), APB_E_BADMAGIC);
	ck_assert_int_eq(apb_bundle_load(NULL, &l), -EINVAL);
	ck_assert_int_eq(apb_bundle_add_model(b, "../up", "x", 1), APB_E_NAME);
	ck_assert_int_eq(apb_bundle_add_model(b, "a\x01", "x", 1), APB_E_NAME);
	ck_assert_int_eq(apb_bundle_add_model(b, NULL, "x", 1), -EINVAL);
	ck_assert_int_eq(apb_bundle_add_model(b, "ok", "x", 1), 0);
	ck_assert_int_eq(apb_bundle_add_model(b, "ok", "y", 1), APB_E_DUPLICATE);
	ck_assert_int_eq(apb_bundle_add_model(b, "empty", NULL, 0), 0);
	ck_assert_int_eq(apb_bundle_get_model(b, "nope", &d, &n), -ENOENT);
	ck_assert_int_eq(apb_bundle_get_model(b, "empty", &d, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(apb_bundle_save(b, missing), 0);
	ck_assert_int_eq(apb_bundle_save(b, tu_tmpdir()), -EISDIR); /* atomic: dir untouched */
	ck_assert_uint_eq(apb_bundle_model_count(NULL), 0);
	apb_bundle_free(b);
	apb_bundle_free(NULL);
	free(missing);
	free(junk);
}
END_TEST

/* Writes an aprender legacy bundle of two models; returns its path. */
static char *write_legacy(void)
{
	uint8_t buf[256], *p = buf;
	static const char *names[] = { "old/a", "b" };
	static const char *datas[] = { "legacy-A", "BB" };
	char *path = tu_path("legacy.bin");
	uint64_t off = 0;

#define PUT(v, n) do { uint64_t x_ = (v); for (int k_ = 0; k_ < (n); k_++) *p++ = (uint8_t)(x_ >> (8 * k_)); } while (0)
	memcpy(p, "APBUNDLE", 8);
	p += 8;
	PUT(1, 4);
	uint8_t *lenp = p;
	p += 8;
	uint8_t *man = p;
	PUT(1, 4);
	PUT(1700000000, 8);
	PUT(4, 4);
	memcpy(p, "desc", 4);
	p += 4;
	PUT(2, 4);
	for (int i = 0; i < 2; i++) {
		PUT(strlen(names[i]), 4);
		memcpy(p, names[i], strlen(names[i]));
		p += strlen(names[i]);
		PUT(strlen(datas[i]), 8);
		PUT(off, 8);
		off += strlen(datas[i]);
	}
	uint64_t mlen = (uint64_t)(p - man);
	uint8_t *save = p;
	p = lenp;
	PUT(mlen, 8);
	p = save;
	for (int i = 0; i < 2; i++) {
		memcpy(p, datas[i], strlen(datas[i]));
		p += strlen(datas[i]);
	}
#undef PUT
	tu_write_file(path, buf, (size_t)(p - buf));
	return path;
}

START_TEST(test_legacy_unverified)
{
	char *path = write_legacy();
	apb_bundle *l = NULL;
	apb_model_info info;

	ck_assert_msg(apb_bundle_load(path, &l) == 0, "%s", apb_last_error());
	ck_assert_uint_eq(apb_bundle_model_count(l), 2);
	assert_model(l, "old/a", "legacy-A", 8);
	assert_model(l, "b", "BB", 2);
	ck_assert_int_eq(apb_bundle_model_info(l, 0, &info), 0);
	ck_assert(!info.has_checksum);
	ck_assert_uint_eq(info.block_size, 0);
	apb_bundle_free(l);
	/* no checksums: a changed byte loads as is */
	size_t n;
	uint8_t *raw = tu_read_file(path, &n);
	raw[n - 1] = 'X';
	tu_write_file(path, raw, n);
	free(raw);
	ck_assert_int_eq(apb_bundle_load(path, &l), 0);
	assert_model(l, "b", "BX", 2);
	apb_bundle_free(l);
	free(path);
}
END_TEST

/* A small bundle (a few KiB): 3 models, one with a block table. */
typedef struct {
	uint8_t *file;
	size_t len;
	uint64_t off[3], size[3];
} small_bundle;

static const char *const small_names[] = { "w/a", "w/b", "c" };

static void small_make(small_bundle *sb, const char *path)
{
	static uint8_t data[1500];
	static const size_t sizes[] = { 100, 1500, 7 };
	apb_builder *bb = apb_builder_new(path);
	apb_bundle *l = NULL;
	apb_model_info info;

	tu_fill_random(data, sizeof data, 99);
	ck_assert_int_eq(apb_builder_set_alignment(bb, 64), 0);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 512), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(apb_builder_add_model(bb, small_names[i], data, sizes[i]), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	ck_assert_int_eq(apb_bundle_load(path, &l), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(apb_bundle_model_info(l, (size_t)i, &info), 0);
		sb->off[i] = info.file_offset;
		sb->size[i] = info.size;
	}
	apb_bundle_free(l);
	sb->file = tu_read_file(path, &sb->len);
	ck_assert_uint_lt(sb->len, 8192);
}

/* Loads path; when it succeeds, asserts every model is byte-identical to sb's. */
static int load_and_compare(const small_bundle *sb, const char *path)
{
	apb_bundle *l = (apb_bundle *)1;
	int rc = apb_bundle_load(path, &l);

	if (rc != 0) {
		ck_assert_ptr_null(l);
		ck_assert_int_lt(rc, 0);
		ck_assert_str_ne(apb_last_error(), "");
		return rc;
	}
	ck_assert_uint_eq(apb_bundle_model_count(l), 3);
	for (size_t i = 0; i < 3; i++) {
		apb_model_info info;
		const void *d;
		size_t n;
		ck_assert_int_eq(apb_bundle_model_info(l, i, &info), 0);
		ck_assert_int_eq(apb_bundle_get_model(l, info.name, &d, &n), 0);
		ck_assert_uint_eq(n, sb->size[i]);
		ck_assert_msg(memcmp(d, sb->file + sb->off[i], n) == 0, "model %zu loaded with wrong bytes", i);
	}
	apb_bundle_free(l);
	return 0;
}

START_TEST(test_checksum_failure_names_model)
{
	char *path = tu_path("s.apbundle");
	small_bundle sb;
	apb_bundle *l = NULL;

	small_make(&sb, path);
	for (int i = 0; i < 3; i++) {
		uint64_t at[] = { sb.off[i], sb.off[i] + sb.size[i] - 1 };
		for (int k = 0; k < 2; k++) {
			sb.file[at[k]] ^= 0x20;
			tu_write_file(path, sb.file, sb.len);
			ck_assert_int_eq(apb_bundle_load(path, &l), APB_E_CHECKSUM);
			ck_assert_ptr_null(l);
			char want[16];
			snprintf(want, sizeof want, "\"%s\"", small_names[i]);
			ck_assert_msg(strstr(apb_last_error(), want), "detail \"%s\" lacks %s", apb_last_error(), want);
			sb.file[at[k]] ^= 0x20;
		}
	}
	/* the block table of w/b (3 entries) follows the last model, then its
	 * 8-byte index: break the table's last entry */
	sb.file[sb.len - 9] ^= 1;
	tu_write_file(path, sb.file, sb.len);
	ck_assert_int_eq(apb_bundle_load(path, &l), APB_E_CHECKSUM);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "\"w/b\""));
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "table"));   /* caught as a table */
	sb.file[sb.len - 9] ^= 1;
	/* and its index, the file's last 8 bytes */
	sb.file[sb.len - 1] ^= 1;
	tu_write_file(path, sb.file, sb.len);
	ck_assert_int_eq(apb_bundle_load(path, &l), APB_E_CHECKSUM);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "\"w/b\""));
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "table"));
	sb.file[sb.len - 1] ^= 1;
	tu_write_file(path, sb.file, sb.len);
	ck_assert_int_eq(load_and_compare(&sb, path), 0);
	free(sb.file);
	free(path);
}
END_TEST

START_TEST(test_truncation_every_offset)
{
	char *path = tu_path("t.apbundle"), *cut = tu_path("cut.apbundle");
	small_bundle sb;
	int fd;

	small_make(&sb, path);
	ck_assert_int_eq(load_and_compare(&sb, path), 0);
	for (size_t len = 0; len < sb.len; len++) {
		fd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, sb.file, len), (ssize_t)len);
		close(fd);
		ck_assert_msg(load_and_compare(&sb, cut) != 0, "truncated at %zu of %zu loaded", len, sb.len);
	}
	free(sb.file);
	free(path);
	free(cut);
}
END_TEST

START_TEST(test_random_corruption)
{
	char *path = tu_path("r.apbundle");
	small_bundle sb;
	uint8_t *copy;
	uint64_t seed = 0x5eed;
	int touched_model = 0, failed = 0;

	small_make(&sb, path);
	copy = malloc(sb.len);
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	for (int trial = 0; trial < 10000; trial++) {
		bool hit = false;
		int changes = 1 + (int)(tu_rand(&seed) % 4);
		memcpy(copy, sb.file, sb.len);
		for (int c = 0; c < changes; c++) {
			size_t at = (size_t)(tu_rand(&seed) % sb.len);
			uint64_t r = tu_rand(&seed);
			uint8_t x = (r & 1) ? (uint8_t)(1u << ((r >> 1) % 8)) /* flip a bit */
			                    : (uint8_t)(r >> 8 | 1);        /* set a random other value */
			copy[at] ^= x;
			for (int i = 0; i < 3; i++)
				hit |= at >= sb.off[i] && at < sb.off[i] + sb.size[i];
		}
		hit &= memcmp(copy, sb.file, sb.len) != 0; /* two changes may cancel out */
		ck_assert_int_eq(pwrite(fd, copy, sb.len, 0), (ssize_t)sb.len);
		int rc = load_and_compare(&sb, path);
		if (hit)
			ck_assert_msg(rc != 0, "trial %d: corrupted model bytes loaded", trial);
		touched_model += hit;
		failed += rc != 0;
	}
	close(fd);
	fprintf(stderr, "# 10000 corruptions: %d touched model bytes, %d loads failed\n", touched_model, failed);
	ck_assert_int_gt(touched_model, 100);
	free(copy);
	free(sb.file);
	free(path);
}
END_TEST

START_TEST(test_hostile_names)
{
	static const char *bad[] = { "", "/abs", "a//b", "../x", "a/../b", "a/./b", ".", "a/",
	                             "tab\there", "nl\n", "del\x7f", "\xff\xfe", "\xc0\xaf",
	                             "\xed\xa0\x80" };
	char *out = tu_path("n.apbundle");
	apb_builder *bb = apb_builder_new(out);
	char *longname = malloc(5000), comp[300];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(apb_builder_add_model(bb, bad[i], "x", 1) == APB_E_NAME, "name %zu accepted", i);
		ck_assert_str_ne(apb_last_error(), "");
	}
	memset(longname, 'a', 4097);
	for (int i = 100; i < 4097; i += 101)
		longname[i] = '/';
	longname[4097] = '\0';
	ck_assert_int_eq(apb_builder_add_model(bb, longname, "x", 1), APB_E_NAME);
	longname[4096] = '\0';
	ck_assert_int_eq(apb_builder_add_model(bb, longname, "x", 1), 0);
	memset(comp, 'c', 256);
	comp[256] = '\0';
	ck_assert_int_eq(apb_builder_add_model(bb, comp, "x", 1), APB_E_NAME);
	comp[255] = '\0';
	ck_assert_int_eq(apb_builder_add_model(bb, comp, "x", 1), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "ok/é", "x", 1), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "ok/é", "y", 1), APB_E_DUPLICATE);
	ck_assert_int_eq(apb_builder_add_file(bb, "/abs", "/etc/hostname"), APB_E_NAME);
	ck_assert_int_eq(apb_builder_add_model(bb, NULL, "x", 1), -EINVAL);
	ck_assert_int_eq(apb_builder_add_model(bb, "n", NULL, 1), -EINVAL);
	ck_assert_int_eq(apb_builder_add_model(bb, "n", NULL, 0), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	ck_assert_int_eq(apb_builder_build(bb), -EINVAL);
	ck_assert_int_eq(apb_builder_add_model(bb, "late", "x", 1), -EINVAL);
	apb_builder_free(bb);
	apb_bundle *l = NULL, *b = apb_bundle_new();
	ck_assert_int_eq(apb_bundle_load(out, &l), 0);
	ck_assert_uint_eq(apb_bundle_model_count(l), 4);
	assert_model(l, "ok/é", "x", 1);
	apb_bundle_free(l);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(apb_bundle_add_model(b, bad[i], "x", 1) == APB_E_NAME, "name %zu accepted", i);
	ck_assert_uint_eq(apb_bundle_model_count(b), 0);
	apb_bundle_free(b);
	free(longname);
	free(out);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("bundle");
	TCase *tc = tcase_create("bundle");

	tu_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_save_load_roundtrip);
	tcase_add_test(tc, test_thousand_models);
	tcase_add_test(tc, test_metadata_roundtrip);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_hostile_names);
	tcase_add_test(tc, test_legacy_unverified);
	tcase_add_test(tc, test_checksum_failure_names_model);
	tcase_add_test(tc, test_truncation_every_offset);
	tcase_add_test(tc, test_random_corruption);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
