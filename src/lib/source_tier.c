/*
 * source_tier.c - a disk tier in front of a (remote) source: verified
 * stored ranges kept on local disk, served without the network, and the
 * last version seen kept so the object opens offline.
 *
 * Layout under DIR: one directory per object, named by the XXH3 of the
 * object's public name; in it `current` (the last identity and size seen,
 * replaced atomically) and `v-<XXH3 of identity>/`, one per version, holding
 * `r-<off>-<len>` range files (hex): a 48-byte header (magic, off, len,
 * XXH3 of the data, XXH3 of the identity) and the data.
 *
 * Invariants: a range file becomes visible only complete (written to a
 * flock'ed temp file, fsync'ed, renamed); a file whose name, size or header
 * disagree, or whose data fail their checksum at first use, is removed and
 * never served; ranges never overlap; only the current version's directory
 * is kept (a new identity never reads an old version's ranges); the bytes
 * held stay <= the size limit (least recently used ranges are evicted).
 * The index lives in memory (one 40-byte entry per range, outside the
 * paging budget) under one mutex; file reads and writes run outside it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY       /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "internal.h"
#include "source.h"
#include "tier_priv.h"

static uint64_t load64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void store64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

uint64_t apbi_tier_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- index (caller holds t->lock) ---- */

/* Index of the first extent ending after off. */
static size_t first_after(const tier *t, uint64_t off)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->ext[mid].off + t->ext[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int overlaps(const tier *t, uint64_t off, uint64_t len)
{
	size_t i = first_after(t, off);
	return i < t->n && t->ext[i].off < off + len;
}

static int insert(tier *t, uint64_t off, uint64_t len, int verified)
{
	size_t i = first_after(t, off);
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		extent *e = realloc(t->ext, cap * sizeof *e);
		if (!e)
			return -ENOMEM;
		t->ext = e;
		t->cap = cap;
	}
	memmove(&t->ext[i + 1], &t->ext[i], (t->n - i) * sizeof *t->ext);
	t->ext[i] = (extent){ off, len, ++t->clock, verified };
	t->n++;
	t->stored += len;
	return 0;
}

static void range_name(char *buf, size_t cap, uint64_t off, uint64_t len)
{
	snprintf(buf, cap, "r-%016" PRIx64 "-%016" PRIx64, off, len);
}

/* Removes extent i and its file. */
static void drop(tier *t, size_t i)
{
	char nm[48];
	range_name(nm, sizeof nm, t->ext[i].off, t->ext[i].len);
	unlinkat(t->vfd, nm, 0);
	t->stored -= t->ext[i].len;
	memmove(&t->ext[i], &t->ext[i + 1], (t->n - i - 1) * sizeof *t->ext);
	t->n--;
}

/* Evicts least recently used ranges until need more bytes fit. */
static void make_room(tier *t, uint64_t need)
{
	while (t->n && t->stored + need > t->limit) {
		size_t lru = 0;
		for (size_t i = 1; i < t->n; i++)
			if (t->ext[i].used < t->ext[lru].used)
				lru = i;
		drop(t, lru);
		t->st.tier_evictions++;
	}
}

/* ---- range files ---- */

static void header_fill(const tier *t, unsigned char h[TIER_HDR], uint64_t off, uint64_t len,
                        uint64_t sum)
{
	memset(h, 0, TIER_HDR);
	memcpy(h, TIER_MAGIC, 8);
	store64(h + 8, off);
	store64(h + 16, len);
	store64(h + 24, sum);
	store64(h + 32, t->idhash);
}

/* Checks an existing range file's size and header; returns 0 or -1. */
static int file_check(const tier *t, int fd, uint64_t off, uint64_t len, uint64_t *sum)
{
	unsigned char h[TIER_HDR], want[TIER_HDR];
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != TIER_HDR + len ||
	    apbi_pread_full(fd, h, TIER_HDR, 0) != 0)
		return -1;
	*sum = load64(h + 24);
	header_fill(t, want, off, len, *sum);
	return memcmp(h, want, TIER_HDR) == 0 ? 0 : -1;
}

