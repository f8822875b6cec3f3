/*
 * check_hardening.c - Check suite for the library side of issue 15
 * (hardening, round 2): the manifest bound by "manifest_checksum" (item
 * 2), budgets that cannot hold one load refused at open (item 3), names
 * that cannot coexist in one tree refused by writers and flagged by
 * readers (item 6), lone surrogate escapes refused (item 7).
 *
 * Expected checksums are computed here with libxxhash from the bytes of
 * the file, following docs/FORMAT.md 3.1, never with the library's helpers;
 * hand-made bundles come from tests/craft.c.  Each test fails on the code
 * before issue 15.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "craft.h"

/* XXH3-64 of man[0..len) with the 16 digits at dig taken as '0' (FORMAT.md 3.1). */
static uint64_t bound_sum(const uint8_t *man, size_t len, size_t dig)
{
	uint8_t *copy = malloc(len);
	uint64_t h;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, man, len);
	memset(copy + dig, '0', 16);
	h = XXH3_64bits(copy, len);
	free(copy);
	return h;
}

/* Offset of the 16 digits of the top-level "manifest_checksum" in man, asserting one. */
static size_t digits_at(const uint8_t *man, size_t len)
{
	static const char key[] = "\"manifest_checksum\":\"xxh3:";
	const uint8_t *at = memmem(man, len, key, sizeof key - 1);

	ck_assert_msg(at != NULL, "no manifest_checksum in the manifest");
	return (size_t)(at - man) + sizeof key - 1;
}

/* Builds a two-model bundle at path with the library's writer. */
static void build_two(const char *path)
{
	apb_builder *bb = apb_builder_new(path);
	uint8_t data[3000];

	tu_fill_random(data, sizeof data, 7);
	ck_assert_ptr_nonnull(bb);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 1024), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "model", data, sizeof data), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "dir/other", data, 10), 0);
	ck_assert_int_eq(apb_builder_set_description(bb, "two models"), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
}

/* Manifest length of a v1 file. */
static size_t man_len(const uint8_t *f)
{
	return (size_t)f[12] | (size_t)f[13] << 8 | (size_t)f[14] << 16 | (size_t)f[15] << 24;
}

START_TEST(test_writer_binds_manifest)
{
	char *path = tu_path("b.apbundle");
	size_t len, ml, dig;
	uint8_t *f;
	char want[17];
	apbi_manifest *m;

	build_two(path);
	f = tu_read_file(path, &len);
	ml = man_len(f);
	dig = digits_at(f + 16, ml);
	snprintf(want, sizeof want, "%016" PRIx64, bound_sum(f + 16, ml, dig));
	ck_assert_int_eq(memcmp(f + 16 + dig, want, 16), 0);
	m = parse_ok(f, len);
	ck_assert(m->manifest_bound);
	apbi_manifest_free(m);
	free(f);
	free(path);
}
END_TEST

/* Writes f with byte at changed to c and asserts every reader refuses it. */
static void expect_refused(const char *path, uint8_t *f, size_t len, size_t at, uint8_t c)
{
	uint8_t old = f[at];
	apb_paged *pb = NULL;
	apb_bundle *b = NULL;

	f[at] = c;
	tu_write_file(path, f, len);
	cur_rule = "one manifest byte changed";
	expect(f, len, APB_E_CHECKSUM, "manifest checksum mismatch", "changed after it was written");
	ck_assert_int_eq(apb_paged_open(path, NULL, &pb), APB_E_CHECKSUM);
	ck_assert_ptr_null(pb);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "manifest"));
	ck_assert_int_eq(apb_bundle_load(path, &b), APB_E_CHECKSUM);
	ck_assert_ptr_null(b);
	f[at] = old;
}

