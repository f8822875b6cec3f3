/*
 * check_source_http.c - the HTTP source and the disk tier against real
 * servers on loopback: nginx (Debian nginx-light) and tests/faultsrv.py.
 *
 * Every test starts its own server(s) in its temp dir (httpsrv.c) and
 * checks bytes against the file served.  Skips (TAP "1..0 # SKIP") when
 * nginx or python3 is missing.  Timeouts are short (2 s) so the fault tests
 * can check that a read fails in time.
 */
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpsrv.h"
#include "internal.h"
#include "source.h"
#include "testutil.h"

#define FSIZE (3u * 1024u * 1024u + 4321u)

static httpsrv srv, srv2;
static unsigned char *data;            /* what the server serves */
static char root[600], fpath[700];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void setup(void)
{
	tu_setup();
	snprintf(root, sizeof root, "%s/root", tu_tmpdir());
	ck_assert_int_eq(mkdir(root, 0700), 0);
	snprintf(fpath, sizeof fpath, "%s/b.apbundle", root);
	data = malloc(FSIZE);
	tu_fill_random(data, FSIZE, 42);
	tu_write_file(fpath, data, FSIZE);
}

static void teardown(void)
{
	httpsrv_stop(&srv);
	httpsrv_stop(&srv2);
	free(data);
	data = NULL;
	tu_teardown();
}

static void start_nginx(void)
{
	char *w = tu_path("ngx");
	ck_assert_int_eq(mkdir(w, 0700), 0);
	ck_assert_msg(httpsrv_nginx(&srv, root, "b.apbundle", w) == 0, "nginx did not start");
	free(w);
}

static void start_fault(void)
{
	char *w = tu_path("fault");
	ck_assert_int_eq(mkdir(w, 0700), 0);
	ck_assert_msg(httpsrv_fault(&srv, fpath, w) == 0, "faultsrv.py did not start");
	free(w);
}

static apb_open_options fast_opts(void)
{
	apb_open_options o;
	apb_open_options_init(&o);
	o.timeout_ms = 2000;
	o.connect_timeout_ms = 1000;
	return o;
}

static apbi_source *open_ok(const char *url, const apb_open_options *o)
{
	apbi_source *s = NULL;
	int r = apbi_source_open(url, o, &s);
	ck_assert_msg(r == 0, "open %s: %d %s", url, r, apb_last_error());
	return s;
}

/* Reads [off, off+len) in up to 3 segments and compares with the file. */
static void check_range(apbi_source *s, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len + 1);
	size_t a = len / 3, b = len / 2;
	struct iovec iov[3] = { { buf, a }, { buf + a, b - a }, { buf + b, len - b } };
	int r = apbi_source_readv(s, iov, 3, off);
	ck_assert_msg(r == 0, "read %llu+%zu: %d %s", (unsigned long long)off, len, r,
	              apb_last_error());
	ck_assert_msg(memcmp(buf, data + off, len) == 0, "bytes differ at %llu+%zu",
	              (unsigned long long)off, len);
	free(buf);
}

/* Expects a read to fail with -EIO; returns the seconds it took. */
static double expect_eio(apbi_source *s, uint64_t off, size_t len, const char *detail)
{
	unsigned char *buf = malloc(len);
	double t = now_s();
	int r = apbi_source_read(s, buf, len, off);
	t = now_s() - t;
	ck_assert_msg(r == -EIO, "read gave %d (%s), expected -EIO", r, apb_last_error());
	if (detail)
		ck_assert_msg(strstr(apb_last_error(), detail), "detail \"%s\" lacks \"%s\"",
		              apb_last_error(), detail);
	free(buf);
	return t;
}

/* Replaces the served file by rename with other bytes and a later mtime. */
static void replace_file(uint64_t seed)
{
	char tmp[800];
	struct timeval tv[2];
	unsigned char *nd = malloc(FSIZE);
	tu_fill_random(nd, FSIZE, seed);
	snprintf(tmp, sizeof tmp, "%s.new", fpath);
	tu_write_file(tmp, nd, FSIZE);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec += 5;
	tv[1] = tv[0];
	ck_assert_int_eq(utimes(tmp, tv), 0);
	ck_assert_int_eq(rename(tmp, fpath), 0);
	memcpy(data, nd, FSIZE);
	free(nd);
}

