/*
 * fuzz_frame.c - libFuzzer target for the block decoder (codec.c,
 * codec_zstd.c): stored blocks from a hostile file.
 *
 * Input: byte 0 picks the filter (low 2 bits: none, bytegroup2,
 * bytegroup4, none) and the codec (bit 2: none instead of zstd); bytes 1-2
 * the decoded length (little-endian, 1..65536 after +1); the rest is the
 * stored block, copied into a buffer of exactly its length (so ASan sees
 * any over-read) and decoded into a buffer of exactly the decoded length.
 * The decoder must return 0 or APB_E_CORRUPT (never anything else, never
 * crash); on 0 a stored length equal to the decoded one must give the
 * stored bytes back.  Then the stored bytes themselves, as a block, go
 * through encode and decode with the same filter and must come back equal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define MAXB 65536u

static apbi_codec_ctx *dec;
static apbi_encoder *enc;
static uint8_t *frame;

static void roundtrip(enum apbi_filter f, const uint8_t *p, size_t n)
{
	size_t len = 0;
	uint8_t *out = malloc(n);

	CHECK(out);
	CHECK(apbi_encode(enc, f, p, n, frame, apbi_encode_bound(MAXB), &len) == 0);
	CHECK(len <= n);
	CHECK(apbi_codec_decode(dec, APBI_CODEC_ZSTD, f, frame, len, out, n) == 0);
	CHECK(memcmp(out, p, n) == 0);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum apbi_filter fs[4] = { APBI_FILTER_NONE, APBI_FILTER_BYTEGROUP2,
	                                        APBI_FILTER_BYTEGROUP4, APBI_FILTER_NONE };
	enum apbi_filter f;
	enum apbi_codec c;
	size_t n, len;
	uint8_t *src, *dst;
	int rc;

	if (!dec) {
		CHECK(apbi_codec_ctx_new(MAXB, &dec) == 0);
		CHECK(apbi_encoder_new(APBI_CODEC_ZSTD, 3, MAXB, &enc) == 0);
		CHECK((frame = malloc(apbi_encode_bound(MAXB))) != NULL);
	}
	if (size < 3)
		return 0;
	f = fs[data[0] & 3];
	c = data[0] & 4 ? APBI_CODEC_NONE : APBI_CODEC_ZSTD;
	n = (size_t)(data[1] | data[2] << 8) + 1;
	len = size - 3;
	src = malloc(len ? len : 1);
	dst = malloc(n);
	CHECK(src && dst);
	memcpy(src, data + 3, len);
	rc = apbi_codec_decode(dec, c, f, src, len, dst, n);
	CHECK(rc == 0 || rc == APB_E_CORRUPT);
	CHECK(rc != 0 || len <= n);
	CHECK(rc != 0 || len != n || memcmp(dst, src, n) == 0);
	CHECK(rc == 0 || *apb_last_error() != '\0');
	if (len > 0 && len <= MAXB)
		roundtrip(f, src, len);
	free(src);
	free(dst);
	return 0;
}
