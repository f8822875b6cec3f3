/*
 * check_format_json.c - Check suite for the manifest's JSON side of the
 * format layer: JSON and top-level rules, per-model field, checksum, block
 * and metadata rules, the "models" array decoded one element at a time
 * (separators, truncation, non-objects, strings, nesting) and decoding
 * 10,000 models.  Header, legacy and damaged-bundle tests are in
 * check_format.c.
 *
 * Bundles are crafted by hand (tests/craft.c: header bytes + JSON text +
 * padding + data, checksums computed with libxxhash directly), never with
 * the library's own writer, so a bug shared by writer and reader cannot
 * hide.  Each rule test starts from one valid manifest, changes exactly
 * one thing and asserts both the error code and that apb_last_error()
 * names the field or model.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <valgrind/valgrind.h>

#include "craft.h"

/* One rule case: change from -> to in the standard manifest, expect code and needles. */
typedef struct rule_case {
	const char *from, *to;
	int code;
	const char *n1, *n2;
} rule_case;

static void run_rules(const rule_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rule(c[i].from, c[i].to, c[i].code, c[i].n1, c[i].n2);
}

/* ---- JSON and top-level rules ---- */

START_TEST(test_json_rules)
{
	static const rule_case cases[] = {
		{ "\"version\":1,", "\"version\":1,,", APB_E_MANIFEST, "JSON invalid", NULL },
		/* (json-c 0.16 accepts single-quoted keys even in strict mode, but not values) */
		{ "\"format\":\"apbundle\"", "\"format\":'apbundle'", APB_E_MANIFEST, "JSON invalid", NULL },
		{ "\"version\":1,", "/* c */\"version\":1,", APB_E_MANIFEST, "JSON invalid", NULL },
		{ "\"test bundle\"", "\"test \xff bundle\"", APB_E_MANIFEST, "JSON invalid", NULL },
		/* json-c's own UTF-8 check lets overlongs and surrogates through; ours does not */
		{ "\"test bundle\"", "\"test \xc0\xaf bundle\"", APB_E_MANIFEST, "\"description\"", "UTF-8" },
		{ "\"test bundle\"", "\"test \xed\xa0\x80 bundle\"", APB_E_MANIFEST, "\"description\"", "UTF-8" },
		{ "\"name\":\"enc\"", "\"name\":\"\xed\xa0\x80\"", APB_E_NAME, "models[0]", "UTF-8" },
		{ "\"}]}", "\"}],}", APB_E_MANIFEST, "JSON invalid", NULL },
		{ "\"format\":\"apbundle\"", "\"format\":\"apbundle2\"", APB_E_MANIFEST, "\"format\"", "apbundle2" },
		{ "\"format\":\"apbundle\",", "", APB_E_MANIFEST, "\"format\"", "missing" },
		{ "\"format\":\"apbundle\"", "\"format\":7", APB_E_MANIFEST, "\"format\"", "not a string" },
		{ "\"version\":1", "\"version\":2", APB_E_VERSION, "\"version\"", "2" },
		{ "\"version\":1", "\"version\":\"1\"", APB_E_MANIFEST, "\"version\"", "not an integer" },
		{ "\"version\":1,", "", APB_E_MANIFEST, "\"version\"", "missing" },
		{ "\"alignment\":64", "\"alignment\":48", APB_E_CORRUPT, "\"alignment\"", "power of two" },
		{ "\"alignment\":64", "\"alignment\":0", APB_E_CORRUPT, "\"alignment\"", "power of two" },
		{ "\"alignment\":64", "\"alignment\":-64", APB_E_MANIFEST, "\"alignment\"", "negative" },
		{ "\"alignment\":64", "\"alignment\":2147483648", APB_E_CORRUPT, "\"alignment\"", NULL },
		{ "\"alignment\":64", "\"alignment\":64.0", APB_E_MANIFEST, "\"alignment\"", "not an integer" },
		{ "\"model_count\":3", "\"model_count\":2", APB_E_CORRUPT, "\"model_count\"", "3 entries" },
		{ "\"model_count\":3", "\"model_count\":4", APB_E_CORRUPT, "\"model_count\"", NULL },
		{ "\"model_count\":3,", "", APB_E_MANIFEST, "\"model_count\"", "missing" },
		{ "\"description\":\"test bundle\"", "\"description\":5", APB_E_MANIFEST, "\"description\"", NULL },
		{ "\"description\":\"test bundle\"", "\"description\":\"a\\u0000b\"", APB_E_MANIFEST,
		  "\"description\"", "NUL" },
		{ "\"created_at\":1700000000", "\"created_at\":\"now\"", APB_E_MANIFEST, "\"created_at\"", NULL },
		{ "\"models\":[", "\"models\":{\"a\":[", APB_E_MANIFEST, "JSON", NULL },
		{ "\"models\":[", "\"models\":7,\"x\":[", APB_E_MANIFEST, "\"models\"", "not an array" },
	};

	run_rules(cases, sizeof cases / sizeof cases[0]);
}
END_TEST

