/*
 * http_xfer.c - one HTTP range request: easy-handle options, callbacks that
 * parse the reply's headers strictly (http_parse.c) and copy its body into
 * the caller's iovec, and the verdict (ok, retry, fatal) on the attempt.
 *
 * Invariants: see http_xfer.h.  A reply is judged when its header block
 * ends; until then (and after a refusal) the body callback writes nothing
 * and aborts the transfer.  Messages name x->obj->name, never the URL.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http_xfer.h"

/* libcurl's receive buffer per easy handle (its default is 16 KiB): fewer
 * reads and body callbacks per MiB; outside the budget (source_http.c). */
#define HTTP_RECV_BUF 131072L

/* Sets the verdict once (the first reason wins). */
static void judge(apbi_http_xfer *x, xf_verdict v, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void judge(apbi_http_xfer *x, xf_verdict v, int err, const char *fmt, ...)
{
	va_list ap;
	if (x->verdict_set)
		return;
	x->verdict_set = 1;
	x->verdict = v;
	x->err = err;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof x->msg, fmt, ap);
	va_end(ap);
}

/* Copies a validator value (printable ASCII, bounded) or clears dst. */
static void keep_value(char *dst, size_t cap, const char *v, size_t len)
{
	dst[0] = 0;
	if (len >= cap)
		return;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return;
	memcpy(dst, v, len);
	dst[len] = 0;
}

static void record_header(apbi_http_xfer *x, const char *nm, size_t nl, const char *v, size_t vl)
{
	if (apbi_http_name_is(nm, nl, "Content-Range")) {
		if (x->have_cr || apbi_http_content_range(v, vl, &x->cr) != 0)
			x->have_cr = -1;        /* malformed or repeated */
		else
			x->have_cr = 1;
	} else if (apbi_http_name_is(nm, nl, "Content-Length")) {
		if (x->have_cl || apbi_http_content_length(v, vl, &x->cl) != 0)
			x->have_cl = -1;
		else
			x->have_cl = 1;
	} else if (apbi_http_name_is(nm, nl, "ETag")) {
		keep_value(x->etag, sizeof x->etag, v, vl);
	} else if (apbi_http_name_is(nm, nl, "Last-Modified")) {
		keep_value(x->lastmod, sizeof x->lastmod, v, vl);
	}
}

/* The reply's validators against those fixed at open. */
static int same_version(const apbi_http_xfer *x)
{
	const apbi_http_object *o = x->obj;
	if (o->etag[0] && x->etag[0] && strcmp(o->etag, x->etag) != 0)
		return 0;
	if (o->lastmod[0] && x->lastmod[0] && strcmp(o->lastmod, x->lastmod) != 0)
		return 0;
	return 1;
}

static void check_206(apbi_http_xfer *x)
{
	const char *nm = x->obj->name;
	if (x->have_cr != 1)
		return judge(x, XF_FATAL, -EIO, "%.200s: 206 reply with %s Content-Range", nm,
		             x->have_cr ? "a malformed or repeated" : "no");
	if (x->cr.unsatisfied || x->cr.first != x->off || x->cr.last != x->off + x->len - 1)
		return judge(x, XF_FATAL, -EIO, "%.200s: asked for bytes %llu-%llu, the server "
		             "sent another range", nm, (unsigned long long)x->off,
		             (unsigned long long)(x->off + x->len - 1));
	if (x->cr.total != x->obj->size)
		return judge(x, XF_FATAL, -EIO, "%.200s: object replaced on the server (size "
		             "%llu, was %llu at open)", nm, (unsigned long long)x->cr.total,
		             (unsigned long long)x->obj->size);
	if (x->have_cl == -1 || (x->have_cl == 1 && x->cl != x->len))
		return judge(x, XF_FATAL, -EIO, "%.200s: Content-Length does not match the "
		             "range asked for", nm);
	if (!same_version(x))
		return judge(x, XF_FATAL, -EIO, "%.200s: object replaced on the server (ETag or "
		             "Last-Modified changed since open)", nm);
}

static void check_200(apbi_http_xfer *x)
{
	const char *nm = x->obj->name;
	if (x->off != 0 || x->len != x->obj->size)
		return judge(x, XF_FATAL, -EIO, "%.200s: the server answered a range request "
		             "with the whole object (200): refused", nm);
	if (x->have_cl == -1 || (x->have_cl == 1 && x->cl != x->len) || !same_version(x))
		return judge(x, XF_FATAL, -EIO, "%.200s: object replaced on the server (200 "
		             "reply of another length or version)", nm);
}

/* A status other than 206 and 200. */
static void other_status(apbi_http_xfer *x)
{
	const char *nm = x->obj->name;
	int st = x->status;
	if (st == 412)
		return judge(x, XF_FATAL, -EIO, "%.200s: object replaced on the server "
		             "(412: ETag no longer matches the version opened)", nm);
	if (st >= 500)
		return judge(x, XF_RETRY, -EHOSTDOWN, "%.200s: server error %d", nm, st);
	if (st == 416 && x->probe)
		return judge(x, XF_FATAL, -EIO, "%.200s: empty object (416), not a bundle", nm);
	if (st >= 300 && st < 400)
		return judge(x, XF_FATAL, -EIO, "%.200s: redirect (%d) not followed: give the "
		             "final URL", nm, st);
	judge(x, XF_FATAL, st == 404 ? -ENOENT : (st == 401 || st == 403) ? -EACCES : -EIO,
	      "%.200s: HTTP status %d", nm, st);
}

