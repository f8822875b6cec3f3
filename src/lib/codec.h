/*
 * codec.h - per-block compression: codecs (none, zstd) and the byte-group
 * filters applied before them (codec.c: dispatch and filters; codec_zstd.c:
 * zstd frames).
 *
 * A compressed model stores every block as either its raw bytes (stored
 * length == decoded length: the block did not shrink, no filter applied) or
 * ONE zstd frame of the filtered block (stored length < decoded length).
 * A stored length above the decoded length is corrupt.  The decoder trusts
 * nothing in src: the output is bounded by the caller's decoded length (never
 * by a frame's own content size), must come out exactly that long, and the
 * frame must end exactly at src_len.  Checksums (XXH3 of the decoded block)
 * are the caller's: a well-formed frame of another block of the same length
 * decodes here and is caught by the block checksum.
 *
 * Contexts are per thread (not locked); each owns at most one block of
 * scratch plus zstd's own state.
 */
#ifndef APB_CODEC_H
#define APB_CODEC_H

#include <stddef.h>
#include <stdint.h>

enum apbi_codec { APBI_CODEC_NONE = 0, APBI_CODEC_ZSTD = 1 };
enum apbi_filter { APBI_FILTER_NONE = 0, APBI_FILTER_BYTEGROUP2 = 2, APBI_FILTER_BYTEGROUP4 = 4 };

#define APBI_ZSTD_DEFAULT_LEVEL 3

/* ---- names (codec.c) ---- */

/** "none", "zstd"; NULL for an unknown value. */
const char *apbi_codec_name(enum apbi_codec c);
/** "none", "bytegroup2", "bytegroup4"; NULL for an unknown value. */
const char *apbi_filter_name(enum apbi_filter f);
/** Parses a codec name; returns 0 or -EINVAL (out untouched). */
int apbi_codec_parse(const char *s, enum apbi_codec *out);
/** Parses a filter name; returns 0 or -EINVAL (out untouched). */
int apbi_filter_parse(const char *s, enum apbi_filter *out);

/* ---- filters (codec.c) ---- */

/**
 * Byte planes of f's width w (2 or 4): of the first n - n % w bytes, dst
 * gets all bytes 0 of each w-byte value, then all bytes 1, and so on (as
 * blosc's shuffle and ZipNN); the n % w tail bytes are copied as they are.
 * APBI_FILTER_NONE copies.  src and dst must not overlap.
 */
void apbi_filter_apply(enum apbi_filter f, const void *src, void *dst, size_t n);
/** The inverse of apbi_filter_apply. */
void apbi_filter_undo(enum apbi_filter f, const void *src, void *dst, size_t n);

/* ---- decoding ---- */

typedef struct apbi_codec_ctx apbi_codec_ctx;   /* one per thread */

/**
 * A decoding context for blocks of at most max_block decoded bytes: a zstd
 * decompression context and max_block bytes of scratch for the un-filter.
 * Errors: -ENOMEM, -EINVAL (max_block 0).
 */
int apbi_codec_ctx_new(uint32_t max_block, apbi_codec_ctx **out);
/** Frees ctx; NULL is fine. */
void apbi_codec_ctx_free(apbi_codec_ctx *ctx);

/**
 * Decodes one stored block src[0..src_len) into exactly dst_len bytes at
 * dst (dst_len = the block's decoded length, <= the ctx's max_block):
 * src_len == dst_len: stored raw (copied); src_len > dst_len: corrupt;
 * else one zstd frame of the filtered bytes, decoded with the output
 * bounded by dst_len, which must produce exactly dst_len bytes and consume
 * exactly src_len bytes, then un-filtered into dst.  c == APBI_CODEC_NONE
 * accepts only src_len == dst_len.
 * Returns 0 or APB_E_CORRUPT with a detail naming the cause (truncated
 * frame, wrong size, trailing bytes, the zstd error name); -EINVAL for a
 * dst_len above max_block or an unknown codec/filter.  Never reads
 * outside src or writes outside dst (dst's contents are unspecified after
 * an error).
 */
int apbi_codec_decode(apbi_codec_ctx *ctx, enum apbi_codec c, enum apbi_filter f,
                      const void *src, size_t src_len, void *dst, size_t dst_len);

/* ---- encoding ---- */

typedef struct apbi_encoder apbi_encoder;       /* one per thread */

/**
 * An encoding context: codec c at level (zstd: 1..19; 0 = default 3) for
 * blocks of at most max_block bytes; owns a zstd compression context
 * (parameters fixed: no frame checksum, no dictionary id, content size
 * written) and max_block bytes of scratch for the filter.
 * Errors: -EINVAL (bad codec, level or size), -ENOMEM.
 */
int apbi_encoder_new(enum apbi_codec c, int level, uint32_t max_block, apbi_encoder **out);
/** Frees e; NULL is fine. */
void apbi_encoder_free(apbi_encoder *e);

/** Capacity of dst that apbi_encode needs for blocks of max_block bytes. */
size_t apbi_encode_bound(uint32_t max_block);

/**
 * Encodes the block src[0..n) (1 <= n <= max_block) with filter f into
 * dst (cap >= apbi_encode_bound(n)) and sets *out_len to its stored
 * length: less than n for a frame, exactly n when the frame would not
 * shrink the block (then dst holds src's bytes unfiltered: stored raw).
 * Deterministic: the same bytes, filter and level give the same output.
 * Errors: -EINVAL, APB_E_CORRUPT wrapping a zstd error (with a detail).
 */
int apbi_encode(apbi_encoder *e, enum apbi_filter f, const void *src, size_t n,
                void *dst, size_t cap, size_t *out_len);

/* ---- zstd (codec_zstd.c), used by codec.c only ---- */

typedef struct apbi_zstd apbi_zstd;

int apbi_zstd_new(int level, apbi_zstd **out);          /* level 0: decoder only */
void apbi_zstd_free(apbi_zstd *z);
size_t apbi_zstd_bound(size_t n);
/** One frame of src[0..n) into dst; *out_len its length.  APB_E_CORRUPT on error. */
int apbi_zstd_compress(apbi_zstd *z, const void *src, size_t n, void *dst, size_t cap,
                       size_t *out_len);
/** The same, with the frame's zstd blocks ending at every multiple of part bytes. */
int apbi_zstd_compress_parts(apbi_zstd *z, const void *src, size_t n, size_t part, void *dst,
                             size_t cap, size_t *out_len);
/** Exactly one frame, exactly dst_len bytes out (see apbi_codec_decode). */
int apbi_zstd_decompress(apbi_zstd *z, const void *src, size_t src_len, void *dst,
                         size_t dst_len);

#endif