/* Streams the data of a range file through XXH3; 0 when it matches. */
static int file_verify(const tier *t, int fd, uint64_t off, uint64_t len)
{
	uint64_t sum, pos = 0;
	XXH3_state_t *x = XXH3_createState();
	char *buf = malloc(TIER_IOBUF);
	int r = -1;
	if (!x || !buf || file_check(t, fd, off, len, &sum) != 0)
		goto out;
	XXH3_64bits_reset(x);
	while (pos < len) {
		size_t k = len - pos < TIER_IOBUF ? (size_t)(len - pos) : TIER_IOBUF;
		if (apbi_pread_full(fd, buf, k, TIER_HDR + pos) != 0)
			goto out;
		XXH3_64bits_update(x, buf, k);
		pos += k;
	}
	r = XXH3_64bits_digest(x) == sum ? 0 : -1;
out:
	XXH3_freeState(x);
	free(buf);
	return r;
}

/* XXH3 of len bytes of iov[0..n), starting skip bytes into it. */
static uint64_t iov_sum(const struct iovec *iov, int n, uint64_t skip, uint64_t len)
{
	XXH3_state_t x;
	XXH3_64bits_reset(&x);
	for (int i = 0; i < n && len; i++) {
		uint64_t seg = iov[i].iov_len;
		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		uint64_t k = seg - skip < len ? seg - skip : len;
		XXH3_64bits_update(&x, (const char *)iov[i].iov_base + skip, (size_t)k);
		len -= k;
		skip = 0;
	}
	return XXH3_64bits_digest(&x);
}

/* Writes a complete range file (the bytes of iov[0..n), len in all)
 * under its final name; 0 or negative errno. */
