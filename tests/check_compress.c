/*
 * check_compress.c - compressed bundles from the builder (format version 2).
 *
 * Until the block layer reads them, the writer is checked here by walking
 * each v2 table independently of the library's reader (json-c manifest,
 * rd_le on the table bytes: docs/FORMAT.md sections 2.2 and 4.2) and
 * decoding every block with the codec, then comparing with the source:
 * every byte, every block checksum, the model checksum, the table
 * checksum.  Also: the reader accepts what the writer wrote and
 * apbi_block_locate agrees with the walk; no compression still writes a
 * version-1 file identical to the default; the output is the same bytes
 * on every run (two worker threads, any timing); auto picks the filter the
 * data wants; a lying table entry fails only its own blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "apbundle.h"
#include "codec.h"
#include "format.h"
#include "internal.h"
#include "rawbundle.h"
#include "testutil.h"

#define BS 4096u

/* Gaussian float32 weights, or their BF16 halves. */
static void fill_weights(uint8_t *p, size_t n, uint64_t seed, int bf16)
{
	uint64_t st = seed | 1;
	size_t i = 0;

	while (i < n) {
		double u1 = ((double)(tu_rand(&st) >> 11) + 1.0) / 9007199254740993.0;
		double u2 = (double)(tu_rand(&st) >> 11) / 9007199254740992.0;
		float v = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
		uint32_t bits;
		memcpy(&bits, &v, 4);
		for (int k = bf16 ? 2 : 0; k < 4 && i < n; k++)
			p[i++] = (uint8_t)(bits >> (8 * k));
	}
}

static const char *str(json_object *m, const char *key)
{
	return json_object_get_string(jget(m, key));
}

/* Walks model i's v2 table and decodes every block; compares with data. */
static void walk_model(raw_bundle *rb, size_t i, const uint8_t *data, uint64_t size)
{
	json_object *m = model_at(rb, i), *b;
	enum apbi_codec c;
	enum apbi_filter f;
	apbi_codec_ctx *ctx;
	uint64_t off = (uint64_t)jint(m, "offset"), stored = (uint64_t)jint(m, "stored_size");
	uint64_t n = size / BS + (size % BS != 0), raw = 0;
	uint8_t *out = malloc(BS);

	ck_assert_uint_eq((uint64_t)jint(m, "size"), size);
	ck_assert_int_eq(apbi_codec_parse(str(m, "codec"), &c), 0);
	ck_assert_int_eq(apbi_filter_parse(str(m, "filter"), &f), 0);
	ck_assert_int_eq(c, APBI_CODEC_ZSTD);
	ck_assert_uint_le(stored, size);
	b = jget(m, "blocks");
	ck_assert_int_eq(jint(b, "size"), BS);
	const uint8_t *tab = rb->file + rb->data_start + jint(b, "checksums_offset");
	const uint8_t *st = rb->file + rb->data_start + off;
	char sum[22];
	apbi_checksum_format(XXH3_64bits(tab, n * 16), sum);
	ck_assert_str_eq(str(b, "table_checksum"), sum);
	apbi_checksum_format(XXH3_64bits(data, size), sum);
	ck_assert_str_eq(str(m, "checksum"), sum);
	ck_assert_uint_le(rb->data_start + off + stored, rb->len);
	ck_assert_int_eq(apbi_codec_ctx_new(BS, &ctx), 0);
	for (uint64_t k = 0; k < n; k++) {
		uint64_t so = rd_le(tab + 16 * k + 8, 8);
		uint64_t end = k + 1 < n ? rd_le(tab + 16 * (k + 1) + 8, 8) : stored;
		size_t len = k + 1 < n || size % BS == 0 ? BS : size % BS;
		ck_assert_uint_le(so, end);
		if (k == 0)
			ck_assert_uint_eq(so, 0);
		raw += end - so == len;
		ck_assert_int_eq(apbi_codec_decode(ctx, c, f, st + so, end - so, out, len), 0);
		ck_assert_int_eq(memcmp(out, data + k * BS, len), 0);
		ck_assert_uint_eq(rd_le(tab + 16 * k, 8), XXH3_64bits(out, len));
	}
	(void)raw;
	apbi_codec_ctx_free(ctx);
	free(out);
}

