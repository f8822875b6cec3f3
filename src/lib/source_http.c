/*
 * source_http.c - an HTTP(S) object as a byte source (source.h), on libcurl.
 *
 * Invariants: size, ETag and Last-Modified are fixed by one ranged GET at
 * open and every later request carries them (If-Match/If-Range, or
 * If-Unmodified-Since/If-Range without a strong ETag); every reply is
 * checked by http_xfer.c before a byte of it reaches the caller, so a
 * replaced object gives -EIO, never a mix of versions.  A read is bounded
 * in time: all its attempts (retries with backoff included) end by
 * timeout_ms after it started.  libcurl handles are never shared between
 * threads: each read takes a slot (a multi handle with its easy handles and
 * its kept-alive connections) from a pool for its duration; only the DNS
 * cache and TLS sessions are shared (a CURLSH with locks).
 *
 * Memory outside the paging budget: at most SLOTS_IDLE idle slots of
 * PARTS_MAX easy handles (a 128 KiB receive buffer, HTTP_RECV_BUF in
 * http_xfer.c, and a connection each), plus one slot per read in progress.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_xfer.h"
#include "internal.h"
#include "source.h"

#define PARTS_MAX 4                    /* ranges in flight per read */
#define PART_MIN (256u * 1024u)        /* a read is split only above this */
#define SLOTS_IDLE 8                   /* idle slots kept (connections kept alive) */

typedef struct slot {
	CURLM *multi;
	CURL *easy[PARTS_MAX];
	struct slot *next;
} slot;

