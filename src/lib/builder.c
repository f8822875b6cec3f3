/*
 * builder.c - apb_builder_*: the streaming, atomic bundle writer.
 *
 * Invariants kept here:
 *  - Nothing is written before apb_builder_build.  add_* validate the name
 *    (apbi_name_check, no root name the mount reserves) and refuse
 *    duplicates through a hash index, so adding n models costs O(n); build
 *    refuses names that cannot coexist in one tree ("a" beside "a/b")
 *    before it creates anything.
 *  - build plans the layout and encodes the manifest once with placeholder
 *    checksums (fixed width) and, when compressing, every stored size equal
 *    to the model's size (an upper bound: the final manifest is never
 *    longer, and is padded to the same length), streams every model in
 *    CHUNK-sized pieces to its final offset while hashing it (streaming
 *    XXH3 for the model, per block for the table, then the table itself
 *    for blocks.table_checksum), then writes the header and the real
 *    manifest at offset 0.  Compressed models go through the block pool
 *    (builder_compress.c) and are placed one after another (version 2).
 *  - All output goes to a locked "<path>.tmp.XXXXXX" (builder_tmp.c) in
 *    the same directory, which is fsynced, renamed over path, and the
 *    directory fsynced.  On any failure before the rename the temporary
 *    file is unlinked (while still locked) and path is untouched.
 *  - The cancel flag is read after every chunk, before every model and
 *    before the rename (the commit point); once set, the build fails with
 *    -ECANCELED through the ordinary error path.
 *  - The temporary file is ftruncated to its final size (version 1 first,
 *    version 2 at the end), so padding and all-zero chunks of uncompressed
 *    models need no write; holes of a source (SEEK_DATA) are read as
 *    zeros without being read, so sparse sources stay cheap.
 *  - A source must keep the size it had at add_file: checked at open, at
 *    every short read and at its end (-EIO otherwise).
 *  - File I/O goes through the apbi_io seam; every failure records a detail.
 *  - Metadata is validated and deep-copied at set_metadata time
 *    (apbi_metadata_copy, builder_meta.c); the builder owns the copy.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "builder_compress.h"
#include "format.h"
#include "format_write.h"
#include "internal.h"

#define CHUNK (1u << 20)              /* streaming buffer */
#define MAX_POW2 (1u << 30)           /* 1 GiB: largest alignment / block size */

/* Where a model's bytes come from (parallel to apb_builder.w). */
struct bsrc {
	char *path;                   /* add_file source, or NULL */
	const uint8_t *data;          /* in-memory bytes (owned or borrowed) */
	uint8_t *owned;               /* copy made by add_model, freed with us */
	apb_metadata *md;             /* deep copy in one allocation, or NULL */
};

struct apb_builder {
	char *path;
	uint32_t alignment, block_size;
	bool align_set;                       /* set_alignment was called */
	char *description;
	bool timestamp, built;
	size_t n, cap;
	apbi_wmodel *w;
	struct bsrc *src;
	apbi_nameidx idx;
	const volatile sig_atomic_t *cancel;  /* apb_builder_set_cancel, or NULL */
	apb_progress_fn progress;             /* apb_builder_set_progress, or NULL */
	void *progress_ctx;
	enum apbi_codec codec;                /* apb_builder_set_compression */
	int level;
	apb_filter filter;
};

/* ------------------------------------------------------------------ */
/* Builder setup                                                        */
/* ------------------------------------------------------------------ */

static const char *builder_name_at(const void *ctx, size_t i)
{
	const apb_builder *bb = ctx;
	return bb->w[i].name;
}

apb_builder *apb_builder_new(const char *path)
{
	apb_builder *bb;

	apbi_clear_error();
	if (!path || !*path) {
		apbi_set_error(-EINVAL, "apb_builder_new: no output path");
		return NULL;
	}
	bb = calloc(1, sizeof *bb);
	if (!bb || !(bb->path = strdup(path))) {
		free(bb);
		apbi_set_error(-ENOMEM, "out of memory creating a builder");
		return NULL;
	}
	bb->alignment = APB_DEFAULT_ALIGNMENT;
	bb->block_size = APB_DEFAULT_BLOCK_SIZE;
	bb->idx.name_at = builder_name_at;
	bb->idx.ctx = bb;
	return bb;
}

