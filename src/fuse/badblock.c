/*
 * badblock.c - logs each corrupt block of the bundle once, from the library's error.
 *
 * A failed model read is described by apb_last_block_error() (model, block
 * index, byte range, from the failed load itself), so nothing is read
 * again to find the bad block.  The set of blocks already logged is a
 * fixed open-addressing table of APBM_BAD_MAX entries, allocated at the
 * first bad block and never grown (outside max_memory: 64 KiB); once it is
 * full, one line says so and later new bad blocks are only counted (the
 * "checksum failures" of .stats).  Entries are never removed: a bad block
 * stays bad, since the bundle is read-only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <syslog.h>

#include "mount.h"

struct apbm_badset {
	uint64_t model_where[APBM_BAD_MAX];  /* 0 = empty, else model * 4 + where + 1 */
	uint64_t block[APBM_BAD_MAX];
	unsigned used;
	bool full_logged;
};

/* true the first time (model, where, block) is seen; false if seen or if full. */
static bool first_time(apbm_fs *fs, const apb_block_error *e, bool *full_now)
{
	uint64_t mw = (uint64_t)e->model * 4 + (uint64_t)e->where + 1;
	uint64_t blk = e->where == APB_WHERE_BLOCK ? e->block : 0;
	uint64_t h = (mw * 0x9e3779b97f4a7c15ull) ^ (blk * 0xc2b2ae3d27d4eb4full);
	struct apbm_badset *s;

	*full_now = false;
	if (!fs->bad && !(fs->bad = calloc(1, sizeof(*fs->bad))))
		return false;
	s = fs->bad;
	for (unsigned i = 0, slot = (unsigned)(h >> 40) % APBM_BAD_MAX; i < APBM_BAD_MAX;
	     i++, slot = (slot + 1) % APBM_BAD_MAX) {
		if (s->model_where[slot] == mw && s->block[slot] == blk)
			return false;
		if (s->model_where[slot] != 0)
			continue;
		if (s->used + 1 >= APBM_BAD_MAX)
			break;	/* keep one slot empty: probes always end */
		s->model_where[slot] = mw;
		s->block[slot] = blk;
		s->used++;
		return true;
	}
	*full_now = !s->full_logged;
	s->full_logged = true;
	return false;
}

static void log_block(apb_paged *pb, const apb_block_error *e)
{
	apb_model_info info;
	const char *name = apb_paged_model_info(pb, e->model, &info) == 0 ? info.name : "?";
	uint64_t last = e->length ? e->offset + e->length - 1 : e->offset;

	switch (e->where) {
	case APB_WHERE_BLOCK:
		apbm_log(LOG_ERR, "model \"%s\": block %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64
		         ") fails its checksum (%s); reads of it return EIO", name, e->block,
		         e->offset, last, apb_strerror(e->code));
		break;
	case APB_WHERE_TABLE:
		apbm_log(LOG_ERR, "model \"%s\": its block table fails its checksum (%s); "
		         "reads of the model return EIO", name, apb_strerror(e->code));
		break;
	case APB_WHERE_MODEL:
		apbm_log(LOG_ERR, "model \"%s\": the whole-model checksum fails (%s) although "
		         "every block verified; reads of the model return EIO", name,
		         apb_strerror(e->code));
		break;
	}
}

void apbm_badblock_report(apbm_fs *fs, apb_paged *pb, const apb_block_error *e)
{
	bool first, full_now;

	pthread_mutex_lock(&fs->bad_lock);
	first = first_time(fs, e, &full_now);
	pthread_mutex_unlock(&fs->bad_lock);
	if (first)
		log_block(pb, e);
	else if (full_now)
		apbm_log(LOG_ERR, "%u corrupt blocks logged; further ones are counted in .stats "
		         "(checksum failures) but not logged", APBM_BAD_MAX - 1);
}

void apbm_badblock_free(apbm_fs *fs)
{
	free(fs->bad);
	fs->bad = NULL;
}