START_TEST(test_not_an_object)
{
	size_t len;
	uint8_t *b = craft("{}", 1, NULL, 0, &len);

	expect(b, len, APB_E_MANIFEST, "\"format\"", "missing");
	free(b);
	/* '{' at byte 16 selects v1; a bare array is then refused by the JSON reader */
	b = craft("{\"format\":\"apbundle\"} [1]", 1, NULL, 0, &len);
	expect(b, len, APB_E_MANIFEST, "after the JSON object", NULL);
	free(b);
	/* the data section must start aligned */
	b = craft("{\"format\":\"apbundle\",\"version\":1,\"alignment\":4096,\"model_count\":0,\"models\":[]}",
	          8, NULL, 0, &len);
	expect(b, len, APB_E_CORRUPT, "\"alignment\"", "not a multiple");
	free(b);
	/* a bundle of no models is valid */
	b = craft("{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":0,\"models\":[]}",
	          1, NULL, 0, &len);
	apbi_manifest *m = parse_ok(b, len);
	ck_assert_uint_eq(m->n_models, 0);
	ck_assert_int_eq(apbi_manifest_find(m, "x"), -1);
	apbi_manifest_free(m);
	free(b);
}
END_TEST

/* ---- per-model rules ---- */

START_TEST(test_model_field_rules)
{
	static const rule_case cases[] = {
		{ "{\"name\":\"enc\"", "7,{\"name\":\"enc\"", APB_E_CORRUPT, "\"model_count\"", "4 entries" },
		{ "\"model_count\":3,\"description\":\"test bundle\",\"created_at\":1700000000,\"models\":[",
		  "\"model_count\":4,\"models\":[[],", APB_E_MANIFEST, "models[0]", "not an object" },
		{ "\"name\":\"enc\",", "", APB_E_MANIFEST, "models[0]", "\"name\": missing" },
		{ "\"name\":\"enc\"", "\"name\":[\"enc\"]", APB_E_MANIFEST, "models[0]", "not a string" },
		{ "\"name\":\"dir/dec\"", "\"name\":\"dir/../dec\"", APB_E_NAME, "models[1]", "\"..\"" },
		{ "\"name\":\"dir/dec\"", "\"name\":\"/dec\"", APB_E_NAME, "models[1]", "starts with '/'" },
		{ "\"name\":\"dir/dec\"", "\"name\":\"\"", APB_E_NAME, "models[1]", "empty" },
		{ "\"name\":\"dir/dec\"", "\"name\":\"a\\u0000b\"", APB_E_NAME, "models[1]", "NUL" },
		{ "\"name\":\"dir/dec\"", "\"name\":\"a\\tb\"", APB_E_NAME, "models[1]", "control" },
		{ "\"name\":\"dir/dec\"", "\"name\":\"enc\"", APB_E_DUPLICATE, "models[1] \"enc\"", "models[0]" },
		{ "\"offset\":0,", "", APB_E_MANIFEST, "models[0] \"enc\"", "\"offset\": missing" },
		{ "\"offset\":0,", "\"offset\":-64,", APB_E_MANIFEST, "models[0] \"enc\"", "negative" },
		{ "\"offset\":0,", "\"offset\":\"0\",", APB_E_MANIFEST, "\"offset\"", "not an integer" },
		{ "\"size\":100,", "\"size\":1e2,", APB_E_MANIFEST, "models[0] \"enc\"", "\"size\": not an integer" },
		{ "\"size\":100,", "\"size\":-1,", APB_E_MANIFEST, "\"size\"", "negative" },
		{ "\"size\":100,", "\"size\":true,", APB_E_MANIFEST, "\"size\"", NULL },
		{ "\"offset\":128,", "\"offset\":130,", APB_E_CORRUPT, "models[1] \"dir/dec\"", "alignment 64" },
		{ "\"size\":1500,", "\"size\":1600,", APB_E_TRUNCATED, "models[1] \"dir/dec\"", "beyond" },
		{ "\"size\":1500,", "\"size\":1520,", APB_E_CORRUPT, "overlaps", "dir/dec" },
		{ "\"size\":100,", "\"size\":129,", APB_E_CORRUPT, "overlaps", "models[0] \"enc\"" },
		{ "\"offset\":1664,", "\"offset\":1728,", APB_E_TRUNCATED, "models[2] \"empty\"", "beyond" },
		{ "\"size\":0,", "\"size\":1,", APB_E_TRUNCATED, "models[2] \"empty\"", "beyond the end" },
		{ "\"offset\":1664,\"size\":0", "\"offset\":18446744073709551552,\"size\":128",
		  APB_E_CORRUPT, "models[2] \"empty\"", "overflow" },
		{ "\"offset\":1664,\"size\":0", "\"offset\":18446744073709551615,\"size\":0",
		  APB_E_CORRUPT, "models[2] \"empty\"", "alignment" },
		{ "\"offset\":1664,\"size\":0", "\"offset\":1664,\"size\":18446744073709551615",
		  APB_E_CORRUPT, "models[2] \"empty\"", "\"blocks\" table" },
		/* json-c saturates integers above UINT64_MAX; the result is still refused */
		{ "\"offset\":1664,\"size\":0", "\"offset\":1664,\"size\":18446744073709551616",
		  APB_E_CORRUPT, "models[2] \"empty\"", NULL },
	};

	run_rules(cases, sizeof cases / sizeof cases[0]);
}
END_TEST

