/*
 * snap.c - the open snapshots of the mount's generated files.
 *
 * Opening .stats, .stats.json or .metrics hands out a snapshot: text rendered once,
 * read-only, shared.  What bounds the memory an unprivileged reader can
 * make the daemon hold (it is outside max_memory):
 *   - sharing: an open reuses the newest snapshot of its kind when the
 *     cache's and the source's statistics have not changed since it was
 *     rendered (it would render the same text), so any number of
 *     descriptors opened on a quiet mount cost one snapshot;
 *   - a cap: the snapshots alive at once total at most fs->snap_cap bytes
 *     (APBM_SNAP_MIN_CAP, or two of the largest .stats.json rendered so far
 *     if that is more, since a new one may be needed while an old one is
 *     being read); an open that would exceed it fails with EBUSY;
 *   - giving back: each snapshot is its own anonymous mapping (obuf.h),
 *     unmapped when its last reference goes, so RSS drops at once.
 * A snapshot is referenced by its open file and by each read in flight
 * (the kernel may send RELEASE while a reply is still being written); the
 * last reference frees it.  Every live snapshot is on fs->snaps, so those
 * whose RELEASE never arrives (a close racing an unmount) are freed at
 * exit by apbm_snaps_free.  Renders are serialized by fs->snap_lock, so at
 * most one is being built at any time; a render shows fs->rgen, the
 * current generation when it began (referenced while it runs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mount.h"

struct apbm_snap {
	apbm_obuf text;
	int64_t kind;
	unsigned refs;
	apb_paging_stats at;           /* the statistics it was rendered from */
	uint64_t reads_at;             /* and the FUSE read count (.metrics) */
	apb_source_stats src_at;       /* and the source's counters */
	uint64_t gen_at;               /* and the generation it showed */
	struct apbm_snap *prev, *next; /* fs->snaps, under fs->snap_lock */
};

static int slot_of(int64_t kind)
{
	return kind == APBM_VSTATS ? 0 : kind == APBM_VJSON ? 1 : 2;
}

static void link_snap(apbm_fs *fs, apbm_snap *s)
{
	s->prev = NULL;
	s->next = fs->snaps;
	if (fs->snaps)
		fs->snaps->prev = s;
	fs->snaps = s;
	fs->snap_bytes += s->text.cap;
}

/* Renders a new snapshot; fs->snap_lock held.  Returns 0, -EBUSY or -ENOMEM. */
static int render_new(apbm_fs *fs, int64_t kind, const apb_paging_stats *st, apbm_snap **out)
{
	apbm_snap *s;
	int rc;

	if (fs->snap_bytes >= fs->snap_cap)
		return -EBUSY;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->text.limit = fs->snap_cap - fs->snap_bytes;
	s->reads_at = __atomic_load_n(&fs->metrics.reads, __ATOMIC_RELAXED);
	apb_paged_source_stats(fs->rgen->pb, &s->src_at);
	s->gen_at = fs->rgen->id;
	rc = apbm_vfile_render(fs, kind, st, &s->text);
	if (rc != 0) {
		bool over = s->text.over_limit;
		apbm_obuf_free(&s->text);
		free(s);
		return rc == -ENOMEM && over ? -EBUSY : rc;
	}
	apbm_obuf_shrink(&s->text);
	s->kind = kind;
	s->refs = 1;
	s->at = *st;
	link_snap(fs, s);
	if (kind == APBM_VJSON && 2 * s->text.cap > fs->snap_cap)
		fs->snap_cap = 2 * s->text.cap;
	*out = s;
	return 0;
}

int apbm_snap_open(apbm_fs *fs, int64_t kind, apbm_snap **out)
{
	apb_paging_stats st;
	apb_source_stats src;
	apbm_snap *s;
	int rc = 0;

	pthread_mutex_lock(&fs->snap_lock);
	fs->rgen = apbm_gen_cur(fs);
	apb_paged_stats(fs->rgen->pb, &st);
	apb_paged_source_stats(fs->rgen->pb, &src);
	s = fs->newest[slot_of(kind)];
	if (s && memcmp(&s->at, &st, sizeof(st)) == 0 && s->gen_at == fs->rgen->id &&
	    memcmp(&s->src_at, &src, sizeof(src)) == 0 &&
	    s->reads_at == __atomic_load_n(&fs->metrics.reads, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	} else {
		rc = render_new(fs, kind, &st, &s);
		if (rc == 0)
			fs->newest[slot_of(kind)] = s;
	}
	apbm_gen_put(fs, fs->rgen);
	fs->rgen = NULL;
	pthread_mutex_unlock(&fs->snap_lock);
	*out = rc == 0 ? s : NULL;
	return rc;
}

void apbm_snap_get(apbm_snap *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
}

const char *apbm_snap_text(const apbm_snap *s, size_t *len)
{
	*len = s->text.len;
	return s->text.data;
}

/* Unlinks s; fs->snap_lock held. */
static void unlink_snap(apbm_fs *fs, apbm_snap *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		fs->snaps = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (fs->newest[slot_of(s->kind)] == s)
		fs->newest[slot_of(s->kind)] = NULL;
	fs->snap_bytes -= s->text.cap;
}

void apbm_snap_put(apbm_fs *fs, apbm_snap *s)
{
	if (!s)
		return;
	/*
	 * The count drops under the lock: a concurrent apbm_snap_open must not
	 * take a reference to a snapshot whose count just reached zero.
	 */
	pthread_mutex_lock(&fs->snap_lock);
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) {
		pthread_mutex_unlock(&fs->snap_lock);
		return;
	}
	unlink_snap(fs, s);
	pthread_mutex_unlock(&fs->snap_lock);
	apbm_obuf_free(&s->text);
	free(s);
}

void apbm_snaps_free(apbm_fs *fs)
{
	while (fs->snaps) {
		apbm_snap *s = fs->snaps;

		unlink_snap(fs, s);
		apbm_obuf_free(&s->text);
		free(s);
	}
}

void apbm_snap_init(apbm_fs *fs, apb_paged *pb)
{
	size_t n = apb_paged_model_count(pb), est = 1024;

	/* A .stats.json record is about 60 bytes plus the name (more with large
	 * counters or escapes: the cap then grows to two actual renders). */
	for (size_t i = 0; i < n; i++) {
		apb_model_info info;
		if (apb_paged_model_info(pb, i, &info) == 0)
			est += 64 + strlen(info.name);
	}
	pthread_mutex_lock(&fs->snap_lock);
	if (2 * est > fs->snap_cap)
		fs->snap_cap = 2 * est;	/* a reload may bring more models, never fewer bytes */
	pthread_mutex_unlock(&fs->snap_lock);
}
