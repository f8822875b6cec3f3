/*
 * stats.c - `apbundle-shell stats`: model counts, cache counters, top commands.
 *
 * Output order (tests and scripts rely on it): N-gram size, Total
 * commands, Vocabulary size, Total segments, Loaded segments, Memory
 * limit, Loaded bytes, Page hits, Page misses, Evictions, Hit rate, then
 * "Top commands:" and up to ten "<count>  <command>" lines.
 *
 * Invariants: the top commands are read from the head of freq/0 (freq/1 ...
 * only when it holds fewer than ten), so stats touches a few pages whatever
 * the history's size; everything is read before the cache counters are
 * snapshotted, so the numbers printed include the work stats itself did.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "apbundle.h"
#include "shell.h"

#define TOP 10

typedef struct top_cmd {
	uint64_t count;
	uint32_t len;
	char text[SH_MAX_KEY];
} top_cmd;

static int read_top(const sh_source *src, const sh_meta *m, top_cmd *top, size_t *n)
{
	sh_seg seg;
	sh_seg_iter *it = malloc(sizeof *it);
	char name[32];
	int rc = 0;

	*n = 0;
	if (!it)
		return sh_err(-ENOMEM, "out of memory");
	for (unsigned k = 0; k < m->freq_segments && *n < TOP; k++) {
		const char *key;
		uint32_t kl;
		uint64_t cnt;
		snprintf(name, sizeof name, "freq/%u", k);
		if ((rc = sh_seg_open(&seg, src, name, SH_SEG_FREQ)) < 0)
			break;
		sh_seg_iter_init(it, &seg, 0);
		while (*n < TOP && (rc = sh_seg_next(it, &key, &kl, &cnt)) > 0) {
			top[*n].count = cnt;
			top[*n].len = kl;
			memcpy(top[*n].text, key, kl);
			(*n)++;
		}
		if (rc < 0)
			break;
	}
	free(it);
	return rc < 0 ? rc : 0;
}

static unsigned loaded_segments(struct apb_paged *pb)
{
	size_t n = apb_paged_model_count(pb);
	unsigned loaded = 0;

	for (size_t i = 0; i < n; i++) {
		apb_model_info info;
		apb_model_stats ms;
		if (apb_paged_model_info(pb, i, &info) < 0 || strcmp(info.name, SH_META_NAME) == 0)
			continue;
		if (apb_paged_model_stats(pb, i, &ms) == 0 && ms.cached_bytes > 0)
			loaded++;
	}
	return loaded;
}

/** Prints the stats report for an open model. */
int sh_stats_print(FILE *out, struct apb_paged *pb, const sh_source *src, const sh_meta *m,
		   uint64_t limit_mb)
{
	top_cmd *top = malloc(TOP * sizeof *top);
	apb_paging_stats st;
	size_t n = 0;
	int rc;

	if (!top)
		return sh_err(-ENOMEM, "out of memory");
	if ((rc = read_top(src, m, top, &n)) < 0)
		goto out;
	apb_paged_stats(pb, &st);
	fprintf(out, "N-gram size: %u\nTotal commands: %" PRIu64 "\nVocabulary size: %" PRIu64
		"\nTotal segments: %u\nLoaded segments: %u\nMemory limit: %" PRIu64
		" MiB\nLoaded bytes: %" PRIu64 "\n",
		m->ngram, m->commands, m->vocabulary, m->segments, loaded_segments(pb),
		limit_mb, st.bytes_loaded);
	fprintf(out, "Page hits: %" PRIu64 "\nPage misses: %" PRIu64 "\nEvictions: %" PRIu64
		"\nHit rate: %.1f%%\nTop commands:\n", st.hits, st.misses, st.evictions,
		100.0 * apb_paging_stats_hit_rate(&st));
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%8" PRIu64 "  %.*s\n", top[i].count, (int)top[i].len, top[i].text);
out:
	free(top);
	return rc;
}