START_TEST(test_edited_manifest_refused)
{
	char *path = tu_path("b.apbundle");
	size_t len, ml;
	uint8_t *f;
	char *name, *desc;

	build_two(path);
	f = tu_read_file(path, &len);
	ml = man_len(f);
	name = memmem(f + 16, ml, "\"model\"", 7);
	desc = memmem(f + 16, ml, "two models", 10);
	ck_assert(name && desc);
	/* the reproduction: sed 's/"name":"model"/"name":"modex"/' */
	expect_refused(path, f, len, (size_t)((uint8_t *)name - f) + 5, 'x');
	expect_refused(path, f, len, (size_t)((uint8_t *)desc - f), 'T');
	/* padding is bound too (a tab is still valid JSON whitespace) */
	expect_refused(path, f, len, 16 + ml - 1, '\t');
	/* and the checksum itself */
	expect_refused(path, f, len, 16 + digits_at(f + 16, ml), 'f');
	free(f);
	free(path);
}
END_TEST

/* The standard crafted manifest with "manifest_checksum" inserted after model_count. */
static uint8_t *bound_std(const char *value, size_t *len)
{
	char from[] = "\"model_count\":3,";
	char to[96];

	snprintf(to, sizeof to, "%s\"manifest_checksum\":%s,", from, value);
	return variant(from, to, len);
}

START_TEST(test_reader_rules)
{
	size_t len, dig;
	uint8_t *b;
	char v[32];
	apbi_manifest *m;

	/* no key: read, and said to be unbound */
	b = variant(NULL, NULL, &len);
	m = parse_ok(b, len);
	ck_assert(!m->manifest_bound);
	apbi_manifest_free(m);
	free(b);
	/* the right value, computed here: bound */
	b = bound_std("\"xxh3:0000000000000000\"", &len);
	dig = digits_at(b + 16, man_len(b));
	snprintf(v, sizeof v, "%016" PRIx64, bound_sum(b + 16, man_len(b), dig));
	memcpy(b + 16 + dig, v, 16);
	m = parse_ok(b, len);
	ck_assert(m->manifest_bound);
	apbi_manifest_free(m);
	/* uppercase digits are read too */
	for (int i = 0; i < 16; i++)
		if (b[16 + dig + i] >= 'a')
			b[16 + dig + i] -= 32;
	m = parse_ok(b, len);
	apbi_manifest_free(m);
	free(b);
	/* wrong value; not written out; a second key; not a string; not hex */
	static const struct { const char *value; int code; const char *n1, *n2; } bad[] = {
		{ "\"xxh3:0123456789abcdef\"", APB_E_CHECKSUM, "manifest checksum mismatch", NULL },
		{ "\"xxh3:012345678\\u0030abcdef\"", APB_E_MANIFEST, "\"manifest_checksum\"",
		  "written out" },
		{ "\"xxh3:0123456789abcdef\",\"manifest_checksum\":\"xxh3:0123456789abcdef\"",
		  APB_E_MANIFEST, "second \"manifest_checksum\"", NULL },
		{ "7", APB_E_MANIFEST, "\"manifest_checksum\"", NULL },
		{ "\"xxh3:0123456789abcdeg\"", APB_E_MANIFEST, "not a hex digit", NULL },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cur_rule = bad[i].value;
		b = bound_std(bad[i].value, &len);
		expect(b, len, bad[i].code, bad[i].n1, bad[i].n2);
		free(b);
	}
}
END_TEST

/* ---- item 7: lone surrogate escapes ---- */

START_TEST(test_surrogate_escapes)
{
	static const char *const bad[] = {
		"\"name\":\"\\ud800\"", "\"name\":\"x\\udfff\"", "\"name\":\"\\ud800\\u0041\"",
		"\"name\":\"\\udc00\\ud800\"", "\"name\":\"\\ud83d\"",
	};
	size_t len;
	uint8_t *b;
	apbi_manifest *m;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		b = variant("\"name\":\"enc\"", bad[i], &len);
		cur_rule = bad[i];
		expect(b, len, APB_E_MANIFEST, "lone UTF-16 surrogate", NULL);
		free(b);
	}
	cur_rule = "in the description";
	b = variant("\"test bundle\"", "\"a\\uDBFFz\"", &len);
	expect(b, len, APB_E_MANIFEST, "lone UTF-16 surrogate", NULL);
	free(b);
	/* a proper pair is one character; an escaped backslash starts no escape */
	b = variant("\"name\":\"enc\"", "\"name\":\"\\ud83d\\ude00\"", &len);
	m = parse_ok(b, len);
	ck_assert_str_eq(m->models[0].name, "\xf0\x9f\x98\x80");
	apbi_manifest_free(m);
	free(b);
	b = variant("\"name\":\"enc\"", "\"name\":\"\\\\ud800\"", &len);
	m = parse_ok(b, len);
	ck_assert_str_eq(m->models[0].name, "\\ud800");
	apbi_manifest_free(m);
	free(b);
}
END_TEST