/* Called at the blank line that ends a header block. */
static void headers_end(apbi_http_xfer *x)
{
	x->headers_done = 1;
	if (x->status == 206)
		return x->probe ? (void)0 : check_206(x);
	if (x->status == 200 && x->probe)
		return judge(x, XF_FATAL, -EIO, "%.200s: the server ignores range requests "
		             "(200 to Range: bytes=0-0)", x->obj->name);
	if (x->status == 200)
		return check_200(x);
	other_status(x);
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	apbi_http_xfer *x = ud;
	size_t len = size * n;
	const char *nm, *v;
	size_t nl, vl;
	int st;
	if (apbi_http_status_line(buf, len, &st) == 0) {
		x->status = st;             /* a new reply (after 100 Continue too) */
		x->have_cr = x->have_cl = x->headers_done = 0;
		x->etag[0] = x->lastmod[0] = 0;
	} else if ((len == 2 && buf[0] == '\r') || (len == 1 && buf[0] == '\n')) {
		if (x->status >= 200)
			headers_end(x);
	} else if (apbi_http_header_line(buf, len, &nm, &nl, &v, &vl) == 0) {
		record_header(x, nm, nl, v, vl);
	} else {
		judge(x, XF_FATAL, -EIO, "%.200s: malformed header line in the reply",
		      x->obj->name);
		return 0;
	}
	return len;
}

/* Copies len body bytes to the iovec at the cursor. */
static void put_body(apbi_http_xfer *x, const char *buf, size_t len)
{
	while (len) {
		const struct iovec *v = &x->iov[x->seg];
		size_t room = v->iov_len - x->seg_off, k = len < room ? len : room;
		memcpy((char *)v->iov_base + x->seg_off, buf, k);
		buf += k;
		len -= k;
		x->seg_off += k;
		if (x->seg_off == v->iov_len) {
			x->seg++;
			x->seg_off = 0;
		}
	}
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
	apbi_http_xfer *x = ud;
	size_t len = size * n;
	if (x->verdict_set || !x->headers_done)
		return 0;                   /* refused reply: abort, write nothing */
	if (len > x->len - x->got) {
		judge(x, XF_FATAL, -EIO, "%.200s: reply body longer than the range asked for",
		      x->obj->name);
		return 0;
	}
	if (!x->probe)
		put_body(x, buf, len);
	x->got += len;
	return len;
}

/** See http_xfer.h. */
void apbi_xfer_init(apbi_http_xfer *x, const apbi_http_object *obj, uint64_t off,
                    uint64_t len, const struct iovec *iov, int n_iov, uint64_t dst_skip)
{
	CURL *keep = x->easy;
	memset(x, 0, sizeof *x);
	x->easy = keep;
	x->obj = obj;
	x->off = off;
	x->len = len;
	x->iov = iov;
	x->n_iov = n_iov;
	x->dst_skip = dst_skip;
}

/* Places the write cursor dst_skip bytes into the iovec. */
static void seek_cursor(apbi_http_xfer *x)
{
	uint64_t skip = x->dst_skip;
	x->seg = 0;
	while (x->seg < x->n_iov && skip >= x->iov[x->seg].iov_len)
		skip -= x->iov[x->seg++].iov_len;
	x->seg_off = skip;
}

/** See http_xfer.h. */
int apbi_xfer_prepare(apbi_http_xfer *x, uint64_t remain_ms)
{
	const apbi_http_object *o = x->obj;
	CURL *e = x->easy;
	char range[48];
	uint64_t conn = o->connect_ms < remain_ms ? o->connect_ms : remain_ms;
	x->got = 0;
	x->status = x->headers_done = x->verdict_set = x->have_cr = x->have_cl = 0;
	x->etag[0] = x->lastmod[0] = x->msg[0] = 0;
	x->verdict = XF_OK;
	x->err = 0;
	if (!x->probe)
		seek_cursor(x);
	snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)x->off,
	         (unsigned long long)(x->off + x->len - 1));
	if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_RANGE, range) != CURLE_OK)
		return -ENOMEM;
	curl_easy_setopt(e, CURLOPT_SHARE, o->share);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, HTTP_RECV_BUF);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(conn ? conn : 1));
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(remain_ms ? remain_ms : 1));
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	return 0;
}

/* libcurl failures worth another attempt (the connection, not the request). */
static int transient(CURLcode res)
{
	switch (res) {
	case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

static int curl_errno(CURLcode res)
{
	if (res == CURLE_COULDNT_CONNECT)
		return -ECONNREFUSED;
	if (res == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	return -EIO;
}

/** See http_xfer.h. */
xf_verdict apbi_xfer_finish(apbi_http_xfer *x, CURLcode res)
{
	const char *nm = x->obj->name;
	if (x->verdict_set)
		return x->verdict;
	if (res == CURLE_OK && x->status < 200)
		judge(x, XF_RETRY, -EIO, "%.200s: no reply", nm);
	else if (res == CURLE_OK && x->got != x->len)
		judge(x, XF_RETRY, -EIO, "%.200s: short body (%llu of %llu bytes)", nm,
		      (unsigned long long)x->got, (unsigned long long)x->len);
	else if (res == CURLE_OK)
		judge(x, XF_OK, 0, "ok");
	else
		judge(x, transient(res) ? XF_RETRY : XF_FATAL, curl_errno(res), "%.200s: %s", nm,
		      curl_easy_strerror(res));
	return x->verdict;
}