/* Request count once the server has logged what was already answered
 * (nginx writes its access log just after the reply). */
static int logged(void)
{
	usleep(150000);
	return httpsrv_log_count(&srv, NULL);
}

START_TEST(nginx_bytes_identity)
{
	apb_open_options o = fast_opts();
	uint64_t rs = 7;
	apbi_source *s;
	apbi_source_stats st;
	start_nginx();
	s = open_ok(srv.url, &o);
	ck_assert_uint_eq(s->size, FSIZE);
	ck_assert_msg(strncmp(s->identity, "http:\"", 6) == 0, "identity %s", s->identity);
	ck_assert_str_eq(s->name, srv.url);
	check_range(s, 0, FSIZE);               /* whole object: 4 ranges in flight */
	for (int i = 0; i < 200; i++) {
		uint64_t off = tu_rand(&rs) % FSIZE;
		size_t len = 1 + tu_rand(&rs) % (i % 10 == 0 ? 1200000 : 70000);
		if (len > FSIZE - off)
			len = FSIZE - off;
		check_range(s, off, len);
	}
	check_range(s, FSIZE - 1, 1);
	apbi_source_get_stats(s, &st);
	ck_assert_uint_ge(st.net_requests, 202);
	ck_assert_uint_ge(st.net_bytes, FSIZE);
	ck_assert_uint_eq(st.net_errors, 0);
	/* kept-alive: far fewer connections than requests */
	ck_assert_msg(httpsrv_log_count(&srv, " 1 ") < 20, "%d connections for %d requests",
	              httpsrv_log_count(&srv, " 1 "), logged());
	apbi_source_close(s);
}
END_TEST

START_TEST(nginx_identity_fixed_and_replaced)
{
	apb_open_options o = fast_opts();
	apbi_source *s, *s2;
	char id[160];
	start_nginx();
	s = open_ok(srv.url, &o);
	snprintf(id, sizeof id, "%s", s->identity);
	check_range(s, 1000, 5000);
	replace_file(99);
	/* a small range and a large multi-part one: both refused, never new bytes */
	expect_eio(s, 1000, 5000, "replaced");
	expect_eio(s, 0, FSIZE, "replaced");
	ck_assert_str_eq(s->identity, id);       /* fixed at open */
	s2 = open_ok(srv.url, &o);
	ck_assert_str_ne(s2->identity, id);
	check_range(s2, 1000, 5000);
	apbi_source_close(s2);
	apbi_source_close(s);
}
END_TEST

struct reader { apbi_source *s; uint64_t seed; };

static void *reader_main(void *p)
{
	struct reader *rd = p;
	for (int i = 0; i < 60; i++) {
		uint64_t off = tu_rand(&rd->seed) % FSIZE;
		size_t len = 1 + tu_rand(&rd->seed) % 400000;
		if (len > FSIZE - off)
			len = FSIZE - off;
		check_range(rd->s, off, len);
	}
	return NULL;
}

START_TEST(nginx_concurrent_readers)
{
	apb_open_options o = fast_opts();
	pthread_t th[4];
	struct reader rd[4];
	start_nginx();
	apbi_source *s = open_ok(srv.url, &o);
	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){ s, 100 + (uint64_t)i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	apbi_source_close(s);
}
END_TEST

