/*
 * reader.c - apb_reader: one reader of one model with its own read window
 * (the mount keeps one per open file), over paged.c's reads and the
 * prefetcher's per-reader streams (prefetch.h, apbi_ra).
 *
 * Invariants: a reader's stream is registered with the prefetcher from
 * open to close, and unregistered (its queued readahead dropped, a load in
 * flight detached) before its memory is freed; at most APB_MAX_READERS
 * readers of one apb_paged exist at once (pb->readers, atomic), each one
 * allocation outside the budget.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "paged_priv.h"

struct apb_reader {
	apb_paged *pb;
	uint32_t m;
	apbi_ra ra;
};

/** See apbundle.h. */
int apb_reader_open(apb_paged *pb, size_t index, apb_reader **out)
{
	apb_reader *r;
	apbi_clear_error();
	if (!pb || !out)
		return apbi_set_error(-EINVAL, "apb_reader_open: NULL argument");
	*out = NULL;
	if (index >= pb->man->n_models)
		return apbi_set_error(-ENOENT, "no model with index %zu", index);
	if (__atomic_add_fetch(&pb->readers, 1, __ATOMIC_RELAXED) > APB_MAX_READERS) {
		__atomic_sub_fetch(&pb->readers, 1, __ATOMIC_RELAXED);
		return apbi_set_error(-EMFILE, "%u readers are open already", APB_MAX_READERS);
	}
	if (!(r = calloc(1, sizeof *r))) {
		__atomic_sub_fetch(&pb->readers, 1, __ATOMIC_RELAXED);
		return apbi_set_error(-ENOMEM, "out of memory");
	}
	r->pb = pb;
	r->m = (uint32_t)index;
	apbi_prefetch_ra_init(pb->pf, &r->ra, r->m);
	*out = r;
	return 0;
}

/** See apbundle.h. */
void apb_reader_close(apb_reader *r)
{
	if (!r)
		return;
	apbi_prefetch_ra_done(r->pb->pf, &r->ra);
	__atomic_sub_fetch(&r->pb->readers, 1, __ATOMIC_RELAXED);
	free(r);
}

/** See apbundle.h. */
ssize_t apb_reader_read(apb_reader *r, void *buf, size_t len, uint64_t offset)
{
	if (!r) {
		apbi_clear_error();
		return apbi_set_error(-EINVAL, "apb_reader_read: NULL reader");
	}
	return apbi_paged_read(r->pb, r->m, buf, len, offset, r->pb->pf ? &r->ra : NULL);
}

/** See apbundle.h. */
ssize_t apb_reader_pin(apb_reader *r, uint64_t offset, size_t len, struct iovec *iov,
                       int max_iov, int *n_iov, apb_pinned **pins)
{
	if (!r) {
		apbi_clear_error();
		return apbi_set_error(-EINVAL, "apb_reader_pin: NULL reader");
	}
	return apbi_paged_pin(r->pb, r->m, offset, len, iov, max_iov, n_iov, pins,
	                      r->pb->pf ? &r->ra : NULL);
}

/** See apbundle.h. */
void apb_reader_info(apb_reader *r, apb_reader_stats *out)
{
	apbi_ra s;
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	if (!r || !r->pb->pf)
		return;
	apbi_prefetch_ra_info(r->pb->pf, &r->ra, &s);
	out->window = (uint64_t)s.window * r->pb->cfg.page_size;
	out->sequential_reads = s.seq_reads;
	out->seeks = s.seeks;
}
