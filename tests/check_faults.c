/*
 * check_faults.c - fault injection through the I/O seam (apbi_io_set).
 *
 * Every scenario is first run clean to count its I/O calls; then, for each
 * fault mode and each call number N, it is run again with call N failing
 * (EIO, ENOSPC, EINTR, a short transfer, a premature end of file, or a
 * read whose bytes come back with one bit flipped, as a flaky disk would).
 * What must hold under every fault:
 *  - whole load: an error and no handle, or (EINTR, short) the exact bytes;
 *  - builder: an error and nothing at the target path (or the old bundle
 *    still there, byte for byte) and no temporary file; EINTR and short
 *    writes give the same bytes as a clean build;
 *  - paged reads: an error or the exact bytes, never other bytes; after the
 *    faults stop every model reads back exactly, and clear_cache brings
 *    memory_used to 0 (no pin or budget leaked by an error path).
 * The total number of faults injected is printed as a TAP comment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apbundle.h"
#include "internal.h"
#include "testutil.h"

/* ---- the fault seam ---- */

enum fmode { FM_EIO, FM_ENOSPC, FM_EINTR, FM_SHORT, FM_ZERO, FM_FLIP };
enum fop { OP_PREAD = 1, OP_READ = 2, OP_PWRITE = 4, OP_FSYNC = 8 };

static const char *const mode_names[] = { "EIO", "ENOSPC", "EINTR", "short", "EOF", "flip" };

static struct {
	unsigned ops;        /* which calls are counted (enum fop bits) */
	enum fmode mode;
	long at;             /* 1-based call number to fail; 0 = never */
	int sticky;          /* fail every call from `at` on */
	long calls, fired;
	long noop;           /* FM_ZERO hits on reads that were at the real EOF anyway */
} F;

/* Faults injected by this process, for the summary line. */
static long injected_total;

/* Counts one call of kind op; returns 1 when it must fail. */
static int hit(int op)
{
	long n;

	if (!(F.ops & op))
		return 0;
	n = __atomic_add_fetch(&F.calls, 1, __ATOMIC_SEQ_CST);
	if (F.at == 0 || n < F.at || (!F.sticky && n != F.at))
		return 0;
	__atomic_add_fetch(&F.fired, 1, __ATOMIC_SEQ_CST);
	return 1;
}

static ssize_t f_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n;

	if (!hit(OP_PREAD))
		return pread(fd, buf, len, off);
	switch (F.mode) {
	case FM_SHORT:
		return pread(fd, buf, len > 1 ? len / 2 : len, off);
	case FM_ZERO:   /* a premature end of file; no fault if it was the real end */
		if (pread(fd, buf, len, off) == 0)
			__atomic_add_fetch(&F.noop, 1, __ATOMIC_SEQ_CST);
		return 0;
	case FM_FLIP:
		n = pread(fd, buf, len, off);
		if (n > 0)
			((unsigned char *)buf)[n / 2] ^= 0x01;
		return n;
	case FM_EINTR:
		errno = EINTR;
		return -1;
	default:
		errno = F.mode == FM_ENOSPC ? ENOSPC : EIO;
		return -1;
	}
}

static ssize_t f_read(int fd, void *buf, size_t len)
{
	ssize_t n;

	if (!hit(OP_READ))
		return read(fd, buf, len);
	switch (F.mode) {
	case FM_SHORT:
		return read(fd, buf, len > 1 ? len / 2 : len);
	case FM_ZERO:
		if (read(fd, buf, len) == 0)
			__atomic_add_fetch(&F.noop, 1, __ATOMIC_SEQ_CST);
		return 0;
	case FM_FLIP:
		n = read(fd, buf, len);
		if (n > 0)
			((unsigned char *)buf)[n / 2] ^= 0x01;
		return n;
	case FM_EINTR:
		errno = EINTR;
		return -1;
	default:
		errno = EIO;
		return -1;
	}
}

static ssize_t f_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (!hit(OP_PWRITE))
		return pwrite(fd, buf, len, off);
	switch (F.mode) {
	case FM_SHORT:
		return pwrite(fd, buf, len > 1 ? len / 2 : len, off);
	case FM_ZERO:
		return 0;
	case FM_EINTR:
		errno = EINTR;
		return -1;
	default:
		errno = F.mode == FM_ENOSPC ? ENOSPC : EIO;
		return -1;
	}
}

static int f_fsync(int fd)
{
	if (!hit(OP_FSYNC))
		return fsync(fd);
	errno = F.mode == FM_EINTR ? EINTR : EIO;
	return -1;
}

static const apbi_io_ops fault_ops = {
	.pread = f_pread, .pwrite = f_pwrite, .read = f_read, .fsync = f_fsync,
};