void apb_builder_free(apb_builder *bb)
{
	if (!bb)
		return;
	for (size_t i = 0; i < bb->n; i++) {
		free((char *)bb->w[i].name);
		free(bb->src[i].path);
		free(bb->src[i].owned);
		free(bb->src[i].md);
	}
	free(bb->w);
	free(bb->src);
	apbi_nameidx_free(&bb->idx);
	free(bb->description);
	free(bb->path);
	free(bb);
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int apb_builder_set_alignment(apb_builder *bb, uint32_t alignment)
{
	apbi_clear_error();
	if (!bb)
		return apbi_set_error(-EINVAL, "apb_builder_set_alignment: NULL builder");
	if (!is_pow2(alignment) || alignment > MAX_POW2)
		return apbi_set_error(-EINVAL, "alignment %u is not a power of two between 1 and 1 GiB",
		                      alignment);
	bb->alignment = alignment;
	bb->align_set = true;
	return 0;
}

int apb_builder_set_block_size(apb_builder *bb, uint32_t block_size)
{
	apbi_clear_error();
	if (!bb)
		return apbi_set_error(-EINVAL, "apb_builder_set_block_size: NULL builder");
	if (!is_pow2(block_size) || block_size < 512 || block_size > MAX_POW2)
		return apbi_set_error(-EINVAL, "block size %u is not a power of two between 512 and 1 GiB",
		                      block_size);
	bb->block_size = block_size;
	return 0;
}

int apb_builder_set_description(apb_builder *bb, const char *text)
{
	char *copy = NULL;

	apbi_clear_error();
	if (!bb)
		return apbi_set_error(-EINVAL, "apb_builder_set_description: NULL builder");
	if (text) {
		if (!apbi_utf8_valid(text, strlen(text)))
			return apbi_set_error(-EINVAL, "description is not valid UTF-8");
		if (!(copy = strdup(text)))
			return apbi_set_error(-ENOMEM, "out of memory copying the description");
	}
	free(bb->description);
	bb->description = copy;
	return 0;
}

void apb_builder_set_timestamp(apb_builder *bb, bool on)
{
	if (bb)
		bb->timestamp = on;
}

int apb_builder_set_compression(apb_builder *bb, apb_codec codec, int level, apb_filter filter)
{
	apbi_clear_error();
	if (!bb)
		return apbi_set_error(-EINVAL, "apb_builder_set_compression: NULL builder");
	if (codec != APB_CODEC_NONE && codec != APB_CODEC_ZSTD)
		return apbi_set_error(-EINVAL, "unknown codec %d", (int)codec);
	if (codec == APB_CODEC_ZSTD && (level < 0 || level > 19))
		return apbi_set_error(-EINVAL, "zstd level %d is not between 1 and 19", level);
	if (codec == APB_CODEC_ZSTD && !apb_filter_name(filter))
		return apbi_set_error(-EINVAL, "unknown filter %d", (int)filter);
	bb->codec = (enum apbi_codec)codec;
	bb->level = level;
	bb->filter = filter;
	return 0;
}

void apb_builder_set_cancel(apb_builder *bb, const volatile sig_atomic_t *flag)
{
	if (bb)
		bb->cancel = flag;
}

void apb_builder_set_progress(apb_builder *bb, apb_progress_fn fn, void *ctx)
{
	if (!bb)
		return;
	bb->progress = fn;
	bb->progress_ctx = ctx;
}

/* ------------------------------------------------------------------ */
/* Adding models                                                        */
/* ------------------------------------------------------------------ */

/* Checks name and reserves slot bb->n; the caller fills it and calls commit. */
static int add_begin(apb_builder *bb, const char *name)
{
	int rc;

	if (!bb || !name)
		return apbi_set_error(-EINVAL, "add: NULL builder or name");
	if (bb->built)
		return apbi_set_error(-EINVAL, "add \"%s\": the builder has already built", name);
	if ((rc = apbi_name_check(name, strlen(name))) != 0)
		return rc;
	if (apbi_name_reserved(name))
		return apbi_set_error(APB_E_NAME, "model name \"%s\": its first component is "
		                      "reserved by apbundle-mount (.stats, .stats.json, .metrics, "
		                      ".control)", name);
	if (apbi_nameidx_find(&bb->idx, name) >= 0)
		return apbi_set_error(APB_E_DUPLICATE, "model \"%s\" added twice", name);
	if (bb->n == bb->cap) {
		size_t cap = bb->cap ? bb->cap * 2 : 16;
		apbi_wmodel *w = realloc(bb->w, cap * sizeof *w);
		if (w)
			bb->w = w;
		struct bsrc *s = w ? realloc(bb->src, cap * sizeof *s) : NULL;
		if (!s)
			return apbi_set_error(-ENOMEM, "out of memory adding model \"%s\"", name);
		bb->src = s;
		bb->cap = cap;
	}
	memset(&bb->w[bb->n], 0, sizeof bb->w[bb->n]);
	memset(&bb->src[bb->n], 0, sizeof bb->src[bb->n]);
	if (!(bb->w[bb->n].name = strdup(name)))
		return apbi_set_error(-ENOMEM, "out of memory adding model \"%s\"", name);
	return 0;
}

/* Indexes slot bb->n, or releases it on failure. */
static int add_commit(apb_builder *bb, int rc)
{
	if (rc == 0)
		rc = apbi_nameidx_add(&bb->idx, bb->n);
	if (rc != 0) {
		free((char *)bb->w[bb->n].name);
		free(bb->src[bb->n].path);
		free(bb->src[bb->n].owned);
		return rc;
	}
	bb->n++;
	return 0;
}

static int add_memory(apb_builder *bb, const char *name, const void *data, size_t size, bool copy)
{
	int rc;

	if (!data && size)
		return apbi_set_error(-EINVAL, "add \"%s\": NULL data", name ? name : "(null)");
	if ((rc = add_begin(bb, name)) != 0)
		return rc;
	bb->w[bb->n].size = size;
	bb->src[bb->n].data = data;
	if (copy && size) {
		bb->src[bb->n].owned = malloc(size);
		if (!bb->src[bb->n].owned)
			rc = apbi_set_error(-ENOMEM, "out of memory copying model \"%s\" (%zu bytes)", name, size);
		else
			bb->src[bb->n].data = memcpy(bb->src[bb->n].owned, data, size);
	}
	return add_commit(bb, rc);
}

int apb_builder_add_model(apb_builder *bb, const char *name, const void *data, size_t size)
{
	apbi_clear_error();
	return add_memory(bb, name, data, size, true);
}

int apbi_builder_add_ref(apb_builder *bb, const char *name, const void *data, size_t size)
{
	return add_memory(bb, name, data, size, false);
}

int apb_builder_add_file(apb_builder *bb, const char *name, const char *src_path)
{
	struct stat st;
	int rc;

	apbi_clear_error();
	if (!src_path)
		return apbi_set_error(-EINVAL, "add_file \"%s\": NULL source path", name ? name : "(null)");
	if (stat(src_path, &st) != 0)
		return apbi_set_error(-errno, "add_file \"%s\": %s: %s", name ? name : "(null)",
		                      src_path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return apbi_set_error(-EISDIR, "add_file: %s is a directory", src_path);
	if (!S_ISREG(st.st_mode))
		return apbi_set_error(-EINVAL, "add_file: %s is not a regular file", src_path);
	if ((rc = add_begin(bb, name)) != 0)
		return rc;
	bb->w[bb->n].size = (uint64_t)st.st_size;
	if (!(bb->src[bb->n].path = strdup(src_path)))
		rc = apbi_set_error(-ENOMEM, "out of memory adding model \"%s\"", name);
	return add_commit(bb, rc);
}

/* ------------------------------------------------------------------ */
/* Metadata (validated and copied by apbi_metadata_copy, builder_meta.c) */
/* ------------------------------------------------------------------ */

int apb_builder_set_metadata(apb_builder *bb, const char *name, const apb_metadata *md)
{
	apb_metadata *copy = NULL;
	int64_t i;
	int rc;

	apbi_clear_error();
	if (!bb || !name)
		return apbi_set_error(-EINVAL, "set_metadata: NULL builder or name");
	if ((i = apbi_nameidx_find(&bb->idx, name)) < 0)
		return apbi_set_error(-ENOENT, "set_metadata: no model \"%s\"", name);
	if (md && (rc = apbi_metadata_copy(md, &copy)) != 0)
		return rc;
	free(bb->src[i].md);
	bb->src[i].md = copy;
	bb->w[i].md = copy;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Streaming one model                                                  */
/* ------------------------------------------------------------------ */

/* Hash state of the model being streamed. */
struct hasher {
	XXH3_state_t *model, *block;
	uint64_t *sums;               /* n_blocks entries, or NULL (one block) */
	uint64_t done;                /* blocks finished */
	uint32_t bs, in_block;        /* block size; bytes of the open block */
};

/* Everything apb_builder_build works with. */
struct wctx {
	apb_builder *bb;
	apbi_wbundle wb;
	int fd;
	char *tmp;
	uint64_t data_start;
	uint8_t *buf;
	struct hasher h;
	apbi_cpool *pool;             /* with compression, else NULL */
	size_t cur;                   /* the model being written */
	uint64_t pos;                 /* version 2: data bytes placed so far */
	uint64_t unkicked;            /* bytes written since writeback was last started */
};

static void hash_feed(struct hasher *h, const uint8_t *p, size_t n)
{
	XXH3_64bits_update(h->model, p, n);
	while (h->sums && n) {
		size_t take = h->bs - h->in_block < n ? h->bs - h->in_block : n;
		if (h->in_block == 0 && take == h->bs) {
			h->sums[h->done++] = XXH3_64bits(p, take);
		} else {
			if (h->in_block == 0)
				XXH3_64bits_reset(h->block);
			XXH3_64bits_update(h->block, p, take);
			h->in_block += (uint32_t)take;
			if (h->in_block == h->bs) {
				h->sums[h->done++] = XXH3_64bits_digest(h->block);
				h->in_block = 0;
			}
		}
		p += take;
		n -= take;
	}
}

/* -ECANCELED once the caller's cancel flag is set, else 0. */
static int check_cancel(const struct wctx *c)
{
	if (c->bb->cancel && *c->bb->cancel)
		return apbi_set_error(-ECANCELED, "building %s: cancelled", c->bb->path);
	return 0;
}

/* Ends a chunk of n source bytes: reports progress, then checks the flag. */
static int chunk_done(const struct wctx *c, uint64_t n)
{
	if (c->bb->progress)
		c->bb->progress(c->bb->progress_ctx, n);
	return check_cancel(c);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Hashes and writes n bytes of model i found at model offset pos; ends the chunk. */
static int put_chunk(struct wctx *c, size_t i, const uint8_t *p, size_t n, uint64_t pos)
{
	uint64_t off = c->data_start + c->bb->w[i].offset + pos;
	int rc;

	hash_feed(&c->h, p, n);
	if (c->bb->w[i].codec != APBI_CODEC_NONE)
		return (rc = apbi_cpool_feed(c->pool, p, n)) != 0 ? rc : chunk_done(c, n);
	/* all zeros: the file is sized at the end, so they are there already */
	if (!all_zero(p, n) && (rc = apbi_pwrite_full(c->fd, p, n, off)) != 0)
		return apbi_set_error(rc, "writing model \"%s\" to %s at offset %llu: %s",
		                      c->bb->w[i].name, c->tmp, (unsigned long long)off, strerror(-rc));
	apbi_write_kick(c->fd, &c->unkicked, n);
	return chunk_done(c, n);
}

/* Copies run bytes of data from fd's position, model offset *pos onwards. */
static int copy_run(struct wctx *c, size_t i, int fd, uint64_t run, uint64_t *pos)
{
	const apbi_wmodel *m = &c->bb->w[i];
	const char *src = c->bb->src[i].path;

	while (run) {
		size_t want = run < CHUNK ? (size_t)run : CHUNK;
		ssize_t r = apbi_read_upto(fd, c->buf, want);
		if (r < 0)
			return apbi_set_error((int)r, "model \"%s\": reading %s: %s", m->name, src, strerror((int)-r));
		if ((size_t)r < want)
			return apbi_set_error(-EIO, "model \"%s\": source %s shrank while being read", m->name, src);
		int rc = put_chunk(c, i, c->buf, want, *pos);
		if (rc != 0)
			return rc;
		*pos += want;
		run -= want;
	}
	return 0;
}

/* Hashes run zero bytes (a hole: the output already holds zeros there,
 * unless the model is compressed: then the zeros are compressed too). */
static int feed_zeros(struct wctx *c, uint64_t run)
{
	bool zip = c->bb->w[c->cur].codec != APBI_CODEC_NONE;
	int rc;

	memset(c->buf, 0, run < CHUNK ? (size_t)run : CHUNK);
	while (run) {
		size_t n = run < CHUNK ? (size_t)run : CHUNK;
		hash_feed(&c->h, c->buf, n);
		if ((zip && (rc = apbi_cpool_feed(c->pool, c->buf, n)) != 0) ||
		    (rc = chunk_done(c, n)) != 0)
			return rc;
		run -= n;
	}
	return 0;
}

/* Streams a file source; holes are hashed as zeros without reading them. */
static int stream_file(struct wctx *c, size_t i)
{
	const apbi_wmodel *m = &c->bb->w[i];
	const char *src = c->bb->src[i].path;
	struct stat st;
	uint64_t pos = 0, run;
	int rc = 0, fd = open(src, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return apbi_set_error(-errno, "model \"%s\": opening %s: %s", m->name, src, strerror(errno));
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != m->size)
		goto changed;
	while (pos < m->size && rc == 0) {
		if ((run = apbi_hole_run(fd, pos, m->size)) != 0) {
			rc = feed_zeros(c, run);
			pos += run;
			continue;
		}
		run = apbi_data_run(fd, pos, m->size);
		if (lseek(fd, (off_t)pos, SEEK_SET) < 0)
			rc = apbi_set_error(-errno, "model \"%s\": seeking in %s: %s", m->name, src, strerror(errno));
		else
			rc = copy_run(c, i, fd, run, &pos);
	}
	if (rc != 0)
		goto out;
	if (lseek(fd, (off_t)m->size, SEEK_SET) < 0 || apbi_read_some(fd, c->buf, 1) != 0 ||
	    fstat(fd, &st) != 0 || (uint64_t)st.st_size != m->size)
		goto changed; /* grew, shrank (a hole to EOF hides that) or failed at its end */
out:
	close(fd);
	return rc;
changed:
	rc = apbi_set_error(-EIO, "model \"%s\": source %s changed size since it was added", m->name, src);
	goto out;
}

static int stream_memory(struct wctx *c, size_t i)
{
	const uint8_t *p = c->bb->src[i].data;
	uint64_t size = c->bb->w[i].size;
	int rc;

	for (uint64_t pos = 0; pos < size; pos += CHUNK) {
		size_t n = size - pos < CHUNK ? (size_t)(size - pos) : CHUNK;
		if ((rc = put_chunk(c, i, p + pos, n, pos)) != 0)
			return rc;
	}
	return 0;
}

/* The compression pool's write function: a block's stored bytes, in order. */
static int write_stored(void *ctx, const void *p, size_t n, uint64_t off)
{
	struct wctx *c = ctx;
	const apbi_wmodel *m = &c->bb->w[c->cur];
	uint64_t at = c->data_start + m->offset + off;
	int rc = apbi_pwrite_full(c->fd, p, n, at);

	if (rc != 0)
		return apbi_set_error(rc, "writing model \"%s\" to %s at offset %llu: %s", m->name,
		                      c->tmp, (unsigned long long)at, strerror(-rc));
	apbi_write_kick(c->fd, &c->unkicked, n);
	return 0;
}

/*
 * Writes model i's table and its index: h->sums as little-endian u64s, or
 * for a compressed model (whose stored size is known only now, so it is
 * placed again) 16-byte entries: block checksum, stored offset.
 */
static int write_table(struct wctx *c, size_t i, uint64_t start)
{
	apbi_wmodel *m = &c->bb->w[i];
	uint64_t *t = c->h.sums, n = m->n_blocks;
	const uint64_t *offs;
	size_t es = m->codec != APBI_CODEC_NONE ? 16 : 8;
	int rc;

	if (es == 16) {
		c->pos = start;
		if ((rc = apbi_cpool_end(c->pool, &m->stored_size, &offs)) != 0 ||
		    (rc = apbi_layout_place(&c->wb, i, &c->pos)) != 0)
			return rc;
		if (!(t = malloc(n * 16 + apbi_windex_bytes(n * 16))))
			return apbi_set_error(-ENOMEM, "model \"%s\": out of memory for its block table", m->name);
		for (uint64_t k = 0; k < n; k++) {
			t[2 * k] = htole64(c->h.sums[k]);
			t[2 * k + 1] = htole64(offs[k]);
		}
	} else {
		for (uint64_t k = 0; k < n; k++)
			t[k] = htole64(t[k]);
	}
	m->table_checksum = XXH3_64bits(t, n * es);   /* of the bytes as stored */
	m->index_checksum = apbi_windex_make(t, n * es);
	rc = apbi_pwrite_full(c->fd, t, n * es + apbi_windex_bytes(n * es), c->data_start + m->blocks_offset);
	if (rc != 0)
		rc = apbi_set_error(rc, "model \"%s\": writing its block table to %s: %s", m->name,
		                    c->tmp, strerror(-rc));
	if (t != c->h.sums)
		free(t);
	return rc;
}

/* Streams model i, sets its checksum and writes its block table. */
static int stream_model(struct wctx *c, size_t i)
{
	apbi_wmodel *m = &c->bb->w[i];
	struct hasher *h = &c->h;
	uint64_t start = c->pos;
	int rc;

	h->done = 0;
	h->in_block = 0;
	h->bs = c->bb->block_size;
	h->sums = NULL;
	c->cur = i;
	if (c->wb.version == 2 && (rc = apbi_layout_place(&c->wb, i, &c->pos)) != 0)
		return rc;
	if (apbi_wmodel_has_table(m) &&
	    !(h->sums = malloc(m->n_blocks * sizeof *h->sums + apbi_windex_bytes(m->n_blocks * 8))))
		return apbi_set_error(-ENOMEM, "model \"%s\": out of memory for %llu block checksums",
		                      m->name, (unsigned long long)m->n_blocks);
	XXH3_64bits_reset(h->model);
	if (m->codec != APBI_CODEC_NONE &&
	    (rc = apbi_cpool_begin(c->pool, m->filter, m->size, write_stored, c)) != 0)
		goto out;
	rc = c->bb->src[i].path ? stream_file(c, i) : stream_memory(c, i);
	if (rc != 0)
		goto out;
	m->checksum = XXH3_64bits_digest(h->model);
	if (!h->sums)
		goto out;
	if (h->in_block)
		h->sums[h->done++] = XXH3_64bits_digest(h->block);
	if (h->done != m->n_blocks) {
		rc = apbi_set_error(-EIO, "model \"%s\": hashed %llu blocks, expected %llu", m->name,
		                    (unsigned long long)h->done, (unsigned long long)m->n_blocks);
		goto out;
	}
	rc = write_table(c, i, start);
out:
	free(h->sums);
	h->sums = NULL;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Build                                                                */
/* ------------------------------------------------------------------ */

/* Writes the header and the final manifest of length len at offset 0. */
static int write_head(struct wctx *c, size_t len)
{
	char *text = NULL;
	uint8_t *head = NULL;
	size_t len2 = 0;
	int rc;

	if ((rc = apbi_manifest_encode(&c->wb, &text, &len2)) != 0)
		return rc;
	if (len2 != len) { /* cannot happen: checksums are fixed width */
		rc = apbi_set_error(-EIO, "internal error: manifest length changed from %zu to %zu", len, len2);
		goto out;
	}
	if (!(head = malloc(APBI_HEADER_SIZE + len))) {
		rc = apbi_set_error(-ENOMEM, "out of memory for the manifest");
		goto out;
	}
	apbi_header_encode(head, c->wb.version, (uint32_t)len);
	memcpy(head + APBI_HEADER_SIZE, text, len);
	if ((rc = apbi_pwrite_full(c->fd, head, APBI_HEADER_SIZE + len, 0)) != 0)
		rc = apbi_set_error(rc, "writing the manifest to %s: %s", c->tmp, strerror(-rc));
out:
	free(head);
	free(text);
	return rc;
}

/* Fills the open temporary file completely and syncs it (it stays open and locked). */
static int size_file(const struct wctx *c)
{
	if (ftruncate(c->fd, (off_t)(c->data_start + c->wb.data_size)) != 0)
		return apbi_set_error(-errno, "sizing %s to %llu bytes: %s", c->tmp,
		                      (unsigned long long)(c->data_start + c->wb.data_size), strerror(errno));
	return 0;
}

/* Fills the open temporary file completely and syncs it (it stays open and
 * locked).  Version 1 is sized first; version 2, whose stored sizes are
 * known only once written, at the end. */
static int write_all(struct wctx *c, size_t len)
{
	int rc;

	if (c->wb.version == 1 && (rc = size_file(c)) != 0)
		return rc;
	c->buf = malloc(CHUNK);
	c->h.model = XXH3_createState();
	c->h.block = XXH3_createState();
	if (!c->buf || !c->h.model || !c->h.block)
		return apbi_set_error(-ENOMEM, "out of memory for the copy buffer");
	for (size_t i = 0; i < c->wb.n_models; i++) {
		if ((rc = check_cancel(c)) != 0 || (rc = stream_model(c, i)) != 0)
			return rc;
	}
	if (c->wb.version == 2) {
		c->wb.data_size = c->pos;
		c->wb.reserve = len;      /* the final manifest is no longer: pad it */
		if ((rc = size_file(c)) != 0)
			return rc;
	}
	if ((rc = write_head(c, len)) != 0)
		return rc;
	if ((rc = apbi_fsync(c->fd)) != 0)
		return apbi_set_error(rc, "syncing %s: %s", c->tmp, strerror(-rc));
	return 0;
}

/*
 * Gives every model its codec and filter (a compressed model's stored size
 * starts as its size: the bound the layout is planned with) and starts the
 * compression pool when there is something to compress.
 */
static int setup_codecs(struct wctx *c)
{
	apb_builder *bb = c->bb;
	int rc;

	for (size_t i = 0; i < bb->n; i++) {
		apbi_wmodel *m = &bb->w[i];
		m->codec = bb->codec != APBI_CODEC_NONE && m->size ? bb->codec : APBI_CODEC_NONE;
		m->filter = APBI_FILTER_NONE;
		m->stored_size = m->size;
		if (m->codec == APBI_CODEC_NONE)
			continue;
		if (!c->pool && (rc = apbi_cpool_new(bb->level, bb->block_size, &c->pool)) != 0)
			return rc;
		if (!bb->align_set)   /* stored blocks are never mapped: no page alignment */
			c->wb.alignment = APBI_COMPRESSED_ALIGNMENT;
		if (bb->filter != APB_FILTER_AUTO)
			m->filter = (enum apbi_filter)bb->filter;
		else if ((rc = apbi_cpool_pick(c->pool, bb->src[i].path, bb->src[i].data, m->size,
		                               &m->filter)) != 0 || (rc = check_cancel(c)) != 0)
			return rc;
	}
	return 0;
}

/* Refuses names that cannot coexist in one tree ("a" beside "a/b"). */
static int check_tree(const apb_builder *bb)
{
	const char **names = malloc((bb->n ? bb->n : 1) * sizeof *names);
	uint8_t *flags = malloc(bb->n ? bb->n : 1);
	size_t pair[2];
	ssize_t n = -ENOMEM;

	if (names && flags) {
		for (size_t i = 0; i < bb->n; i++)
			names[i] = bb->w[i].name;
		n = apbi_name_clashes(names, bb->n, flags, pair);
	}
	free(names);
	free(flags);
	if (n < 0)
		return apbi_set_error(-ENOMEM, "out of memory checking model names");
	if (n == 0 || pair[0] == SIZE_MAX)   /* reserved names were refused by add */
		return 0;
	return apbi_set_error(APB_E_NAME, "model names \"%s\" and \"%s\" cannot coexist: \"%s\" "
	                      "would be both a file and a directory (extract and the mount "
	                      "could not show both)", bb->w[pair[0]].name, bb->w[pair[1]].name,
	                      bb->w[pair[0]].name);
}

int apb_builder_build(apb_builder *bb)
{
	struct wctx c = { .bb = bb, .fd = -1 };
	char *text = NULL;
	size_t len = 0;
	bool renamed = false;
	int rc;

	apbi_clear_error();
	if (!bb)
		return apbi_set_error(-EINVAL, "apb_builder_build: NULL builder");
	if (bb->built)
		return apbi_set_error(-EINVAL, "%s: this builder has already built", bb->path);
	bb->built = true;
	c.wb = (apbi_wbundle){ .alignment = bb->alignment, .block_size = bb->block_size,
	                       .description = bb->description, .n_models = bb->n, .models = bb->w };
	if ((rc = check_tree(bb)) != 0 ||
	    (bb->timestamp && (rc = apbi_resolve_time(&c.wb)) != 0) ||
	    (rc = setup_codecs(&c)) != 0 ||
	    (rc = apbi_layout_plan(&c.wb)) != 0 ||
	    (rc = apbi_manifest_encode(&c.wb, &text, &len)) != 0 ||
	    (rc = apbi_tmp_open(bb->path, &c.fd, &c.tmp)) != 0)
		goto out;
	c.data_start = APBI_HEADER_SIZE + len;
	if ((rc = write_all(&c, len)) != 0 || (rc = check_cancel(&c)) != 0)
		goto out;
	/* The commit point; the lock is held across it (a cleaner never sees
	 * the file unlocked), and close cannot lose data after the fsync. */
	if (rename(c.tmp, bb->path) != 0) {
		rc = apbi_set_error(-errno, "renaming %s to %s: %s", c.tmp, bb->path, strerror(errno));
		goto out;
	}
	renamed = true;
	rc = apbi_sync_dir(bb->path);
out:
	if (c.tmp && !renamed)
		unlink(c.tmp); /* while still locked */
	if (c.fd >= 0)
		close(c.fd);
	apbi_cpool_free(c.pool);
	free(c.tmp);
	free(text);
	free(c.buf);
	XXH3_freeState(c.h.model);
	XXH3_freeState(c.h.block);
	return rc;
}
