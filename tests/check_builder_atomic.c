/*
 * check_builder_atomic.c - tests of the builder's atomicity (builder.c):
 * injected I/O faults at every call, sources that change size during a
 * build, unwritable targets, cancellation after every write in turn and
 * inside a hole, and the flock held on the temporary file.
 *
 * After every failure the target must be untouched (absent, or holding
 * its old bytes) and no "<path>.tmp.*" file may remain; after every
 * success the bundle is checked byte by byte with json-c and xxhash
 * directly (tests/rawbundle.c), independently of the library's reader.
 * Layout and contents are tested in check_builder.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apbundle.h"
#include "format_write.h"
#include "internal.h"
#include "rawbundle.h"
#include "testutil.h"

/* Asserts that the test's directory holds no temporary file. */
static void assert_no_temp(void)
{
	DIR *d = opendir(tu_tmpdir());
	struct dirent *e;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "temp file %s left", e->d_name);
	closedir(d);
}

/* Asserts no temporary file and that path is absent or holds old. */
static void assert_clean(const char *path, const void *old, size_t old_len)
{
	assert_no_temp();
	if (!old) {
		ck_assert_msg(access(path, F_OK) == -1 && errno == ENOENT, "%s exists", path);
		return;
	}
	size_t len;
	uint8_t *now = tu_read_file(path, &len);
	ck_assert_uint_eq(len, old_len);
	ck_assert_int_eq(memcmp(now, old, len), 0);
	free(now);
}

/* Fault injection through the I/O seam: call number fail_at fails. */
static int io_calls, io_fail_at;
static int io_fail_errno = EIO;

static bool io_should_fail(void)
{
	return io_calls++ == io_fail_at;
}

static ssize_t f_pread(int fd, void *b, size_t l, off_t o) { return pread(fd, b, l, o); }
static ssize_t f_pwrite(int fd, const void *b, size_t l, off_t o)
{
	if (io_should_fail()) {
		errno = io_fail_errno;
		return -1;
	}
	return pwrite(fd, b, l > 1000 ? l / 2 : l, o); /* short writes must be retried */
}
static ssize_t f_read(int fd, void *b, size_t l)
{
	if (io_should_fail()) {
		errno = io_fail_errno;
		return -1;
	}
	return read(fd, b, l > 4096 ? 4096 : l); /* short reads must be retried */
}
static ssize_t f_read_eof(int fd, void *b, size_t l)
{
	return io_should_fail() ? 0 : read(fd, b, l > 4096 ? 4096 : l);
}
static int f_fsync(int fd)
{
	if (io_should_fail()) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static const apbi_io_ops faulty = { f_pread, f_pwrite, f_read, f_fsync, NULL };
static const apbi_io_ops early_eof = { f_pread, pwrite, f_read_eof, fsync, NULL };

static volatile sig_atomic_t cancel_flag; /* build_mixed's cancel flag */

/* Builds models from memory and from a file; returns the build's code. */
static int build_mixed(const char *out, const char *src)
{
	apb_builder *bb = apb_builder_new(out);
	static uint8_t buf[70000];
	int rc;

	tu_fill_random(buf, sizeof buf, 7);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 4096), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "mem", buf, sizeof buf), 0);
	ck_assert_int_eq(apb_builder_add_file(bb, "file", src), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "tail", buf, 100), 0);
	apb_builder_set_cancel(bb, &cancel_flag);
	rc = apb_builder_build(bb);
	apb_builder_free(bb);
	return rc;
}

/* Every I/O call of a build fails in turn; each failure leaves no trace. */
static void fault_sweep(const apbi_io_ops *ops, const char *out, const char *src,
                        const void *old, size_t old_len)
{
	int rc = -1, n;

	for (n = 0; n < 500 && rc != 0; n++) {
		io_calls = 0;
		io_fail_at = n;
		apbi_io_set(ops);
		rc = build_mixed(out, src);
		apbi_io_set(NULL);
		if (rc == 0)
			break;
		ck_assert_msg(rc == -EIO, "fault %d gave %d", n, rc);
		ck_assert_str_ne(apb_last_error(), "");
		if (strstr(apb_last_error(), "syncing its directory")) {
			/* Past the rename: the new bundle is complete at path. */
			raw_bundle rb;
			raw_open(&rb, out);
			ck_assert_int_eq(jint(rb.man, "model_count"), 3);
			raw_close(&rb);
			assert_no_temp();
			continue;
		}
		assert_clean(out, old, old_len);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_gt(n, 3); /* really failed several distinct calls */
}

START_TEST(test_atomic_io_faults)
{
	char *out = tu_path("a.apbundle"), *src = tu_path("src.bin");
	static uint8_t data[300000];
	raw_bundle rb;

	tu_fill_random(data, sizeof data, 3);
	tu_write_file(src, data, sizeof data);
	fault_sweep(&faulty, out, src, NULL, 0);
	raw_open(&rb, out);
	check_model(&rb, 1, "file", data, sizeof data, 4096, 4096);
	raw_close(&rb);
	/* A pre-existing bundle survives every failed build. */
	size_t old_len;
	uint8_t *old = tu_read_file(out, &old_len);
	data[0] ^= 1;
	tu_write_file(src, data, sizeof data);
	fault_sweep(&faulty, out, src, old, old_len);
	free(old);
	raw_open(&rb, out);
	check_model(&rb, 1, "file", data, sizeof data, 4096, 4096);
	raw_close(&rb);
	unlink(out);
	/* A source that ends early while being read. */
	io_calls = 0;
	io_fail_at = 3;
	apbi_io_set(&early_eof);
	ck_assert_int_eq(build_mixed(out, src), -EIO);
	apbi_io_set(NULL);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "shrank"));
	assert_clean(out, NULL, 0);
	free(out);
	free(src);
}
END_TEST

