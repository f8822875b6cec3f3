/*
 * check_codec.c - the block codecs and filters (codec.c, codec_zstd.c).
 *
 * Round trips for every codec x filter x odd sizes, the raw fallback, the
 * exact byte layout of the filters against a reference written here, and
 * hostile stored blocks (truncated frames, frames claiming more than the
 * block, trailing bytes, another block's frame, skippable frames, random
 * bytes): each must be a clean APB_E_CORRUPT.  Inputs are malloc'ed at
 * exactly their length so that ASan catches any read outside src or write
 * outside dst.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "codec.h"
#include "internal.h"
#include "testutil.h"

#define MAXB 65536u

static const enum apbi_filter filters[] = { APBI_FILTER_NONE, APBI_FILTER_BYTEGROUP2,
                                            APBI_FILTER_BYTEGROUP4 };
static const size_t sizes[] = { 1, 2, 3, 4, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 1000,
                                4097, 65533, 65534, 65535, 65536 };

/* Float32 weights from a normal distribution (Box-Muller on tu_rand), or
 * their top halves (BF16) when bf16: compressible only after filtering. */
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
		uint8_t b[4] = { (uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16), (uint8_t)(bits >> 24) };
		const uint8_t *from = bf16 ? b + 2 : b;
		for (int k = 0; k < (bf16 ? 2 : 4) && i < n; k++)
			p[i++] = from[k];
	}
}

static uint8_t *dup_exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(q);
	memcpy(q, p, n);
	return q;
}

/* Encodes src[0..n) with f; returns an exact-size copy of the stored bytes. */
static uint8_t *encode_exact(apbi_encoder *e, enum apbi_filter f, const uint8_t *src, size_t n,
                             size_t *len)
{
	size_t cap = apbi_encode_bound(MAXB);
	uint8_t *tmp = malloc(cap), *out;

	ck_assert_ptr_nonnull(tmp);
	ck_assert_int_eq(apbi_encode(e, f, src, n, tmp, cap, len), 0);
	ck_assert_uint_le(*len, n);
	out = dup_exact(tmp, *len);
	free(tmp);
	return out;
}

/* Decodes into an exact-size buffer; returns the code, *sum the XXH3 on success. */
static int decode_exact(apbi_codec_ctx *d, enum apbi_filter f, const uint8_t *src, size_t len,
                        size_t n, uint64_t *sum)
{
	uint8_t *out = malloc(n ? n : 1);
	int rc;

	ck_assert_ptr_nonnull(out);
	rc = apbi_codec_decode(d, APBI_CODEC_ZSTD, f, src, len, out, n);
	if (rc == 0 && sum)
		*sum = XXH3_64bits(out, n);
	free(out);
	return rc;
}

START_TEST(test_filter_layout)
{
	uint8_t s[300], d[300], back[300];

	for (size_t i = 0; i < sizeof s; i++)
		s[i] = (uint8_t)(i * 7 + 3);
	for (size_t fi = 0; fi < 3; fi++) {
		unsigned w = filters[fi] == APBI_FILTER_NONE ? 1 : (unsigned)filters[fi];
		for (size_t n = 0; n <= sizeof s; n++) {
			size_t m = n / w;
			memset(d, 0xee, sizeof d);
			apbi_filter_apply(filters[fi], s, d, n);
			for (size_t i = 0; i < m * w; i++) /* value i/w's byte i%w is in plane i%w */
				ck_assert_uint_eq(d[(i % w) * m + i / w], s[i]);
			for (size_t i = m * w; i < n; i++)
				ck_assert_uint_eq(d[i], s[i]);
			ck_assert_uint_eq(d[n < sizeof d ? n : 0], n < sizeof d ? 0xee : d[0]);
			memset(back, 0, sizeof back);
			apbi_filter_undo(filters[fi], d, back, n);
			ck_assert_int_eq(memcmp(back, s, n), 0);
		}
	}
}
END_TEST

