/*
 * paged_trace.c - apb_paged_trace_start / apb_paged_trace_stop: a trace
 * recorder (trace.c) attached to a PagedBundle's cache.
 *
 * Uses only the public PagedBundle API plus apbi_paged_cache(); the cache
 * owns a running trace, so closing the bundle closes it too.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache.h"
#include "internal.h"
#include "trace.h"

/** See apbundle.h. */
int apb_paged_trace_start(apb_paged *pb, const char *path)
{
	apbi_cache *c = apbi_paged_cache(pb);
	size_t n = apb_paged_model_count(pb);
	const char **names = calloc(n ? n : 1, sizeof *names);
	uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
	apb_paging_config cfg;
	apbi_trace *t = NULL;
	int r = 0;
	if (!names || !sizes) {
		r = apbi_set_error(-ENOMEM, "trace: out of memory");
		goto out;
	}
	if ((t = apbi_cache_take_trace(c)) != NULL) {
		apbi_cache_set_trace(c, t);   /* put it back: one trace at a time */
		r = apbi_set_error(-EBUSY, "trace: a trace is already running");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		apb_model_info mi;
		apb_paged_model_info(pb, i, &mi);
		names[i] = mi.name;
		sizes[i] = mi.size;
	}
	apb_paged_config(pb, &cfg);
	r = apbi_trace_open(path, cfg.page_size, (uint32_t)n, names, sizes, &t);
	if (r < 0) {
		r = apbi_set_error(r, "trace: %.200s: %s", path, apb_strerror(r));
		goto out;
	}
	if ((r = apbi_cache_set_trace(c, t)) < 0) {
		apbi_trace_close(t);
		unlink(path);
		r = apbi_set_error(r, "trace: a trace is already running");
	}
out:
	free(names);
	free(sizes);
	return r;
}

/** See apbundle.h. */
int apb_paged_trace_stop(apb_paged *pb)
{
	apbi_trace *t = apbi_cache_take_trace(apbi_paged_cache(pb));
	int r;
	if (!t)
		return apbi_set_error(-ENOENT, "trace: no trace is running");
	r = apbi_trace_close(t);
	return r < 0 ? apbi_set_error(r, "trace: write failed: %s", apb_strerror(r)) : 0;
}
