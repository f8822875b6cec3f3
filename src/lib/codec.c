/*
 * codec.c - block codec dispatch: names, the byte-group filters, and the
 * decode/encode rules of codec.h on top of codec_zstd.c.
 *
 * Invariants: a stored block is raw exactly when its stored length equals
 * its decoded length (raw blocks are never filtered), a frame otherwise;
 * the encoder stores raw whenever a frame would not be strictly shorter,
 * so the rule is unambiguous.  Scratch buffers hold one block (max_block
 * bytes) and every length is checked against them before use.  Filters
 * are pure byte permutations; the inverse (on the decode path) uses SSE2
 * unpack instructions where available (x86-64 always has them).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "codec.h"
#include "internal.h"

/* ------------------------------------------------------------------ */
/* Names                                                                */
/* ------------------------------------------------------------------ */

const char *apbi_codec_name(enum apbi_codec c)
{
	switch (c) {
	case APBI_CODEC_NONE: return "none";
	case APBI_CODEC_ZSTD: return "zstd";
	}
	return NULL;
}

const char *apbi_filter_name(enum apbi_filter f)
{
	switch (f) {
	case APBI_FILTER_NONE: return "none";
	case APBI_FILTER_BYTEGROUP2: return "bytegroup2";
	case APBI_FILTER_BYTEGROUP4: return "bytegroup4";
	}
	return NULL;
}

int apbi_codec_parse(const char *s, enum apbi_codec *out)
{
	for (int c = APBI_CODEC_NONE; c <= APBI_CODEC_ZSTD; c++) {
		if (s && !strcmp(s, apbi_codec_name((enum apbi_codec)c))) {
			*out = (enum apbi_codec)c;
			return 0;
		}
	}
	return -EINVAL;
}

int apbi_filter_parse(const char *s, enum apbi_filter *out)
{
	static const enum apbi_filter all[] = { APBI_FILTER_NONE, APBI_FILTER_BYTEGROUP2,
	                                        APBI_FILTER_BYTEGROUP4 };

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		if (s && !strcmp(s, apbi_filter_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

const char *apb_codec_name(apb_codec codec)
{
	return apbi_codec_name((enum apbi_codec)codec);
}

const char *apb_filter_name(apb_filter filter)
{
	return filter == APB_FILTER_AUTO ? "auto" : apbi_filter_name((enum apbi_filter)filter);
}

static bool filter_known(enum apbi_filter f)
{
	return apbi_filter_name(f) != NULL;
}

/* ------------------------------------------------------------------ */
/* Filters                                                              */
/* ------------------------------------------------------------------ */

/* Planes of width w: m values; plane k is dst[k*m .. (k+1)*m). */
static void split_generic(const uint8_t *s, uint8_t *d, size_t m, unsigned w)
{
	for (unsigned k = 0; k < w; k++) {
		uint8_t *plane = d + k * m;
		for (size_t i = 0; i < m; i++)
			plane[i] = s[i * w + k];
	}
}

static void split2(const uint8_t *s, uint8_t *d, size_t m)
{
	uint8_t *p0 = d, *p1 = d + m;

	for (size_t i = 0; i < m; i++) {
		p0[i] = s[2 * i];
		p1[i] = s[2 * i + 1];
	}
}

static void split4(const uint8_t *s, uint8_t *d, size_t m)
{
	uint8_t *p0 = d, *p1 = d + m, *p2 = d + 2 * m, *p3 = d + 3 * m;

	for (size_t i = 0; i < m; i++) {
		p0[i] = s[4 * i];
		p1[i] = s[4 * i + 1];
		p2[i] = s[4 * i + 2];
		p3[i] = s[4 * i + 3];
	}
}

static size_t join2(const uint8_t *s, uint8_t *d, size_t m)
{
	size_t i = 0;
#ifdef __SSE2__
	for (; i + 16 <= m; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(s + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(s + m + i));
		_mm_storeu_si128((__m128i *)(d + 2 * i), _mm_unpacklo_epi8(a, b));
		_mm_storeu_si128((__m128i *)(d + 2 * i + 16), _mm_unpackhi_epi8(a, b));
	}
#endif
	return i;
}

static size_t join4(const uint8_t *s, uint8_t *d, size_t m)
{
	size_t i = 0;
#ifdef __SSE2__
	for (; i + 16 <= m; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(s + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(s + m + i));
		__m128i c = _mm_loadu_si128((const __m128i *)(s + 2 * m + i));
		__m128i e = _mm_loadu_si128((const __m128i *)(s + 3 * m + i));
		__m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
		__m128i ce0 = _mm_unpacklo_epi8(c, e), ce1 = _mm_unpackhi_epi8(c, e);
		uint8_t *o = d + 4 * i;
		_mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(ab0, ce0));
		_mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi16(ab0, ce0));
		_mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi16(ab1, ce1));
		_mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi16(ab1, ce1));
	}
