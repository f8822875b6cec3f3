/*
 * testutil.h - fixtures shared by the Check suites: temp dirs, files, main.
 *
 * Every suite file defines `Suite *test_suite(void)` and uses
 * APB_TEST_MAIN(); tests write only below the directory returned by
 * tu_tmpdir(), which the fixture removes afterwards.
 */
#ifndef APB_TESTUTIL_H
#define APB_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/** Creates a fresh temp dir for the running test (unchecked fixture). */
void tu_setup(void);
/** Removes it recursively. */
void tu_teardown(void);
/** Path of the current test's temp dir (valid between setup and teardown). */
const char *tu_tmpdir(void);
/** Returns a malloc'ed "<tmpdir>/<name>" (abort on ENOMEM). */
char *tu_path(const char *name);
/** Writes len bytes to path (creating it); ck_abort on failure. */
void tu_write_file(const char *path, const void *data, size_t len);
/** Reads a whole file into a malloc'ed buffer; *len set; ck_abort on failure. */
void *tu_read_file(const char *path, size_t *len);
/** Fills buf with deterministic pseudo-random bytes from seed. */
void tu_fill_random(void *buf, size_t len, uint64_t seed);
/** xorshift64* step. */
uint64_t tu_rand(uint64_t *state);
/** Adds the temp-dir fixture to tc. */
void tu_add_fixture(TCase *tc);
/** Runs suite s with CK_ENV and TAP output; returns the exit status. */
int tu_run(Suite *s);

Suite *test_suite(void);

#define APB_TEST_MAIN() \
	int main(void) { return tu_run(test_suite()); }

#endif