/* Arms the seam: count calls of ops, fail call `at` (0: none) with mode. */
static void arm(unsigned ops, enum fmode mode, long at, int sticky)
{
	memset(&F, 0, sizeof F);
	F.ops = ops;
	F.mode = mode;
	F.at = at;
	F.sticky = sticky;
	apbi_io_set(&fault_ops);
}

/* Disarms the seam; returns how many faults fired (not counting no-ops). */
static long disarm(void)
{
	long fired = F.fired - F.noop;

	apbi_io_set(NULL);
	injected_total += fired;
	F.at = 0;
	return fired;
}

/* ---- fixtures: a bundle of a few models of varied shapes ---- */

#define N_MODELS 5
static const char *const names[N_MODELS] = { "empty", "one", "dir/c", "big", "dir/sub/tail" };
static const size_t sizes[N_MODELS] = { 0, 1, 5000, 70000, 4097 };
static unsigned char *content[N_MODELS];

static void make_content(void)
{
	for (int i = 0; i < N_MODELS; i++) {
		content[i] = malloc(sizes[i] + 1);
		ck_assert_ptr_nonnull(content[i]);
		tu_fill_random(content[i], sizes[i], 100 + (uint64_t)i);
	}
}

static void free_content(void)
{
	for (int i = 0; i < N_MODELS; i++) {
		free(content[i]);
		content[i] = NULL;
	}
}

/* Adds the models to bb: "big" and "dir/c" from files, the rest from memory. */
static int add_models(apb_builder *bb)
{
	int rc = 0;

	for (int i = 0; i < N_MODELS && rc == 0; i++) {
		if (sizes[i] >= 5000) {
			char src[32];
			char *p;
			snprintf(src, sizeof src, "src%d", i);
			p = tu_path(src);
			if (access(p, F_OK) != 0)
				tu_write_file(p, content[i], sizes[i]);
			rc = apb_builder_add_file(bb, names[i], p);
			free(p);
		} else {
			rc = apb_builder_add_model(bb, names[i], content[i], sizes[i]);
		}
	}
	return rc;
}

/* Builds the test bundle at path with 4 KiB blocks; returns the build's code. */
static int build_at(const char *path)
{
	apb_builder *bb = apb_builder_new(path);
	int rc;

	ck_assert_ptr_nonnull(bb);
	ck_assert_int_eq(apb_builder_set_alignment(bb, 512), 0);
	ck_assert_int_eq(apb_builder_set_block_size(bb, 4096), 0);
	rc = add_models(bb);
	ck_assert_msg(rc == 0, "adding models: %s", apb_last_error());
	rc = apb_builder_build(bb);
	apb_builder_free(bb);
	return rc;
}

static void setup(void)
{
	tu_setup();
	make_content();
}

/* Reports the faults injected by the test (a TAP comment) and cleans up. */
static void teardown(void)
{
	printf("# faults injected: %ld\n", injected_total);
	fflush(stdout);
	injected_total = 0;
	apbi_io_set(NULL);
	free_content();
	tu_teardown();
}

/* Number of directory entries in the test dir whose name contains ".tmp.". */
static int count_temp_files(void)
{
	DIR *d = opendir(tu_tmpdir());
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp."))
			n++;
	closedir(d);
	return n;
}

/* 1 when the file at path has exactly len bytes equal to data. */
static int file_equals(const char *path, const void *data, size_t len)
{
	struct stat st;
	size_t n;
	void *got;
	int same;

	if (stat(path, &st) != 0)
		return 0;
	got = tu_read_file(path, &n);
	same = n == len && memcmp(got, data, len) == 0;
	free(got);
	return same;
}

/* ---- whole load ---- */

/*
 * Loads path; on success every model found under its name must hold
 * exactly its bytes, and (unless the manifest itself may have been
 * altered, mode FM_FLIP) every model must be found.  Returns load's code.
 */
static int load_checked(const char *path, enum fmode mode)
{
	apb_bundle *b = NULL;
	int rc = apb_bundle_load(path, &b);

	if (rc != 0)
		return rc;
	ck_assert_ptr_nonnull(b);
	for (int i = 0; i < N_MODELS; i++) {
		const void *p;
		size_t len;
		if (apb_bundle_get_model(b, names[i], &p, &len) != 0) {
			ck_assert_msg(mode == FM_FLIP, "model %s missing after a clean load", names[i]);
			continue;
		}
		ck_assert_uint_eq(len, sizes[i]);
		ck_assert_msg(len == 0 || memcmp(p, content[i], len) == 0,
		              "model %s: wrong bytes served by apb_bundle_load (fault %s at call %ld)",
		              names[i], mode_names[mode], F.at);
	}
	apb_bundle_free(b);
	return 0;
}