/* ---- item 6: names that cannot coexist ---- */

/* Builds names[0..n) (each 5 bytes) at path; returns the build's code. */
static int build_names(const char *path, const char *const *names, size_t n)
{
	apb_builder *bb = apb_builder_new(path);
	int rc = 0;

	ck_assert_ptr_nonnull(bb);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = apb_builder_add_model(bb, names[i], "bytes", 5);
	if (rc == 0)
		rc = apb_builder_build(bb);
	apb_builder_free(bb);
	return rc;
}

START_TEST(test_clash_refused_at_create)
{
	static const char *const fwd[] = { "a", "a/b" }, *rev[] = { "z/y/x", "z/y", "q" };
	static const char *const ok[] = { "a-b", "a/b", "a.b", "x/.stats", "x/.control", "ab" };
	static const char *const reserved[] = { ".stats", ".stats.json", ".metrics", ".control",
	                                        ".stats/x", ".control/y/z" };
	char *path = tu_path("n.apbundle");
	struct stat st;

	ck_assert_int_eq(build_names(path, fwd, 2), APB_E_NAME);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "\"a\" and \"a/b\" cannot coexist"));
	ck_assert_int_ne(stat(path, &st), 0);
	ck_assert_int_eq(build_names(path, rev, 3), APB_E_NAME);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "\"z/y\" and \"z/y/x\""));
	ck_assert_int_ne(stat(path, &st), 0);
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
		ck_assert_int_eq(build_names(path, &reserved[i], 1), APB_E_NAME);
		ck_assert_ptr_nonnull(strstr(apb_last_error(), "reserved by apbundle-mount"));
	}
	ck_assert_int_ne(stat(path, &st), 0);
	ck_assert_int_eq(build_names(path, ok, 6), 0);
	free(path);
}
END_TEST

START_TEST(test_clash_flagged_at_open)
{
	/* written by an older writer: the names are flagged, the bundle still read */
	size_t len;
	uint8_t *b = variant("\"name\":\"empty\"", "\"name\":\"enc/x\"", &len);
	apbi_manifest *m = parse_ok(b, len);
	apb_model_info info;

	ck_assert_uint_eq(m->n_clashes, 2);
	ck_assert_uint_eq(m->models[0].clash, APB_CLASH_DIR);
	ck_assert_uint_eq(m->models[1].clash, 0);
	ck_assert_uint_eq(m->models[2].clash, APB_CLASH_UNDER);
	apbi_model_info(m, 2, &info);
	ck_assert_uint_eq(info.name_clash, APB_CLASH_UNDER);
	apbi_manifest_free(m);
	free(b);
	b = variant("\"name\":\"empty\"", "\"name\":\".stats.json\"", &len);
	m = parse_ok(b, len);
	ck_assert_uint_eq(m->n_clashes, 1);
	ck_assert_uint_eq(m->models[2].clash, APB_CLASH_RESERVED);
	apbi_manifest_free(m);
	free(b);
}
END_TEST