typedef struct http_source {
	apbi_source head;
	apbi_http_object obj;
	char *url, *ca_file;
	uint32_t timeout_ms, retries;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	slot *idle;
	int n_idle;
	apbi_source_stats st;              /* net_* and latency, atomic adds */
} http_source;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *ud)
{
	pthread_mutex_lock(&((http_source *)ud)->locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *ud)
{
	pthread_mutex_unlock(&((http_source *)ud)->locks[d]);
}

/* ---- slots ---- */

static void slot_free(slot *sl)
{
	for (int i = 0; i < PARTS_MAX; i++)
		if (sl->easy[i])
			curl_easy_cleanup(sl->easy[i]);
	if (sl->multi)
		curl_multi_cleanup(sl->multi);
	free(sl);
}

static slot *slot_get(http_source *hs)
{
	slot *sl;
	pthread_mutex_lock(&hs->pool_lock);
	if ((sl = hs->idle)) {
		hs->idle = sl->next;
		hs->n_idle--;
	}
	pthread_mutex_unlock(&hs->pool_lock);
	if (sl)
		return sl;
	if (!(sl = calloc(1, sizeof *sl)))
		return NULL;
	if (!(sl->multi = curl_multi_init())) {
		free(sl);
		return NULL;
	}
	return sl;
}

static void slot_put(http_source *hs, slot *sl)
{
	pthread_mutex_lock(&hs->pool_lock);
	if (hs->n_idle < SLOTS_IDLE) {
		sl->next = hs->idle;
		hs->idle = sl;
		hs->n_idle++;
		sl = NULL;
	}
	pthread_mutex_unlock(&hs->pool_lock);
	if (sl)
		slot_free(sl);
}

/* ---- statistics ---- */

static void count(uint64_t *c, uint64_t v)
{
	__atomic_add_fetch(c, v, __ATOMIC_RELAXED);
}

static void count_request(http_source *hs, apbi_http_xfer *x)
{
	curl_off_t us = 0;
	int b = 0;
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
	while (b < APBI_LAT_BUCKETS - 1 && (uint64_t)us > APBI_LAT_BOUNDS_US[b])
		b++;
	count(&hs->st.net_requests, 1);
	count(&hs->st.latency[b], 1);
	count(&hs->st.latency_us_sum, (uint64_t)us);
	count(&hs->st.net_bytes, x->got);
}

static void http_stats(apbi_source *s, apbi_source_stats *out)
{
	http_source *hs = (http_source *)s;
	uint64_t *dst = &out->net_bytes, *src = &hs->st.net_bytes;
	/* net_bytes .. latency[] are consecutive uint64_t counters */
	size_t n = (size_t)(&hs->st.latency[APBI_LAT_BUCKETS] - &hs->st.net_bytes);
	for (size_t i = 0; i < n; i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/* ---- running transfers ---- */

/* Starts (or restarts) x on the multi handle. */
static int start(CURLM *m, apbi_http_xfer *x, uint64_t deadline)
{
	uint64_t t = now_ms();
	x->attempts++;
	if (apbi_xfer_prepare(x, deadline > t ? deadline - t : 1) != 0 ||
	    curl_multi_add_handle(m, x->easy) != CURLM_OK)
		return -ENOMEM;
	return 0;
}

/* Handles a finished attempt: 1 done, 0 will retry, negative: fails the read. */
static int settle(http_source *hs, apbi_http_xfer *x, CURLcode res, uint64_t deadline)
{
	xf_verdict v = apbi_xfer_finish(x, res);
	uint64_t t = now_ms(), backoff = 50u << (x->attempts < 6 ? x->attempts - 1 : 5);
	count_request(hs, x);
	if (v == XF_OK)
		return 1;
	if (v == XF_RETRY && (uint32_t)x->attempts <= hs->retries && t + backoff < deadline) {
		count(&hs->st.net_retries, 1);
		x->retry_at_ms = t + (backoff > 2000 ? 2000 : backoff);
		return 0;
	}
	return apbi_set_error(x->err ? x->err : -EIO, "%s%s", x->msg,
	                      v == XF_RETRY ? " (no retries left within the timeout)" : "");
}

/* Collects finished attempts; returns done count added, or a negative code. */
static int reap(http_source *hs, CURLM *m, uint64_t deadline, int *done)
{
	CURLMsg *msg;
	int left, r;
	while ((msg = curl_multi_info_read(m, &left))) {
		apbi_http_xfer *x = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		CURLcode res = msg->data.result;
		curl_multi_remove_handle(m, x->easy);
		if ((r = settle(hs, x, res, deadline)) < 0)
			return r;
		*done += r;
	}
	return 0;
}

/* Restarts due retries; returns ms until the next one (or 100). */
static int restart_due(CURLM *m, apbi_http_xfer *xs, int n, uint64_t deadline, int *wait)
{
	uint64_t t = now_ms();
	*wait = 100;
	for (int i = 0; i < n; i++) {
		if (!xs[i].retry_at_ms)
			continue;
		if (xs[i].retry_at_ms <= t) {
			xs[i].retry_at_ms = 0;
			if (start(m, &xs[i], deadline) != 0)
				return apbi_set_error(-ENOMEM, "out of memory");
		} else if (xs[i].retry_at_ms - t < (uint64_t)*wait) {
			*wait = (int)(xs[i].retry_at_ms - t);
		}
	}
	return 0;
}

/* Runs xs[0..n) to completion or the first failure, all before deadline. */
static int run(http_source *hs, CURLM *m, apbi_http_xfer *xs, int n, uint64_t deadline)
{
	int done = 0, running, wait, r = 0;
	for (int i = 0; i < n && !r; i++)
		if (start(m, &xs[i], deadline) != 0)
			r = apbi_set_error(-ENOMEM, "out of memory");
	while (!r && done < n) {
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			r = apbi_set_error(-EIO, "%.200s: libcurl multi failure", hs->head.name);
			break;
		}
		if ((r = reap(hs, m, deadline, &done)) != 0 || done == n)
			break;
		if ((r = restart_due(m, xs, n, deadline, &wait)) != 0)
			break;
		if (now_ms() > deadline + 1000)   /* libcurl enforces it; this is a backstop */
			r = apbi_set_error(-EIO, "%.200s: read timed out", hs->head.name);
		else
			curl_multi_poll(m, NULL, 0, wait, NULL);
	}
	for (int i = 0; i < n; i++)         /* no-op for handles not in the multi */
		curl_multi_remove_handle(m, xs[i].easy);
	return r;
}

/* The open request's reply fixes size and validators. */
static int hs_take_probe(http_source *hs, const apbi_http_xfer *x)
{
	const char *nm = hs->head.name;
	if (x->have_cr != 1 || x->cr.unsatisfied || x->cr.first != 0 || x->cr.last != 0)
		return apbi_set_error(-EIO, "%.200s: 206 reply without a valid Content-Range "
		                      "for bytes 0-0", nm);
	hs->obj.size = hs->head.size = x->cr.total;
	if (x->etag[0] && strncmp(x->etag, "W/", 2) != 0)
		memcpy(hs->obj.etag, x->etag, sizeof hs->obj.etag);
	memcpy(hs->obj.lastmod, x->lastmod, sizeof hs->obj.lastmod);
	return 0;
}

/* Splits [off, off+len) into parts on sl's easy handles and runs them. */
static int fetch(http_source *hs, const struct iovec *iov, int n_iov, uint64_t off,
                 uint64_t len, int probe)
{
	apbi_http_xfer xs[PARTS_MAX];
	uint64_t part = (len + PARTS_MAX - 1) / PARTS_MAX, deadline = now_ms() + hs->timeout_ms;
	int parts, r;
	slot *sl = slot_get(hs);
	if (!sl)
		return apbi_set_error(-ENOMEM, "out of memory");
	if (part < PART_MIN)
		part = PART_MIN;
	parts = (int)((len + part - 1) / part);
	memset(xs, 0, sizeof xs);
	for (int i = 0; i < parts; i++) {
		uint64_t o = (uint64_t)i * part, l = len - o < part ? len - o : part;
		if (!sl->easy[i] && !(sl->easy[i] = curl_easy_init())) {
			slot_free(sl);
			return apbi_set_error(-ENOMEM, "out of memory");
		}
		xs[i].easy = sl->easy[i];
		apbi_xfer_init(&xs[i], &hs->obj, off + o, l, iov, n_iov, o);
		xs[i].probe = probe;
	}
	r = run(hs, sl->multi, xs, parts, deadline);
	if (probe && r == 0)
		r = hs_take_probe(hs, &xs[0]);
	if (r != 0)
		count(&hs->st.net_errors, 1);
	slot_put(hs, sl);
	return r;
}

static int http_readv(apbi_source *s, const struct iovec *iov, int n, uint64_t off)
{
	uint64_t len = 0;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	int r = fetch((http_source *)s, iov, n, off, len, 0);
	/* reads fail with -EIO whatever the cause (the detail says which) */
	return r == 0 || r == -ENOMEM ? r : -EIO;
}

static void http_close(apbi_source *s)
{
	http_source *hs = (http_source *)s;
	slot *sl;
	while ((sl = hs->idle)) {
		hs->idle = sl->next;
		slot_free(sl);
	}
	if (hs->obj.share)
		curl_share_cleanup(hs->obj.share);
	curl_slist_free_all(hs->obj.headers);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&hs->locks[i]);
	pthread_mutex_destroy(&hs->pool_lock);
	free(hs->url);
	free(hs->ca_file);
	free(hs);
}

static const apbi_source_ops http_ops = {
	.kind = "http",
	.readv = http_readv,
	.commit = NULL,
	.close = http_close,
	.stats = http_stats,
};

/** See source.h. */
int apbi_source_url_name(const char *url, char *out, size_t cap)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int r = -EINVAL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_PORT, &port, 0);
		if ((size_t)snprintf(out, cap, "%s://%s%s%s%s", scheme, host, port ? ":" : "",
		                     port ? port : "", path) < cap)
			r = 0;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return r;
}