START_TEST(test_checksum_and_block_rules)
{
	static const rule_case cases[] = {
		{ "\"checksum\":\"xxh3:", "\"x\":\"xxh3:", APB_E_MANIFEST, "models[0] \"enc\"", "\"checksum\": missing" },
		{ "\"checksum\":\"xxh3:", "\"checksum\":\"md5:", APB_E_MANIFEST, "models[0] \"enc\"", "checksum" },
		{ "\"checksum\":\"xxh3:", "\"checksum\":\"xxh3:0", APB_E_MANIFEST, "\"checksum\"", "more than 16" },
		{ "\"checksum\":\"xxh3:", "\"checksum\":\"xxh3:g", APB_E_MANIFEST, "\"checksum\"", "16 hex" },
		{ "\"checksum\":\"xxh3:", "\"checksum\":1,\"y\":\"", APB_E_MANIFEST, "\"checksum\"", "not a string" },
		{ "\"blocks\":{\"size\":512", "\"blocks\":{\"size\":1000", APB_E_CORRUPT, "models[1] \"dir/dec\"",
		  "\"blocks.size\"" },
		{ "\"blocks\":{\"size\":512", "\"blocks\":{\"size\":256", APB_E_CORRUPT, "\"blocks.size\"",
		  "power of two" },
		{ "\"blocks\":{\"size\":512", "\"blocks\":{\"size\":2147483648", APB_E_CORRUPT,
		  "\"blocks.size\"", NULL },
		{ "\"blocks\":{\"size\":512,", "\"blocks\":{", APB_E_MANIFEST, "\"blocks.size\"", "missing" },
		{ "\"blocks\":{\"size\":512", "\"blocks\":[{\"size\":512}", APB_E_MANIFEST, NULL, NULL },
		{ "\"blocks\":{", "\"blocks\":7,\"b\":{", APB_E_MANIFEST, "\"blocks\"", "not an object" },
		{ "\"checksums_offset\":1632", "\"checksums_offset\":1636", APB_E_CORRUPT,
		  "models[1] \"dir/dec\"", "multiple of 8" },
		{ "\"checksums_offset\":1632", "\"checksums_offset\":1648", APB_E_TRUNCATED,
		  "models[1] \"dir/dec\"", "block table" },
		{ "\"checksums_offset\":1632", "\"checksums_offset\":18446744073709551608", APB_E_CORRUPT,
		  "models[1] \"dir/dec\"", "overflow" },
		/* the table overlapping its own model, another model, another table */
		{ "\"checksums_offset\":1632", "\"checksums_offset\":1600", APB_E_CORRUPT, "block table",
		  "overlaps the data" },
		{ "\"checksums_offset\":1632", "\"checksums_offset\":64", APB_E_CORRUPT, "overlaps", "\"enc\"" },
		{ "\"checksum\":\"xxh3:", "\"blocks\":{\"size\":64,\"checksums_offset\":1640},\"checksum\":\"xxh3:",
		  APB_E_CORRUPT, "\"blocks.size\"", NULL },
		{ "\"checksum\":\"xxh3:", "\"blocks\":{\"size\":512,\"checksums_offset\":1640},\"checksum\":\"xxh3:",
		  APB_E_CORRUPT, "overlaps the block table", "models[1]" },
		/* blocks.table_checksum: optional, but well-formed when present */
		{ "\"table_checksum\":\"xxh3:", "\"table_checksum\":\"xxh3:0", APB_E_MANIFEST,
		  "models[1] \"dir/dec\"", "\"blocks.table_checksum\"" },
		{ "\"table_checksum\":\"xxh3:", "\"table_checksum\":\"md5:", APB_E_MANIFEST,
		  "\"blocks.table_checksum\"", NULL },
		{ "\"table_checksum\":\"", "\"table_checksum\":7,\"x\":\"", APB_E_MANIFEST,
		  "\"blocks.table_checksum\"", "not a string" },
		/* an empty model is checked at decode: it has no block to read */
		{ "\"size\":0,\"checksum\":\"xxh3:2d06800538d394c2\"",
		  "\"size\":0,\"checksum\":\"xxh3:2e06800538d394c2\"", APB_E_CHECKSUM,
		  "models[2] \"empty\"", "empty (0 bytes) but its checksum is xxh3:2e06800538d394c2" },
		{ "\"size\":0,\"checksum\":\"xxh3:2d06800538d394c2\"",
		  "\"size\":0,\"checksum\":\"xxh3:0000000000000000\"", APB_E_CHECKSUM,
		  "models[2] \"empty\"", "not xxh3:2d06800538d394c2" },
		/* more than one block and no table */
		{ "\"offset\":1664,\"size\":0", "\"offset\":1664,\"size\":1073741825", APB_E_CORRUPT,
		  "models[2] \"empty\"", "\"blocks\" table" },
		{ "\"offset\":1664,\"size\":0", "\"offset\":1664,\"size\":1073741824", APB_E_TRUNCATED,
		  "models[2] \"empty\"", "beyond" },
	};

	run_rules(cases, sizeof cases / sizeof cases[0]);
}
END_TEST

