/*
 * check_format_util.c - Check suite for the format layer's small helpers:
 * model name rules and UTF-8, the size parser, checksum text, error codes
 * and details, and the file I/O seam (EINTR, short transfers, EIO).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xxhash.h>

#include "craft.h"

/* ---- names ---- */

static void name_bad(const char *name, size_t len, const char *needle)
{
	int rc = apbi_name_check(name, len);

	ck_assert_msg(rc == APB_E_NAME, "name of %zu bytes accepted (%d)", len, rc);
	ck_assert_msg(strstr(apb_last_error(), needle), "detail \"%s\" lacks \"%s\"", apb_last_error(), needle);
}

static void name_ok(const char *name, size_t len)
{
	int rc = apbi_name_check(name, len);

	ck_assert_msg(rc == 0, "name refused: %s", apb_last_error());
}

START_TEST(test_names)
{
	char big[5000];

	name_bad("", 0, "empty");
	name_bad(NULL, 0, "empty");
	name_bad("/a", 2, "starts with '/'");
	name_bad("a//b", 4, "empty path component");
	name_bad("a/", 2, "empty path component");
	name_bad("a/./b", 5, "\".\"");
	name_bad(".", 1, "\".\"");
	name_bad("a/../b", 6, "\"..\"");
	name_bad("..", 2, "\"..\"");
	name_bad("a\x01" "b", 3, "control character");
	name_bad("a\x1f", 2, "control character");
	name_bad("a\x7f", 2, "control character");
	name_bad("a\nb", 3, "control character");
	name_bad("a\0b", 3, "NUL");
	name_bad("a\xff", 2, "UTF-8");
	name_bad("\xc0\xaf", 2, "UTF-8");           /* overlong '/' */
	name_bad("\xe0\x80\xaf", 3, "UTF-8");       /* overlong '/' */
	name_bad("\xf0\x80\x80\xaf", 4, "UTF-8");   /* overlong '/' */
	name_bad("\xed\xa0\x80", 3, "UTF-8");       /* surrogate U+D800 */
	name_bad("\xf4\x90\x80\x80", 4, "UTF-8");   /* U+110000 */
	name_bad("\xe6\x97", 2, "UTF-8");           /* cut sequence */
	name_bad("\x80", 1, "UTF-8");               /* lone continuation */
	name_bad("a\xc3(b", 4, "UTF-8");            /* bad continuation */
	/* lengths: a 4097-byte name, a 256-byte component */
	memset(big, 'a', sizeof big);
	for (int i = 200; i < 4097; i += 201)
		big[i] = '/';
	name_bad(big, 4097, "4097 bytes");
	name_ok(big, 4096);
	memset(big, 'b', 256);
	name_bad(big, 256, "256 bytes");
	name_ok(big, 255);
	memcpy(big, "dir/", 4);
	memset(big + 4, 'c', 256);
	name_bad(big, 260, "component at byte 4");
	name_ok(big, 259);
	name_ok("a/b/c.bin", 9);
	name_ok("a", 1);
	name_ok("...", 3);
	name_ok(".hidden/..x/x..", 15);
	name_ok("back\\slash", 10);
	name_ok("mod\xc3\xa8les/\xe6\x97\xa5\xe6\x9c\xac.bin", 19);   /* "modèles/日本.bin" */
	name_ok("\xf0\x9f\xa4\x96", 4);                            /* U+1F916 */
	name_ok("\xf4\x8f\xbf\xbf", 4);                            /* U+10FFFF */
	name_ok("\xef\xbf\xbd", 3);                                /* U+FFFD */
	/* the detail quotes the name with control bytes escaped */
	name_bad("x\x1b[2J", 5, "x\\x1b[2J");
	ck_assert_int_eq(apbi_utf8_valid("", 0), 1);
	ck_assert_int_eq(apbi_utf8_valid("a\0b", 3), 1);
	ck_assert_int_eq(apbi_utf8_valid("\xdf\xbf", 2), 1);
	ck_assert_int_eq(apbi_utf8_valid("\xc1\xbf", 2), 0);
	ck_assert_int_eq(apbi_utf8_valid("\xee\x80\x80", 3), 1);    /* U+E000, after the surrogates */
	ck_assert_int_eq(apbi_utf8_valid("\xed\xbf\xbf", 3), 0);    /* U+DFFF */
	ck_assert_int_eq(apbi_utf8_valid("\xf8\x88\x80\x80\x80", 5), 0);
}
END_TEST

