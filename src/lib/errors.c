/*
 * errors.c - error codes: descriptions, errno mapping, per-thread detail.
 *
 * Invariants: apb_strerror() never returns NULL and its strings are static;
 * the detail buffer is thread-local, always NUL-terminated, and written only
 * by apbi_set_error() / apbi_clear_error(), so one thread's failure never
 * shows up in another thread's apb_last_error().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strerrordesc_np */
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "apbundle.h"
#include "internal.h"

#define DETAIL_MAX 512

static __thread char detail[DETAIL_MAX];
static __thread int detail_code;
static __thread apb_block_error block_err;   /* valid when has_block_err */
static __thread bool has_block_err;

/**
 * Returns the library version string; static storage.
 */
const char *apb_version(void)
{
	return APB_VERSION_STRING;
}

static const char *format_strerror(int code)
{
	switch (code) {
	case APB_E_BADMAGIC:  return "not an apbundle file (bad magic)";
	case APB_E_VERSION:   return "unsupported bundle format version";
	case APB_E_MANIFEST:  return "invalid bundle manifest";
	case APB_E_CORRUPT:   return "corrupt bundle structure";
	case APB_E_CHECKSUM:  return "checksum mismatch";
	case APB_E_TRUNCATED: return "bundle file is truncated";
	case APB_E_NAME:      return "invalid model name";
	case APB_E_DUPLICATE: return "duplicate model name";
	default:              return NULL;
	}
}

/**
 * Returns a static English description of code (0, negative errno or
 * APB_E_*); never NULL, "unknown error" for codes it does not know.
 */
const char *apb_strerror(int code)
{
	const char *s;

	if (code == 0)
		return "success";
	s = format_strerror(code);
	if (s)
		return s;
	if (code < 0 && code > -1000) {
		/* strerrordesc_np: static, thread-safe, NULL for unknown values. */
		s = strerrordesc_np(-code);
		if (s)
			return s;
	}
	return "unknown error";
}

/**
 * Maps a library code to a positive errno: format errors give EIO
 * (APB_E_NAME and APB_E_DUPLICATE give EINVAL), -errno gives errno, 0 gives
 * 0; anything else (positive, or unknown below -1000) gives EIO.
 */
int apb_errno(int code)
{
	if (code == 0)
		return 0;
	if (code == APB_E_NAME || code == APB_E_DUPLICATE)
		return EINVAL;
	if (format_strerror(code))
		return EIO;
	if (code < 0 && code > -1000)   /* codes <= -1000 are reserved for APB_E_* */
		return -code;
	return EIO;
}

/**
 * Returns the calling thread's last recorded failure detail, the generic
 * description of its code when the detail is empty, or "" when none.
 * Thread-local; valid until the thread's next library call.
 */
const char *apb_last_error(void)
{
	if (detail[0])
		return detail;
	if (detail_code)
		return apb_strerror(detail_code);
	return "";
}

/**
 * Records a printf-style detail for apb_last_error() and returns code.
 * A detail longer than the buffer is truncated; NULL fmt records only the
 * code.
 */
int apbi_set_error(int code, const char *fmt, ...)
{
	va_list ap;

	detail_code = code;
	detail[0] = '\0';
	if (!fmt)
		return code;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	return code;
}

/**
 * Clears the calling thread's recorded error.
 */
void apbi_clear_error(void)
{
	detail[0] = '\0';
	detail_code = 0;
	has_block_err = false;
}

/** Records which block the calling thread's failure is about. */
void apbi_set_block_error(const apb_block_error *e)
{
	block_err = *e;
	has_block_err = true;
}

/** See apbundle.h. */
bool apb_last_block_error(apb_block_error *out)
{
	if (!has_block_err || !out)
		return false;
	*out = block_err;
	return true;
}