START_TEST(test_metadata_rules)
{
	static const rule_case cases[] = {
		{ "\"metadata\":{", "\"metadata\":[{", APB_E_MANIFEST, NULL, NULL },
		{ "\"metadata\":{", "\"metadata\":1,\"m\":{", APB_E_MANIFEST, "models[0] \"enc\"", "\"metadata\"" },
		{ "\"version\":\"1.2\"", "\"version\":1.2", APB_E_MANIFEST, "models[0] \"enc\"",
		  "\"metadata.version\"" },
		{ "\"architecture\":\"transformer\"", "\"architecture\":[]", APB_E_MANIFEST,
		  "\"metadata.architecture\"", NULL },
		{ "\"layers\":\"6\"", "\"layers\":6", APB_E_MANIFEST, "\"metadata.hyperparameters\"", "layers" },
		{ "\"custom\":{\"author\":\"fmt\"}", "\"custom\":[]", APB_E_MANIFEST, "\"metadata.custom\"",
		  "not an object" },
		{ "\"author\":\"fmt\"", "\"author\":{\"a\":\"b\"}", APB_E_MANIFEST, "\"metadata.custom\"", "author" },
		{ "\"author\":\"fmt\"", "\"author\":\"f\\u0000t\"", APB_E_MANIFEST, "\"metadata.custom\"", NULL },
		{ "\"author\":\"fmt\"", "\"author\":\"\xc0\xaf\"", APB_E_MANIFEST, "\"metadata.custom\"", "UTF-8" },
		{ "\"author\":\"fmt\"", "\"\xc0\xaf\":\"fmt\"", APB_E_MANIFEST, "\"metadata.custom\"", "UTF-8" },
	};

	run_rules(cases, sizeof cases / sizeof cases[0]);
}
END_TEST