/* Extra header and the validators every range request carries. */
static int build_headers(http_source *hs, const apb_open_options *opt)
{
	char line[APBI_ETAG_MAX + 32];
	struct curl_slist *l = NULL, *t;
	const char *v = hs->obj.etag[0] ? hs->obj.etag : hs->obj.lastmod;
	if (opt && opt->header && !(l = curl_slist_append(l, opt->header)))
		return -ENOMEM;
	if (hs->obj.etag[0]) {
		snprintf(line, sizeof line, "If-Match: %s", hs->obj.etag);
		if (!(t = curl_slist_append(l, line)))
			goto oom;
		l = t;
	} else if (hs->obj.lastmod[0]) {
		snprintf(line, sizeof line, "If-Unmodified-Since: %s", hs->obj.lastmod);
		if (!(t = curl_slist_append(l, line)))
			goto oom;
		l = t;
	}
	if (v[0]) {
		snprintf(line, sizeof line, "If-Range: %s", v);
		if (!(t = curl_slist_append(l, line)))
			goto oom;
		l = t;
	}
	curl_slist_free_all(hs->obj.headers);
	hs->obj.headers = l;
	return 0;
oom:
	curl_slist_free_all(l);
	return -ENOMEM;
}

static void set_identity(http_source *hs)
{
	char etag[100];
	if (strlen(hs->obj.etag) < sizeof etag)
		snprintf(etag, sizeof etag, "%s", hs->obj.etag);
	else                                      /* long ETags: their hash */
		snprintf(etag, sizeof etag, "xxh3-%016llx",
		         (unsigned long long)apbi_xxh3(hs->obj.etag, strlen(hs->obj.etag)));
	snprintf(hs->head.identity, sizeof hs->head.identity, "http:%s:%.40s:%llu", etag,
	         hs->obj.lastmod, (unsigned long long)hs->head.size);
}

