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
 * A flipped bit in a block-table read must not outlive the read either:
 * the table is checked against the manifest and never kept when bad (this
 * caught a bug, docs/RELIABILITY.md).
 * The total number of faults injected is printed as a TAP comment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
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
/* The last fault armed, for failure messages after disarm(). */
static enum fmode last_mode;
static long last_at;
static int last_sticky;

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

/*
 * The real read of the first `want` bytes of iov[0..n): preadv at off, or
 * readv at the file position when off < 0.
 */
static ssize_t real_read(int fd, const struct iovec *iov, int n, off_t off, size_t want)
{
	struct iovec cut[64];
	int k = 0;

	for (; k < n && k < 64 && want; k++) {
		cut[k] = iov[k];
		if (cut[k].iov_len > want)
			cut[k].iov_len = want;
		want -= cut[k].iov_len;
	}
	return off < 0 ? readv(fd, cut, k) : preadv(fd, cut, k, off);
}

/* A read (op OP_PREAD or OP_READ; vectored or not) that may carry the armed fault. */
static ssize_t faulty_read(int op, int fd, const struct iovec *iov, int n, off_t off)
{
	size_t total = 0;
	ssize_t got;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (!hit(op))
		return real_read(fd, iov, n, off, total);
	switch (F.mode) {
	case FM_SHORT:
		return real_read(fd, iov, n, off, total > 1 ? total / 2 : total);
	case FM_ZERO:   /* a premature end of file; no fault if it was the real end */
		if (real_read(fd, iov, n, off, total) == 0)
			__atomic_add_fetch(&F.noop, 1, __ATOMIC_SEQ_CST);
		return 0;
	case FM_FLIP:   /* one bit of the middle byte */
		got = real_read(fd, iov, n, off, total);
		for (int i = 0; got > 0 && i < n; i++) {
			size_t mid = (size_t)got / 2, before = 0;
			for (int j = 0; j < i; j++)
				before += iov[j].iov_len;
			if (mid < before + iov[i].iov_len) {
				((unsigned char *)iov[i].iov_base)[mid - before] ^= 0x01;
				break;
			}
		}
		return got;
	case FM_EINTR:
		errno = EINTR;
		return -1;
	default:
		errno = F.mode == FM_ENOSPC ? ENOSPC : EIO;
		return -1;
	}
}

static ssize_t f_pread(int fd, void *buf, size_t len, off_t off)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };
	return faulty_read(OP_PREAD, fd, &v, 1, off);
}

/* Vectored reads count as OP_PREAD and carry the same faults. */
static ssize_t f_preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	return faulty_read(OP_PREAD, fd, iov, n, off);
}

static ssize_t f_read(int fd, void *buf, size_t len)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };
	return faulty_read(OP_READ, fd, &v, 1, -1);
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
	.preadv = f_preadv,
};