START_TEST(test_roundtrip_all)
{
	apbi_encoder *e;
	apbi_codec_ctx *d;
	uint8_t *src = malloc(MAXB);

	ck_assert_int_eq(apbi_encoder_new(APBI_CODEC_ZSTD, 3, MAXB, &e), 0);
	ck_assert_int_eq(apbi_codec_ctx_new(MAXB, &d), 0);
	for (int kind = 0; kind < 4; kind++) {
		if (kind < 2)
			fill_weights(src, MAXB, 11 + kind, kind);
		else if (kind == 2)
			memset(src, 0, MAXB);
		else
			tu_fill_random(src, MAXB, 99);
		for (size_t fi = 0; fi < 3; fi++) {
			for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
				size_t n = sizes[si], len;
				uint64_t sum = 0;
				uint8_t *st = encode_exact(e, filters[fi], src, n, &len);
				if (kind == 3) /* random bytes never shrink: stored raw */
					ck_assert_uint_eq(len, n);
				if (kind == 2 && n >= 1000)
					ck_assert_uint_lt(len, n / 4);
				ck_assert_int_eq(decode_exact(d, filters[fi], st, len, n, &sum), 0);
				ck_assert_uint_eq(sum, XXH3_64bits(src, n));
				free(st);
			}
		}
	}
	free(src);
	apbi_encoder_free(e);
	apbi_codec_ctx_free(d);
}
END_TEST

/* The filters are what makes float weights shrink: planes beat plain zstd. */
START_TEST(test_filters_help_weights)
{
	apbi_encoder *e;
	uint8_t *src = malloc(MAXB);
	size_t plain, planes;

	ck_assert_int_eq(apbi_encoder_new(APBI_CODEC_ZSTD, 3, MAXB, &e), 0);
	fill_weights(src, MAXB, 5, 1);
	free(encode_exact(e, APBI_FILTER_NONE, src, MAXB, &plain));
	free(encode_exact(e, APBI_FILTER_BYTEGROUP2, src, MAXB, &planes));
	ck_assert_uint_lt(planes, plain);
	ck_assert_uint_lt(planes, MAXB * 78 / 100);
	fill_weights(src, MAXB, 6, 0);
	free(encode_exact(e, APBI_FILTER_NONE, src, MAXB, &plain));
	free(encode_exact(e, APBI_FILTER_BYTEGROUP4, src, MAXB, &planes));
	ck_assert_uint_lt(planes, plain);
	ck_assert_uint_lt(planes, MAXB * 93 / 100);
	free(src);
	apbi_encoder_free(e);
}
END_TEST

START_TEST(test_deterministic)
{
	apbi_encoder *a, *b;
	uint8_t *src = malloc(MAXB);
	size_t la, lb;

	fill_weights(src, MAXB, 7, 0);
	ck_assert_int_eq(apbi_encoder_new(APBI_CODEC_ZSTD, 3, MAXB, &a), 0);
	ck_assert_int_eq(apbi_encoder_new(APBI_CODEC_ZSTD, 3, MAXB, &b), 0);
	uint8_t *x = encode_exact(a, APBI_FILTER_BYTEGROUP4, src, MAXB, &la);
	free(encode_exact(b, APBI_FILTER_NONE, src + 1, 1000, &lb)); /* b used before */
	uint8_t *y = encode_exact(b, APBI_FILTER_BYTEGROUP4, src, MAXB, &lb);
	ck_assert_uint_eq(la, lb);
	ck_assert_int_eq(memcmp(x, y, la), 0);
	free(x);
	free(y);
	free(src);
	apbi_encoder_free(a);
	apbi_encoder_free(b);
}
END_TEST

