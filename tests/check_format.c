/*
 * check_format.c - Check suite for the format layer's read side: header
 * decoding, valid v1 and aprender legacy bundles, lookups, block
 * verification, legacy rules and damaged (truncated, corrupted) bundles.
 * The manifest's JSON rules, the "models" array decoder and the scale test
 * are in check_format_json.c.
 *
 * Bundles are crafted by hand here (header bytes + JSON text + padding +
 * data, checksums computed with libxxhash directly), never with the
 * library's own writer, so a bug shared by writer and reader cannot hide.
 * Each rule test starts from one valid manifest, changes exactly one thing
 * and asserts both the error code and that apb_last_error() names the
 * field or model.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "craft.h"

/* ---- valid bundles ---- */

/* The standard bundle's first model, as decoded. */
static void check_enc(const apbi_model *enc)
{
	ck_assert_str_eq(enc->name, "enc");
	ck_assert_uint_eq(enc->name_len, 3);
	ck_assert_uint_eq(enc->offset, 0);
	ck_assert_uint_eq(enc->size, ENC_SIZE);
	ck_assert(enc->has_checksum);
	ck_assert_uint_eq(enc->checksum, XXH3_64bits(std_data, ENC_SIZE));
	ck_assert(!enc->has_block_table);
	ck_assert_uint_eq(enc->n_blocks, 1);
	ck_assert_uint_eq(enc->block_size, 512);
	ck_assert_str_eq(enc->md.version, "1.2");
	ck_assert_str_eq(enc->md.architecture, "transformer");
	ck_assert_uint_eq(enc->md.n_hyperparameters, 2);
	ck_assert_str_eq(enc->md.hyperparameters[0].key, "heads"); /* sorted */
	ck_assert_str_eq(enc->md.hyperparameters[0].value, "8");
	ck_assert_str_eq(enc->md.hyperparameters[1].key, "layers");
	ck_assert_str_eq(enc->md.hyperparameters[1].value, "6");
	ck_assert_uint_eq(enc->md.n_custom, 1);
	ck_assert_str_eq(enc->md.custom[0].key, "author");
	ck_assert_str_eq(enc->md.custom[0].value, "fmt");
}

START_TEST(test_valid_decode)
{
	size_t len;
	uint8_t *b = variant(NULL, NULL, &len);
	apbi_manifest *m = parse_ok(b, len);
	const apbi_model *enc, *dec, *empty;
	apb_model_info info;

	ck_assert_int_eq(m->layout, APBI_LAYOUT_V1);
	ck_assert_uint_eq(m->version, 1);
	ck_assert_uint_eq(m->alignment, ALIGN);
	ck_assert_uint_eq(m->data_start, len - DATA_LEN);
	ck_assert_uint_eq(m->data_start % ALIGN, 0);
	ck_assert_uint_eq(m->file_size, len);
	ck_assert_str_eq(m->description, "test bundle");
	ck_assert(m->has_created_at);
	ck_assert_int_eq(m->created_at, 1700000000);
	ck_assert_uint_eq(m->n_models, 3);
	ck_assert_uint_eq(m->block_size, 512);
	enc = &m->models[0];
	dec = &m->models[1];
	empty = &m->models[2];
	check_enc(enc);
	ck_assert_str_eq(dec->name, "dir/dec");
	ck_assert_uint_eq(dec->offset, DEC_OFF);
	ck_assert_uint_eq(dec->size, DEC_SIZE);
	ck_assert(dec->has_block_table);
	ck_assert_uint_eq(dec->block_size, 512);
	ck_assert_uint_eq(dec->n_blocks, 3);
	ck_assert_uint_eq(dec->blocks_offset, TABLE_OFF);
	ck_assert(dec->has_table_checksum);
	ck_assert_uint_eq(dec->table_checksum, XXH3_64bits(std_data + TABLE_OFF, 24));
	ck_assert(!enc->has_table_checksum);
	ck_assert_ptr_null(dec->md.version);
	ck_assert_uint_eq(dec->md.n_hyperparameters, 0);
	ck_assert_str_eq(empty->name, "empty");
	ck_assert_uint_eq(empty->size, 0);
	ck_assert_uint_eq(empty->n_blocks, 0);
	ck_assert_int_eq(apbi_manifest_find(m, "enc"), 0);
	ck_assert_int_eq(apbi_manifest_find(m, "dir/dec"), 1);
	ck_assert_int_eq(apbi_manifest_find(m, "empty"), 2);
	ck_assert_int_eq(apbi_manifest_find(m, "dir"), -1);
	ck_assert_int_eq(apbi_manifest_find(m, "Enc"), -1);
	ck_assert_int_eq(apbi_manifest_find(m, NULL), -1);
	apbi_model_info(m, 1, &info);
	ck_assert_str_eq(info.name, "dir/dec");
	ck_assert_uint_eq(info.file_offset, m->data_start + DEC_OFF);
	ck_assert_uint_eq(info.size, DEC_SIZE);
	ck_assert_uint_eq(info.block_size, 512);
	ck_assert(info.has_checksum);
	ck_assert_ptr_eq(info.metadata, &dec->md);
	apbi_manifest_free(m);
	apbi_manifest_free(NULL);
	free(b);
}
END_TEST

