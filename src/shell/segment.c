/*
 * segment.c - the sorted (key, count) table stored in every shell segment.
 *
 * Layout (all integers little-endian):
 *   0   8  magic "APBSHSG1"
 *   8   4  kind (SH_SEG_NGRAM, SH_SEG_PREFIX, SH_SEG_FREQ)
 *   12  4  record size (16)
 *   16  8  record count N
 *   24  8  string area size S
 *   32     N records: u32 key offset (into the string area), u32 key length,
 *          u64 count
 *   32+16N S bytes of keys, in record order (so a range of records has a
 *          contiguous range of keys)
 * NGRAM and PREFIX records are sorted by key bytes (memcmp, shorter first);
 * FREQ records by falling count.
 *
 * Invariants of the reader: nothing read from a segment is trusted: header
 * sizes are checked for overflow, every key offset/length against the
 * string area and SH_MAX_KEY, and a short read is reported as a malformed
 * segment, never used.  The reader holds only fixed-size buffers (at most
 * one record chunk and a two-key window), whatever the segment's size.
 */
#include <errno.h>
#include <string.h>

#include "shell.h"

static const char seg_magic[8] = { 'A', 'P', 'B', 'S', 'H', 'S', 'G', '1' };

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/** Writes a segment (see the layout above); records are written as given. */
int sh_seg_write(FILE *out, uint32_t kind, const sh_rec *recs, size_t n)
{
	unsigned char h[SH_SEG_HEADER], r[SH_SEG_RECORD];
	uint64_t off = 0;

	for (size_t i = 0; i < n; i++)
		off += recs[i].key_len;
	if (off > UINT32_MAX)
		return sh_err(-EFBIG, "segment too large (%llu bytes of keys)",
			      (unsigned long long)off);
	memcpy(h, seg_magic, 8);
	put32(h + 8, kind);
	put32(h + 12, SH_SEG_RECORD);
	put64(h + 16, n);
	put64(h + 24, off);
	if (fwrite(h, sizeof h, 1, out) != 1)
		goto io;
	off = 0;
	for (size_t i = 0; i < n; i++) {
		put32(r, (uint32_t)off);
		put32(r + 4, recs[i].key_len);
		put64(r + 8, recs[i].count);
		if (fwrite(r, sizeof r, 1, out) != 1)
			goto io;
		off += recs[i].key_len;
	}
	for (size_t i = 0; i < n; i++)
		if (recs[i].key_len && fwrite(recs[i].key, recs[i].key_len, 1, out) != 1)
			goto io;
	return 0;
io:
	return sh_err(-EIO, "writing segment: %s", strerror(errno ? errno : EIO));
}

static int read_exact(sh_seg *s, void *buf, size_t len, uint64_t off)
{
	ssize_t n = s->src->read(s->src->ctx, s->name, buf, len, off);

	if (n == -ENOENT)
		return sh_err(-ENOENT, "model has no segment %s", s->name);
	if (n < 0)
		return sh_err((int)n, "reading %s: %s", s->name,
			      s->src->describe ? s->src->describe(s->src->ctx, (int)n)
					       : strerror((int)-n));
	if ((size_t)n != len)
		return sh_err(-EBADMSG, "segment %s is truncated (wanted %zu bytes at %llu)",
			      s->name, len, (unsigned long long)off);
	return 0;
}

/** Opens and validates a segment header. */
int sh_seg_open(sh_seg *s, const sh_source *src, const char *name, uint32_t kind)
{
	unsigned char h[SH_SEG_HEADER];
	int rc;

	memset(s, 0, sizeof *s);
	s->src = src;
	if (strlen(name) >= sizeof s->name)
		return sh_err(-EINVAL, "segment name too long");
	strcpy(s->name, name);
	if ((rc = read_exact(s, h, sizeof h, 0)) < 0)
		return rc;
	if (memcmp(h, seg_magic, 8) != 0)
		return sh_err(-EBADMSG, "segment %s: bad magic", name);
	s->kind = get32(h + 8);
	if (s->kind != kind)
		return sh_err(-EBADMSG, "segment %s: kind %u, expected %u", name, s->kind, kind);
	if (get32(h + 12) != SH_SEG_RECORD)
		return sh_err(-EBADMSG, "segment %s: record size %u", name, get32(h + 12));
	s->count = get64(h + 16);
	s->strings_size = get64(h + 24);
	if (s->count > (UINT64_MAX / 2 - SH_SEG_HEADER) / SH_SEG_RECORD ||
	    s->strings_size > UINT64_MAX / 2)
		return sh_err(-EBADMSG, "segment %s: impossible sizes", name);
	s->strings_off = SH_SEG_HEADER + s->count * SH_SEG_RECORD;
	return 0;
}