/* ---- sizes ---- */

START_TEST(test_parse_size)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "64K", 65536 }, { "64k", 65536 }, { "64KiB", 65536 },
		{ "64KB", 65536 }, { "8M", 8u << 20 }, { "8MiB", 8u << 20 }, { "1G", 1u << 30 },
		{ "1g", 1u << 30 }, { "1T", 1ull << 40 }, { "3TiB", 3ull << 40 }, { "100B", 100 },
		{ "007", 7 }, { "18446744073709551615", UINT64_MAX }, { "16777215T", 16777215ull << 40 },
	};
	static const struct { const char *s; int rc; } bad[] = {
		{ "", -EINVAL }, { "-1", -EINVAL }, { "+1", -EINVAL }, { " 1", -EINVAL }, { "1 ", -EINVAL },
		{ "K", -EINVAL }, { "1.5K", -EINVAL }, { "1X", -EINVAL }, { "1KK", -EINVAL },
		{ "1Ki", -EINVAL }, { "1KiBs", -EINVAL }, { "0x10", -EINVAL }, { "1P", -EINVAL },
		{ "18446744073709551616", -ERANGE }, { "99999999999999999999999", -ERANGE },
		{ "16777216T", -ERANGE }, { "17179869184G", -ERANGE },
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		v = 12345;
		ck_assert_msg(apb_parse_size(ok[i].s, &v) == 0, "\"%s\" refused", ok[i].s);
		ck_assert_msg(v == ok[i].v, "\"%s\" -> %" PRIu64, ok[i].s, v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 12345;
		ck_assert_msg(apb_parse_size(bad[i].s, &v) == bad[i].rc, "\"%s\" not refused as %d",
		              bad[i].s, bad[i].rc);
		ck_assert_uint_eq(v, 12345);
		ck_assert(apb_last_error()[0] != '\0');
	}
	ck_assert_int_eq(apb_parse_size(NULL, &v), -EINVAL);
}
END_TEST

/* ---- checksums ---- */

START_TEST(test_checksum_text)
{
	char s[22], ref[22];
	uint64_t h = 0;

	xs("abc", 3, ref);
	ck_assert_uint_eq(apbi_xxh3("abc", 3), XXH3_64bits("abc", 3));
	apbi_checksum_format(apbi_xxh3("abc", 3), s);
	ck_assert_str_eq(s, ref);
	ck_assert_int_eq(apbi_checksum_parse(s, &h), 0);
	ck_assert_uint_eq(h, XXH3_64bits("abc", 3));
	apbi_checksum_format(0x0123456789abcdefull, s);
	ck_assert_str_eq(s, "xxh3:0123456789abcdef");
	ck_assert_int_eq(apbi_checksum_parse("xxh3:0123456789ABCDEF", &h), 0);
	ck_assert_uint_eq(h, 0x0123456789abcdefull);
	ck_assert_int_eq(apbi_checksum_parse("xxh3:ffffffffffffffff", &h), 0);
	ck_assert_uint_eq(h, UINT64_MAX);
	h = 7;
	ck_assert_int_eq(apbi_checksum_parse("xxh3:0123456789abcde", &h), APB_E_MANIFEST);
	ck_assert_int_eq(apbi_checksum_parse("xxh3:0123456789abcdef0", &h), APB_E_MANIFEST);
	ck_assert_int_eq(apbi_checksum_parse("xxh3:0123456789abcdeg", &h), APB_E_MANIFEST);
	ck_assert_int_eq(apbi_checksum_parse("xxh3: 123456789abcdef", &h), APB_E_MANIFEST);
	ck_assert_int_eq(apbi_checksum_parse("xxh64:0123456789abcdef", &h), APB_E_MANIFEST);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "xxh64"));
	ck_assert_int_eq(apbi_checksum_parse("XXH3:0123456789abcdef", &h), APB_E_MANIFEST);
	ck_assert_int_eq(apbi_checksum_parse("", &h), APB_E_MANIFEST);
	ck_assert_int_eq(apbi_checksum_parse(NULL, &h), APB_E_MANIFEST);
	ck_assert_uint_eq(h, 7);
}
END_TEST