/* Arms the seam: count calls of ops, fail call `at` (0: none) with mode. */
static void arm(unsigned ops, enum fmode mode, long at, int sticky)
{
	memset(&F, 0, sizeof F);
	F.ops = ops;
	F.mode = mode;
	F.at = at;
	F.sticky = sticky;
	last_mode = mode;
	last_at = at;
	last_sticky = sticky;
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

/* ---- paged reads ---- */

/*
 * Page size of the paged tests: 1 KiB pages split the 4 KiB blocks (loads
 * go through the load buffer), 4 KiB pages hold whole blocks (loads are
 * one preadv straight into the cache pages).  Both paths get every fault.
 */
static const uint32_t page_sizes[] = { 1024, 4096 };
static uint32_t page = 1024;
#define BUDGET (8u * page)

static void paged_cfg(apb_paging_config *cfg)
{
	apb_paging_config_init(cfg);
	cfg->page_size = page;
	cfg->max_memory = BUDGET;
	cfg->prefetch = false;
}

/* One read of model m: an error (allowed unless must) or exactly the right bytes. */
static void read_checked(apb_paged *pb, int m, uint64_t off, size_t len, int must)
{
	unsigned char *buf = malloc(len + 1);
	size_t want = off >= sizes[m] ? 0 : (sizes[m] - off < len ? sizes[m] - off : len);
	apb_paging_stats st;
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	n = apb_paged_read(pb, names[m], buf, len, off);
	ck_assert_msg(n >= 0 || !must, "read %s [%llu,+%zu) failed (after %s%s at read call %ld): %s",
	              names[m], (unsigned long long)off, len, last_sticky ? "every read from " : "",
	              mode_names[last_mode], last_at, apb_last_error());
	if (n >= 0) {
		ck_assert_msg((size_t)n == want, "read %s at %llu: %zd bytes, expected %zu",
		              names[m], (unsigned long long)off, n, want);
		ck_assert_msg(n == 0 || memcmp(buf, content[m] + off, (size_t)n) == 0,
		              "WRONG BYTES served for %s [%llu,+%zd) (fault %s at call %ld)",
		              names[m], (unsigned long long)off, n, mode_names[last_mode], last_at);
	}
	apb_paged_stats(pb, &st);
	ck_assert_uint_le(st.memory_used, BUDGET);
	free(buf);
}

/* Sequential pass over every model in 1500-byte reads. */
static void read_all(apb_paged *pb, int must)
{
	for (int m = 0; m < N_MODELS; m++)
		for (uint64_t off = 0; off < sizes[m] || off == 0; off += 1500) {
			read_checked(pb, m, off, 1500, must);
			if (sizes[m] == 0)
				break;
		}
}

/*
 * The faulted workload: a pass, random reads, a pinned view, an eviction.
 * must: every operation has to succeed (faults that are retried away).
 */
static void paged_workload(apb_paged *pb, int must)
{
	uint64_t s = 12345;
	const void *view;
	size_t vsize;
	int rc;

	read_all(pb, must);
	for (int k = 0; k < 40; k++) {
		int m = (int)(tu_rand(&s) % N_MODELS);
		uint64_t off = tu_rand(&s) % (sizes[m] + 1);
		read_checked(pb, m, off, 1 + tu_rand(&s) % 3000, must);
	}
	rc = apb_paged_get_model(pb, "dir/c", &view, &vsize);
	ck_assert_msg(rc == 0 || !must, "get_model failed: %s", apb_last_error());
	if (rc == 0) {
		ck_assert_uint_eq(vsize, sizes[2]);
		ck_assert_msg(memcmp(view, content[2], vsize) == 0, "WRONG BYTES in a pinned view");
		apb_paged_release(pb, view);
	}
	apb_paged_evict(pb, "big");
	read_checked(pb, 3, 60000, 9000, must);
}

/* After the faults: every model exact, and no pin or budget leaked. */
static void paged_after(apb_paged *pb, int strict)
{
	apb_paging_stats st;

	read_all(pb, strict);
	apb_paged_clear_cache(pb);
	apb_paged_stats(pb, &st);
	ck_assert_msg(st.memory_used == 0 && st.cached_pages == 0,
	              "after clear_cache: memory_used %llu, cached_pages %llu (leaked pins?) "
	              "after fault %s at call %ld", (unsigned long long)st.memory_used,
	              (unsigned long long)st.cached_pages, mode_names[last_mode], last_at);
}

/*
 * Runs the paged workload with fault (mode, at, sticky) on reads.  A flip
 * during open may legitimately change the manifest (it has no checksum of
 * its own), so only then are later failures tolerated.
 */
static void paged_fault_once(const char *path, enum fmode mode, long at, int sticky)
{
	apb_paging_config cfg;
	apb_paged *pb = NULL;
	long open_calls;
	int rc, strict;

	paged_cfg(&cfg);
	arm(OP_PREAD | OP_READ, mode, at, sticky);
	rc = apb_paged_open(path, &cfg, &pb);
	open_calls = F.calls;
	if (rc != 0) {
		ck_assert_msg(mode != FM_EINTR && mode != FM_SHORT,
		              "%s during open failed it: %s", mode_names[mode], apb_last_error());
		disarm();
		return;
	}
	/* EINTR and short reads are retried: nothing may fail under them */
	paged_workload(pb, mode == FM_EINTR || mode == FM_SHORT);
	strict = !(mode == FM_FLIP && at <= open_calls);
	disarm();
	paged_after(pb, strict);
	apb_paged_close(pb);
}

START_TEST(paged_faults)
{
	static const enum fmode modes[] = { FM_EIO, FM_EINTR, FM_SHORT, FM_ZERO, FM_FLIP };
	apb_paging_config cfg;
	char *path = tu_path("p.apbundle");
	apb_paged *pb = NULL;
	long total;
	int sticky = _i & 1;

	page = page_sizes[_i >> 1];
	ck_assert_int_eq(build_at(path), 0);
	paged_cfg(&cfg);
	arm(OP_PREAD | OP_READ, FM_EIO, 0, 0);
	ck_assert_int_eq(apb_paged_open(path, &cfg, &pb), 0);
	paged_workload(pb, 1);
	total = F.calls;
	disarm();
	paged_after(pb, 1);
	apb_paged_close(pb);
	ck_assert_int_gt(total, 10);
	for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
		if (sticky && modes[k] == FM_EINTR)
			continue;       /* a disk that only ever says EINTR is retried forever */
		for (long n = 1; n <= total; n++)
			paged_fault_once(path, modes[k], n, sticky);
	}
	free(path);
}
END_TEST

/*
 * While every read comes back altered nothing is served or cached; once
 * the disk is good again every model reads back exactly.
 */
START_TEST(paged_flip_not_cached)
{
	apb_paging_config cfg;
	char *path = tu_path("p.apbundle");
	apb_paged *pb = NULL;
	apb_paging_stats st;
	unsigned char buf[4096];

	page = page_sizes[_i];
	ck_assert_int_eq(build_at(path), 0);
	paged_cfg(&cfg);
	ck_assert_int_eq(apb_paged_open(path, &cfg, &pb), 0);
	arm(OP_PREAD | OP_READ, FM_FLIP, 1, 1);     /* every read comes back altered */
	for (uint64_t off = 0; off < sizes[3]; off += page)
		ck_assert_int_lt(apb_paged_read(pb, "big", buf, page, off), 0);
	ck_assert_int_gt(disarm(), 0);
	apb_paged_stats(pb, &st);
	ck_assert_uint_eq(st.memory_used, 0);
	ck_assert_uint_gt(st.checksum_failures, 0);
	read_all(pb, 1);
	paged_after(pb, 1);
	apb_paged_close(pb);
	free(path);
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
	tcase_add_loop_test(tc, paged_faults, 0, 4);
	tcase_add_loop_test(tc, paged_flip_not_cached, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
