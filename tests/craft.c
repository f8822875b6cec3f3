/*
 * craft.c - hand-made bundles for the format suites (see craft.h).
 *
 * Invariant: nothing here uses the library's writer or checksum helpers:
 * headers are written byte by byte and checksums computed with libxxhash,
 * so a bug shared by our writer and reader cannot hide in the tests.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "craft.h"

uint8_t std_data[DATA_LEN];

/* "xxh3:" + 16 hex digits of data, computed independently of the library. */
void xs(const void *data, size_t len, char out[22])
{
	snprintf(out, 22, "xxh3:%016" PRIx64, (uint64_t)XXH3_64bits(data, len));
}

void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Returns "APBUNDLE" + u32 1 + u32 L + json padded with spaces to a multiple
 * of align (from the file start) + data.  Caller frees.
 */
uint8_t *craft(const char *json, uint32_t align, const void *data, size_t dlen, size_t *len)
{
	size_t jl = strlen(json), mlen = jl;
	uint8_t *b;

	while ((16 + mlen) % align)
		mlen++;
	*len = 16 + mlen + dlen;
	b = malloc(*len ? *len : 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, "APBUNDLE", 8);
	put_le32(b + 8, 1);
	put_le32(b + 12, (uint32_t)mlen);
	memcpy(b + 16, json, jl);
	memset(b + 16 + jl, ' ', mlen - jl);
	if (dlen)
		memcpy(b + 16 + mlen, data, dlen);
	return b;
}

/* Fills std_data (models and the table of dir/dec) and writes the manifest. */
void std_json(char *out, size_t cap)
{
	char c_enc[22], c_dec[22], c_empty[22], c_table[22];

	memset(std_data, 0, sizeof std_data);
	tu_fill_random(std_data, ENC_SIZE, 1);
	tu_fill_random(std_data + DEC_OFF, DEC_SIZE, 2);
	for (int k = 0; k < 3; k++) {
		size_t n = k < 2 ? 512 : DEC_SIZE - 1024;
		put_le64(std_data + TABLE_OFF + 8 * k, XXH3_64bits(std_data + DEC_OFF + 512 * k, n));
	}
	xs(std_data, ENC_SIZE, c_enc);
	xs(std_data + DEC_OFF, DEC_SIZE, c_dec);
	xs("", 0, c_empty);
	xs(std_data + TABLE_OFF, 24, c_table);
	snprintf(out, cap,
	         "{\"format\":\"apbundle\",\"version\":1,\"alignment\":64,\"model_count\":3,"
	         "\"description\":\"test bundle\",\"created_at\":1700000000,\"models\":["
	         "{\"name\":\"enc\",\"offset\":0,\"size\":100,\"checksum\":\"%s\","
	         "\"metadata\":{\"version\":\"1.2\",\"architecture\":\"transformer\","
	         "\"hyperparameters\":{\"layers\":\"6\",\"heads\":\"8\"},\"custom\":{\"author\":\"fmt\"}}},"
	         "{\"name\":\"dir/dec\",\"offset\":128,\"size\":1500,\"checksum\":\"%s\","
	         "\"blocks\":{\"size\":512,\"checksums_offset\":1632,\"table_checksum\":\"%s\"}},"
	         "{\"name\":\"empty\",\"offset\":1664,\"size\":0,\"checksum\":\"%s\"}]}",
	         c_enc, c_dec, c_table, c_empty);
}

/* The standard bundle with the first occurrence of from replaced by to. */
uint8_t *variant(const char *from, const char *to, size_t *len)
{
	char json[4096], out[4096];
	char *at;

	std_json(json, sizeof json);
	if (!from)
		return craft(json, ALIGN, std_data, DATA_LEN, len);
	at = strstr(json, from);
	ck_assert_msg(at != NULL, "test bug: \"%s\" not in the manifest", from);
	snprintf(out, sizeof out, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
	return craft(out, ALIGN, std_data, DATA_LEN, len);
}

/* The change under test, for failure messages. */
const char *cur_rule = "";

/* Parses buf and asserts the code and that the detail contains each needle. */
void expect(const uint8_t *buf, size_t len, int code, const char *n1, const char *n2)
{
	apbi_manifest *m = (apbi_manifest *)1;
	int rc = apbi_manifest_parse(buf, len, len, &m);
	const char *e = apb_last_error();

	ck_assert_msg(rc == code, "[%s] want %d (%s), got %d: %s", cur_rule, code, apb_strerror(code), rc, e);
	ck_assert_ptr_null(m);
	ck_assert_msg(n1 == NULL || strstr(e, n1), "[%s] detail \"%s\" does not mention \"%s\"", cur_rule, e, n1);
	ck_assert_msg(n2 == NULL || strstr(e, n2), "[%s] detail \"%s\" does not mention \"%s\"", cur_rule, e, n2);
}


apbi_manifest *parse_ok(const uint8_t *buf, size_t len)
{
	apbi_manifest *m = NULL;
	int rc = apbi_manifest_parse(buf, len, len, &m);

	ck_assert_msg(rc == 0, "parse failed: %d %s", rc, apb_last_error());
	ck_assert_ptr_nonnull(m);
	return m;
}