START_TEST(test_hostile_frames)
{
	apbi_encoder *e;
	apbi_codec_ctx *d;
	uint8_t *src = malloc(MAXB);
	size_t len, len2;
	uint64_t sum = 0;

	ck_assert_int_eq(apbi_encoder_new(APBI_CODEC_ZSTD, 3, MAXB, &e), 0);
	ck_assert_int_eq(apbi_codec_ctx_new(MAXB, &d), 0);
	fill_weights(src, MAXB, 3, 0);
	uint8_t *fr = encode_exact(e, APBI_FILTER_BYTEGROUP4, src, 8192, &len);
	ck_assert_uint_lt(len, 8192);
	/* every truncation */
	for (size_t k = 0; k < len; k++) {
		uint8_t *t = dup_exact(fr, k);
		ck_assert_int_eq(decode_exact(d, APBI_FILTER_BYTEGROUP4, t, k, 8192, NULL), APB_E_CORRUPT);
		free(t);
	}
	/* a frame claiming more than the block (8192 bytes decoded into 8191 or 4096) */
	ck_assert_int_eq(decode_exact(d, APBI_FILTER_BYTEGROUP4, fr, len, 8191, NULL), APB_E_CORRUPT);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "more than"));
	ck_assert_int_eq(decode_exact(d, APBI_FILTER_BYTEGROUP4, fr, len, 65536, NULL), APB_E_CORRUPT);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "8192"));
	/* trailing bytes: one zero, or a second frame */
	uint8_t *tr = malloc(2 * len);
	memcpy(tr, fr, len);
	tr[len] = 0;
	ck_assert_int_eq(decode_exact(d, APBI_FILTER_BYTEGROUP4, tr, len + 1, 8192, NULL), APB_E_CORRUPT);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "trailing"));
	memcpy(tr + len, fr, len);
	ck_assert_int_eq(decode_exact(d, APBI_FILTER_BYTEGROUP4, tr, 2 * len, 16384, NULL), APB_E_CORRUPT);
	free(tr);
	/* a frame of another block: other length -> corrupt; same length -> decodes,
	 * and the block checksum (the caller's) tells them apart */
	uint8_t *other = encode_exact(e, APBI_FILTER_BYTEGROUP4, src + 8192, 4096, &len2);
	ck_assert_int_eq(decode_exact(d, APBI_FILTER_BYTEGROUP4, other, len2, 8192, NULL), APB_E_CORRUPT);
	free(other);
	other = encode_exact(e, APBI_FILTER_BYTEGROUP4, src + 8192, 8192, &len2);
	ck_assert_int_eq(decode_exact(d, APBI_FILTER_BYTEGROUP4, other, len2, 8192, &sum), 0);
	ck_assert_uint_ne(sum, XXH3_64bits(src, 8192));
	free(other);
	/* stored longer than decoded; uncompressed codec with a short block */
	ck_assert_int_eq(decode_exact(d, APBI_FILTER_NONE, fr, len, len - 1, NULL), APB_E_CORRUPT);
	uint8_t out[64];
	ck_assert_int_eq(apbi_codec_decode(d, APBI_CODEC_NONE, APBI_FILTER_NONE, fr, 10, out, 20),
	                 APB_E_CORRUPT);
	/* a block larger than the context */
	ck_assert_int_eq(apbi_codec_decode(d, APBI_CODEC_ZSTD, APBI_FILTER_NONE, fr, len, src, MAXB + 1u),
	                 -EINVAL);
	free(fr);
	free(src);
	apbi_encoder_free(e);
	apbi_codec_ctx_free(d);
}
END_TEST

