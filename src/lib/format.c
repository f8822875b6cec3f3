/*
 * format.c - decode and validate a bundle's header and manifest; look up
 * models; verify model bytes against their checksums and block tables
 * against the manifest.
 *
 * Invariants: nothing read from the file is trusted.  The header decides
 * the layout (v1: '{' at byte 16; otherwise aprender's legacy layout), the
 * manifest length is checked against the 64 MiB limit and the file size
 * before a single manifest byte is read or allocated, and a manifest
 * returned to callers has passed every rule of docs/FORMAT.md: models and
 * block tables lie inside the data section without uint64 overflow and
 * without overlapping, names are valid and unique.  All strings of a
 * manifest live in one arena owned by it; names are found through an
 * open-addressing hash table (XXH3 of the name, load factor <= 1/2), so
 * lookups are O(1) and decoding n models costs O(n log n) (one sort, for
 * the overlap check).  Names that are valid but cannot coexist in one
 * tree ("a" beside "a/b", a root name the mount reserves) are flagged per
 * model, not refused: bundles written before writers refused them stay
 * readable, and front ends say which models they cannot show.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format_priv.h"
#include "internal.h"
#include "source.h"

/* ---- arena ---- */

typedef struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
} arena_chunk;

typedef struct manifest_priv {
	arena_chunk *chunks;
	size_t next_chunk;    /* size of the next arena chunk (grows x2) */
	uint32_t *slots;      /* index + 1 of the model, 0 = empty */
	uint64_t mask;        /* slot count - 1 (power of two) */
	uint64_t *hashes;     /* XXH3 of each model's name */
} manifest_priv;

#define ARENA_MIN_CHUNK (16u * 1024u)
#define ARENA_MAX_CHUNK (16u * 1024u * 1024u)

/*
 * Chunks start at a quarter of the manifest length (strings are a fraction
 * of the JSON text) and double, so a manifest needs few of them: besides
 * saving malloc calls, this matters because each large malloc made while
 * json-c's freed nodes sit in the fastbins makes glibc consolidate them.
 */
void *apbi_arena_alloc(apbi_manifest *m, size_t n)
{
	manifest_priv *p = m->priv;
	arena_chunk *c = p->chunks;
	size_t at;

	n = (n + 7) & ~(size_t)7;
	if (!c || c->cap - c->used < n) {
		size_t cap = p->next_chunk < ARENA_MIN_CHUNK ? ARENA_MIN_CHUNK : p->next_chunk;
		if (cap < n)
			cap = n;
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		p->next_chunk = cap < ARENA_MAX_CHUNK ? 2 * cap : cap;
		c->cap = cap;
		c->used = 0;
		c->next = p->chunks;
		p->chunks = c;
	}
	at = c->used;
	c->used += n;
	return c->data + at;
}