/* Writes the standard bundle to a file and opens it read-only. */
static int std_file(uint8_t **buf, size_t *len)
{
	char *path = tu_path("std.apbundle");
	int fd;

	*buf = variant(NULL, NULL, len);
	tu_write_file(path, *buf, *len);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	free(path);
	return fd;
}

/*
 * The hand-made bundle read through the block layer (it has tables but no
 * table index, like bundles of older writers: the index is computed from
 * the table once, checked against table_checksum): every model reads
 * exactly; a flipped byte fails its block, named by apb_last_block_error.
 */
START_TEST(test_read_verify_blocks)
{
	uint8_t *b, buf[4096];
	size_t len;
	int fd = std_file(&b, &len);
	char *path = tu_path("std.apbundle"), *bad_path = tu_path("bad.apbundle");
	apbi_manifest *m = NULL;
	apb_block_error be;
	apb_paging_config cfg;
	apb_paged *pb = NULL;

	ck_assert_int_eq(apbi_manifest_read(fd, &m), 0);
	close(fd);
	ck_assert_msg(apb_paged_open(path, NULL, &pb) == 0, "%s", apb_last_error());
	ck_assert_int_eq(apb_paged_read(pb, "dir/dec", buf, sizeof buf, 0), DEC_SIZE);
	ck_assert_mem_eq(buf, b + m->data_start + DEC_OFF, DEC_SIZE);
	ck_assert_int_eq(apb_paged_read(pb, "enc", buf, sizeof buf, 0), ENC_SIZE);
	ck_assert_mem_eq(buf, b + m->data_start, ENC_SIZE);
	apb_paged_close(pb);
	b[m->data_start + DEC_OFF + 600] ^= 0x40;   /* block 1 of dir/dec */
	tu_write_file(bad_path, b, len);
	apb_paging_config_init(&cfg);
	cfg.page_size = 512;   /* one block a page: block 0 stays readable */
	ck_assert_int_eq(apb_paged_open(bad_path, &cfg, &pb), 0);
	ck_assert_int_eq(apb_paged_read(pb, "dir/dec", buf, 10, 520), APB_E_CHECKSUM);
	ck_assert(apb_last_block_error(&be));
	ck_assert_uint_eq(be.block, 1);
	ck_assert_uint_eq(be.offset, 512);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "dir/dec"));
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "block 1"));
	ck_assert_int_eq(apb_paged_read(pb, "dir/dec", buf, 10, 0), 10);   /* block 0 is fine */
	apb_paged_close(pb);
	apbi_manifest_free(m);
	free(path);
	free(bad_path);
	free(b);
}
END_TEST

/* Parses the standard bundle with one change, asserting success. */
static apbi_manifest *accepted(const char *from, const char *to)
{
	size_t len;
	uint8_t *b = variant(from, to, &len);
	apbi_manifest *m = parse_ok(b, len);

	free(b);   /* the manifest keeps copies of everything */
	return m;
}