/* ---- errors ---- */

static void *set_in_thread(void *arg)
{
	(void)arg;
	apbi_set_error(-EIO, "thread detail");
	return (void *)apb_last_error();
}

START_TEST(test_errors)
{
	static const int fmt[] = { APB_E_BADMAGIC, APB_E_VERSION, APB_E_MANIFEST, APB_E_CORRUPT,
	                           APB_E_CHECKSUM, APB_E_TRUNCATED, APB_E_NAME, APB_E_DUPLICATE };
	pthread_t t;
	void *ret;

	for (int c = -5000; c <= 5000; c++) {
		const char *s = apb_strerror(c);
		ck_assert_ptr_nonnull(s);
		ck_assert(s[0] != '\0');
	}
	ck_assert_str_eq(apb_strerror(-987654), "unknown error");
	ck_assert_str_eq(apb_strerror(INT32_MIN), "unknown error");
	ck_assert_str_eq(apb_strerror(-ENOENT), strerror(ENOENT));
	for (size_t i = 0; i < 8; i++) {
		ck_assert_str_ne(apb_strerror(fmt[i]), "unknown error");
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(apb_strerror(fmt[i]), apb_strerror(fmt[j]));
		ck_assert_int_eq(apb_errno(fmt[i]),
		                 fmt[i] == APB_E_NAME || fmt[i] == APB_E_DUPLICATE ? EINVAL : EIO);
	}
	ck_assert_int_eq(apb_errno(0), 0);
	ck_assert_int_eq(apb_errno(-ENOENT), ENOENT);
	ck_assert_int_eq(apb_errno(-EFBIG), EFBIG);
	ck_assert_int_eq(apb_errno(-ENOMEM), ENOMEM);
	ck_assert_int_eq(apb_errno(-1999), EIO);   /* unknown APB-range code */
	ck_assert_int_eq(apb_errno(5), EIO);
	ck_assert_int_eq(apb_errno(INT32_MIN), EIO);
	ck_assert_str_eq(apb_version(), APB_VERSION_STRING);
	/* the detail buffer */
	apbi_clear_error();
	ck_assert_str_eq(apb_last_error(), "");
	ck_assert_int_eq(apbi_set_error(APB_E_CORRUPT, "models[%d] \"%s\": bad", 3, "enc"), APB_E_CORRUPT);
	ck_assert_str_eq(apb_last_error(), "models[3] \"enc\": bad");
	ck_assert_int_eq(apbi_set_error(-ENOENT, "%s", ""), -ENOENT);
	ck_assert_str_eq(apb_last_error(), apb_strerror(-ENOENT));   /* falls back to the code */
	{
		char longmsg[2000];
		memset(longmsg, 'z', sizeof longmsg - 1);
		longmsg[sizeof longmsg - 1] = '\0';
		apbi_set_error(-EIO, "%s", longmsg);
		ck_assert_uint_eq(strlen(apb_last_error()), 511);
	}
	/* thread-local: another thread's failure does not show here */
	apbi_set_error(-EPERM, "main detail");
	ck_assert_int_eq(pthread_create(&t, NULL, set_in_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_str_eq(apb_last_error(), "main detail");
}
END_TEST

/* ---- the I/O seam ---- */

static int fake_calls, fake_eintr_left, fake_max, fake_errno;

/* Counts a read; 1 (errno set) when it must fail: fake_errno, else EINTR first. */
static int fake_read_fails(void)
{
	fake_calls++;
	if (fake_errno) {
		errno = fake_errno;
		return 1;
	}
	if (fake_eintr_left > 0) {
		fake_eintr_left--;
		errno = EINTR;
		return 1;
	}
	return 0;
}

/* pread that fails with EINTR first, then returns at most fake_max bytes. */
static ssize_t fake_pread(int fd, void *buf, size_t len, off_t off)
{
	if (fake_read_fails())
		return -1;
	return pread(fd, buf, len < (size_t)fake_max ? len : (size_t)fake_max, off);
}

static ssize_t fake_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	fake_calls++;
	if (fake_eintr_left > 0) {
		fake_eintr_left--;
		errno = EINTR;
		return -1;
	}
	return pwrite(fd, buf, len < (size_t)fake_max ? len : (size_t)fake_max, off);
}

static ssize_t fake_read(int fd, void *buf, size_t len)
{
	fake_calls++;
	if (fake_eintr_left > 0) {
		fake_eintr_left--;
		errno = EINTR;
		return -1;
	}
	return read(fd, buf, len < (size_t)fake_max ? len : (size_t)fake_max);
}

static int fake_fsync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

/* preadv that fails with EINTR first, then reads at most fake_max bytes. */
static ssize_t fake_preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	struct iovec cut[16];
	size_t left = (size_t)fake_max;
	int k = 0;

	if (fake_read_fails())
		return -1;
	for (; k < n && k < 16 && left; k++) {
		cut[k] = iov[k];
		if (cut[k].iov_len > left)
			cut[k].iov_len = left;
		left -= cut[k].iov_len;
	}
	return preadv(fd, cut, k, off);
}