START_TEST(open_errors)
{
	apb_open_options o = fast_opts();
	apbi_source *s = NULL;
	char url[700];
	int port;
	start_nginx();
	snprintf(url, sizeof url, "http://127.0.0.1:%d/missing.apbundle", srv.port);
	ck_assert_int_eq(apbi_source_open(url, &o, &s), -ENOENT);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(apbi_source_open("http://[::1", &o, &s), -EINVAL);
	o.header = "Authorization: Bearer x\r\nX-Evil: 1";
	ck_assert_int_eq(apbi_source_open(srv.url, &o, &s), -EINVAL);
	ck_assert_ptr_null(strstr(apb_last_error(), "Bearer"));
	o = fast_opts();
	o.ca_file = "/nonexistent/ca.pem";
	ck_assert_int_eq(apbi_source_open(srv.url, &o, &s), -ENOENT);
	port = srv.port;
	httpsrv_stop(&srv);
	o = fast_opts();
	snprintf(url, sizeof url, "http://127.0.0.1:%d/b.apbundle", port);
	double t = now_s();
	ck_assert_int_eq(apbi_source_open(url, &o, &s), -ECONNREFUSED);
	ck_assert_msg(now_s() - t < 3.5, "refused open took %.1f s", now_s() - t);
}
END_TEST

START_TEST(credentials_never_shown)
{
	apb_open_options o = fast_opts();
	char url[800];
	start_fault();
	snprintf(url, sizeof url, "http://user:pw-s3cr3t@127.0.0.1:%d/obj?sig=s3cr3t#frag", srv.port);
	o.header = "Authorization: Bearer s3cr3t-token";
	apbi_source *s = open_ok(url, &o);
	ck_assert_ptr_null(strstr(s->name, "s3cr3t"));
	ck_assert_ptr_null(strstr(s->name, "user"));
	check_range(s, 10, 100);
	ck_assert_int_ge(httpsrv_log_count(&srv, "auth=Bearer s3cr3t-token"), 2);
	httpsrv_fault_set(&srv, "etag", -1);
	expect_eio(s, 10, 100, NULL);
	ck_assert_ptr_null(strstr(apb_last_error(), "s3cr3t"));
	apbi_source_close(s);
}
END_TEST

START_TEST(tls_verified_by_default)
{
	apb_open_options o = fast_opts();
	apbi_source *s = NULL;
	char cmd[2400], *w = tu_path("ngx"), *cert = tu_path("cert.pem"), *key = tu_path("key.pem");
	ck_assert_int_eq(mkdir(w, 0700), 0);
	snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
	         "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
	         ">/dev/null 2>&1", key, cert);
	if (system(cmd) != 0) {
		fprintf(stderr, "# openssl missing: TLS not tested\n");
		return;
	}
	ck_assert_msg(httpsrv_nginx_tls(&srv, root, "b.apbundle", w, cert, key) == 0, "nginx tls");
	o.connect_timeout_ms = 10000;            /* TLS handshakes are slow under TSan */
	o.timeout_ms = 20000;
	ck_assert_int_eq(apbi_source_open(srv.url, &o, &s), -EIO);   /* self-signed: refused */
	ck_assert_ptr_null(s);
	o.ca_file = cert;
	s = open_ok(srv.url, &o);
	check_range(s, 0, 600000);
	apbi_source_close(s);
	free(w);
	free(cert);
	free(key);
}
END_TEST

/* A fault for the next n requests, then a read that must survive it. */
static void transient(const char *mode, int n)
{
	apb_open_options o = fast_opts();
	apbi_source_stats st;
	start_fault();
	apbi_source *s = open_ok(srv.url, &o);
	int before = logged();
	httpsrv_fault_set(&srv, mode, n);
	check_range(s, 12345, 100000);
	ck_assert_int_ge(logged() - before, n + 1);
	apbi_source_get_stats(s, &st);
	/* libcurl itself resends once when a reused connection dies before a reply */
	ck_assert_uint_ge(st.net_retries, strcmp(mode, "drop") ? (uint64_t)n : 1u);
	ck_assert_uint_eq(st.net_errors, 0);
	apbi_source_close(s);
}

START_TEST(transient_drop) { transient("drop", 2); }
END_TEST
START_TEST(transient_503) { transient("503", 3); }
END_TEST
START_TEST(transient_short) { transient("short", 2); }
END_TEST

START_TEST(slow_body_succeeds)
{
	apb_open_options o = fast_opts();
	start_fault();
	apbi_source *s = open_ok(srv.url, &o);
	httpsrv_fault_set(&srv, "slow", -1);
	check_range(s, 0, 300000);
	apbi_source_close(s);
}
END_TEST