/* A skippable frame (decodes to nothing) and a frame whose header lies about its size. */
START_TEST(test_skippable_and_lying_header)
{
	apbi_codec_ctx *d;
	apbi_encoder *e;
	uint8_t skip[12] = { 0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4 };
	uint8_t *src = calloc(1, 4096);
	size_t len;

	ck_assert_int_eq(apbi_codec_ctx_new(4096, &d), 0);
	ck_assert_int_eq(apbi_encoder_new(APBI_CODEC_ZSTD, 3, 4096, &e), 0);
	uint8_t *s = dup_exact(skip, sizeof skip);
	ck_assert_int_eq(decode_exact(d, APBI_FILTER_NONE, s, sizeof skip, 100, NULL), APB_E_CORRUPT);
	free(s);
	/* all zeros: header byte 4 is the descriptor, the content size follows;
	 * patch every header byte through all values: never a crash, never success
	 * with a wrong length */
	uint8_t *fr = encode_exact(e, APBI_FILTER_NONE, src, 4096, &len);
	for (size_t pos = 4; pos < 8 && pos < len; pos++) {
		for (int v = 0; v < 256; v++) {
			uint8_t *t = dup_exact(fr, len);
			uint64_t sum;
			t[pos] = (uint8_t)v;
			int rc = decode_exact(d, APBI_FILTER_NONE, t, len, 4096, &sum);
			ck_assert(rc == 0 || rc == APB_E_CORRUPT);
			free(t);
		}
	}
	free(fr);
	free(src);
	apbi_codec_ctx_free(d);
	apbi_encoder_free(e);
}
END_TEST

START_TEST(test_random_bytes)
{
	apbi_codec_ctx *d;
	uint64_t st = 1234;

	ck_assert_int_eq(apbi_codec_ctx_new(MAXB, &d), 0);
	for (int t = 0; t < 2000; t++) {
		size_t n = 2 + (size_t)(tu_rand(&st) % MAXB);
		size_t len = 1 + (size_t)(tu_rand(&st) % (n - 1));
		uint8_t *s = malloc(len);
		tu_fill_random(s, len, (uint64_t)t);
		if (t % 2) { /* a valid magic number in front */
			uint8_t magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
			memcpy(s, magic, len < 4 ? len : 4);
		}
		for (size_t fi = 0; fi < 3; fi++)
			ck_assert_int_eq(decode_exact(d, filters[fi], s, len, n, NULL), APB_E_CORRUPT);
		free(s);
	}
	apbi_codec_ctx_free(d);
}
END_TEST

START_TEST(test_names_and_args)
{
	enum apbi_codec c = APBI_CODEC_NONE;
	enum apbi_filter f = APBI_FILTER_NONE;
	apbi_encoder *e = (apbi_encoder *)&c;
	apbi_codec_ctx *d = (apbi_codec_ctx *)&c;

	ck_assert_int_eq(apbi_codec_parse("zstd", &c), 0);
	ck_assert_int_eq(c, APBI_CODEC_ZSTD);
	ck_assert_int_eq(apbi_codec_parse("gzip", &c), -EINVAL);
	ck_assert_int_eq(apbi_filter_parse("bytegroup4", &f), 0);
	ck_assert_int_eq(f, APBI_FILTER_BYTEGROUP4);
	ck_assert_int_eq(apbi_filter_parse("bytegroup3", &f), -EINVAL);
	ck_assert_str_eq(apbi_filter_name(APBI_FILTER_BYTEGROUP2), "bytegroup2");
	ck_assert_ptr_null(apbi_filter_name((enum apbi_filter)3));
	ck_assert_int_eq(apbi_encoder_new(APBI_CODEC_ZSTD, 20, MAXB, &e), -EINVAL);
	ck_assert_ptr_null(e);
	ck_assert_int_eq(apbi_encoder_new(APBI_CODEC_NONE, 3, MAXB, &e), -EINVAL);
	ck_assert_int_eq(apbi_codec_ctx_new(0, &d), -EINVAL);
	ck_assert_ptr_null(d);
	apbi_codec_ctx_free(NULL);
	apbi_encoder_free(NULL);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("codec");

	tu_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_filter_layout);
	tcase_add_test(tc, test_roundtrip_all);
	tcase_add_test(tc, test_filters_help_weights);
	tcase_add_test(tc, test_deterministic);
	tcase_add_test(tc, test_hostile_frames);
	tcase_add_test(tc, test_skippable_and_lying_header);
	tcase_add_test(tc, test_random_bytes);
	tcase_add_test(tc, test_names_and_args);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