static int file_write(tier *t, uint64_t off, const struct iovec *iov, int n, uint64_t len)
{
	char tmp[64], nm[48];
	unsigned char h[TIER_HDR];
	uint64_t pos = TIER_HDR;
	int fd, r;
	snprintf(tmp, sizeof tmp, "tmp-%d-%" PRIu64, (int)getpid(),
	         __atomic_add_fetch(&t->tmpseq, 1, __ATOMIC_RELAXED));
	fd = openat(t->vfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	flock(fd, LOCK_EX);                   /* tells cleaners it is in progress */
	header_fill(t, h, off, len, iov_sum(iov, n, 0, len));
	r = apbi_pwrite_full(fd, h, TIER_HDR, 0);
	for (int i = 0; i < n && !r; pos += iov[i].iov_len, i++)
		r = apbi_pwrite_full(fd, iov[i].iov_base, iov[i].iov_len, pos);
	if (!r)
		r = apbi_fsync(fd);
	range_name(nm, sizeof nm, off, len);
	if (!r && renameat(t->vfd, tmp, t->vfd, nm) != 0)
		r = -errno;
	if (r)
		unlinkat(t->vfd, tmp, 0);
	close(fd);
	return r;
}

/* ---- reads ---- */

/* Finds the extents covering [off, off+len) and opens their files. */
static int lookup(tier *t, uint64_t off, uint64_t len, piece *p, int *np)
{
	uint64_t pos = off, end = off + len;
	size_t i = first_after(t, off);
	int n = 0;
	for (; pos < end; i++) {
		char nm[48];
		if (i >= t->n || t->ext[i].off > pos || n == TIER_PIECES)
			goto miss;
		range_name(nm, sizeof nm, t->ext[i].off, t->ext[i].len);
		if ((p[n].fd = openat(t->vfd, nm, O_RDONLY | O_CLOEXEC)) < 0)
			goto miss;
		p[n].e = t->ext[i];
		p[n].from = pos;
		pos = t->ext[i].off + t->ext[i].len < end ? t->ext[i].off + t->ext[i].len : end;
		p[n].to = pos;
		t->ext[i].used = ++t->clock;
		n++;
	}
	*np = n;
	return 1;
miss:
	while (n--)
		close(p[n].fd);
	return 0;
}

/* Marks verified, or drops a range whose data failed verification. */
static void verified(tier *t, const extent *e, int ok)
{
	size_t i;
	pthread_mutex_lock(&t->lock);
	i = first_after(t, e->off);
	if (i < t->n && t->ext[i].off == e->off && t->ext[i].len == e->len) {
		if (ok)
			t->ext[i].verified = 1;
		else
			drop(t, i);
	}
	pthread_mutex_unlock(&t->lock);
}

/* Reads bytes [p->from, p->to) of a piece into the iovec at dst offset. */
static int read_piece(tier *t, const piece *p, const struct iovec *iov, int n, uint64_t skip)
{
	uint64_t pos = p->from, dst = skip;
	for (int i = 0; i < n && pos < p->to; i++) {
		uint64_t seg = iov[i].iov_len;
		if (dst >= seg) {
			dst -= seg;
			continue;
		}
		uint64_t k = seg - dst < p->to - pos ? seg - dst : p->to - pos;
		if (apbi_pread_full(p->fd, (char *)iov[i].iov_base + dst, k,
		                    TIER_HDR + (pos - p->e.off)) != 0)
			return -1;
		pos += k;
		dst = 0;
	}
	return pos == p->to ? 0 : -1;
}

/*
 * Reads one piece into the iovec at dst offset skip: 1 when served, 0 when
 * the range failed (it is dropped; the caller goes to the network, which
 * overwrites whatever was read).  A range is checked against its header's
 * XXH3 at its first use since open: in the bytes just read when the read
 * covers all of it (one pass), else by streaming the file first.
 */
static int serve_piece(tier *t, const piece *p, const struct iovec *iov, int n, uint64_t skip)
{
	uint64_t sum = 0;
	int whole = p->from == p->e.off && p->to == p->e.off + p->e.len, good = 1;
	if (!p->e.verified && !whole)
		good = file_verify(t, p->fd, p->e.off, p->e.len) == 0;
	else if (!p->e.verified)
		good = file_check(t, p->fd, p->e.off, p->e.len, &sum) == 0;
	if (good)
		good = read_piece(t, p, iov, n, skip) == 0;
	if (good && !p->e.verified && whole)
		good = iov_sum(iov, n, skip, p->e.len) == sum;
	if (!good || !p->e.verified)
		verified(t, &p->e, good);
	return good;
}

/* Serves the read from disk when the tier holds all of it: 1, else 0. */
static int serve(tier *t, const struct iovec *iov, int n, uint64_t off, uint64_t len)
{
	piece p[TIER_PIECES];
	int np = 0, ok = 1, hit;
	pthread_mutex_lock(&t->lock);
	hit = lookup(t, off, len, p, &np);
	pthread_mutex_unlock(&t->lock);
	if (!hit)
		return 0;
	for (int i = 0; i < np; i++) {
		if (ok)
			ok = serve_piece(t, &p[i], iov, n, p[i].from - off);
		close(p[i].fd);
	}
	return ok;
}

static void set_why(tier *t, const char *why)
{
	pthread_mutex_lock(&t->lock);
	snprintf(t->why, sizeof t->why, "%s", why);
	pthread_mutex_unlock(&t->lock);
}

/* The offline miss's error, quoting why the server is not used. */
static int offline_miss(tier *t, uint64_t off, uint64_t len)
{
	char why[sizeof t->why];
	pthread_mutex_lock(&t->lock);
	memcpy(why, t->why, sizeof why);
	pthread_mutex_unlock(&t->lock);
	return apbi_set_error(-EIO, "%.200s: offline (%.150s), serving version %.60s: bytes "
	                      "%" PRIu64 "-%" PRIu64 " are not in the disk tier", t->head.name,
	                      why, t->head.identity, off, off + len);
}

/* Offline: tries the server again (one thread, every TIER_RETRY_MS); the
 * source goes online only if it still serves the version the tier holds. */
static apbi_source *reconnect(tier *t)
{
	apbi_source *in = NULL;
	uint64_t now = apbi_tier_now_ms();
	if (!t->reopen || now < __atomic_load_n(&t->next_try, __ATOMIC_RELAXED) ||
	    pthread_mutex_trylock(&t->reopen_lock) != 0)
		return NULL;
	if (!(in = __atomic_load_n(&t->inner, __ATOMIC_ACQUIRE)) && now >= t->next_try) {
		__atomic_store_n(&t->next_try, now + TIER_RETRY_MS, __ATOMIC_RELAXED);
		if (t->reopen(t->reopen_ctx, &in) != 0) {
			set_why(t, apb_last_error());
			in = NULL;
		} else if (strcmp(in->identity, t->head.identity) != 0 || in->size != t->head.size) {
			set_why(t, "the object changed on the server since this version: reopen to "
			        "serve the new one");
			apbi_source_close(in);
			in = NULL;
		} else {
			__atomic_store_n(&t->inner, in, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&t->reopen_lock);
	return in;
}

static int tier_readv(apbi_source *s, const struct iovec *iov, int n, uint64_t off)
{
	tier *t = (tier *)s;
	apbi_source *in;
	uint64_t len = 0;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (serve(t, iov, n, off, len)) {
		__atomic_add_fetch(&t->st.tier_bytes, len, __ATOMIC_RELAXED);
		__atomic_add_fetch(&t->st.tier_hits, 1, __ATOMIC_RELAXED);
		return 0;
	}
	__atomic_add_fetch(&t->st.tier_misses, 1, __ATOMIC_RELAXED);
	if (!(in = __atomic_load_n(&t->inner, __ATOMIC_ACQUIRE)) && !(in = reconnect(t)))
		return offline_miss(t, off, len);
	return apbi_source_readv(in, iov, n, off);
}

static void tier_commit(apbi_source *s, uint64_t off, const struct iovec *iov, int n)
{
	tier *t = (tier *)s;
	uint64_t len = 0;
	int skip;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (!len || len > t->limit)
		return;
	pthread_mutex_lock(&t->lock);
	skip = overlaps(t, off, len);
	if (!skip)
		make_room(t, len);
	pthread_mutex_unlock(&t->lock);
	if (skip || file_write(t, off, iov, n, len) != 0)
		return;                       /* a tier that cannot write just misses */
	pthread_mutex_lock(&t->lock);
	if (!overlaps(t, off, len) && insert(t, off, len, 1) == 0) {
		t->st.tier_commits++;
		make_room(t, 0);
	}
	pthread_mutex_unlock(&t->lock);
}

static void tier_stats(apbi_source *s, apbi_source_stats *out)
{
	tier *t = (tier *)s;
	apbi_source *in = __atomic_load_n(&t->inner, __ATOMIC_ACQUIRE);
	if (in)
		apbi_source_get_stats(in, out);
	pthread_mutex_lock(&t->lock);
	out->tier_stored = t->stored;
	out->tier_commits = t->st.tier_commits;
	out->tier_evictions = t->st.tier_evictions;
	pthread_mutex_unlock(&t->lock);
	out->tier_bytes = __atomic_load_n(&t->st.tier_bytes, __ATOMIC_RELAXED);
	out->tier_hits = __atomic_load_n(&t->st.tier_hits, __ATOMIC_RELAXED);
	out->tier_misses = __atomic_load_n(&t->st.tier_misses, __ATOMIC_RELAXED);
	out->offline = in == NULL;
}

static void tier_close(apbi_source *s)
{
	tier *t = (tier *)s;
	apbi_source_close(t->inner);
	if (t->reopen_free)
		t->reopen_free(t->reopen_ctx);
	pthread_mutex_destroy(&t->reopen_lock);
	if (t->vfd >= 0)
		close(t->vfd);
	pthread_mutex_destroy(&t->lock);
	free(t->ext);
	free(t);
}

const apbi_source_ops apbi_tier_ops = {
	.kind = "tier",
	.readv = tier_readv,
	.commit = tier_commit,
	.close = tier_close,
	.stats = tier_stats,
};

/* Adds the range file nm found at open to the index, or removes it. */
void apbi_tier_adopt(tier *t, const char *nm)
{
	uint64_t off, len, sum;
	char back[48];
	int fd, end = 0;
	if (strncmp(nm, "tmp-", 4) == 0) {
		if ((fd = openat(t->vfd, nm, O_RDONLY | O_CLOEXEC)) >= 0) {
			if (flock(fd, LOCK_EX | LOCK_NB) == 0)  /* its writer is gone */
				unlinkat(t->vfd, nm, 0);
			close(fd);
		}
		return;
	}
	if (sscanf(nm, "r-%16" SCNx64 "-%16" SCNx64 "%n", &off, &len, &end) != 2 ||
	    (range_name(back, sizeof back, off, len), strcmp(back, nm) != 0) || !len ||
	    off > t->head.size || len > t->head.size - off) {
		unlinkat(t->vfd, nm, 0);
		return;
	}
	fd = openat(t->vfd, nm, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || file_check(t, fd, off, len, &sum) != 0 || overlaps(t, off, len) ||
	    insert(t, off, len, 0) != 0)
		unlinkat(t->vfd, nm, 0);
	if (fd >= 0)
		close(fd);
}

/** See source.h. */
void apbi_source_tier_reconnect(apbi_source *s, apbi_reopen_fn fn, void *ctx,
                                void (*ctx_free)(void *))
{
	tier *t = (tier *)s;
	if (t->reopen_free)
		t->reopen_free(t->reopen_ctx);
	t->reopen = fn;
	t->reopen_ctx = ctx;
	t->reopen_free = ctx_free;
}

/* After every file was adopted: enforce the limit. */
void apbi_tier_trim(tier *t)
{
	make_room(t, 0);
}