#endif
	return i;
}

/* Joins values [i, m) one at a time (the SIMD loops' remainder). */
static void join_generic(const uint8_t *s, uint8_t *d, size_t i, size_t m, unsigned w)
{
	for (; i < m; i++)
		for (unsigned k = 0; k < w; k++)
			d[i * w + k] = s[k * m + i];
}

void apbi_filter_apply(enum apbi_filter f, const void *src, void *dst, size_t n)
{
	const uint8_t *s = src;
	uint8_t *d = dst;
	unsigned w = f == APBI_FILTER_BYTEGROUP2 ? 2 : f == APBI_FILTER_BYTEGROUP4 ? 4 : 1;
	size_t m = n / w;

	if (w == 2)
		split2(s, d, m);
	else if (w == 4)
		split4(s, d, m);
	else
		split_generic(s, d, m, 1);
	memcpy(d + m * w, s + m * w, n - m * w);
}

void apbi_filter_undo(enum apbi_filter f, const void *src, void *dst, size_t n)
{
	const uint8_t *s = src;
	uint8_t *d = dst;
	unsigned w = f == APBI_FILTER_BYTEGROUP2 ? 2 : f == APBI_FILTER_BYTEGROUP4 ? 4 : 1;
	size_t m = n / w, done = 0;

	if (w == 2)
		done = join2(s, d, m);
	else if (w == 4)
		done = join4(s, d, m);
	join_generic(s, d, done, m, w);
	memcpy(d + m * w, s + m * w, n - m * w);
}

/* ------------------------------------------------------------------ */
/* Decoding                                                             */
/* ------------------------------------------------------------------ */

struct apbi_codec_ctx {
	apbi_zstd *z;
	uint32_t max_block;
	uint8_t *scratch;             /* max_block bytes: the filtered block */
};

int apbi_codec_ctx_new(uint32_t max_block, apbi_codec_ctx **out)
{
	apbi_codec_ctx *ctx;
	int rc;

	*out = NULL;
	if (max_block == 0)
		return apbi_set_error(-EINVAL, "codec context for 0-byte blocks");
	if (!(ctx = calloc(1, sizeof *ctx)) || !(ctx->scratch = malloc(max_block))) {
		apbi_codec_ctx_free(ctx);
		return apbi_set_error(-ENOMEM, "out of memory for a %u-byte decode buffer", max_block);
	}
	if ((rc = apbi_zstd_new(0, &ctx->z)) != 0) {
		apbi_codec_ctx_free(ctx);
		return rc;
	}
	ctx->max_block = max_block;
	*out = ctx;
	return 0;
}

void apbi_codec_ctx_free(apbi_codec_ctx *ctx)
{
	if (!ctx)
		return;
	apbi_zstd_free(ctx->z);
	free(ctx->scratch);
	free(ctx);
}