static const apbi_io_ops fake_ops = { fake_pread, fake_pwrite, fake_read, fake_fsync, NULL };
static const apbi_io_ops fake_ops_v = { fake_pread, fake_pwrite, fake_read, fake_fsync,
                                        fake_preadv };

static void io_reset(void)
{
	apbi_io_set(NULL);
}

START_TEST(test_io_seam)
{
	char *path = tu_path("io.bin");
	uint8_t src[1000], got[1000];
	int fd;

	tu_fill_random(src, sizeof src, 9);
	tu_write_file(path, src, sizeof src);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	apbi_io_set(&fake_ops);
	/* EINTR once, then 7-byte short reads: still exactly the bytes */
	fake_calls = 0, fake_eintr_left = 1, fake_max = 7, fake_errno = 0;
	memset(got, 0, sizeof got);
	ck_assert_int_eq(apbi_pread_full(fd, got, 900, 100), 0);
	ck_assert_int_eq(memcmp(got, src + 100, 900), 0);
	ck_assert_int_eq(fake_calls, 1 + (900 + 6) / 7);
	/* past the end of the file */
	fake_eintr_left = 1;
	ck_assert_int_eq(apbi_pread_full(fd, got, 20, 990), APB_E_TRUNCATED);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "10 bytes short"));
	/* EIO propagates with a detail */
	fake_errno = EIO;
	ck_assert_int_eq(apbi_pread_full(fd, got, 10, 0), -EIO);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "read at offset 0"));
	fake_errno = 0;
	/* writes: EINTR and short writes */
	fake_eintr_left = 2, fake_max = 3;
	ck_assert_int_eq(apbi_pwrite_full(fd, src + 500, 100, 0), 0);
	ck_assert_int_eq(pread(fd, got, 100, 0), 100);
	ck_assert_int_eq(memcmp(got, src + 500, 100), 0);
	/* read_some: EINTR retried, short count returned */
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	fake_eintr_left = 1, fake_max = 4;
	ck_assert_int_eq(apbi_read_some(fd, got, 100), 4);
	ck_assert_int_eq(apbi_fsync(fd), -EIO);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "fsync"));
	/* restored system calls */
	apbi_io_set(NULL);
	ck_assert_int_eq(apbi_fsync(fd), 0);
	ck_assert_int_eq(apbi_pread_full(fd, got, 1000, 0), 0);
	ck_assert_int_eq(apbi_pread_full(-1, got, 1, 0), -EBADF);
	ck_assert_int_eq(apbi_pread_full(fd, got, 1, UINT64_MAX), -EINVAL);
	close(fd);
	free(path);
}
END_TEST