START_TEST(load_faults)
{
	static const enum fmode modes[] = { FM_EIO, FM_EINTR, FM_SHORT, FM_ZERO, FM_FLIP };
	char *path = tu_path("b.apbundle");
	long total;

	ck_assert_int_eq(build_at(path), 0);
	arm(OP_PREAD | OP_READ, FM_EIO, 0, 0);
	ck_assert_int_eq(load_checked(path, FM_EIO), 0);
	total = F.calls;
	disarm();
	ck_assert_int_gt(total, 0);
	for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
		for (long n = 1; n <= total; n++) {
			long noop;
			int rc;
			arm(OP_PREAD | OP_READ, modes[k], n, 0);
			rc = load_checked(path, modes[k]);
			noop = F.noop;
			ck_assert_int_eq(disarm() + noop, 1);
			if (modes[k] == FM_EIO)
				ck_assert_msg(rc == -EIO, "EIO at read %ld: load returned %d (%s)",
				              n, rc, apb_last_error());
			else if (modes[k] == FM_ZERO && !noop)
				ck_assert_msg(rc < 0, "premature EOF at read %ld: load succeeded", n);
			else if (modes[k] != FM_FLIP && modes[k] != FM_ZERO)
				ck_assert_msg(rc == 0, "%s at read %ld: load failed: %s",
				              mode_names[modes[k]], n, apb_last_error());
		}
	}
	free(path);
}
END_TEST

/* ---- builder ---- */

static const char old_bytes[] = "an older bundle that a failed build must leave alone";

/*
 * Runs every fault of (ops, mode) over a build to target, which holds
 * old_bytes first when `existing`.  ref/ref_len: a clean build's bytes.
 */
static void builder_fault_run(unsigned ops, enum fmode mode, int existing,
                              const void *ref, size_t ref_len)
{
	char *target = tu_path("out.apbundle");
	long total;

	unlink(target);
	arm(ops, mode, 0, 0);
	ck_assert_int_eq(build_at(target), 0);
	total = F.calls;
	disarm();
	ck_assert_msg(total > 0, "no %s call counted in a build", mode_names[mode]);
	for (long n = 1; n <= total; n++) {
		long noop;
		int rc;
		unlink(target);
		if (existing)
			tu_write_file(target, old_bytes, sizeof old_bytes);
		arm(ops, mode, n, 0);
		rc = build_at(target);
		noop = F.noop;
		ck_assert_int_eq(disarm() + noop, 1);
		ck_assert_msg(count_temp_files() == 0, "%s at call %ld of %ld left a temporary file",
		              mode_names[mode], n, total);
		if (mode == FM_EINTR || mode == FM_SHORT || noop) {
			ck_assert_msg(rc == 0, "%s at call %ld: build failed: %s",
			              mode_names[mode], n, apb_last_error());
			ck_assert(file_equals(target, ref, ref_len));
			continue;
		}
		ck_assert_msg(rc < 0, "%s at call %ld of %ld: build succeeded", mode_names[mode], n, total);
		if (ops == OP_FSYNC && n == total) {
			/* the directory fsync, after the rename: the new bundle is in place */
			ck_assert(file_equals(target, ref, ref_len));
		} else if (existing) {
			ck_assert_msg(file_equals(target, old_bytes, sizeof old_bytes),
			              "%s at call %ld: the old file at the target changed", mode_names[mode], n);
		} else {
			ck_assert_msg(access(target, F_OK) != 0 && errno == ENOENT,
			              "%s at call %ld: a file was left at the target", mode_names[mode], n);
		}
	}
	free(target);
}

START_TEST(builder_faults)
{
	static const struct { unsigned ops; enum fmode mode; } runs[] = {
		{ OP_PWRITE, FM_EIO }, { OP_PWRITE, FM_ENOSPC }, { OP_PWRITE, FM_ZERO },
		{ OP_PWRITE, FM_SHORT }, { OP_PWRITE, FM_EINTR },
		{ OP_FSYNC, FM_EIO }, { OP_FSYNC, FM_EINTR },
		{ OP_READ | OP_PREAD, FM_EIO }, { OP_READ | OP_PREAD, FM_ZERO },
		{ OP_READ | OP_PREAD, FM_SHORT }, { OP_READ | OP_PREAD, FM_EINTR },
	};
	char *refp = tu_path("ref.apbundle");
	size_t ref_len;
	void *ref;

	ck_assert_int_eq(build_at(refp), 0);
	ref = tu_read_file(refp, &ref_len);
	unlink(refp);
	for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++)
		builder_fault_run(runs[k].ops, runs[k].mode, _i, ref, ref_len);
	free(ref);
	free(refp);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("seam");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, load_faults);
	tcase_add_loop_test(tc, builder_faults, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