int apbi_codec_decode(apbi_codec_ctx *ctx, enum apbi_codec c, enum apbi_filter f,
                      const void *src, size_t src_len, void *dst, size_t dst_len)
{
	int rc;

	if (dst_len > ctx->max_block)
		return apbi_set_error(-EINVAL, "block of %zu bytes is larger than the decoder's %u",
		                      dst_len, ctx->max_block);
	if (!apbi_codec_name(c) || !filter_known(f))
		return apbi_set_error(-EINVAL, "unknown codec %d or filter %d", (int)c, (int)f);
	if (src_len > dst_len)
		return apbi_set_error(APB_E_CORRUPT, "stored block of %zu bytes is longer than its %zu decoded bytes",
		                      src_len, dst_len);
	if (src_len == dst_len) {
		memcpy(dst, src, dst_len);
		return 0;
	}
	if (c == APBI_CODEC_NONE)
		return apbi_set_error(APB_E_CORRUPT, "uncompressed block stored in %zu bytes, not %zu",
		                      src_len, dst_len);
	if (f == APBI_FILTER_NONE)
		return apbi_zstd_decompress(ctx->z, src, src_len, dst, dst_len);
	if ((rc = apbi_zstd_decompress(ctx->z, src, src_len, ctx->scratch, dst_len)) != 0)
		return rc;
	apbi_filter_undo(f, ctx->scratch, dst, dst_len);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                             */
/* ------------------------------------------------------------------ */

struct apbi_encoder {
	apbi_zstd *z;
	uint32_t max_block;
	uint8_t *scratch;             /* max_block bytes: the filtered block */
};

int apbi_encoder_new(enum apbi_codec c, int level, uint32_t max_block, apbi_encoder **out)
{
	apbi_encoder *e;
	int rc;

	*out = NULL;
	if (c != APBI_CODEC_ZSTD || max_block == 0)
		return apbi_set_error(-EINVAL, "encoder: codec %d, %u-byte blocks not supported", (int)c,
		                      max_block);
	if (level == 0)
		level = APBI_ZSTD_DEFAULT_LEVEL;
	if (level < 1 || level > 19)
		return apbi_set_error(-EINVAL, "zstd level %d is not between 1 and 19", level);
	if (!(e = calloc(1, sizeof *e)) || !(e->scratch = malloc(max_block))) {
		apbi_encoder_free(e);
		return apbi_set_error(-ENOMEM, "out of memory for a %u-byte encode buffer", max_block);
	}
	if ((rc = apbi_zstd_new(level, &e->z)) != 0) {
		apbi_encoder_free(e);
		return rc;
	}
	e->max_block = max_block;
	*out = e;
	return 0;
}

void apbi_encoder_free(apbi_encoder *e)
{
	if (!e)
		return;
	apbi_zstd_free(e->z);
	free(e->scratch);
	free(e);
}

size_t apbi_encode_bound(uint32_t max_block)
{
	return apbi_zstd_bound(max_block);
}

int apbi_encode(apbi_encoder *e, enum apbi_filter f, const void *src, size_t n,
                void *dst, size_t cap, size_t *out_len)
{
	const void *in = src;
	size_t len = 0;
	int rc;

	if (n == 0 || n > e->max_block || !filter_known(f) || cap < apbi_zstd_bound(n))
		return apbi_set_error(-EINVAL, "encode: %zu-byte block, filter %d, %zu-byte buffer", n,
		                      (int)f, cap);
	if (f != APBI_FILTER_NONE && n >= (size_t)f) {   /* a plane per zstd block */
		apbi_filter_apply(f, src, e->scratch, n);
		in = e->scratch;
		rc = apbi_zstd_compress_parts(e->z, in, n, n / (size_t)f, dst, cap, &len);
	} else {
		rc = apbi_zstd_compress(e->z, in, n, dst, cap, &len);
	}
	if (rc != 0)
		return rc;
	if (len >= n) {             /* does not shrink: stored raw, unfiltered */
		memcpy(dst, src, n);
		len = n;
	}
	*out_len = len;
	return 0;
}
