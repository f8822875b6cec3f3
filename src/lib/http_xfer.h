/*
 * http_xfer.h - one HTTP range request of the remote source (http_xfer.c):
 * libcurl easy-handle setup, the header and body callbacks, and the verdict
 * on the reply.  source_http.c runs several at once on a multi handle.
 *
 * Invariants: an xfer writes body bytes into its caller's iovec only after
 * the reply's headers were checked (status 206 with the exact Content-Range
 * asked for and the object's total, or 200 for a request of the whole
 * object; validators equal to those fixed at open); never more than the
 * range's length; secrets (URL query, userinfo, extra header) are never
 * copied into a message.
 */
#ifndef APB_HTTP_XFER_H
#define APB_HTTP_XFER_H

#include <curl/curl.h>
#include <stdint.h>
#include <sys/uio.h>

#include "http_parse.h"

#define APBI_ETAG_MAX 200
#define APBI_LASTMOD_MAX 64

/* What an object looked like at open; read-only afterwards. */
typedef struct apbi_http_object {
	const char *url;               /* full URL, secret */
	const char *name;              /* for messages */
	const char *ca_file;           /* or NULL */
	struct curl_slist *headers;    /* extra header + validators, secret */
	CURLSH *share;                 /* DNS and TLS sessions */
	uint32_t connect_ms;
	uint64_t size;
	char etag[APBI_ETAG_MAX + 1];      /* "" when none (or weak) */
	char lastmod[APBI_LASTMOD_MAX + 1]; /* "" when none */
} apbi_http_object;

typedef enum { XF_OK = 0, XF_RETRY, XF_FATAL } xf_verdict;

typedef struct apbi_http_xfer {
	const apbi_http_object *obj;
	CURL *easy;
	uint64_t off, len;             /* range asked */
	const struct iovec *iov;       /* destination; body byte i goes to */
	int n_iov;                     /* the iov's byte dst_skip + i */
	uint64_t dst_skip;
	int probe;                     /* open request: record, check nothing */
	/* per attempt */
	uint64_t got;
	int seg;                       /* write cursor in iov */
	uint64_t seg_off;
	int status, headers_done, verdict_set;
	int have_cr, have_cl;
	apbi_content_range cr;
	uint64_t cl;
	char etag[APBI_ETAG_MAX + 1];
	char lastmod[APBI_LASTMOD_MAX + 1];
	xf_verdict verdict;
	int err;                       /* negative errno with the verdict */
	char msg[200];
	/* retry bookkeeping (source_http.c) */
	int attempts;
	uint64_t retry_at_ms;
} apbi_http_xfer;

/** Points x at a range; attempts reset. */
void apbi_xfer_init(apbi_http_xfer *x, const apbi_http_object *obj, uint64_t off,
                    uint64_t len, const struct iovec *iov, int n_iov, uint64_t dst_skip);

/**
 * Sets every option of x->easy for the next attempt (timeouts bounded by
 * remain_ms) and clears the per-attempt state.  Returns 0 or -ENOMEM.
 */
int apbi_xfer_prepare(apbi_http_xfer *x, uint64_t remain_ms);

/**
 * Judges a finished attempt (res: libcurl's result) and sets x->verdict,
 * x->err and x->msg.  Returns the verdict.
 */
xf_verdict apbi_xfer_finish(apbi_http_xfer *x, CURLcode res);

#endif