/* ---- the "models" array, decoded one element at a time ---- */

/* Parses a bare manifest (alignment 1, no data); asserts code and needles. */
static void expect_json(const char *json, int code, const char *n1, const char *n2)
{
	size_t len;
	uint8_t *b = craft(json, 1, NULL, 0, &len);

	cur_rule = json;
	expect(b, len, code, n1, n2);
	free(b);
}

/* k nested arrays: "[[...]]" (caller frees). */
static char *nest(size_t k)
{
	char *s = malloc(2 * k + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, '[', k);
	memset(s + k, ']', k);
	s[2 * k] = '\0';
	return s;
}

START_TEST(test_models_separators)
{
	static const rule_case cases[] = {
		{ "},{\"name\":\"dir/dec\"", "} x,{\"name\":\"dir/dec\"", APB_E_MANIFEST, "JSON invalid",
		  "after models[0], expected ',' or ']'" },
		{ "},{\"name\":\"dir/dec\"", "}{\"name\":\"dir/dec\"", APB_E_MANIFEST, "JSON invalid",
		  "after models[0]" },
		{ "},{\"name\":\"dir/dec\"", "},,{\"name\":\"dir/dec\"", APB_E_MANIFEST, "JSON invalid",
		  "where models[1] should start" },
		{ "\"models\":[", "\"models\":[,", APB_E_MANIFEST, "JSON invalid", "where models[0] should start" },
		{ "\"}]}", "\"} , ]}", APB_E_MANIFEST, "JSON invalid", "trailing ',' after models[2]" },
		{ "\"}]}", "\"}]]}", APB_E_MANIFEST, "JSON invalid", "expected ',' or '}'" },
		{ "\"name\":\"enc\"", "\"name\":'enc'", APB_E_MANIFEST, "JSON invalid", "expected a value" },
		{ "\"offset\":0,", "\"offset\":0x,", APB_E_MANIFEST, "JSON invalid", "in models[0]" },
		{ "\"offset\":0,", "\"offset\":tru,", APB_E_MANIFEST, "JSON invalid", "in models[0]" },
		{ "\"size\":512,", "\"size\" 512,", APB_E_MANIFEST, "JSON invalid", "expected ':'" },
		{ "\"models\":[", "\"models\":\"x\",\"y\":[", APB_E_MANIFEST, "\"models\"", "not an array" },
		{ "\"models\":[", "\"models\":[],\"models\":[", APB_E_MANIFEST, "second \"models\" key", NULL },
		{ "\"models\":[", "\"mod\\u0065ls\":[],\"models\":[", APB_E_MANIFEST, "second \"models\" key", NULL },
		{ "\"models\":[", "\"models\":null,\"models\":[", APB_E_MANIFEST, "second \"models\" key", NULL },
	};
	char json[4096];
	const char *at;

	run_rules(cases, sizeof cases / sizeof cases[0]);
	/* the detail names the byte (offsets count from the manifest's first byte) */
	std_json(json, sizeof json);
	at = strstr(json, "},{\"name\":\"dir/dec\"");
	{
		char want[64];
		snprintf(want, sizeof want, "at byte %zu:", (size_t)(at - json) + 2);
		rule("},{\"name\":\"dir/dec\"", "} x,{\"name\":\"dir/dec\"", APB_E_MANIFEST, want, "0x78");
		/* a byte after the object is named where it is, not in the cut copy */
		snprintf(want, sizeof want, "0x78 at %zu after", strlen(json) + 1);
		rule("\"}]}", "\"}]} x", APB_E_MANIFEST, want, NULL);
	}
}
END_TEST

START_TEST(test_models_unterminated)
{
	static const char *const cases[] = {
		"{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":0,\"models\":[",
		"{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":1,\"models\":[{\"name\":\"a\"",
		"{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":1,\"models\":[{\"name\":\"a",
		"{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":1,\"models\":[{\"name\":\"a\\",
		"{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":1,\"models\":[{\"n\":[1,",
		"{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":0,\"models\":[]",
		"{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":0,\"models\":[],\"d\":\"x",
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char want[64];
		snprintf(want, sizeof want, "ends early (at byte %zu of %zu)", strlen(cases[i]), strlen(cases[i]));
		expect_json(cases[i], APB_E_MANIFEST, want, NULL);
	}
}
END_TEST

