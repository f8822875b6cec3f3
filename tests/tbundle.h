/*
 * tbundle.h - test bundles for the PagedBundle suites (check_paged,
 * check_prefetch): built with the builder from seeded random bytes, kept in
 * memory too, so every byte read back can be compared.
 */
#ifndef APB_TBUNDLE_H
#define APB_TBUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "apbundle.h"

#define MAXM 8

typedef struct tb {
	char *path;
	int n;
	char names[MAXM][16];
	uint8_t *data[MAXM];
	size_t size[MAXM];
} tb;

/** Builds t->path in the test's temp dir: n models "A", "B", ... (block_size 0: default). */
void tb_build(tb *t, int n, const size_t *sizes, uint32_t block_size);
/** Frees what tb_build allocated (not the file). */
void tb_free(tb *t);
/** Opens the bundle with these settings; fails the test on error. */
apb_paged *tb_open(const tb *t, uint64_t max_memory, uint32_t page_size, apb_eviction ev,
                   bool prefetch);
/** Reads model i whole through apb_paged_read and checks every byte. */
void read_whole(apb_paged *pb, const tb *t, int i);
/** get_model + check + release. */
void get_whole(apb_paged *pb, const tb *t, int i);
/** Asserts memory_used <= max. */
void check_budget(apb_paged *pb, uint64_t max);
/** Asserts iov[0..n) holds exactly want[0..len). */
void check_iov(const struct iovec *iov, int n, const uint8_t *want, ssize_t len);
/** Polls (bounded, 2 s) until every page of model name is resident. */
bool wait_cached(apb_paged *pb, const char *name);

#endif