/*
 * Vectored reads: with a preadv that stops after fake_max bytes (mid
 * segment, or exactly at a segment end) and with none (one pread per
 * segment), every segment gets exactly its bytes, zero-length ones included.
 */
START_TEST(test_io_seam_preadv)
{
	static const size_t lens[] = { 100, 0, 37, 4096, 1, 250 };
	const apbi_io_ops *tables[] = { &fake_ops_v, &fake_ops, NULL };
	const int maxes[] = { 7, 100, 137, 1 << 20 };
	char *path = tu_path("iov.bin");
	uint8_t src[8192], got[8192];
	struct iovec iov[6];
	int fd;

	tu_fill_random(src, sizeof src, 11);
	tu_write_file(path, src, sizeof src);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	for (unsigned t = 0; t < 3; t++) {
		for (unsigned mx = 0; mx < 4; mx++) {
			size_t at = 0;
			apbi_io_set(tables[t]);
			fake_calls = 0, fake_eintr_left = 1, fake_max = maxes[mx], fake_errno = 0;
			memset(got, 0xa5, sizeof got);
			for (unsigned i = 0; i < 6; i++) {
				/* segments land in got at gaps of 3 bytes, which must stay untouched */
				iov[i].iov_base = got + at + 3 * i;
				iov[i].iov_len = lens[i];
				at += lens[i];
			}
			ck_assert_int_eq(apbi_preadv_full(fd, iov, 6, 300), 0);
			at = 0;
			for (unsigned i = 0; i < 6; i++) {
				ck_assert_int_eq(memcmp(iov[i].iov_base, src + 300 + at, lens[i]), 0);
				ck_assert_int_eq(got[at + 3 * i + lens[i]], 0xa5);
				at += lens[i];
			}
			if (t == 0)   /* EINTR retried, and short reads continued */
				ck_assert_int_ge(fake_calls, 2);
		}
	}
	/* the file ends inside the third segment */
	apbi_io_set(&fake_ops_v);
	fake_eintr_left = 0, fake_max = 1 << 20;
	ck_assert_int_eq(apbi_preadv_full(fd, iov, 6, sizeof src - 120), APB_E_TRUNCATED);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "bytes short"));
	fake_errno = EIO;
	ck_assert_int_eq(apbi_preadv_full(fd, iov, 6, 0), -EIO);
	fake_errno = 0;
	apbi_io_set(NULL);
	ck_assert_int_eq(apbi_preadv_full(fd, iov, 6, 0), 0);
	ck_assert_int_eq(memcmp(iov[0].iov_base, src, 100), 0);
	ck_assert_int_eq(apbi_preadv_full(fd, iov, 6, UINT64_MAX - 10), -EINVAL);
	close(fd);
	free(path);
}
END_TEST

/* A whole manifest read through short reads and EINTR, then EIO. */
START_TEST(test_io_seam_manifest)
{
	size_t len;
	uint8_t *b = variant(NULL, NULL, &len);
	char *path = tu_path("std.apbundle");
	apbi_manifest *m;
	int fd;

	tu_write_file(path, b, len);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	apbi_io_set(&fake_ops);
	fake_eintr_left = 3, fake_max = 5, fake_errno = 0;
	ck_assert_int_eq(apbi_manifest_read(fd, &m), 0);
	ck_assert_uint_eq(m->n_models, 3);
	apbi_manifest_free(m);
	fake_errno = EIO;
	ck_assert_int_eq(apbi_manifest_read(fd, &m), -EIO);
	ck_assert_ptr_null(m);
	fake_errno = 0;
	apbi_io_set(NULL);
	close(fd);
	free(path);
	free(b);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("format_util");
	TCase *tc = tcase_create("helpers");

	tu_add_fixture(tc);
	tcase_add_checked_fixture(tc, NULL, io_reset);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_checksum_text);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_io_seam);
	tcase_add_test(tc, test_io_seam_preadv);
	tcase_add_test(tc, test_io_seam_manifest);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