/* A fault that does not go away: -EIO within the timeout (+ slack). */
static void persistent(const char *mode, const char *detail)
{
	apb_open_options o = fast_opts();
	start_fault();
	apbi_source *s = open_ok(srv.url, &o);
	httpsrv_fault_set(&srv, mode, -1);
	double t = expect_eio(s, 5000, 50000, detail);
	ck_assert_msg(t < 3.5, "%s: failed after %.1f s, timeout 2 s", mode, t);
	httpsrv_fault_set(&srv, "ok", -1);       /* the source recovers */
	check_range(s, 5000, 50000);
	apbi_source_close(s);
}

START_TEST(persistent_drop) { persistent("drop", NULL); }
END_TEST
START_TEST(persistent_503) { persistent("503", "server error 503"); }
END_TEST
START_TEST(persistent_short) { persistent("short", NULL); }
END_TEST
START_TEST(stall_times_out) { persistent("stall", NULL); }
END_TEST
START_TEST(etag_changed) { persistent("etag", "replaced"); }
END_TEST
START_TEST(etag_ignored_by_server) { persistent("etag-ignore", "replaced"); }
END_TEST
START_TEST(bad_content_range) { persistent("badrange", "another range"); }
END_TEST
START_TEST(full_200_refused) { persistent("full200", "whole object"); }
END_TEST

START_TEST(full_200_whole_object_accepted)
{
	apb_open_options o = fast_opts();
	tu_write_file(fpath, data, 100000);   /* small enough to be read in one request */
	start_fault();
	apbi_source *s = open_ok(srv.url, &o);
	ck_assert_uint_eq(s->size, 100000);
	httpsrv_fault_set(&srv, "full200", -1);
	check_range(s, 0, 100000);
	apbi_source_close(s);
}
END_TEST

START_TEST(open_refuses_no_ranges)
{
	apb_open_options o = fast_opts();
	apbi_source *s = NULL;
	start_fault();
	httpsrv_fault_set(&srv, "full200", -1);
	ck_assert_int_eq(apbi_source_open(srv.url, &o, &s), -EIO);
	ck_assert_msg(strstr(apb_last_error(), "ignores range"), "%s", apb_last_error());
	httpsrv_fault_set(&srv, "503", -1);
	ck_assert_int_eq(apbi_source_open(srv.url, &o, &s), -EHOSTDOWN);
}
END_TEST

/* ---- the disk tier ---- */

static char tierdir[700];

static apb_open_options tier_opts(uint64_t limit)
{
	apb_open_options o = fast_opts();
	snprintf(tierdir, sizeof tierdir, "%s/tier", tu_tmpdir());
	o.disk_cache = tierdir;
	o.disk_cache_size = limit;
	return o;
}

/* Reads a range (checked against the file) and commits it, as the block layer does. */
static void read_commit(apbi_source *s, uint64_t off, size_t len)
{
	check_range(s, off, len);
	apbi_source_commit(s, off, data + off, len);
}

