/*
 * craft.h - hand-made bundles shared by the format suites.
 *
 * The standard bundle: alignment 64, models "enc" (100 bytes at 0, with
 * metadata), "dir/dec" (1500 bytes at 128, 512-byte blocks, table at 1632
 * bound by blocks.table_checksum) and "empty" (0 bytes at 1664); its
 * manifest is one line of JSON that tests change one substring at a time
 * with variant().
 */
#ifndef APB_TEST_CRAFT_H
#define APB_TEST_CRAFT_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "internal.h"
#include "testutil.h"

/* The standard bundle: alignment 64, three models and one block table. */
#define ALIGN 64
#define ENC_SIZE 100
#define DEC_OFF 128
#define DEC_SIZE 1500
#define TABLE_OFF 1632
#define EMPTY_OFF 1664
#define DATA_LEN 1664

/** Bytes of the standard bundle's data section (filled by std_json). */
extern uint8_t std_data[DATA_LEN];

/** The change under test, printed in failure messages. */
extern const char *cur_rule;

/** "xxh3:" + 16 hex digits of data, computed with libxxhash directly. */
void xs(const void *data, size_t len, char out[22]);
void put_le32(uint8_t *p, uint32_t v);
void put_le64(uint8_t *p, uint64_t v);

/** Header + json padded with spaces to a multiple of align + data; caller frees. */
uint8_t *craft(const char *json, uint32_t align, const void *data, size_t dlen, size_t *len);

/** Fills std_data and writes the standard manifest into out. */
void std_json(char *out, size_t cap);

/** The standard bundle with the first "from" replaced by "to" (NULL: as is). */
uint8_t *variant(const char *from, const char *to, size_t *len);

/** Parses buf; asserts the code, a NULL *out and both needles in the detail. */
void expect(const uint8_t *buf, size_t len, int code, const char *n1, const char *n2);

/** Parses buf, asserting success. */
apbi_manifest *parse_ok(const uint8_t *buf, size_t len);

/* One-change rule check on the standard bundle. */
#define rule(from, to, code, n1, n2) do { \
		size_t len_; \
		uint8_t *b_ = variant(from, to, &len_); \
		apbi_clear_error(); \
		cur_rule = to; \
		expect(b_, len_, code, n1, n2); \
		free(b_); \
	} while (0)

#endif
