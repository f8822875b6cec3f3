/*
 * sim_trace.c - parser of the text trace format (apb_simulate_parse; the
 * format is documented at apb_paged_trace_start in apbundle.h) and the
 * escaping of model names shared with the recorder (trace.c).
 *
 * Every byte of a trace is untrusted: lines are split by hand, numbers
 * are checked for range and digits only, names are unescaped with a
 * closed set of sequences, and the tables grow by doubling with overflow
 * checks.  Invariants of a parsed trace: every access id < n_ids; every
 * page is below its model's declared size (when declared); model names
 * are unique; pages < 2^40, models < 2^24, accesses < 2^32.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "policy.h"
#include "sim.h"

/** See sim.h. */
size_t apbi_trace_escape(const char *name, char *out, size_t cap)
{
	size_t n = 0, w = 0;   /* needed, written */
	for (const char *p = name; *p; p++) {
		char esc = *p == '\\' ? '\\' : *p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r'
		         : *p == '#' && p == name ? '#' : 0;
		size_t k = esc ? 2 : 1;
		if (w == n && n + k < cap) {
			if (esc)
				out[w++] = '\\';
			out[w++] = esc ? esc : *p;
		}
		n += k;
	}
	if (cap)
		out[w] = '\0';
	return n;
}

/** See sim.h. */
const char *const apbi_trace_words[APBI_TR_COUNT] = {
	[APBI_TR_META] = "meta", [APBI_TR_CLAIM] = "claim", [APBI_TR_FILL] = "fill",
	[APBI_TR_DROP] = "drop", [APBI_TR_PARK] = "park", [APBI_TR_UNPARK] = "unpark",
	[APBI_TR_OBJECT] = "object", [APBI_TR_WAIT] = "wait", [APBI_TR_KEEP] = "keep",
};

/* Unescapes s[0..len) into a new string; NULL on a bad sequence or no memory. */
static char *unescape(const char *s, size_t len, int *err)
{
	char *out = malloc(len + 1), *o = out;
	*err = -ENOMEM;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\0' || c == '\t' || c == '\n' || c == '\r')
			goto bad;
		if (c == '\\') {
			c = ++i < len ? s[i] : 0;
			c = c == '\\' ? '\\' : c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r'
			  : c == '#' ? '#' : 0;
			if (!c)
				goto bad;
		}
		*o++ = c;
	}
	*o = '\0';
	*err = 0;
	return out;
bad:
	free(out);
	*err = -EINVAL;
	return NULL;
}