START_TEST(test_atomic_source_changes)
{
	char *out = tu_path("c.apbundle"), *src = tu_path("src.bin");
	static uint8_t data[10000];
	apb_builder *bb;

	tu_write_file(out, "OLD", 3);
	for (int grow = 0; grow < 2; grow++) {
		tu_write_file(src, data, sizeof data);
		bb = apb_builder_new(out);
		ck_assert_int_eq(apb_builder_add_model(bb, "first", data, 5000), 0);
		ck_assert_int_eq(apb_builder_add_file(bb, "f", src), 0);
		ck_assert_int_eq(truncate(src, grow ? 20000 : 9999), 0);
		ck_assert_int_eq(apb_builder_build(bb), -EIO);
		ck_assert_ptr_nonnull(strstr(apb_last_error(), "changed size"));
		apb_builder_free(bb);
		assert_clean(out, "OLD", 3);
	}
	free(out);
	free(src);
}
END_TEST

START_TEST(test_atomic_bad_targets)
{
	char *dir = tu_path("sub"), *out = tu_path("sub/x.apbundle");
	char *nodir = tu_path("nodir/x.apbundle");
	apb_builder *bb;

	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(mkdir(out, 0755), 0); /* rename over a directory fails late */
	bb = apb_builder_new(out);
	ck_assert_int_eq(apb_builder_add_model(bb, "m", "data", 4), 0);
	ck_assert_int_eq(apb_builder_build(bb), -EISDIR);
	ck_assert_ptr_nonnull(strstr(apb_last_error(), "renaming"));
	apb_builder_free(bb);
	DIR *d = opendir(dir);
	struct dirent *e;
	int entries = 0;
	while ((e = readdir(d)) != NULL)
		entries += e->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(entries, 1); /* only the directory itself, no temp file */
	ck_assert_int_eq(rmdir(out), 0);

	bb = apb_builder_new(nodir);
	ck_assert_int_eq(apb_builder_add_model(bb, "m", "data", 4), 0);
	ck_assert_int_eq(apb_builder_build(bb), -ENOENT);
	apb_builder_free(bb);

	if (geteuid() != 0) { /* root ignores directory permissions */
		ck_assert_int_eq(chmod(dir, 0555), 0);
		bb = apb_builder_new(out);
		ck_assert_int_eq(apb_builder_add_model(bb, "m", "data", 4), 0);
		ck_assert_int_eq(apb_builder_build(bb), -EACCES);
		apb_builder_free(bb);
		chmod(dir, 0755);
	}
	ck_assert_int_eq(access(out, F_OK), -1);
	free(dir);
	free(out);
	free(nodir);
}
END_TEST

/* ---- cancellation and the temp file's lock ---- */

static int cancel_after;      /* pwrite calls before the flag is set (-1: never) */
static int writes, writes_after_flag;

/* Whole writes (no short ones), setting cancel_flag after cancel_after of them. */
static ssize_t c_pwrite(int fd, const void *b, size_t l, off_t o)
{
	writes_after_flag += cancel_flag != 0;
	if (writes++ == cancel_after)
		cancel_flag = 1;
	return pwrite(fd, b, l, o);
}
static const apbi_io_ops cancelling = { f_pread, c_pwrite, read, fsync, NULL };

