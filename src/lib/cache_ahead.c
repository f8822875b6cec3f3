/*
 * cache_ahead.c - the cache's prefetch path: predicted loads
 * (apbi_cache_prefetch) and a sequential reader's readahead
 * (apbi_cache_readahead), through the claim and load of cache.c
 * (cache_priv.h).
 *
 * Invariants: a prefetch never waits for a page another thread loads (a
 * resident or loading page is skipped, not pinned); it claims only pages
 * that fit the budget without evicting another unused prefetch (see
 * apbi_cache_reserve), in whole load units of the object (OBJ()->align), so
 * a unit is never read twice for one request; pages it loads enter the
 * policy unpinned, as the kind the caller asked for.  m is a cache object id.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "cache_priv.h"

/*
 * A prefetch claim of pages[0..k) from page on that stopped short of end
 * in the middle of a load unit gives the unit's claimed part back (lock
 * held; nobody else has seen them): loading part of a unit reads the whole
 * unit, and the rest would read it again.  Returns the pages kept.
 */
static uint32_t whole_units(apbi_cache *c, uint32_t m, uint64_t page, uint64_t end, uint32_t k,
                            apbi_page **pages)
{
	uint32_t al = OBJ(c, m)->align, keep;
	uint64_t stop = page + k;
	if (al <= 1 || stop >= end || stop % al == 0)
		return k;
	keep = stop / al * al > page ? (uint32_t)(stop / al * al - page) : 0;
	for (uint32_t i = keep; i < k; i++) {
		apbi_cache_publish(c, pages[i], -ENOBUFS, true, APBI_POL_PREFETCH, 0);
		apbi_cache_unpin_one(c, pages[i]);
	}
	return keep;
}

/*
 * apbi_cache_prefetch and apbi_cache_readahead: the loaded pages enter the
 * policy as kind; *stopped is the first page not loaded (the end when all
 * are resident now).
 */
static uint64_t prefetch_pages(apbi_cache *c, uint32_t m, uint64_t page, uint64_t n,
                               uint64_t stamp, enum apbi_pol_kind kind, uint64_t *stopped)
{
	apbi_page *pages[MAX_RUN];
	uint64_t end, done = 0;
	uint32_t k;
	int r;
	*stopped = page;
	if (!obj_ok(c, m) || page >= (end = apbi_cache_npages(c, m)))
		return 0;
	if (n < end - page)
		end = page + n;
	while (page < end) {
		pthread_mutex_lock(&c->lock);
		while (page < end && lookup(c, m, page))
			page++;
		k = 0;
		if (page < end)
			k = apbi_cache_claim_run(c, m, page,
			                          end - page < c->max_run ? (uint32_t)(end - page) : c->max_run, true, stamp, pages);
		k = whole_units(c, m, page, end, k, pages);
		pthread_mutex_unlock(&c->lock);
		*stopped = page;
		if (!k)
			break;
		r = apbi_cache_load_run(c, m, page, k, pages, 0, 0, stamp, kind);
		done += (uint64_t)r;
		*stopped = page + (uint64_t)r;
		if ((uint32_t)r < k)
			break;
		page += k;
	}
	if (page >= end)
		*stopped = end;
	return done;
}

/** See cache.h. */
uint64_t apbi_cache_prefetch(apbi_cache *c, uint32_t m, uint64_t page, uint64_t n,
                             uint64_t stamp)
{
	uint64_t stopped;
	return prefetch_pages(c, m, page, n, stamp, APBI_POL_PREFETCH, &stopped);
}

/** See cache.h. */
uint64_t apbi_cache_readahead(apbi_cache *c, uint32_t m, uint64_t page, uint64_t n,
                              uint64_t stamp)
{
	uint64_t stopped;
	prefetch_pages(c, m, page, n, stamp, APBI_POL_READAHEAD, &stopped);
	return stopped;
}