START_TEST(test_models_not_objects)
{
	static const char *const elems[] = { "5", "\"x\"", "null", "[]", "[{}]", "true" };
	char json[256];

	for (size_t i = 0; i < sizeof elems / sizeof elems[0]; i++) {
		snprintf(json, sizeof json, "{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,"
		         "\"model_count\":2,\"models\":[{\"name\":\"a\",\"offset\":0,\"size\":1,"
		         "\"checksum\":\"xxh3:0000000000000000\"}, %s ]}", elems[i]);
		expect_json(json, APB_E_MANIFEST, "models[1]: not an object", NULL);
	}
}
END_TEST

/* Brackets, commas and escaped quotes inside strings are not structure. */
START_TEST(test_models_strings_with_brackets)
{
	size_t len;
	uint8_t *b = variant("\"author\":\"fmt\"", "\"au]}\\\"th,or\":\"f]}\\\"[{,\\\\\"", &len);
	apbi_manifest *m = parse_ok(b, len);

	ck_assert_uint_eq(m->n_models, 3);
	ck_assert_uint_eq(m->models[0].md.n_custom, 1);
	ck_assert_str_eq(m->models[0].md.custom[0].key, "au]}\"th,or");
	ck_assert_str_eq(m->models[0].md.custom[0].value, "f]}\"[{,\\");
	ck_assert_str_eq(m->models[1].name, "dir/dec");
	apbi_manifest_free(m);
	free(b);
	/* a top-level string that looks like a "models" key, and an escaped real one */
	b = variant("\"description\":\"test bundle\",", "\"description\":\"x\\\",\\\"models\\\":[{\","
	            "\"z\":{\"models\":[1,{\"a\":\"]\"}]},", &len);
	m = parse_ok(b, len);
	ck_assert_str_eq(m->description, "x\",\"models\":[{");
	ck_assert_uint_eq(m->n_models, 3);
	apbi_manifest_free(m);
	free(b);
	/* json-c's keys stop at a NUL, so "models\u0000x" is "models" too */
	for (int k = 0; k < 2; k++) {
		b = variant("\"models\":[", k ? "\"models\\u0000x\":[" : "\"mod\\u0065ls\" : [", &len);
		m = parse_ok(b, len);
		ck_assert_uint_eq(m->n_models, 3);
		ck_assert_str_eq(m->models[2].name, "empty");
		apbi_manifest_free(m);
		free(b);
	}
}
END_TEST

/* Nesting is capped at json-c's 32 levels (the root counts), iteratively. */
START_TEST(test_models_deep_nesting)
{
	/* a model is 3 levels deep: 29 more fit, 30 do not; at the top 31 and 32 */
	static const struct { const char *from, *pre, *post; size_t k; bool ok; } cases[] = {
		{ "\"name\":\"enc\"", "\"x\":", ",\"name\":\"enc\"", 29, true },
		{ "\"name\":\"enc\"", "\"x\":", ",\"name\":\"enc\"", 30, false },
		{ "\"author\":\"fmt\"", "\"author\":\"fmt\",\"deep\":", "", 28, false },
		{ "\"version\":1", "\"x\":", ",\"version\":1", 31, true },
		{ "\"version\":1", "\"x\":", ",\"version\":1", 32, false },
	};
	char to[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *n = nest(cases[i].k);
		size_t len;
		uint8_t *b;
		snprintf(to, sizeof to, "%s%s%s", cases[i].pre, n, cases[i].post);
		b = variant(cases[i].from, to, &len);
		if (cases[i].ok) {
			apbi_manifest_free(parse_ok(b, len));
		} else {
			cur_rule = to;
			expect(b, len, APB_E_MANIFEST, "nested more than 32 levels deep", NULL);
		}
		free(b);
		free(n);
	}
	/* far deeper than any stack would take, in a model and unterminated */
	{
		size_t k = 1000000;
		char *json = malloc(k + 256), *n = nest(k);
		int off;
		ck_assert_ptr_nonnull(json);
		off = snprintf(json, 256, "{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,"
		               "\"model_count\":1,\"models\":[{\"x\":");
		memcpy(json + off, n, k);      /* only the opening brackets */
		json[off + k] = '\0';
		expect_json(json, APB_E_MANIFEST, "nested more than 32 levels deep", NULL);
		free(n);
		free(json);
	}
}
END_TEST