START_TEST(test_unknown_fields_ignored)
{
	apbi_manifest *m;

	m = accepted("\"models\":[", "\"future\":{\"x\":[1,2.5,null]},\"models\":[");
	ck_assert_uint_eq(m->n_models, 3);
	apbi_manifest_free(m);
	m = accepted("\"name\":\"enc\",", "\"name\":\"enc\",\"origin\":\"x\",\"tags\":[],");
	ck_assert_str_eq(m->models[0].name, "enc");
	apbi_manifest_free(m);
	/* optional fields may be absent or null */
	m = accepted("\"description\":\"test bundle\",\"created_at\":1700000000,", "\"description\":null,");
	ck_assert_ptr_null(m->description);
	ck_assert(!m->has_created_at);
	apbi_manifest_free(m);
	/* whitespace inside the JSON and every kind of JSON whitespace as padding */
	apbi_manifest_free(accepted("\"}]}", "\"}]}\n\t\r\n"));
	apbi_manifest_free(accepted("\"version\":1,", "\"version\" :\t1 ,\r\n"));
	/* (a lone surrogate escape, which json-c would turn into U+FFFD, is
	 * refused: check_hardening.c test_surrogate_escapes) */
}
END_TEST

/*
 * Writes the standard bundle changed from -> to (NULL: as is), flips one
 * byte of dir/dec's table in the file and returns it open, *m decoded.
 */
static int flipped_table(const char *from, const char *to, uint8_t **b, apbi_manifest **m)
{
	char *path = tu_path("flip.apbundle");
	size_t len;
	int fd;

	*b = variant(from, to, &len);
	tu_write_file(path, *b, len);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(apbi_manifest_read(fd, m), 0);
	ck_assert_int_eq(pwrite(fd, "\xff", 1, (off_t)((*m)->data_start + TABLE_OFF + 13)), 1);
	free(path);
	return fd;
}

/* Frees what flipped_table gave. */
static void done_flipped(int fd, apbi_manifest *m, uint8_t *b)
{
	apbi_manifest_free(m);
	close(fd);
	free(b);
}

/* Reads 10 bytes of dir/dec at off through a fresh paged handle. */
static ssize_t read_dec(off_t off)
{
	char *path = tu_path("flip.apbundle");
	apb_paged *pb = NULL;
	uint8_t buf[10];
	ssize_t r;
	apb_paging_config cfg;
	apb_paging_config_init(&cfg);
	cfg.page_size = 512;   /* one block a page */
	ck_assert_msg(apb_paged_open(path, &cfg, &pb) == 0, "%s", apb_last_error());
	r = apb_paged_read(pb, "dir/dec", buf, sizeof buf, (uint64_t)off);
	apb_paged_close(pb);
	free(path);
	return r;
}

/*
 * blocks.table_checksum binds the table to the manifest: a table that does
 * not match fails every read of its model (this hand-made bundle has no
 * table index, so the reader checks the whole table once), and once the
 * bytes are right again the model reads.  Without the key (old writers)
 * the table is taken as read: the weaker guarantee of FORMAT.md section 4.
 */
START_TEST(test_table_checksum)
{
	apbi_manifest *m = NULL;
	uint8_t *b;
	int fd = flipped_table(NULL, NULL, &b, &m);

	ck_assert_int_eq(read_dec(0), APB_E_CHECKSUM);
	ck_assert_msg(strstr(apb_last_error(), "\"dir/dec\"") &&
	              strstr(apb_last_error(), "table"), "detail: %s", apb_last_error());
	ck_assert_int_eq(pwrite(fd, b + m->data_start + TABLE_OFF, 24,
	                        (off_t)(m->data_start + TABLE_OFF)), 24);   /* the disk recovers */
	ck_assert_int_eq(read_dec(0), 10);
	done_flipped(fd, m, b);
	/* absent (an old writer): accepted; block 0 reads, block 1's flipped entry fails it */
	fd = flipped_table(",\"table_checksum\"", ",\"unknown_key\"", &b, &m);
	ck_assert(m->models[1].has_block_table && !m->models[1].has_table_checksum);
	ck_assert_int_eq(read_dec(0), 10);
	ck_assert_int_eq(read_dec(512), APB_E_CHECKSUM);
	done_flipped(fd, m, b);
	m = accepted("\"table_checksum\":\"", "\"table_checksum\":null,\"old\":\"");
	ck_assert(!m->models[1].has_table_checksum);
	apbi_manifest_free(m);
}
END_TEST