static int check_key(sh_seg *s, uint64_t i, uint32_t off, uint32_t len)
{
	if (len > SH_MAX_KEY || (uint64_t)off + len > s->strings_size)
		return sh_err(-EBADMSG, "segment %s: record %llu has a bad key range",
			      s->name, (unsigned long long)i);
	return 0;
}

/** Reads record i with its key. */
int sh_seg_get(sh_seg *s, uint64_t i, char *key, uint32_t *key_len, uint64_t *count)
{
	unsigned char r[SH_SEG_RECORD];
	uint32_t off, len;
	int rc;

	if (i >= s->count)
		return sh_err(-EINVAL, "segment %s: record %llu out of range", s->name,
			      (unsigned long long)i);
	if ((rc = read_exact(s, r, sizeof r, SH_SEG_HEADER + i * SH_SEG_RECORD)) < 0)
		return rc;
	off = get32(r);
	len = get32(r + 4);
	if ((rc = check_key(s, i, off, len)) < 0)
		return rc;
	if (len && (rc = read_exact(s, key, len, s->strings_off + off)) < 0)
		return rc;
	*key_len = len;
	*count = get64(r + 8);
	return 0;
}

static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/** Binary search for the first key >= prefix. */
int sh_seg_lower_bound(sh_seg *s, const char *prefix, size_t plen, uint64_t *pos)
{
	char key[SH_MAX_KEY];
	uint64_t lo = 0, hi = s->count, cnt;
	uint32_t kl;
	int rc;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if ((rc = sh_seg_get(s, mid, key, &kl, &cnt)) < 0)
			return rc;
		if (keycmp(key, kl, prefix, plen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return 0;
}

/** Starts a sequential scan at record pos. */
void sh_seg_iter_init(sh_seg_iter *it, sh_seg *s, uint64_t pos)
{
	it->seg = s;
	it->pos = pos;
	it->rec_first = it->rec_n = 0;
	it->str_first = it->str_n = 0;
}

static int iter_fill_recs(sh_seg_iter *it)
{
	uint64_t n = it->seg->count - it->pos;
	int rc;

	if (n > sizeof it->recs / SH_SEG_RECORD)
		n = sizeof it->recs / SH_SEG_RECORD;
	rc = read_exact(it->seg, it->recs, (size_t)n * SH_SEG_RECORD,
			SH_SEG_HEADER + it->pos * SH_SEG_RECORD);
	if (rc < 0)
		return rc;
	it->rec_first = it->pos;
	it->rec_n = n;
	return 0;
}

/** Returns the next record of the scan (1), 0 at the end, or an error. */
int sh_seg_next(sh_seg_iter *it, const char **key, uint32_t *key_len, uint64_t *count)
{
	const unsigned char *r;
	uint32_t off, len;
	int rc;

	if (it->pos >= it->seg->count)
		return 0;
	if (it->pos < it->rec_first || it->pos >= it->rec_first + it->rec_n)
		if ((rc = iter_fill_recs(it)) < 0)
			return rc;
	r = it->recs + (it->pos - it->rec_first) * SH_SEG_RECORD;
	off = get32(r);
	len = get32(r + 4);
	if ((rc = check_key(it->seg, it->pos, off, len)) < 0)
		return rc;
	if (off < it->str_first || (uint64_t)off + len > it->str_first + it->str_n) {
		uint64_t want = it->seg->strings_size - off;
		if (want > sizeof it->strbuf)
			want = sizeof it->strbuf;
		if ((rc = read_exact(it->seg, it->strbuf, (size_t)want, it->seg->strings_off + off)) < 0)
			return rc;
		it->str_first = off;
		it->str_n = want;
	}
	*key = it->strbuf + (off - it->str_first);
	*key_len = len;
	*count = get64(r + 8);
	it->pos++;
	return 1;
}