/* Cancels after every pwrite of a build in turn: each one leaves no trace. */
static void cancel_sweep(const char *out, const char *src, const void *old, size_t old_len)
{
	int rc = -1, n;

	for (n = 0; rc != 0; n++) {
		cancel_flag = 0;
		cancel_after = n;
		writes = writes_after_flag = 0;
		apbi_io_set(&cancelling);
		rc = build_mixed(out, src);
		apbi_io_set(NULL);
		if (rc == 0)
			break;
		ck_assert_msg(rc == -ECANCELED, "cancel after write %d gave %d (%s)", n, rc,
		              apb_last_error());
		ck_assert_ptr_nonnull(strstr(apb_last_error(), "cancelled"));
		ck_assert_int_eq(writes_after_flag, 0); /* stopped at once */
		assert_clean(out, old, old_len);
	}
	ck_assert_int_eq(writes, n); /* succeeded only once no write set the flag */
	ck_assert_int_eq(n, 10);     /* 5 file chunks, 2 memory models, 2 block tables, the head */
	cancel_flag = 0;
}

START_TEST(test_cancel)
{
	char *out = tu_path("k.apbundle"), *src = tu_path("src.bin");
	static uint8_t data[(4u << 20) + 3];
	size_t old_len;
	uint8_t *old;
	raw_bundle rb;

	tu_fill_random(data, sizeof data, 5);
	tu_write_file(src, data, sizeof data);
	cancel_flag = 1; /* set before the build: nothing is written at all */
	writes = 0;
	apbi_io_set(&cancelling);
	ck_assert_int_eq(build_mixed(out, src), -ECANCELED);
	apbi_io_set(NULL);
	ck_assert_int_eq(writes, 0);
	assert_clean(out, NULL, 0);
	cancel_sweep(out, src, NULL, 0);
	raw_open(&rb, out);
	check_model(&rb, 1, "file", data, sizeof data, 4096, 4096);
	raw_close(&rb);
	old = tu_read_file(out, &old_len); /* an existing bundle survives every cancel */
	cancel_sweep(out, src, old, old_len);
	free(old);
	free(out);
	free(src);
}
END_TEST

static uint64_t progress_bytes;

static void cancel_at_3m(void *ctx, uint64_t n)
{
	(void)ctx;
	progress_bytes += n;
	if (progress_bytes >= (3u << 20))
		cancel_flag = 1;
}

START_TEST(test_cancel_in_hole)
{
	char *out = tu_path("h.apbundle"), *src = tu_path("hole.bin");
	int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
	apb_builder *bb = apb_builder_new(out);

	ck_assert_int_eq(ftruncate(fd, 1ll << 30), 0); /* 1 GiB hole: hashed, not written */
	close(fd);
	ck_assert_int_eq(apb_builder_add_file(bb, "hole", src), 0);
	cancel_flag = 0;
	progress_bytes = 0;
	apb_builder_set_cancel(bb, &cancel_flag);
	apb_builder_set_progress(bb, cancel_at_3m, NULL);
	ck_assert_int_eq(apb_builder_build(bb), -ECANCELED);
	ck_assert_uint_eq(progress_bytes, 3u << 20); /* stopped after the chunk that set it */
	apb_builder_free(bb);
	assert_clean(out, NULL, 0);
	cancel_flag = 0;
	free(out);
	free(src);
}
END_TEST

static int lock_probes, lock_busy;

/* Opens the one temp file in the test directory and tries to lock it. */
static void probe_lock(void)
{
	DIR *d = opendir(tu_tmpdir());
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "l.apbundle.tmp.", 15) != 0 || strlen(e->d_name) != 21)
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY);
		lock_probes++;
		lock_busy += fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
}
static ssize_t l_pwrite(int fd, const void *b, size_t l, off_t o)
{
	probe_lock();
	return pwrite(fd, b, l, o);
}
static int l_fsync(int fd)
{
	probe_lock(); /* the file's sync (temp present) and the directory's (renamed) */
	return fsync(fd);
}
static const apbi_io_ops lock_probing = { f_pread, l_pwrite, read, l_fsync, NULL };

START_TEST(test_temp_locked)
{
	char *out = tu_path("l.apbundle"), *src = tu_path("src.bin");
	static uint8_t data[3u << 20];
	int fd;

	tu_fill_random(data, sizeof data, 9);
	tu_write_file(src, data, sizeof data);
	lock_probes = lock_busy = 0;
	apbi_io_set(&lock_probing);
	ck_assert_msg(build_mixed(out, src) == 0, "%s", apb_last_error());
	apbi_io_set(NULL);
	ck_assert_int_gt(lock_probes, 5);       /* every chunk, the tables, the head, the sync */
	ck_assert_int_eq(lock_busy, lock_probes); /* locked each time it was seen */
	fd = open(out, O_RDONLY); /* once built, nothing holds the lock */
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
	close(fd);
	assert_no_temp();
	free(out);
	free(src);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("builder_atomic");
	TCase *tc = tcase_create("atomic");

	tu_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_atomic_io_faults);
	tcase_add_test(tc, test_atomic_source_changes);
	tcase_add_test(tc, test_atomic_bad_targets);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_cancel_in_hole);
	tcase_add_test(tc, test_temp_locked);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