/* ---- header rules ---- */

START_TEST(test_header_rules)
{
	size_t len;
	uint8_t *b = variant(NULL, NULL, &len);

	b[3] = 'X';
	expect(b, len, APB_E_BADMAGIC, "APBUNDLE", NULL);
	expect((const uint8_t *)"", 0, APB_E_TRUNCATED, "header", NULL);
	expect((const uint8_t *)"PK\3\4", 4, APB_E_BADMAGIC, NULL, NULL);
	b[3] = 'U';
	put_le32(b + 8, 3);
	expect(b, len, APB_E_VERSION, "version 3", NULL);
	put_le32(b + 8, 0);
	expect(b, len, APB_E_VERSION, "version 0", NULL);
	put_le32(b + 8, 2);   /* a v2 header over a v1 manifest: the two must agree */
	expect(b, len, APB_E_VERSION, "header says 2", NULL);
	put_le32(b + 8, 0);
	expect(b, len, APB_E_VERSION, "version 0", NULL);
	put_le32(b + 8, 1);
	/* manifest length past the end of the file */
	put_le32(b + 12, (uint32_t)len);
	expect(b, len, APB_E_TRUNCATED, "manifest", "end of the");
	/* manifest length over the 64 MiB limit */
	put_le32(b + 12, APBI_MAX_MANIFEST + 1);
	expect(b, len, APB_E_CORRUPT, "manifest length", "limit");
	/* manifest length shorter than the JSON: it ends early */
	put_le32(b + 12, 100);
	expect(b, len, APB_E_MANIFEST, "JSON", "ends early");
	/* longer than the JSON by one byte that is not whitespace */
	put_le32(b + 12, (uint32_t)(len - DATA_LEN - 16));
	ck_assert_int_eq(b[len - DATA_LEN - 1], ' ');
	b[len - DATA_LEN - 1] = 'x';
	expect(b, len, APB_E_MANIFEST, "after the JSON object", "0x78");
	b[len - DATA_LEN - 1] = '\0';
	expect(b, len, APB_E_MANIFEST, "after the JSON object", "0x00");
	/* a buffer holding less than the manifest */
	ck_assert_int_eq(apbi_manifest_parse(b, 40, len, &(apbi_manifest *){ NULL }), APB_E_TRUNCATED);
	ck_assert_int_eq(apbi_manifest_parse(b, len, len - 1, &(apbi_manifest *){ NULL }), -EINVAL);
	free(b);
}
END_TEST

/* ---- damaged bundles ---- */

