/*
 * codec_zstd.c - one block as one zstd frame (libzstd's one-shot API).
 *
 * Invariants: compression parameters are fixed at creation (level, no
 * frame checksum: XXH3 of the decoded block covers it; no dictionary id;
 * the content size written), so equal input gives equal frames whatever
 * thread runs it.  Decompression accepts exactly one frame that spans all
 * of src (ZSTD_findFrameCompressedSize, which reads only the block
 * headers inside src), decodes it into a buffer of exactly dst_len bytes
 * (the one-shot decoder uses dst as its window and never writes past it:
 * a frame claiming more is dstSize_tooSmall), and requires exactly
 * dst_len bytes out.  A frame's declared content size is never used to
 * size anything.
 */
#include <errno.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "codec.h"
#include "internal.h"

struct apbi_zstd {
	ZSTD_CCtx *cctx;              /* NULL for a decoder */
	ZSTD_DCtx *dctx;
};

void apbi_zstd_free(apbi_zstd *z)
{
	if (!z)
		return;
	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	free(z);
}

static int set_params(ZSTD_CCtx *cctx, int level)
{
	size_t r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);

	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_dictIDFlag, 0);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
	if (ZSTD_isError(r))
		return apbi_set_error(-EINVAL, "zstd level %d: %s", level, ZSTD_getErrorName(r));
	return 0;
}

int apbi_zstd_new(int level, apbi_zstd **out)
{
	apbi_zstd *z = calloc(1, sizeof *z);
	int rc;

	*out = NULL;
	if (!z || !(z->dctx = ZSTD_createDCtx()) || (level > 0 && !(z->cctx = ZSTD_createCCtx()))) {
		apbi_zstd_free(z);
		return apbi_set_error(-ENOMEM, "out of memory for a zstd context");
	}
	if (z->cctx && (rc = set_params(z->cctx, level)) != 0) {
		apbi_zstd_free(z);
		return rc;
	}
	*out = z;
	return 0;
}

size_t apbi_zstd_bound(size_t n)
{
	return ZSTD_compressBound(n);
}

int apbi_zstd_compress(apbi_zstd *z, const void *src, size_t n, void *dst, size_t cap,
                       size_t *out_len)
{
	size_t r;

	if (!z->cctx)
		return apbi_set_error(-EINVAL, "zstd: a decoding context cannot compress");
	r = ZSTD_compress2(z->cctx, dst, cap, src, n);
	if (ZSTD_isError(r))
		return apbi_set_error(APB_E_CORRUPT, "zstd compression of a %zu-byte block failed: %s",
		                      n, ZSTD_getErrorName(r));
	*out_len = r;
	return 0;
}

/*
 * One frame of src[0..n) whose zstd blocks end at every multiple of part
 * (a flush after each part): each byte plane of a filtered block gets its
 * own zstd blocks, so its own literal statistics (an exponent plane and a
 * near-random mantissa plane do not share one Huffman table, and a plane
 * that does not compress is stored as a raw zstd block).  Still one
 * standard frame with the content size in its header.
 */
int apbi_zstd_compress_parts(apbi_zstd *z, const void *src, size_t n, size_t part, void *dst,
                             size_t cap, size_t *out_len)
{
	ZSTD_outBuffer out = { dst, cap, 0 };
	ZSTD_inBuffer in = { src, 0, 0 };
	size_t r = ZSTD_CCtx_reset(z->cctx, ZSTD_reset_session_only);

	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setPledgedSrcSize(z->cctx, n);
	for (size_t at = 0; !ZSTD_isError(r) && at < n; at += part) {
		ZSTD_EndDirective end = at + part >= n ? ZSTD_e_end : ZSTD_e_flush;
		in.size = at + part < n ? at + part : n;
		do
			r = ZSTD_compressStream2(z->cctx, &out, &in, end);
		while (!ZSTD_isError(r) && r != 0 && out.pos < out.size);
		if (!ZSTD_isError(r) && r != 0)
			return apbi_set_error(APB_E_CORRUPT, "zstd: a %zu-byte frame does not fit %zu bytes", n, cap);
	}
	if (ZSTD_isError(r))
		return apbi_set_error(APB_E_CORRUPT, "zstd compression of a %zu-byte block failed: %s",
		                      n, ZSTD_getErrorName(r));
	*out_len = out.pos;
	return 0;
}

int apbi_zstd_decompress(apbi_zstd *z, const void *src, size_t src_len, void *dst,
                         size_t dst_len)
{
	size_t fl = ZSTD_findFrameCompressedSize(src, src_len), r;

	if (ZSTD_isError(fl))
		return apbi_set_error(APB_E_CORRUPT, "zstd frame of %zu bytes is truncated or malformed: %s",
		                      src_len, ZSTD_getErrorName(fl));
	if (fl != src_len)
		return apbi_set_error(APB_E_CORRUPT, "zstd frame ends at byte %zu of %zu: trailing bytes",
		                      fl, src_len);
	r = ZSTD_decompressDCtx(z->dctx, dst, dst_len, src, src_len);
	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
			return apbi_set_error(APB_E_CORRUPT, "zstd frame decodes to more than the block's %zu bytes",
			                      dst_len);
		return apbi_set_error(APB_E_CORRUPT, "zstd frame does not decode: %s", ZSTD_getErrorName(r));
	}
	if (r != dst_len)
		return apbi_set_error(APB_E_CORRUPT, "zstd frame decodes to %zu bytes, the block has %zu",
		                      r, dst_len);
	return 0;
}