/* ---- scale ---- */

#define MANY 10000

/* A manifest of MANY models of msize bytes (block tables when tables). */
static char *many_json(uint64_t msize, bool tables)
{
	size_t cap = (size_t)MANY * 200 + 256, n;
	char *j = malloc(cap);

	ck_assert_ptr_nonnull(j);
	n = (size_t)snprintf(j, cap, "{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,"
	                     "\"model_count\":%d,\"models\":[", MANY);
	for (int i = 0; i < MANY; i++) {
		n += (size_t)snprintf(j + n, cap - n, "%s{\"name\":\"models/m%05d.bin\",\"offset\":%" PRIu64
		                      ",\"size\":%" PRIu64 ",\"checksum\":\"xxh3:%016x\"",
		                      i ? "," : "", i, (uint64_t)i * msize, msize, i);
		if (tables)
			n += (size_t)snprintf(j + n, cap - n, ",\"blocks\":{\"size\":512,\"checksums_offset\":%"
			                      PRIu64 "}", (uint64_t)MANY * msize + (uint64_t)i * 16);
		n += (size_t)snprintf(j + n, cap - n, "}");
	}
	snprintf(j + n, cap - n, "]}");
	return j;
}

/* CPU time: the machine is shared, so wall time would measure the neighbours. */
static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Decodes MANY models three times; returns the best time in ms. */
static double decode_many(bool tables)
{
	uint64_t msize = tables ? 1000 : 100;
	char *json = many_json(msize, tables);
	size_t len;
	uint8_t *b = craft(json, 1, NULL, 0, &len);
	uint64_t file_size = len + (uint64_t)MANY * msize + (tables ? (uint64_t)MANY * 16 : 0);
	double best = 1e9;

	for (int run = 0; run < 3; run++) {
		apbi_manifest *m = NULL;
		double t0 = now_ms(), t;
		int rc = apbi_manifest_parse(b, len, file_size, &m);
		t = now_ms() - t0;
		ck_assert_msg(rc == 0, "%s", apb_last_error());
		best = t < best ? t : best;
		ck_assert_uint_eq(m->n_models, MANY);
		for (int i = 0; i < MANY; i += 1) {
			char name[32];
			snprintf(name, sizeof name, "models/m%05d.bin", i);
			ck_assert_int_eq(apbi_manifest_find(m, name), i);
		}
		ck_assert_int_eq(apbi_manifest_find(m, "models/m10000.bin"), -1);
		ck_assert_uint_eq(m->models[MANY - 1].n_blocks, tables ? 2 : 1);
		apbi_manifest_free(m);
	}
	fprintf(stderr, "# decode %d models (%s, %zu-byte manifest): best of 3 %.1f ms CPU\n",
	        MANY, tables ? "block tables" : "no tables", len - 16, best);
	free(b);
	free(json);
	return best;
}

START_TEST(test_many_models)
{
	double plain = decode_many(false), tables = decode_many(true);
	bool instrumented = RUNNING_ON_VALGRIND;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	instrumented = true;
#endif
	if (!instrumented) {
		ck_assert_msg(plain < 50.0, "10,000 models took %.1f ms", plain);
		/* 1.4 MB of JSON: json-c's own parse and free dominate */
		ck_assert_msg(tables < 100.0, "10,000 models with tables took %.1f ms", tables);
	}
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("format_json");
	TCase *rules = tcase_create("rules");
	TCase *scale = tcase_create("scale");

	tcase_add_test(rules, test_json_rules);
	tcase_add_test(rules, test_not_an_object);
	tcase_add_test(rules, test_model_field_rules);
	tcase_add_test(rules, test_checksum_and_block_rules);
	tcase_add_test(rules, test_metadata_rules);
	tcase_add_test(rules, test_models_separators);
	tcase_add_test(rules, test_models_unterminated);
	tcase_add_test(rules, test_models_not_objects);
	tcase_add_test(rules, test_models_strings_with_brackets);
	tcase_add_test(rules, test_models_deep_nesting);
	suite_add_tcase(s, rules);
	tu_add_fixture(scale);
	tcase_add_test(scale, test_many_models);
	tcase_set_timeout(scale, 120);
	suite_add_tcase(s, scale);
	return s;
}

APB_TEST_MAIN()