START_TEST(test_truncation_every_offset)
{
	size_t len;
	uint8_t *b = variant(NULL, NULL, &len);
	char *path = tu_path("t.apbundle");
	apbi_manifest *m;

	for (size_t t = 0; t < len; t++) {
		m = (apbi_manifest *)1;
		int rc = apbi_manifest_parse(b, t, t, &m);
		ck_assert_msg(rc < 0, "truncated at %zu: accepted", t);
		ck_assert_ptr_null(m);
		ck_assert_msg(apb_last_error()[0] != '\0', "truncated at %zu: no detail", t);
	}
	/* the same through a file and apbi_manifest_read, every 7th offset */
	for (size_t t = 0; t < len; t += 7) {
		int fd, rc;
		tu_write_file(path, b, t);
		fd = open(path, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		rc = apbi_manifest_read(fd, &m);
		ck_assert_msg(rc < 0, "file truncated at %zu: accepted", t);
		close(fd);
	}
	tu_write_file(path, b, len);
	{
		int fd = open(path, O_RDONLY);
		ck_assert_int_eq(apbi_manifest_read(fd, &m), 0);
		ck_assert_uint_eq(m->n_models, 3);
		apbi_manifest_free(m);
		close(fd);
	}
	free(path);
	free(b);
}
END_TEST

START_TEST(test_random_corruption)
{
	size_t len;
	uint8_t *b = variant(NULL, NULL, &len);
	uint8_t *c = malloc(len);
	uint64_t seed = 42;
	size_t mlen = len - DATA_LEN;
	int accepted = 0;

	ck_assert_ptr_nonnull(c);
	for (int trial = 0; trial < 3000; trial++) {
		apbi_manifest *m = NULL;
		int flips = 1 + (int)(tu_rand(&seed) % 4);
		memcpy(c, b, len);
		for (int f = 0; f < flips; f++) {
			size_t at = tu_rand(&seed) % mlen;
			c[at] = (trial & 1) ? (uint8_t)tu_rand(&seed) : c[at] ^ (uint8_t)(1u << (tu_rand(&seed) % 8));
		}
		if (apbi_manifest_parse(c, len, len, &m) == 0) {
			/* whatever was accepted must still satisfy the invariants */
			for (uint64_t i = 0; i < m->n_models; i++) {
				ck_assert_uint_le(m->models[i].offset + m->models[i].size, len - m->data_start);
				ck_assert_int_eq(apbi_manifest_find(m, m->models[i].name), (int64_t)i);
			}
			accepted++;
			apbi_manifest_free(m);
		} else {
			ck_assert_ptr_null(m);
		}
	}
	ck_assert_int_lt(accepted, 3000);
	free(c);
	free(b);
}
END_TEST

/* ---- aprender legacy layout ---- */

/* Appends a u32-length-prefixed string. */
static size_t put_str(uint8_t *p, const char *s, uint32_t claimed)
{
	put_le32(p, claimed);
	memcpy(p + 4, s, strlen(s));
	return 4 + strlen(s);
}

/* A legacy bundle: "one" (5 bytes at 0) and "sub/two" (3 bytes at 5). */
static uint8_t *legacy_bundle(size_t *len, uint64_t off2, uint32_t name2_claim, uint32_t count)
{
	uint8_t *b = calloc(1, 512);
	size_t p = 20, mstart = 20;

	ck_assert_ptr_nonnull(b);
	memcpy(b, "APBUNDLE", 8);
	put_le32(b + 8, 1);
	put_le32(b + p, 1);
	put_le64(b + p + 4, 1234);
	p += 12;
	p += put_str(b + p, "a legacy bundle", 15);
	put_le32(b + p, count);
	p += 4;
	p += put_str(b + p, "one", 3);
	put_le64(b + p, 5);
	put_le64(b + p + 8, 0);
	p += 16;
	p += put_str(b + p, "sub/two", name2_claim);
	put_le64(b + p, 3);
	put_le64(b + p + 8, off2);
	p += 16;
	put_le64(b + 12, p - mstart);
	memcpy(b + p, "AAAAABBB", 8);
	*len = p + 8;
	return b;
}

START_TEST(test_legacy_decode)
{
	size_t len;
	uint8_t *b = legacy_bundle(&len, 5, 7, 2);
	apbi_manifest *m = parse_ok(b, len);
	apb_model_info info;

	ck_assert_int_eq(m->layout, APBI_LAYOUT_LEGACY);
	ck_assert_uint_eq(m->alignment, 1);
	ck_assert_uint_eq(m->block_size, 0);
	ck_assert_uint_eq(m->data_start, len - 8);
	ck_assert_str_eq(m->description, "a legacy bundle");
	ck_assert(m->has_created_at);
	ck_assert_int_eq(m->created_at, 1234);
	ck_assert_uint_eq(m->n_models, 2);
	ck_assert_str_eq(m->models[0].name, "one");
	ck_assert_uint_eq(m->models[0].size, 5);
	ck_assert_str_eq(m->models[1].name, "sub/two");
	ck_assert_uint_eq(m->models[1].offset, 5);
	ck_assert_uint_eq(m->models[1].size, 3);
	for (int i = 0; i < 2; i++) {
		ck_assert(!m->models[i].has_checksum);
		ck_assert_uint_eq(m->models[i].block_size, 0);
		ck_assert_uint_eq(m->models[i].n_blocks, 0);
		ck_assert(!m->models[i].has_block_table);
	}
	apbi_model_info(m, 1, &info);
	ck_assert_uint_eq(info.file_offset, len - 3);
	ck_assert_int_eq(memcmp(b + info.file_offset, "BBB", 3), 0);
	ck_assert(!info.has_checksum);
	ck_assert_int_eq(apbi_manifest_find(m, "sub/two"), 1);
	apbi_manifest_free(m);
	for (size_t t = 0; t < len; t++) {
		m = NULL;
		ck_assert_msg(apbi_manifest_parse(b, t, t, &m) < 0, "legacy truncated at %zu: accepted", t);
		ck_assert_ptr_null(m);
	}
	free(b);
}
END_TEST

START_TEST(test_legacy_rules)
{
	size_t len;
	uint8_t *b;

	b = legacy_bundle(&len, 4, 7, 2);
	expect(b, len, APB_E_CORRUPT, "models[1] \"sub/two\"", "overlaps");
	free(b);
	b = legacy_bundle(&len, 6, 7, 2);
	expect(b, len, APB_E_TRUNCATED, "models[1] \"sub/two\"", "beyond");
	free(b);
	b = legacy_bundle(&len, UINT64_MAX - 1, 7, 2);
	expect(b, len, APB_E_CORRUPT, "models[1] \"sub/two\"", "overflow");
	free(b);
	b = legacy_bundle(&len, 5, 0xfffffff0u, 2);
	expect(b, len, APB_E_CORRUPT, "models[1]", "name length");
	free(b);
	b = legacy_bundle(&len, 5, 3, 2);   /* "sub" then garbage where the size is */
	expect(b, len, APB_E_TRUNCATED, "models[1] \"sub\"", NULL);
	free(b);
	b = legacy_bundle(&len, 5, 7, 0xffffffffu);
	expect(b, len, APB_E_CORRUPT, "4294967295 models", "cannot fit");
	free(b);
	b = legacy_bundle(&len, 5, 7, 3);
	expect(b, len, APB_E_CORRUPT, "3 models", "cannot fit");
	free(b);
	b = legacy_bundle(&len, 5, 7, 1);   /* trailing bytes are ignored, as aprender does */
	apbi_manifest *m = parse_ok(b, len);
	ck_assert_uint_eq(m->n_models, 1);
	apbi_manifest_free(m);
	free(b);
	b = legacy_bundle(&len, 5, 7, 2);
	put_le32(b + 32, 0x7fffffff);       /* description length */
	expect(b, len, APB_E_CORRUPT, "description length", NULL);
	memcpy(b + 36, "a legacy \xff", 10);
	put_le32(b + 32, 15);
	expect(b, len, APB_E_MANIFEST, "description", "UTF-8");
	free(b);
	b = legacy_bundle(&len, 5, 7, 2);
	memcpy(memmem(b, len, "sub/two", 7), "../two", 6);
	expect(b, len, APB_E_NAME, "models[1]", "\"..\"");
	free(b);
	b = legacy_bundle(&len, 5, 7, 2);
	put_le64(b + 12, (uint64_t)APBI_MAX_MANIFEST + 1);
	expect(b, len, APB_E_CORRUPT, "manifest length", NULL);
	put_le64(b + 12, 1u << 20);
	expect(b, len, APB_E_TRUNCATED, "manifest", NULL);
	free(b);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("format");
	TCase *tc = tcase_create("decode");
	TCase *rules = tcase_create("rules");

	tu_add_fixture(tc);
	tcase_add_test(tc, test_valid_decode);
	tcase_add_test(tc, test_read_verify_blocks);
	tcase_add_test(tc, test_unknown_fields_ignored);
	tcase_add_test(tc, test_table_checksum);
	tcase_add_test(tc, test_truncation_every_offset);
	tcase_add_test(tc, test_random_corruption);
	tcase_add_test(tc, test_legacy_decode);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	tcase_add_test(rules, test_header_rules);
	tcase_add_test(rules, test_legacy_rules);
	suite_add_tcase(s, rules);
	return s;
}

APB_TEST_MAIN()
