/*
 * rawbundle.c - built bundles read back raw for the builder suites
 * (check_builder, check_builder_atomic); see rawbundle.h.
 *
 * Everything here parses the file with json-c and hashes with libxxhash
 * directly, never with the library's reader, and fails the current test
 * (ck_assert) on the first byte that breaks the format.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "internal.h"
#include "rawbundle.h"
#include "testutil.h"

uint64_t rd_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;
	ck_assert_msg(json_object_object_get_ex(o, key, &v), "missing key %s", key);
	return v;
}

int64_t jint(json_object *o, const char *key)
{
	return json_object_get_int64(jget(o, key));
}

/* Reads path (only its header and manifest when head_only) and parses it. */
void raw_open_ex(raw_bundle *rb, const char *path, bool head_only)
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
	ck_assert_uint_ge(rd_le(rb->file + 8, 4), 1);   /* 2 only with compression */
	ck_assert_uint_le(rd_le(rb->file + 8, 4), 2);
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
	ck_assert_uint_eq(rd_le(rb->file + 8, 4), (uint64_t)jint(rb->man, "version"));
}

void raw_open(raw_bundle *rb, const char *path)
{
	raw_open_ex(rb, path, false);
}

void raw_close(raw_bundle *rb)
{
	json_object_put(rb->man);
	free(rb->file);
}

/* Asserts that o's keys are exactly the NULL-terminated list, in order. */
void assert_keys(json_object *o, const char *const *keys)
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

json_object *model_at(raw_bundle *rb, size_t i)
{
	return json_object_array_get_idx(jget(rb->man, "models"), i);
}

/* Checks model i of rb against name/data: placement, bytes, checksum, blocks. */
void check_model(raw_bundle *rb, size_t i, const char *name, const void *data,
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
	const char *bkeys[] = { "size", "checksums_offset", "table_checksum", "index_offset",
	                        "index_checksum", NULL };
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
	/* the index follows the table: XXH3-64 of each 64 KiB of it, bound by index_checksum */
	uint64_t ioff = (uint64_t)jint(blk, "index_offset"), nchunks = (nb * 8 + 65535) / 65536;
	ck_assert_uint_eq(ioff, toff + nb * 8);
	ck_assert_uint_le(rb->data_start + ioff + nchunks * 8, rb->len);
	for (uint64_t k = 0; k < nchunks; k++) {
		uint64_t at = k * 65536, len = nb * 8 - at < 65536 ? nb * 8 - at : 65536;
		ck_assert_uint_eq(rd_le(rb->file + rb->data_start + ioff + 8 * k, 8),
		                  XXH3_64bits(rb->file + rb->data_start + toff + at, len));
	}
	snprintf(sum, sizeof sum, "xxh3:%016llx",
	         (unsigned long long)XXH3_64bits(rb->file + rb->data_start + ioff, nchunks * 8));
	ck_assert_str_eq(json_object_get_string(jget(blk, "index_checksum")), sum);
}