START_TEST(test_clash_chain_scales)
{
	/* a chain a, a/a, a/a/a ... plus many leaves below its end: O(n log n) */
	enum { DEPTH = 200, LEAVES = 20000 };
	const char **names = malloc((DEPTH + LEAVES) * sizeof *names);
	uint8_t *flags = malloc(DEPTH + LEAVES);
	char *buf = malloc(DEPTH * 2 * (DEPTH + LEAVES) + 64 * LEAVES);
	size_t pair[2], o = 0;

	ck_assert(names && flags && buf);
	for (size_t d = 0; d < DEPTH; d++) {
		names[d] = buf + o;
		for (size_t k = 0; k <= d; k++)
			o += (size_t)sprintf(buf + o, k ? "/a" : "a");
		o++;
	}
	for (size_t l = 0; l < LEAVES; l++) {
		names[DEPTH + l] = buf + o;
		o += (size_t)sprintf(buf + o, "%s/leaf%zu", names[DEPTH - 1], l) + 1;
	}
	ck_assert_int_eq(apbi_name_clashes(names, DEPTH + LEAVES, flags, pair), DEPTH + LEAVES);
	ck_assert_uint_eq(pair[0], 0);
	ck_assert_uint_eq(flags[0], APB_CLASH_DIR);
	ck_assert_uint_eq(flags[DEPTH - 1], APB_CLASH_DIR | APB_CLASH_UNDER);
	ck_assert_uint_eq(flags[DEPTH + LEAVES - 1], APB_CLASH_UNDER);
	free(names);
	free(flags);
	free(buf);
}
END_TEST

/* ---- item 3: budgets that cannot hold one load ---- */

START_TEST(test_budget_minimum)
{
	char *path = tu_path("big.apbundle");
	apb_paging_config cfg;
	apb_paged *pb = NULL;
	apb_builder *bb = apb_builder_new(path);
	uint8_t *data = malloc(1 << 20);

	tu_fill_random(data, 1 << 20, 3);
	ck_assert_int_eq(apb_builder_add_model(bb, "m", data, 1 << 20), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "tiny", data, 100), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	apb_paging_config_init(&cfg);
	/* the issue's `apbundle load -m 4K -p 4K`: 64 KiB blocks cannot fit */
	cfg.max_memory = 4096;
	cfg.page_size = 4096;
	ck_assert_int_eq(apb_paged_open(path, &cfg, &pb), -EINVAL);
	ck_assert_ptr_null(pb);
	/* a 64 KiB block, its 128-byte table and 8-byte index (short pages) */
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "the minimum for this bundle is 64.1 KiB"));
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "(65672 bytes)"));
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "\"m\""));
	/* default pages: a 64 KiB block, a (short) page of table and of index */
	cfg.max_memory = 65536;
	cfg.page_size = 65536;
	ck_assert_int_eq(apb_paged_open(path, &cfg, &pb), -EINVAL);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "(65672 bytes)"));
	/* exactly one load unit is enough, also below one page for small models */
	cfg.max_memory = 65672;
	cfg.page_size = 4096;
	ck_assert_int_eq(apb_paged_open(path, &cfg, &pb), 0);
	apb_paged_close(pb);
	/* models smaller than a page need only their bytes */
	bb = apb_builder_new(path);
	ck_assert_int_eq(apb_builder_add_model(bb, "tiny", data, 100), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	cfg.max_memory = 100;
	cfg.page_size = 65536;
	ck_assert_int_eq(apb_paged_open(path, &cfg, &pb), 0);
	apb_paged_close(pb);
	cfg.max_memory = 99;
	ck_assert_int_eq(apb_paged_open(path, &cfg, &pb), -EINVAL);
	free(data);
	free(path);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("hardening");
	TCase *bind = tcase_create("manifest_binding");
	TCase *names = tcase_create("names");
	TCase *budget = tcase_create("budget");

	tu_add_fixture(bind);
	tcase_add_test(bind, test_writer_binds_manifest);
	tcase_add_test(bind, test_edited_manifest_refused);
	tcase_add_test(bind, test_reader_rules);
	suite_add_tcase(s, bind);
	tu_add_fixture(names);
	tcase_add_test(names, test_surrogate_escapes);
	tcase_add_test(names, test_clash_refused_at_create);
	tcase_add_test(names, test_clash_flagged_at_open);
	tcase_add_test(names, test_clash_chain_scales);
	suite_add_tcase(s, names);
	tu_add_fixture(budget);
	tcase_add_test(budget, test_budget_minimum);
	suite_add_tcase(s, budget);
	return s;
}

APB_TEST_MAIN()