/* Decimal digits only, no sign, value <= max. */
static bool parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!len || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || (uint64_t)(s[i] - '0') > max ||
		    v > (max - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Pages of an object of size bytes (no overflow near UINT64_MAX). */
static uint64_t pages_of(uint64_t size, uint32_t page_size)
{
	return size / page_size + (size % page_size != 0);
}

static uint64_t hash_bytes(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static uint64_t hash_key(uint64_t k)
{
	k *= 0x9E3779B97F4A7C15ull;
	return k ^ (k >> 31);
}

/* Grows *p (n elements of size sz, capacity *cap) to hold one more. */
static int grow(void **p, uint64_t n, uint64_t *cap, size_t sz, uint64_t limit)
{
	uint64_t nc;
	void *q;
	if (n < *cap)
		return 0;
	if (n >= limit)
		return -EINVAL;
	nc = *cap ? *cap * 2 : 64;
	if (nc > limit)
		nc = limit;
	q = realloc(*p, (size_t)nc * sz);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

/* Rebuilds an open-addressing table of ids+1 for n entries at load <= 1/2. */
static int rehash(apb_sim_trace *t, bool names)
{
	uint32_t n = names ? t->n_models : t->n_ids;
	size_t size = 64, *mask = names ? &t->name_mask : &t->key_mask;
	uint32_t **tab = names ? &t->name_tab : &t->key_tab, *nt;
	while (size < 2 * (size_t)n + 2)
		size <<= 1;
	nt = calloc(size, sizeof *nt);
	if (!nt)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		size_t h = (size_t)(names ? hash_bytes(t->models[i].name) : hash_key(t->keys[i])) & (size - 1);
		while (nt[h])
			h = (h + 1) & (size - 1);
		nt[h] = i + 1;
	}
	free(*tab);
	*tab = nt;
	*mask = size - 1;
	return 0;
}

/* Index of model name (taking ownership of name), added when new. */
static int model_index(apb_sim_trace *t, char *name, uint32_t *out)
{
	size_t h = (size_t)hash_bytes(name) & t->name_mask;
	uint64_t cap = t->cap_models;
	int r;
	for (; t->name_tab[h]; h = (h + 1) & t->name_mask) {
		if (!strcmp(t->models[t->name_tab[h] - 1].name, name)) {
			free(name);
			*out = t->name_tab[h] - 1;
			return 0;
		}
	}
	if ((r = grow((void **)&t->models, t->n_models, &cap, sizeof *t->models, SIM_MAX_MODELS))) {
		free(name);
		return r;
	}
	t->cap_models = (uint32_t)cap;
	t->models[t->n_models] = (sim_model){ .name = name, .size = SIM_SIZE_UNKNOWN,
	                                      .obj = t->n_models };
	*out = t->n_models++;
	if (2 * (size_t)t->n_models + 2 > t->name_mask + 1)
		return rehash(t, true);
	t->name_tab[h] = *out + 1;
	return 0;
}

/* Id of (model, page), added when new. */
static int page_id(apb_sim_trace *t, uint32_t m, uint64_t page, uint32_t *out)
{
	uint64_t key = APBI_POL_ID(m, page), cap = t->cap_ids;
	size_t h = (size_t)hash_key(key) & t->key_mask;
	int r;
	for (; t->key_tab[h]; h = (h + 1) & t->key_mask) {
		if (t->keys[t->key_tab[h] - 1] == key) {
			*out = t->key_tab[h] - 1;
			return 0;
		}
	}
	if ((r = grow((void **)&t->keys, t->n_ids, &cap, sizeof *t->keys, UINT32_MAX - 1)))
		return r;
	t->cap_ids = (uint32_t)cap;
	t->keys[t->n_ids] = key;
	*out = t->n_ids++;
	if (2 * (size_t)t->n_ids + 2 > t->key_mask + 1)
		return rehash(t, false);
	t->key_tab[h] = *out + 1;
	return 0;
}

/* Appends event ev (FILL: as kind) of page id. */
static int add_event(apb_sim_trace *t, uint32_t id, enum apbi_trace_ev ev, uint8_t kind)
{
	uint64_t cap = t->cap_ev;
	int r = grow((void **)&t->evs, t->n_ev, &cap, sizeof *t->evs, (uint64_t)UINT32_MAX * 4);
	if (r)
		return r;
	t->cap_ev = cap;
	t->evs[t->n_ev++] = (struct sim_event){ .id = id, .ev = (uint8_t)ev, .kind = kind };
	return 0;
}

/* Maps cache object number k to model m (k must be unmapped). */
static int map_object(apb_sim_trace *t, uint64_t k, uint32_t m)
{
	uint64_t cap = t->cap_objs;
	if (k >= SIM_MAX_MODELS || (k < t->n_objs && t->objs[k] != UINT32_MAX))
		return -EINVAL;
	while (t->n_objs <= k) {
		int r = grow((void **)&t->objs, t->n_objs, &cap, sizeof *t->objs, SIM_MAX_MODELS);
		if (r)
			return r;
		t->cap_objs = (uint32_t)cap;
		t->objs[t->n_objs++] = UINT32_MAX;
	}
	t->objs[k] = m;
	t->models[m].obj = (uint32_t)k;
	return 0;
}

/* Splits s[0..len) at single spaces into at most max words; the count, or -1. */
static int split_words(const char *s, size_t len, const char *w[], size_t wl[], int max)
{
	int n = 0;
	for (size_t i = 0; i <= len; n++) {
		const char *sp = memchr(s + i, ' ', len - i);
		size_t end = sp ? (size_t)(sp - s) : len;
		if (n == max || end == i)
			return -1;   /* too many words, or an empty one */
		w[n] = s + i;
		wl[n] = end - i;
		i = end + 1;
	}
	return n;
}

/* "#@ object K SIZE": metadata object K (a block table or its index). */
static int parse_object(apb_sim_trace *t, uint64_t k, uint64_t size, size_t line)
{
	uint64_t cap = t->cap_models;
	char *name = malloc(32);
	int r = name ? grow((void **)&t->models, t->n_models, &cap, sizeof *t->models,
	                    SIM_MAX_MODELS) : -ENOMEM;
	if (r) {
		free(name);
		return apbi_set_error(r, "trace line %zu: too many objects", line);
	}
	t->cap_models = (uint32_t)cap;
	snprintf(name, 32, "#@ object %llu", (unsigned long long)k);
	t->models[t->n_models] = (sim_model){ .name = name, .size = size, .meta = true };
	if ((r = map_object(t, k, t->n_models)) < 0) {
		free(name);
		return apbi_set_error(r, "trace line %zu: object %llu declared again or out of range",
		                      line, (unsigned long long)k);
	}
	t->n_models++;
	t->records = true;
	return 0;
}

/* "#@ WORD OBJ PAGE[ KIND]" or "#@ object K SIZE" (s after "#@ "); unknown
 * words are comments. */
static int parse_record(apb_sim_trace *t, const char *s, size_t len, size_t line)
{
	const char *w[4], *sp = memchr(s, ' ', len);
	size_t wl[4], wl0 = sp ? (size_t)(sp - s) : len;
	uint64_t obj, page, kind = 0;
	uint32_t m, id, ev;
	int n, r;
	for (ev = APBI_TR_LOOKUP + 1; ev < APBI_TR_COUNT; ev++)
		if (strlen(apbi_trace_words[ev]) == wl0 && !memcmp(s, apbi_trace_words[ev], wl0))
			break;
	if (ev == APBI_TR_COUNT)
		return 0;   /* not a record this reader knows: a comment */
	n = split_words(s, len, w, wl, 4);   /* -1 when malformed */
	if (n != (ev == APBI_TR_FILL ? 4 : 3) || !parse_u64(w[1], wl[1], UINT32_MAX, &obj) ||
	    !parse_u64(w[2], wl[2], ev == APBI_TR_OBJECT ? UINT64_MAX - 1 : SIM_MAX_PAGE - 1, &page) ||
	    (n == 4 && !parse_u64(w[3], wl[3], APBI_POL_READAHEAD, &kind)))
		return apbi_set_error(-EINVAL, "trace line %zu: expected \"#@ %s %s\"", line,
		                      apbi_trace_words[ev], ev == APBI_TR_OBJECT ? "K SIZE"
		                      : ev == APBI_TR_FILL ? "OBJECT PAGE KIND" : "OBJECT PAGE");
	if (ev == APBI_TR_OBJECT)
		return parse_object(t, obj, page, line);
	if (obj >= t->n_objs || (m = t->objs[obj]) == UINT32_MAX ||
	    (ev == APBI_TR_META && !t->models[m].meta))
		return apbi_set_error(-EINVAL, "trace line %zu: object %llu is not declared%s", line,
		                      (unsigned long long)obj, ev == APBI_TR_META ? " as metadata" : "");
	if (t->page_size && page >= pages_of(t->models[m].size, t->page_size))
		return apbi_set_error(-EINVAL, "trace line %zu: page %llu is beyond the end of object "
		                      "%llu", line, (unsigned long long)page, (unsigned long long)obj);
	t->models[m].used = true;
	t->records = true;
	if ((r = page_id(t, m, page, &id)) < 0 ||
	    (r = add_event(t, id, (enum apbi_trace_ev)ev, (uint8_t)kind)) < 0)
		return apbi_set_error(r, "trace line %zu: too many pages or events", line);
	return 0;
}

/* "# page_size N" and "# model NAME SIZE"; other comments are ignored. */
static int parse_comment(apb_sim_trace *t, const char *s, size_t len, size_t line)
{
	uint64_t v;
	uint32_t m;
	const char *sp;
	char *name;
	int r;
	if (len > 12 && !memcmp(s, "# page_size ", 12)) {
		if (!parse_u64(s + 12, len - 12, 1u << 30, &v) || v < 512 || (v & (v - 1)) ||
		    (t->page_size && t->page_size != v) || t->n_ev || t->records)
			return apbi_set_error(-EINVAL, "trace line %zu: bad or late page_size (a power "
			                      "of two from 512 to 1G, once, before any access or "
			                      "record)", line);
		t->page_size = (uint32_t)v;
		return 0;
	}
	if (len < 8 || memcmp(s, "# model ", 8))
		return 0;
	sp = s + len;
	while (sp > s + 8 && sp[-1] != ' ')
		sp--;
	if (sp == s + 8 || !parse_u64(sp, (size_t)(s + len - sp), UINT64_MAX - 1, &v))
		return apbi_set_error(-EINVAL, "trace line %zu: expected \"# model NAME SIZE\"", line);
	if (!(name = unescape(s + 8, (size_t)(sp - 1 - (s + 8)), &r)) || !*name) {
		free(name);
		return apbi_set_error(r ? r : -EINVAL, "trace line %zu: bad model name", line);
	}
	if ((r = model_index(t, name, &m)) < 0)
		return apbi_set_error(r, "trace line %zu: too many models", line);
	if (t->models[m].used || (t->models[m].size != SIM_SIZE_UNKNOWN && t->models[m].size != v))
		return apbi_set_error(-EINVAL, "trace line %zu: model declared again or after its "
		                      "first access", line);
	if (t->records)
		return apbi_set_error(-EINVAL, "trace line %zu: model declared after a \"#@ \" "
		                      "record", line);
	if (t->models[m].size == SIM_SIZE_UNKNOWN &&
	    (r = map_object(t, t->n_declared++, m)) < 0)   /* the i-th declared is object i */
		return apbi_set_error(r, "trace line %zu: too many models", line);
	t->models[m].size = v;
	return 0;
}

/* "NAME<TAB>PAGE": one lookup. */
static int parse_access(apb_sim_trace *t, const char *s, size_t len, size_t line)
{
	const char *tab = memrchr(s, '\t', len);
	uint64_t page;
	uint32_t m, id;
	char *name;
	int r;
	if (!tab || tab == s || !parse_u64(tab + 1, (size_t)(s + len - tab - 1), SIM_MAX_PAGE - 1, &page))
		return apbi_set_error(-EINVAL, "trace line %zu: expected NAME<TAB>PAGE", line);
	if (!(name = unescape(s, (size_t)(tab - s), &r)))
		return apbi_set_error(r, "trace line %zu: bad model name", line);
	if ((r = model_index(t, name, &m)) < 0)
		return apbi_set_error(r, "trace line %zu: too many models", line);
	t->models[m].used = true;
	if (t->models[m].size != SIM_SIZE_UNKNOWN && t->page_size &&
	    page >= pages_of(t->models[m].size, t->page_size))
		return apbi_set_error(-EINVAL, "trace line %zu: page %llu is beyond the end of its "
		                      "model (%llu bytes)", line, (unsigned long long)page,
		                      (unsigned long long)t->models[m].size);
	if (t->n_acc == UINT32_MAX - 1)   /* Belady numbers lookups in 32 bits */
		return apbi_set_error(-EINVAL, "trace line %zu: too many lookups", line);
	if ((r = page_id(t, m, page, &id)) < 0 || (r = add_event(t, id, APBI_TR_LOOKUP, 0)) < 0)
		return apbi_set_error(r, "trace line %zu: too many pages or lookups", line);
	t->n_acc++;
	return 0;
}

/** See apbundle.h. */
int apb_simulate_parse(const char *text, size_t len, apb_sim_trace **out)
{
	apb_sim_trace *t = calloc(1, sizeof *t);
	size_t line = 0;
	int r = -ENOMEM;
	*out = NULL;
	if (!t || rehash(t, true) || rehash(t, false))
		goto fail;
	for (size_t pos = 0; pos < len;) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl != NULL);
		line++;
		if (!n)
			continue;
		r = n > 3 && !memcmp(s, "#@ ", 3) ? parse_record(t, s + 3, n - 3, line)
		  : s[0] == '#' ? parse_comment(t, s, n, line) : parse_access(t, s, n, line);
		if (r < 0)
			goto fail;
	}
	*out = t;
	return 0;
fail:
	apb_simulate_free(t);
	return r == -ENOMEM ? apbi_set_error(r, "out of memory parsing the trace") : r;
}

/** See apbundle.h. */
int apb_simulate_load(const char *path, apb_sim_trace **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	*out = NULL;
	if (fd < 0)
		return apbi_set_error(-errno, "%.200s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = apbi_set_error(-EINVAL, "%.200s: not a regular file", path);
		goto out;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		r = apbi_set_error(-ENOMEM, "%.200s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = apbi_set_error(n < 0 ? -errno : -EIO, "%.200s: read failed", path);
			goto out;
		}
		got += (size_t)n;
	}
	r = apb_simulate_parse(buf, got, out);
out:
	free(buf);
	close(fd);
	return r;
}

/** See apbundle.h. */
void apb_simulate_free(apb_sim_trace *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n_models; i++)
		free(t->models[i].name);
	free(t->models);
	free(t->name_tab);
	free(t->keys);
	free(t->key_tab);
	free(t->evs);
	free(t->objs);
	free(t);
}

/** See apbundle.h. */
uint64_t apb_simulate_accesses(const apb_sim_trace *t)
{
	return t->n_acc;
}

/** See apbundle.h. */
uint32_t apb_simulate_page_size(const apb_sim_trace *t)
{
	return t->page_size;
}