static uint32_t g_align;   /* 0: the default alignment */

/* Builds path from the n models (memory sources) with compression (level 3, filter f). */
static void build(const char *path, int n, const char *const *names, uint8_t *const *data,
                  const size_t *sizes, apb_filter f, bool compress)
{
	apb_builder *bb = apb_builder_new(path);

	ck_assert_ptr_nonnull(bb);
	ck_assert_int_eq(apb_builder_set_block_size(bb, BS), 0);
	if (g_align)
		ck_assert_int_eq(apb_builder_set_alignment(bb, g_align), 0);
	if (compress)
		ck_assert_int_eq(apb_builder_set_compression(bb, APB_CODEC_ZSTD, 3, f), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(apb_builder_add_model(bb, names[i], data[i], sizes[i]), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
}

static const char *const names[] = { "f32", "bf16", "random", "zeros", "empty", "tiny" };
static const size_t sizes[] = { 20 * BS + 123, 9 * BS, 3 * BS + 5, 5 * BS, 0, 7 };

static void make_data(uint8_t **d)
{
	for (int i = 0; i < 6; i++)
		d[i] = calloc(1, sizes[i] ? sizes[i] : 1);
	fill_weights(d[0], sizes[0], 1, 0);
	fill_weights(d[1], sizes[1], 2, 1);
	tu_fill_random(d[2], sizes[2], 3);
	memcpy(d[5], "weights", 7);
}

/*
 * Recomputes the "manifest_checksum" of the bundle in file after an edit
 * (docs/FORMAT.md 2.4: XXH3-64 of the manifest, padding included, with its
 * own 16 digits read as '0'), so a test reaches the rule behind it.
 */
static void rebind(uint8_t *file)
{
	static const char key[] = "\"manifest_checksum\":\"xxh3:";
	uint32_t l = (uint32_t)file[12] | (uint32_t)file[13] << 8 | (uint32_t)file[14] << 16 |
	             (uint32_t)file[15] << 24;
	uint8_t *at = memmem(file + 16, l, key, sizeof key - 1);
	char hex[17];
	ck_assert_ptr_nonnull(at);
	at += sizeof key - 1;
	memset(at, '0', 16);
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits(file + 16, l));
	memcpy(at, hex, 16);
}

START_TEST(test_walk_every_block)
{
	g_align = _i ? 16 : 0;   /* 16: the final manifest is shorter than planned */
	char *p = tu_path("c.apbundle");
	uint8_t *d[6];
	raw_bundle rb;
	apbi_manifest *man;

	make_data(d);
	build(p, 6, names, d, sizes, APB_FILTER_AUTO, true);
	raw_open(&rb, p);
	ck_assert_uint_eq(rd_le(rb.file + 8, 4), 2);
	ck_assert_int_eq(jint(rb.man, "alignment"), 16);   /* the compressed default, or asked */
	for (int i = 0; i < 6; i++) {
		if (i == 4) {   /* empty: stays uncompressed */
			ck_assert_str_eq(str(model_at(&rb, 4), "codec"), "none");
			continue;
		}
		walk_model(&rb, (size_t)i, d[i], sizes[i]);
	}
	ck_assert_str_eq(str(model_at(&rb, 0), "filter"), "bytegroup4");
	ck_assert_str_eq(str(model_at(&rb, 1), "filter"), "bytegroup2");
	ck_assert_uint_lt((uint64_t)jint(model_at(&rb, 1), "stored_size"), sizes[1] * 80 / 100);
	ck_assert_uint_eq((uint64_t)jint(model_at(&rb, 2), "stored_size"), sizes[2]); /* all raw */
	ck_assert_uint_lt((uint64_t)jint(model_at(&rb, 3), "stored_size"), 200);
	/* the library's reader accepts it and locates blocks as the walk did */
	ck_assert_int_eq(apbi_manifest_parse(rb.file, rb.len, rb.len, &man), 0);
	ck_assert_uint_eq(man->version, 2);
	const apbi_model *m0 = &man->models[0];
	ck_assert_int_eq(m0->codec, APBI_CODEC_ZSTD);
	ck_assert_int_eq(m0->filter, APBI_FILTER_BYTEGROUP4);
	ck_assert_uint_eq(m0->entry_size, 16);
	const uint8_t *tab = rb.file + man->data_start + m0->blocks_offset;
	for (uint64_t k = 0; k < m0->n_blocks; k++) {
		apbi_block_loc loc;
		ck_assert_int_eq(apbi_block_locate(m0, 0, k, tab + 16 * k,
		                                   k + 1 < m0->n_blocks ? tab + 16 * (k + 1) : NULL, &loc), 0);
		ck_assert_uint_eq(loc.offset, rd_le(tab + 16 * k + 8, 8));
		ck_assert_uint_eq(loc.len, k + 1 < m0->n_blocks ? BS : 123);
	}
	apb_model_info info;
	apbi_model_info(man, 1, &info);
	ck_assert_int_eq(info.codec, APB_CODEC_ZSTD);
	ck_assert_int_eq(info.filter, APB_FILTER_BYTEGROUP2);
	ck_assert_uint_eq(info.stored_size, (uint64_t)jint(model_at(&rb, 1), "stored_size"));
	apbi_manifest_free(man);
	raw_close(&rb);
	for (int i = 0; i < 6; i++)
		free(d[i]);
	free(p);
	g_align = 0;
}
END_TEST

/* A lying entry (offset going backwards) fails its blocks, not the others. */
START_TEST(test_lying_table)
{
	char *p = tu_path("c.apbundle");
	uint8_t *d[6];
	raw_bundle rb;
	apbi_manifest *man;
	apbi_block_loc loc;

	make_data(d);
	build(p, 1, names, d, sizes, APB_FILTER_BYTEGROUP4, true);
	raw_open(&rb, p);
	ck_assert_int_eq(apbi_manifest_parse(rb.file, rb.len, rb.len, &man), 0);
	const apbi_model *m0 = &man->models[0];
	uint8_t *tab = rb.file + man->data_start + m0->blocks_offset;
	uint64_t bad = 0;
	memcpy(tab + 16 * 5 + 8, &bad, 8);             /* block 5 claims stored offset 0 */
	for (uint64_t k = 0; k < m0->n_blocks; k++) {
		int rc = apbi_block_locate(m0, 0, k, tab + 16 * k,
		                           k + 1 < m0->n_blocks ? tab + 16 * (k + 1) : NULL, &loc);
		if (k == 4) { /* ends where 5 starts: before its own start */
			ck_assert_int_eq(rc, APB_E_CORRUPT);
			ck_assert_ptr_nonnull(strstr(apb_last_error(), "block 4"));
		} else if (k == 5) { /* decodes 0..next: more than a block, or a wrong frame */
			ck_assert(rc == APB_E_CORRUPT || loc.stored_len <= BS);
		} else {
			ck_assert_int_eq(rc, 0);
		}
	}
	memcpy(tab + 8, (uint64_t[]){ 1 }, 8);            /* the first block must start at 0 */
	ck_assert_int_eq(apbi_block_locate(m0, 0, 0, tab, tab + 16, &loc), APB_E_CORRUPT);
	apbi_manifest_free(man);
	raw_close(&rb);
	for (int i = 0; i < 6; i++)
		free(d[i]);
	free(p);
}
END_TEST

/* Same inputs, same bytes: three builds with two threads each, and a file source. */
START_TEST(test_reproducible)
{
	char *a = tu_path("a.apbundle"), *b = tu_path("b.apbundle"), *src = tu_path("src.bin");
	uint8_t *d[6], *x, *y;
	size_t lx, ly;

	make_data(d);
	build(a, 6, names, d, sizes, APB_FILTER_AUTO, true);
	x = tu_read_file(a, &lx);
	for (int r = 0; r < 3; r++) {
		build(b, 6, names, d, sizes, APB_FILTER_AUTO, true);
		y = tu_read_file(b, &ly);
		ck_assert_uint_eq(lx, ly);
		ck_assert_int_eq(memcmp(x, y, lx), 0);
		free(y);
	}
	free(x);
	/* from a file with a hole in the middle: the same bytes as from memory */
	int fd = open(src, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	ck_assert_int_eq(pwrite(fd, d[0], 4 * BS, 0), 4 * BS);
	ck_assert_int_eq(pwrite(fd, d[0] + 12 * BS, sizes[0] - 12 * BS, 12 * BS), sizes[0] - 12 * BS);
	close(fd);
	memset(d[0] + 4 * BS, 0, 8 * BS);
	build(a, 1, names, d, sizes, APB_FILTER_AUTO, true);
	apb_builder *bb = apb_builder_new(b);
	ck_assert_int_eq(apb_builder_set_block_size(bb, BS), 0);
	ck_assert_int_eq(apb_builder_set_compression(bb, APB_CODEC_ZSTD, 0, APB_FILTER_AUTO), 0);
	ck_assert_int_eq(apb_builder_add_file(bb, "f32", src), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	x = tu_read_file(a, &lx);
	y = tu_read_file(b, &ly);
	ck_assert_uint_eq(lx, ly);
	ck_assert_int_eq(memcmp(x, y, lx), 0);
	free(x);
	free(y);
	for (int i = 0; i < 6; i++)
		free(d[i]);
	free(a);
	free(b);
	free(src);
}
END_TEST

/* Without compression (or compression turned off again): version 1, as before. */
START_TEST(test_off_is_v1)
{
	char *a = tu_path("a.apbundle"), *b = tu_path("b.apbundle");
	uint8_t *d[6], *x, *y;
	size_t lx, ly;
	apb_builder *bb;

	make_data(d);
	build(a, 6, names, d, sizes, APB_FILTER_AUTO, false);
	bb = apb_builder_new(b);
	ck_assert_int_eq(apb_builder_set_block_size(bb, BS), 0);
	ck_assert_int_eq(apb_builder_set_compression(bb, APB_CODEC_ZSTD, 5, APB_FILTER_NONE), 0);
	ck_assert_int_eq(apb_builder_set_compression(bb, APB_CODEC_NONE, 0, APB_FILTER_NONE), 0);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(apb_builder_add_model(bb, names[i], d[i], sizes[i]), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	x = tu_read_file(a, &lx);
	y = tu_read_file(b, &ly);
	ck_assert_uint_eq(lx, ly);
	ck_assert_int_eq(memcmp(x, y, lx), 0);
	ck_assert_uint_eq(x[8], 1);
	ck_assert_ptr_null(strstr((char *)x + 16, "codec"));
	ck_assert_ptr_nonnull(strstr((char *)x + 16, "\"alignment\":4096"));
	free(x);
	free(y);
	/* only empty models: nothing to compress, still version 1 */
	build(a, 1, names + 4, d + 4, sizes + 4, APB_FILTER_AUTO, true);
	x = tu_read_file(a, &lx);
	ck_assert_uint_eq(x[8], 1);
	free(x);
	for (int i = 0; i < 6; i++)
		free(d[i]);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_bad_arguments_and_versions)
{
	char *p = tu_path("c.apbundle");
	apb_builder *bb = apb_builder_new(p);
	uint8_t *d[6];
	raw_bundle rb;
	apbi_manifest *man = NULL;

	ck_assert_int_eq(apb_builder_set_compression(bb, (apb_codec)7, 3, APB_FILTER_AUTO), -EINVAL);
	ck_assert_int_eq(apb_builder_set_compression(bb, APB_CODEC_ZSTD, 20, APB_FILTER_AUTO), -EINVAL);
	ck_assert_int_eq(apb_builder_set_compression(bb, APB_CODEC_ZSTD, 3, (apb_filter)3), -EINVAL);
	ck_assert_int_eq(apb_builder_set_compression(NULL, APB_CODEC_ZSTD, 3, APB_FILTER_AUTO), -EINVAL);
	apb_builder_free(bb);
	ck_assert_str_eq(apb_codec_name(APB_CODEC_ZSTD), "zstd");
	ck_assert_str_eq(apb_filter_name(APB_FILTER_AUTO), "auto");
	ck_assert_ptr_null(apb_filter_name((apb_filter)1));
	make_data(d);
	build(p, 2, names, d, sizes, APB_FILTER_AUTO, true);
	raw_open(&rb, p);
	rb.file[8] = 1;   /* a v1 header over a v2 manifest */
	ck_assert_int_eq(apbi_manifest_parse(rb.file, rb.len, rb.len, &man), APB_E_VERSION);
	rb.file[8] = 3;
	ck_assert_int_eq(apbi_manifest_parse(rb.file, rb.len, rb.len, &man), APB_E_VERSION);
	rb.file[8] = 2;
	char *z = strstr((char *)rb.file + 16, "\"zstd\"");
	z[4] = 'x';       /* an unknown codec */
	ck_assert_int_eq(apbi_manifest_parse(rb.file, rb.len, rb.len, &man), APB_E_CHECKSUM);
	rebind(rb.file);  /* the edit made consistent: the codec itself is refused */
	ck_assert_int_eq(apbi_manifest_parse(rb.file, rb.len, rb.len, &man), APB_E_MANIFEST);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "zstx"));
	z[4] = 'd';
	rebind(rb.file);
	/* truncated: the stored blocks end past the file */
	ck_assert_int_eq(apbi_manifest_parse(rb.file, rb.len, rb.len - 1, &man), -EINVAL);
	ck_assert_int_ne(apbi_manifest_parse(rb.file, rb.len - 1, rb.len - 1, &man), 0);
	ck_assert_int_eq(apbi_manifest_parse(rb.file, rb.len, rb.len, &man), 0);
	apbi_manifest_free(man);
	raw_close(&rb);
	for (int i = 0; i < 6; i++)
		free(d[i]);
	free(p);
}
END_TEST

/* The n-th write through the I/O seam fails with EIO (main thread only). */
static int write_calls, write_fail_at;
static ssize_t failing_pwrite(int fd, const void *b, size_t l, off_t o)
{
	if (write_calls++ == write_fail_at) {
		errno = EIO;
		return -1;
	}
	return pwrite(fd, b, l, o);
}

/* Any failed write during a compressed build: an error naming it, no output, no temp file. */
START_TEST(test_write_failures)
{
	static const apbi_io_ops ops = { pread, failing_pwrite, read, fsync, NULL };
	char *p = tu_path("c.apbundle");
	uint8_t *d[6];
	int total;

	make_data(d);
	write_fail_at = -1;
	write_calls = 0;
	apbi_io_set(&ops);
	build(p, 6, names, d, sizes, APB_FILTER_AUTO, true);
	total = write_calls;
	/* each of the 6 models: its stored blocks (one write per slot of up to
	 * 1 MiB of blocks) and its table; then the header: every one fails below */
	ck_assert_int_ge(total, 2 * 6);
	unlink(p);
	for (write_fail_at = 0; write_fail_at < total; write_fail_at++) {
		apb_builder *bb = apb_builder_new(p);
		write_calls = 0;
		ck_assert_int_eq(apb_builder_set_block_size(bb, BS), 0);
		ck_assert_int_eq(apb_builder_set_compression(bb, APB_CODEC_ZSTD, 3, APB_FILTER_AUTO), 0);
		for (int i = 0; i < 6; i++)
			ck_assert_int_eq(apb_builder_add_model(bb, names[i], d[i], sizes[i]), 0);
		ck_assert_int_eq(apb_builder_build(bb), -EIO);
		ck_assert_ptr_nonnull(strstr(apb_last_error(), "writing"));
		apb_builder_free(bb);
		ck_assert_int_ne(access(p, F_OK), 0);
	}
	apbi_io_set(NULL);
	char *cmd;
	ck_assert_int_gt(asprintf(&cmd, "ls %s | grep -q tmp", tu_tmpdir()), 0);
	ck_assert_int_ne(system(cmd), 0);   /* no temporary file left */
	free(cmd);
	for (int i = 0; i < 6; i++)
		free(d[i]);
	free(p);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("compress");
	TCase *tc = tcase_create("compress");

	tu_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_walk_every_block, 0, 2);
	tcase_add_test(tc, test_lying_table);
	tcase_add_test(tc, test_reproducible);
	tcase_add_test(tc, test_off_is_v1);
	tcase_add_test(tc, test_bad_arguments_and_versions);
	tcase_add_test(tc, test_write_failures);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