char *apbi_arena_strdup(apbi_manifest *m, const char *s, size_t len)
{
	char *d = apbi_arena_alloc(m, len + 1);

	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

int apbi_model_error(int code, uint64_t i, const char *name, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (name)
		return apbi_set_error(code, "models[%llu] \"%.200s\": %s",
		                      (unsigned long long)i, name, msg);
	return apbi_set_error(code, "models[%llu]: %s", (unsigned long long)i, msg);
}

int apbi_model_single_block(apbi_model *mod, uint64_t i)
{
	uint32_t bs = APBI_MIN_BLOCK_SIZE;

	if (mod->size > APBI_MAX_BLOCK_SIZE)
		return apbi_model_error(APB_E_CORRUPT, i, mod->name,
		                        "%llu bytes but no \"blocks\" table (required for more than one block)",
		                        (unsigned long long)mod->size);
	while (bs < mod->size)
		bs <<= 1;
	mod->block_size = bs;
	mod->n_blocks = mod->size ? 1 : 0;
	mod->has_block_table = false;
	mod->entry_size = 8;
	return 0;
}

/* ---- header ---- */

typedef struct header {
	enum apbi_layout layout;
	uint32_t version;
	uint32_t size;        /* 16 or 20 */
	uint64_t manifest_len;
} header;

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

/*
 * Decodes the header from the first len bytes of a file_size-byte file and
 * checks the manifest length against the limit and the file size (but not
 * against len).
 */
static int header_decode(const uint8_t *buf, size_t len, uint64_t file_size, header *h)
{
	size_t n = len < 8 ? len : 8;

	if (memcmp(buf, APBI_MAGIC, n) != 0)
		return apbi_set_error(APB_E_BADMAGIC, "not a bundle: the file does not start with \"APBUNDLE\"");
	if (len < 17)
		return apbi_set_error(APB_E_TRUNCATED, "file ends inside the header (%zu bytes)", len);
	h->version = le32(buf + 8);
	if (h->version < 1 || h->version > APB_FORMAT_VERSION || (buf[16] != '{' && h->version != 1))
		return apbi_set_error(APB_E_VERSION, "header: format version %u (this library reads 1 to %u)",
		                      h->version, APB_FORMAT_VERSION);
	if (buf[16] == '{') {
		h->layout = APBI_LAYOUT_V1;
		h->size = APBI_HEADER_SIZE;
		h->manifest_len = le32(buf + 12);
	} else {
		if (len < APBI_LEGACY_HEADER_SIZE)
			return apbi_set_error(APB_E_TRUNCATED, "file ends inside the legacy header (%zu bytes)", len);
		h->layout = APBI_LAYOUT_LEGACY;
		h->size = APBI_LEGACY_HEADER_SIZE;
		h->manifest_len = le64(buf + 12);
	}
	if (h->manifest_len > APBI_MAX_MANIFEST)
		return apbi_set_error(APB_E_CORRUPT, "header: manifest length %llu exceeds the %u-byte limit%s",
		                      (unsigned long long)h->manifest_len, APBI_MAX_MANIFEST,
		                      h->layout == APBI_LAYOUT_LEGACY ?
		                      " (read as an aprender legacy header: byte 16 is not '{')" : "");
	if (h->size + h->manifest_len > file_size)
		return apbi_set_error(APB_E_TRUNCATED,
		                      "header: manifest of %llu bytes ends past the end of the %llu-byte file",
		                      (unsigned long long)h->manifest_len, (unsigned long long)file_size);
	return 0;
}

/* ---- decode ---- */

/**
 * Decodes and validates the header and manifest in buf[0..len), the start
 * of a file_size-byte file.  On success *out is a new manifest (free with
 * apbi_manifest_free).  Errors: APB_E_* with a detail, -ENOMEM, -EINVAL
 * (NULL arguments, len > file_size).
 */
int apbi_manifest_parse(const uint8_t *buf, size_t len, uint64_t file_size,
                        apbi_manifest **out)
{
	apbi_manifest *m = NULL;
	header h;
	int rc;

	if (!out || (!buf && len) || len > file_size)
		return apbi_set_error(-EINVAL, "manifest parse: bad arguments");
	*out = NULL;
	if ((rc = header_decode(buf, len, file_size, &h)) < 0)
		return rc;
	if (h.size + h.manifest_len > len)
		return apbi_set_error(APB_E_TRUNCATED, "manifest of %llu bytes is not all in the %zu bytes given",
		                      (unsigned long long)h.manifest_len, len);
	m = calloc(1, sizeof *m);
	if (!m || !(m->priv = calloc(1, sizeof(manifest_priv)))) {
		rc = apbi_set_error(-ENOMEM, "out of memory decoding the manifest");
		goto fail;
	}
	m->layout = h.layout;
	m->version = h.version;
	m->file_size = file_size;
	m->data_start = h.size + h.manifest_len;
	m->alignment = 1;
	((manifest_priv *)m->priv)->next_chunk = (size_t)h.manifest_len / 4;
	if (h.layout == APBI_LAYOUT_V1)
		rc = apbi_decode_json((const char *)buf + h.size, (size_t)h.manifest_len, m);
	else
		rc = apbi_decode_legacy(buf + h.size, (size_t)h.manifest_len, m);
	if (rc < 0 || (rc = apbi_manifest_finish(m)) < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	apbi_manifest_free(m);
	return rc;
}

typedef int (*read_at_fn)(void *ctx, void *buf, size_t len, uint64_t off);
typedef void (*commit_fn)(void *ctx, const void *buf, size_t len);

/*
 * Reads the header and exactly the manifest bytes of a size-byte bundle
 * through rd (never more than the file, never more than 64 MiB) and
 * decodes them.
 */
static int read_manifest(read_at_fn rd, commit_fn commit, void *ctx, uint64_t size,
                         apbi_manifest **out)
{
	uint8_t head[APBI_LEGACY_HEADER_SIZE];
	size_t hlen = size < sizeof head ? (size_t)size : sizeof head;
	uint8_t *buf;
	uint64_t total;
	header h;
	int rc;

	if ((rc = rd(ctx, head, hlen, 0)) < 0)
		return rc;
	if ((rc = header_decode(head, hlen, size, &h)) < 0)
		return rc;
	total = h.size + h.manifest_len;
	buf = malloc((size_t)total);
	if (!buf)
		return apbi_set_error(-ENOMEM, "out of memory for a %llu-byte manifest",
		                      (unsigned long long)total);
	rc = rd(ctx, buf, (size_t)total, 0);
	if (rc == 0)
		rc = apbi_manifest_parse(buf, (size_t)total, size, out);
	if (rc == 0 && commit)   /* validated: a disk tier may keep it for offline opens */
		commit(ctx, buf, (size_t)total);
	free(buf);
	return rc;
}

static int fd_read_at(void *ctx, void *buf, size_t len, uint64_t off)
{
	return apbi_pread_full(*(int *)ctx, buf, len, off);
}

static int source_read_at(void *ctx, void *buf, size_t len, uint64_t off)
{
	return apbi_source_read(ctx, buf, len, off);
}

static void source_commit(void *ctx, const void *buf, size_t len)
{
	apbi_source_commit(ctx, 0, buf, len);
}

/**
 * Reads and decodes the manifest of the open bundle fd.  On success *out
 * is a new manifest.  Errors: -errno from fstat/pread, -EINVAL (not a
 * regular file), APB_E_* with a detail.
 */
int apbi_manifest_read(int fd, apbi_manifest **out)
{
	struct stat st;

	if (!out)
		return apbi_set_error(-EINVAL, "manifest read: NULL output");
	*out = NULL;
	if (fstat(fd, &st) != 0)
		return apbi_set_error(-errno, "fstat: %s", apb_strerror(-errno));
	if (!S_ISREG(st.st_mode))
		return apbi_set_error(S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, "not a regular file");
	return read_manifest(fd_read_at, NULL, &fd, (uint64_t)st.st_size, out);
}

/** See format.h. */
int apbi_manifest_read_source(apbi_source *src, apbi_manifest **out)
{
	if (!out || !src)
		return apbi_set_error(-EINVAL, "manifest read: NULL argument");
	*out = NULL;
	return read_manifest(source_read_at, source_commit, src, src->size, out);
}

/* ---- structural checks shared by both layouts ---- */

enum { SPAN_DATA, SPAN_TABLE, SPAN_INDEX };
static const char *const span_kind[] = { "data", "block table", "block table index" };

typedef struct span {
	uint64_t start, end;  /* [start, end) relative to the data section */
	uint64_t model;       /* index of the model */
	int kind;             /* SPAN_DATA, SPAN_TABLE or SPAN_INDEX */
} span;

static int span_cmp(const void *a, const void *b)
{
	const span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

/* Checks the range of model i's table index against the data section. */
static int check_index_range(const apbi_manifest *m, uint64_t i, uint64_t data_len)
{
	const apbi_model *mod = &m->models[i];
	uint64_t ilen = apbi_index_bytes(mod);

	if (mod->index_offset % 8)
		return apbi_model_error(APB_E_CORRUPT, i, mod->name,
		                        "blocks.index_offset %llu is not a multiple of 8",
		                        (unsigned long long)mod->index_offset);
	if (mod->index_offset > data_len || ilen > data_len - mod->index_offset)
		return apbi_model_error(APB_E_TRUNCATED, i, mod->name,
		                        "block table index (%llu bytes at %llu) lies beyond the end of the file",
		                        (unsigned long long)ilen, (unsigned long long)mod->index_offset);
	return 0;
}

/* Checks one model's offset, range and block table against the data section. */
static int check_model_range(const apbi_manifest *m, uint64_t i)
{
	const apbi_model *mod = &m->models[i];
	uint64_t data_len = m->file_size - m->data_start;
	uint64_t tlen;

	if (mod->offset % m->alignment)
		return apbi_model_error(APB_E_CORRUPT, i, mod->name,
		                        "offset %llu is not a multiple of the alignment %u",
		                        (unsigned long long)mod->offset, m->alignment);
	if (mod->stored_size > UINT64_MAX - mod->offset)
		return apbi_model_error(APB_E_CORRUPT, i, mod->name, "offset + size overflows");
	if (mod->offset + mod->stored_size > data_len)
		return apbi_model_error(APB_E_TRUNCATED, i, mod->name,
		                        "bytes %llu..%llu of the data section lie beyond the end of the file (%llu data bytes)",
		                        (unsigned long long)mod->offset,
		                        (unsigned long long)(mod->offset + mod->stored_size),
		                        (unsigned long long)data_len);
	if (!mod->has_block_table)
		return 0;
	tlen = apbi_table_bytes(mod);
	if (mod->blocks_offset % 8)
		return apbi_model_error(APB_E_CORRUPT, i, mod->name,
		                        "blocks.checksums_offset %llu is not a multiple of 8",
		                        (unsigned long long)mod->blocks_offset);
	if (tlen > UINT64_MAX - mod->blocks_offset)
		return apbi_model_error(APB_E_CORRUPT, i, mod->name, "block table range overflows");
	if (mod->blocks_offset + tlen > data_len)
		return apbi_model_error(APB_E_TRUNCATED, i, mod->name,
		                        "block table (%llu bytes at %llu) lies beyond the end of the file",
		                        (unsigned long long)tlen, (unsigned long long)mod->blocks_offset);
	return mod->has_index ? check_index_range(m, i, data_len) : 0;
}

/* Reports an overlap between spans a and b. */
static int overlap_error(const apbi_manifest *m, const span *a, const span *b)
{
	const apbi_model *x = &m->models[a->model], *y = &m->models[b->model];

	return apbi_model_error(APB_E_CORRUPT, b->model, y->name,
	                        "%s [%llu, %llu) overlaps the %s of models[%llu] \"%.100s\" [%llu, %llu)",
	                        span_kind[b->kind],
	                        (unsigned long long)b->start, (unsigned long long)b->end,
	                        span_kind[a->kind],
	                        (unsigned long long)a->model, x->name,
	                        (unsigned long long)a->start, (unsigned long long)a->end);
}

/* Sorts every non-empty model and table range and refuses any overlap. */
static int check_overlaps(const apbi_manifest *m)
{
	span *s = malloc(3 * (m->n_models ? m->n_models : 1) * sizeof *s);
	size_t n = 0, widest = 0;
	int rc = 0;

	if (!s)
		return apbi_set_error(-ENOMEM, "out of memory checking model ranges");
	for (uint64_t i = 0; i < m->n_models; i++) {
		const apbi_model *mod = &m->models[i];
		if (mod->stored_size)
			s[n++] = (span){ mod->offset, mod->offset + mod->stored_size, i, SPAN_DATA };
		if (mod->has_block_table && mod->n_blocks)
			s[n++] = (span){ mod->blocks_offset, mod->blocks_offset + apbi_table_bytes(mod),
			                 i, SPAN_TABLE };
		if (mod->has_index && apbi_index_bytes(mod))
			s[n++] = (span){ mod->index_offset, mod->index_offset + apbi_index_bytes(mod),
			                 i, SPAN_INDEX };
	}
	qsort(s, n, sizeof *s, span_cmp);
	for (size_t k = 1; k < n; k++) {
		if (s[k].start < s[widest].end) {
			rc = overlap_error(m, &s[widest], &s[k]);
			break;
		}
		if (s[k].end > s[widest].end)
			widest = k;
	}
	free(s);
	return rc;
}

/* Builds the name index; refuses duplicate names. */
static int build_index(apbi_manifest *m)
{
	manifest_priv *p = m->priv;
	uint64_t cap = 8;

	while (cap < 2 * m->n_models)
		cap <<= 1;
	p->slots = calloc(cap, sizeof *p->slots);
	p->hashes = malloc((m->n_models ? m->n_models : 1) * sizeof *p->hashes);
	if (!p->slots || !p->hashes)
		return apbi_set_error(-ENOMEM, "out of memory indexing %llu models",
		                      (unsigned long long)m->n_models);
	p->mask = cap - 1;
	for (uint64_t i = 0; i < m->n_models; i++) {
		const apbi_model *mod = &m->models[i];
		uint64_t h = apbi_xxh3(mod->name, mod->name_len), k = h & p->mask;
		p->hashes[i] = h;
		for (; p->slots[k]; k = (k + 1) & p->mask) {
			const apbi_model *o = &m->models[p->slots[k] - 1];
			if (p->hashes[p->slots[k] - 1] == h && o->name_len == mod->name_len &&
			    memcmp(o->name, mod->name, mod->name_len) == 0)
				return apbi_model_error(APB_E_DUPLICATE, i, mod->name,
				                        "duplicate name (also models[%u])", p->slots[k] - 1);
		}
		p->slots[k] = (uint32_t)(i + 1);
	}
	return 0;
}

/* Picks the most common block size among models with a block table. */
static void common_block_size(apbi_manifest *m)
{
	uint64_t count[31] = { 0 }, best = 0;

	m->block_size = 0;
	for (uint64_t i = 0; i < m->n_models; i++) {
		if (m->models[i].has_block_table)
			count[__builtin_ctz(m->models[i].block_size)]++;
	}
	for (int b = 0; b <= 30; b++) {
		if (count[b] > best) {
			best = count[b];
			m->block_size = 1u << b;
		}
	}
}

/* Flags the models whose names cannot coexist in one tree (not an error). */
static int flag_clashes(apbi_manifest *m)
{
	const char **names = malloc((m->n_models ? m->n_models : 1) * sizeof *names);
	uint8_t *flags = malloc(m->n_models ? m->n_models : 1);
	ssize_t n = -ENOMEM;

	if (names && flags) {
		for (uint64_t i = 0; i < m->n_models; i++)
			names[i] = m->models[i].name;
		n = apbi_name_clashes(names, m->n_models, flags, NULL);
		for (uint64_t i = 0; n >= 0 && i < m->n_models; i++)
			m->models[i].clash = flags[i];
	} else {
		apbi_set_error(-ENOMEM, "out of memory checking model names");
	}
	free(names);
	free(flags);
	if (n < 0)
		return (int)n;
	m->n_clashes = (uint64_t)n;
	return 0;
}

int apbi_manifest_finish(apbi_manifest *m)
{
	int rc;

	if (m->data_start > m->file_size)
		return apbi_set_error(APB_E_TRUNCATED, "data section starts past the end of the file");
	if (m->n_models > UINT32_MAX - 1)
		return apbi_set_error(APB_E_CORRUPT, "%llu models: too many", (unsigned long long)m->n_models);
	for (uint64_t i = 0; i < m->n_models; i++) {
		apbi_model *mod = &m->models[i];
		if (mod->codec == APBI_CODEC_NONE)   /* legacy and v1: stored as served */
			mod->stored_size = mod->size;
		if (!mod->entry_size)
			mod->entry_size = 8;
		if ((rc = check_model_range(m, i)) < 0)
			return rc;
	}
	if ((rc = check_overlaps(m)) < 0 || (rc = build_index(m)) < 0 ||
	    (rc = flag_clashes(m)) < 0)
		return rc;
	common_block_size(m);
	return 0;
}

/* ---- queries ---- */

/**
 * Returns the index of the model called name, or -1 (also for NULL).
 * O(1) on average.
 */
int64_t apbi_manifest_find(const apbi_manifest *m, const char *name)
{
	const manifest_priv *p;
	size_t len;
	uint64_t h, k;

	if (!m || !name || !m->n_models)
		return -1;
	p = m->priv;
	len = strlen(name);
	h = apbi_xxh3(name, len);
	for (k = h & p->mask; p->slots[k]; k = (k + 1) & p->mask) {
		uint32_t i = p->slots[k] - 1;
		if (p->hashes[i] == h && m->models[i].name_len == len &&
		    memcmp(m->models[i].name, name, len) == 0)
			return i;
	}
	return -1;
}

/**
 * Frees m with its models, strings and index.  NULL is allowed.
 */
void apbi_manifest_free(apbi_manifest *m)
{
	manifest_priv *p;

	if (!m)
		return;
	p = m->priv;
	if (p) {
		arena_chunk *c = p->chunks;
		while (c) {
			arena_chunk *next = c->next;
			free(c);
			c = next;
		}
		free(p->slots);
		free(p->hashes);
		free(p);
	}
	free(m->models);
	free(m);
}

/**
 * Fills *out for model i (i < m->n_models); the pointers in it are owned
 * by m and valid until apbi_manifest_free(m).
 */
void apbi_model_info(const apbi_manifest *m, uint64_t i, apb_model_info *out)
{
	const apbi_model *mod = &m->models[i];

	out->name = mod->name;
	out->size = mod->size;
	out->file_offset = m->data_start + mod->offset;
	out->checksum = mod->checksum;
	out->has_checksum = mod->has_checksum;
	out->block_size = mod->block_size;
	out->metadata = &mod->md;
	out->n_blocks = mod->block_size ? mod->n_blocks : 0;
	out->has_block_table = mod->has_block_table;
	out->table_bound = !mod->has_block_table || mod->has_table_checksum;
	out->codec = (apb_codec)mod->codec;
	out->filter = (apb_filter)mod->filter;
	out->stored_size = mod->stored_size;
	out->name_clash = mod->clash;
}

/* ---- compressed block tables ---- */

/**
 * Decodes entry k of compressed model mod (docs/FORMAT.md section 4.2):
 * u64 LE XXH3 of the decoded block, u64 LE stored offset relative to the
 * model's offset; the block's stored length runs to the next entry's
 * offset (stored_size after the last).  Only what the two entries say is
 * checked, so a lying table fails the blocks it lies about.
 */
int apbi_block_locate(const apbi_model *mod, uint64_t i, uint64_t k, const uint8_t *entry,
                      const uint8_t *next, apbi_block_loc *out)
{
	uint64_t off = le64(entry + 8), end = next ? le64(next + 8) : mod->stored_size;
	uint64_t bs = mod->block_size;

	if (k >= mod->n_blocks || mod->entry_size != 16)
		return apbi_model_error(-EINVAL, i, mod->name, "block %llu: not a compressed block",
		                        (unsigned long long)k);
	out->checksum = le64(entry);
	out->offset = off;
	out->len = (uint32_t)(k + 1 < mod->n_blocks || mod->size % bs == 0 ? bs : mod->size % bs);
	if ((k == 0 && off != 0) || end <= off || end > mod->stored_size || end - off > out->len)
		return apbi_model_error(APB_E_CORRUPT, i, mod->name, "block %llu: table entry gives stored "
		                        "bytes %llu..%llu (model stores %llu bytes; the block decodes to %u)",
		                        (unsigned long long)k, (unsigned long long)off,
		                        (unsigned long long)end, (unsigned long long)mod->stored_size,
		                        out->len);
	out->stored_len = (uint32_t)(end - off);
	return 0;
}