static http_source *hs_new(const char *url, const apb_open_options *opt)
{
	http_source *hs = calloc(1, sizeof *hs);
	if (!hs)
		return NULL;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&hs->locks[i], NULL);
	pthread_mutex_init(&hs->pool_lock, NULL);
	hs->head.ops = &http_ops;
	hs->url = strdup(url);
	hs->ca_file = opt->ca_file ? strdup(opt->ca_file) : NULL;
	hs->obj.share = curl_share_init();
	if (!hs->url || (opt->ca_file && !hs->ca_file) || !hs->obj.share) {
		http_close(&hs->head);
		return NULL;
	}
	curl_share_setopt(hs->obj.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(hs->obj.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(hs->obj.share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(hs->obj.share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(hs->obj.share, CURLSHOPT_USERDATA, hs);
	hs->obj.url = hs->url;
	hs->obj.name = hs->head.name;
	hs->obj.ca_file = hs->ca_file;
	hs->obj.connect_ms = opt->connect_timeout_ms;
	hs->timeout_ms = opt->timeout_ms;
	hs->retries = opt->retries;
	return hs;
}

/** See source.h. */
int apbi_source_open_http(const char *url, const apb_open_options *opt, apbi_source **out)
{
	apb_open_options def;
	http_source *hs;
	char one;
	struct iovec iov = { &one, 1 };
	int r;
	*out = NULL;
	if (!opt) {
		apb_open_options_init(&def);
		opt = &def;
	}
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return apbi_set_error(-ENOMEM, "libcurl initialisation failed");
	if (!(hs = hs_new(url, opt)))
		return apbi_set_error(-ENOMEM, "out of memory");
	if (apbi_source_url_name(url, hs->head.name, sizeof hs->head.name) != 0) {
		http_close(&hs->head);
		return apbi_set_error(-EINVAL, "not a valid http(s) URL (or longer than %zu "
		                      "bytes without its query)", sizeof hs->head.name - 1);
	}
	if ((r = build_headers(hs, opt)) != 0 || (r = fetch(hs, &iov, 1, 0, 1, 1)) != 0 ||
	    (r = build_headers(hs, opt)) != 0) {
		http_close(&hs->head);
		return r == -ENOMEM ? apbi_set_error(r, "out of memory") : r;
	}
	set_identity(hs);
	*out = &hs->head;
	return 0;
}