static size_t count_files(const char *pattern)
{
	char pat[800];
	glob_t g;
	size_t n;
	snprintf(pat, sizeof pat, "%s/%s", tierdir, pattern);
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

START_TEST(tier_hit_without_network)
{
	apb_open_options o = tier_opts(64u << 20);
	apbi_source_stats st;
	start_nginx();
	apbi_source *s = open_ok(srv.url, &o);
	read_commit(s, 0, 4096);
	read_commit(s, 100000, 65536);
	read_commit(s, 165536, 65536);          /* adjacent to the one before */
	read_commit(s, 1u << 20, 1u << 20);
	int before = logged();
	check_range(s, 0, 4096);
	check_range(s, 100100, 100000);          /* inside two adjacent ranges */
	check_range(s, (1u << 20) + 5, 1000);
	ck_assert_int_eq(logged(), before);
	check_range(s, 50000, 10);               /* not held: over the network */
	ck_assert_int_eq(logged(), before + 1);
	apbi_source_get_stats(s, &st);
	ck_assert_uint_eq(st.tier_commits, 4);
	ck_assert_uint_eq(st.tier_hits, 3);
	ck_assert_uint_eq(st.tier_bytes, 4096 + 100000 + 1000);
	ck_assert_uint_eq(st.tier_stored, 4096 + 65536 * 2 + (1u << 20));
	ck_assert_int_eq(st.offline, 0);
	ck_assert_uint_eq(count_files("o-*/v-*/r-*"), 4);
	apbi_source_close(s);
}
END_TEST

START_TEST(tier_offline_open)
{
	apb_open_options o = tier_opts(64u << 20);
	apbi_source_stats st;
	apbi_source *s;
	char id[160];
	start_nginx();
	s = open_ok(srv.url, &o);
	snprintf(id, sizeof id, "%s", s->identity);
	read_commit(s, 0, 4096);
	read_commit(s, 200000, 300000);
	apbi_source_close(s);
	httpsrv_stop(&srv);
	s = open_ok(srv.url, &o);                /* server down: from the tier */
	apbi_source_get_stats(s, &st);
	ck_assert_int_eq(st.offline, 1);
	ck_assert_str_eq(s->identity, id);
	ck_assert_uint_eq(s->size, FSIZE);
	check_range(s, 0, 4096);
	check_range(s, 250000, 1000);
	double t = expect_eio(s, 600000, 100, "offline");
	ck_assert_msg(t < 0.5, "offline miss took %.2f s", t);
	/* the server comes back: a miss retries it (at most every 5 s) and the
	 * source goes online, since the object did not change */
	ck_assert_int_eq(httpsrv_nginx_restart(&srv), 0);
	expect_eio(s, 600000, 100, "offline");   /* within 5 s of the last try */
	sleep(5);
	check_range(s, 600000, 100);
	apbi_source_get_stats(s, &st);
	ck_assert_int_eq(st.offline, 0);
	apbi_source_close(s);
	/* another tier dir never saw the object: the network error stays */
	httpsrv_stop(&srv);
	o.disk_cache = tu_path("empty-tier");
	ck_assert_int_eq(apbi_source_open(srv.url, &o, &s), -ENOENT);
	ck_assert_msg(strstr(apb_last_error(), "holds no version"), "%s", apb_last_error());
	free((char *)o.disk_cache);
}
END_TEST

START_TEST(tier_new_version_never_reads_old)
{
	apb_open_options o = tier_opts(64u << 20);
	start_nginx();
	apbi_source *s = open_ok(srv.url, &o);
	read_commit(s, 0, 4096);
	apbi_source_close(s);
	ck_assert_uint_eq(count_files("o-*/v-*"), 1);
	replace_file(7);
	s = open_ok(srv.url, &o);
	check_range(s, 0, 4096);                 /* the new bytes, from the network */
	ck_assert_uint_eq(count_files("o-*/v-*"), 1);   /* the old version is gone */
	ck_assert_uint_eq(count_files("o-*/v-*/r-*"), 0);
	apbi_source_close(s);
}
END_TEST

START_TEST(tier_size_bound)
{
	apb_open_options o = tier_opts(1u << 20);
	apbi_source_stats st;
	start_nginx();
	apbi_source *s = open_ok(srv.url, &o);
	for (int i = 0; i < 8; i++)
		read_commit(s, (uint64_t)i * 262144, 262144);
	apbi_source_commit(s, 0, data, 2u << 20);   /* larger than the tier: not kept */
	apbi_source_get_stats(s, &st);
	ck_assert_uint_le(st.tier_stored, 1u << 20);
	ck_assert_uint_ge(st.tier_evictions, 4);
	ck_assert_uint_le(count_files("o-*/v-*/r-*"), 4);
	int before = logged();
	check_range(s, 7 * 262144, 262144);      /* the newest is still held */
	ck_assert_int_eq(logged(), before);
	apbi_source_close(s);
}
END_TEST

/* Overwrites one byte of the first file matching pattern. */
static void poke_file(const char *pattern, long at, int truncate_to)
{
	char pat[800];
	glob_t g;
	FILE *f;
	snprintf(pat, sizeof pat, "%s/%s", tierdir, pattern);
	ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
	if (truncate_to >= 0) {
		ck_assert_int_eq(truncate(g.gl_pathv[0], truncate_to), 0);
	} else {
		ck_assert_ptr_nonnull(f = fopen(g.gl_pathv[0], "r+b"));
		fseek(f, at, SEEK_SET);
		int c = fgetc(f);
		fseek(f, at, SEEK_SET);
		fputc(c ^ 0xff, f);
		fclose(f);
	}
	globfree(&g);
}

START_TEST(tier_corrupt_and_partial_files)
{
	apb_open_options o = tier_opts(64u << 20);
	char stray[900];
	start_nginx();
	apbi_source *s = open_ok(srv.url, &o);
	read_commit(s, 0x10000, 4096);
	read_commit(s, 0x20000, 4096);
	apbi_source_close(s);
	poke_file("o-*/v-*/r-0000000000010000-*", 48 + 100, -1);   /* a data byte */
	poke_file("o-*/v-*/r-0000000000020000-*", 0, 1000);        /* a torn file */
	snprintf(stray, sizeof stray, "%s", tierdir);
	glob_t g;
	char pat[800];
	snprintf(pat, sizeof pat, "%s/o-*/v-*", tierdir);
	ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
	snprintf(stray, sizeof stray, "%s/tmp-1-1", g.gl_pathv[0]);
	globfree(&g);
	tu_write_file(stray, "partial", 7);     /* left by a killed writer */
	s = open_ok(srv.url, &o);
	ck_assert_uint_eq(count_files("o-*/v-*/tmp-*"), 0);
	ck_assert_uint_eq(count_files("o-*/v-*/r-*"), 1);   /* the torn one is gone */
	int before = logged();
	check_range(s, 0x10000, 4096);          /* corrupt on disk: fetched again */
	ck_assert_int_eq(logged(), before + 1);
	ck_assert_uint_eq(count_files("o-*/v-*/r-*"), 0);
	/* a corrupt range read in part is caught too (its file is checked first) */
	read_commit(s, 0x30000, 8192);
	apbi_source_close(s);
	poke_file("o-*/v-*/r-0000000000030000-*", 48 + 8000, -1);
	s = open_ok(srv.url, &o);
	before = logged();
	check_range(s, 0x30000 + 100, 100);
	ck_assert_int_eq(logged(), before + 1);
	ck_assert_uint_eq(count_files("o-*/v-*/r-*"), 0);
	apbi_source_close(s);
}
END_TEST

/* Adjacent verified ranges become one range file of up to 1 MiB, from
 * separate buffers too, and read back (whole or in part, verified at first
 * use) without the network. */
START_TEST(tier_commit_runs)
{
	apb_open_options o = tier_opts(64u << 20);
	apbi_commit_run run = { 0 };
	apbi_source_stats st;
	static uint8_t copy[65536];
	start_nginx();
	apbi_source *s = open_ok(srv.url, &o);
	memcpy(copy, data + 131072, sizeof copy);
	apbi_commit_add(s, &run, 0, data, 65536);
	apbi_commit_add(s, &run, 65536, data + 65536, 65536);   /* same segment */
	apbi_commit_add(s, &run, 131072, copy, sizeof copy);    /* a second one */
	ck_assert_int_eq(run.n, 2);
	apbi_commit_add(s, &run, 1u << 20, data + (1u << 20), 65536);   /* a gap: flushes */
	for (uint64_t off = (1u << 20) + 65536; off < (3u << 20); off += 65536)
		apbi_commit_add(s, &run, off, data + off, 65536);
	apbi_commit_flush(s, &run);
	ck_assert_uint_eq(run.len, 0);
	apbi_source_get_stats(s, &st);
	ck_assert_uint_eq(st.tier_commits, 3);   /* [0,192K), [1M,2M), [2M,3M) */
	ck_assert_uint_eq(count_files("o-*/v-*/r-0000000000000000-0000000000030000"), 1);
	ck_assert_uint_eq(count_files("o-*/v-*/r-0000000000100000-0000000000100000"), 1);
	ck_assert_uint_eq(count_files("o-*/v-*/r-0000000000200000-0000000000100000"), 1);
	apbi_source_close(s);
	s = open_ok(srv.url, &o);                /* nothing verified since this open */
	int before = logged();
	check_range(s, 0, 196608);               /* one whole range: checked as read */
	check_range(s, (1u << 20) + 5, 1000);    /* part of one: the file checked first */
	check_range(s, (1u << 20) + 4096, (2u << 20) - 8192);   /* across two */
	ck_assert_int_eq(logged(), before);
	apbi_source_close(s);
}
END_TEST

/* Child: commits 64 KiB ranges from the top until killed. */
static void writer(const char *url, const apb_open_options *o)
{
	apbi_source *s;
	if (apbi_source_open(url, o, &s) != 0)
		_exit(1);
	for (uint64_t off = 0; off + 65536 <= FSIZE; off += 65536)
		apbi_source_commit(s, off, data + off, 65536);
	_exit(0);
}

START_TEST(tier_writer_killed)
{
	apb_open_options o = tier_opts(64u << 20);
	int served = 0;
	start_nginx();
	for (int round = 0; round < 4; round++) {
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			writer(srv.url, &o);
		/* kill it once it has written something, at a varying moment */
		size_t had = count_files("o-*/v-*/r-*");
		for (int i = 0; i < 1000 && count_files("o-*/v-*/r-*") <= had; i++)
			usleep(5000);
		usleep(3000 * (useconds_t)round);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	httpsrv_stop(&srv);
	apbi_source *s = open_ok(srv.url, &o);   /* offline: only what was complete */
	ck_assert_uint_eq(count_files("o-*/v-*/tmp-*"), 0);
	for (uint64_t off = 0; off + 65536 <= FSIZE; off += 65536) {
		unsigned char buf[65536];
		int r = apbi_source_read(s, buf, sizeof buf, off);
		ck_assert_msg(r == 0 || r == -EIO, "read %llu: %d", (unsigned long long)off, r);
		if (r == 0) {
			ck_assert_msg(memcmp(buf, data + off, sizeof buf) == 0, "torn range at %llu",
			              (unsigned long long)off);
			served++;
		}
	}
	ck_assert_int_gt(served, 0);
	apbi_source_close(s);
}
END_TEST

static TCase *tier_tcase(void)
{
	TCase *tc = tcase_create("tier");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, tier_hit_without_network);
	tcase_add_test(tc, tier_offline_open);
	tcase_add_test(tc, tier_new_version_never_reads_old);
	tcase_add_test(tc, tier_size_bound);
	tcase_add_test(tc, tier_corrupt_and_partial_files);
	tcase_add_test(tc, tier_commit_runs);
	tcase_add_test(tc, tier_writer_killed);
	return tc;
}

Suite *test_suite(void)
{
	Suite *s = suite_create("source_http");
	TCase *tc = tcase_create("http");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, nginx_bytes_identity);
	tcase_add_test(tc, nginx_identity_fixed_and_replaced);
	tcase_add_test(tc, nginx_concurrent_readers);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, credentials_never_shown);
	tcase_add_test(tc, tls_verified_by_default);
	tcase_add_test(tc, transient_drop);
	tcase_add_test(tc, transient_503);
	tcase_add_test(tc, transient_short);
	tcase_add_test(tc, slow_body_succeeds);
	tcase_add_test(tc, persistent_drop);
	tcase_add_test(tc, persistent_503);
	tcase_add_test(tc, persistent_short);
	tcase_add_test(tc, stall_times_out);
	tcase_add_test(tc, etag_changed);
	tcase_add_test(tc, etag_ignored_by_server);
	tcase_add_test(tc, bad_content_range);
	tcase_add_test(tc, full_200_refused);
	tcase_add_test(tc, full_200_whole_object_accepted);
	tcase_add_test(tc, open_refuses_no_ranges);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tier_tcase());
	return s;
}

int main(void)
{
	if (system("command -v python3 >/dev/null && { command -v nginx || test -x "
	           "/usr/sbin/nginx; } >/dev/null") != 0) {
		printf("1..0 # SKIP nginx or python3 not installed\n");
		return 0;
	}
	return tu_run(test_suite());
}
