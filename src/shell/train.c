/*
 * train.c - counts n-grams, first tokens and commands; writes the segments.
 *
 * Model (n = --ngram, context length C = n - 1): each command t0..tm-1 is
 * padded with a begin marker B, and for every position i >= 1 (up to
 * SH_MAX_POSITIONS) the next token t_i is counted after each context made
 * of the last L tokens of B t0 .. t_{i-1}, for L = min(C, i + 1) down to 1.
 * The longest one is the context suggest looks up first (same length as
 * here, never C - 1); the shorter ones are its back-off.  Keys are
 * "t0 \x01 ctx-tokens-joined-by-space \x02 t_i" and go to t0's segment.
 *
 * Invariants: training memory is proportional to the distinct n-grams,
 * first tokens and commands of the history (hash tables, counter.c); every
 * model is written streaming to its own file below the work directory and
 * each is sorted as segment.c requires; the number of models is bounded
 * (SH_NAMED_SEGMENTS + SH_HASH_SEGMENTS + 27 prefix + SH_FREQ_SEGMENTS + 1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shell.h"

#define MAX_TOKENS (SH_MAX_CMD / 2 + 1)
#define NGROUPS (SH_NAMED_SEGMENTS + SH_HASH_SEGMENTS)

typedef struct trainer {
	unsigned ctx;                 /* context length C = n - 1 */
	sh_counter ngrams, firsts, vocab, freq;
	uint64_t invalid;
	const char *tok[MAX_TOKENS];
	size_t len[MAX_TOKENS];
	char key[SH_MAX_KEY + SH_MAX_CMD];
} trainer;

static int count_ngrams(trainer *t, size_t n)
{
	size_t npos = n < SH_MAX_POSITIONS ? n : SH_MAX_POSITIONS;
	int rc;

	for (size_t i = 1; i < npos; i++) {
		size_t have = i + 1; /* B t0 .. t_{i-1} */
		size_t lmax = have < t->ctx ? have : t->ctx;
		for (size_t l = lmax; l >= 1; l--) {
			size_t o = sh_context_key(t->key, t->tok, t->len, i, l);
			memcpy(t->key + o, t->tok[i], t->len[i]);
			o += t->len[i];
			if ((rc = sh_counter_add(&t->ngrams, t->key, o, 1)) < 0)
				return rc;
		}
	}
	return 0;
}

static int on_command(void *arg, const char *cmd, size_t len)
{
	trainer *t = arg;
	int n = sh_tokenize(cmd, len, t->tok, t->len, MAX_TOKENS);
	size_t o = 0;
	int rc;

	if (n <= 0) {
		t->invalid++;
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (i)
			t->key[o++] = ' ';
		memcpy(t->key + o, t->tok[i], t->len[i]);
		o += t->len[i];
		if ((rc = sh_counter_add(&t->vocab, t->tok[i], t->len[i], 1)) < 0)
			return rc;
	}
	if ((rc = sh_counter_add(&t->freq, t->key, o, 1)) < 0 ||
	    (rc = sh_counter_add(&t->firsts, t->tok[0], t->len[0], 1)) < 0)
		return rc;
	return count_ngrams(t, (size_t)n);
}

/* ---- sorting ---- */

static int cmp_key(const sh_counter *c, const sh_entry *a, const sh_entry *b)
{
	size_t l = a->key_len < b->key_len ? a->key_len : b->key_len;
	int r = memcmp(sh_counter_key(c, a), sh_counter_key(c, b), l);

	if (r)
		return r;
	return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static int cmp_aux_key(const void *x, const void *y, void *arg)
{
	const sh_entry *a = x, *b = y;

	if (a->aux != b->aux)
		return a->aux < b->aux ? -1 : 1;
	return cmp_key(arg, a, b);
}

static int cmp_count_key(const void *x, const void *y, void *arg)
{
	const sh_entry *a = x, *b = y;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return cmp_key(arg, a, b);
}

/* ---- writing ---- */

typedef struct writer {
	const char *dir;
	sh_train_result *res;
	sh_rec *recs;
} writer;

static int add_name(sh_train_result *res, const char *name)
{
	char **m = realloc(res->models, (res->n_models + 1) * sizeof *m);

	if (!m)
		return sh_err(-ENOMEM, "out of memory");
	res->models = m;
	if (!(m[res->n_models] = strdup(name)))
		return sh_err(-ENOMEM, "out of memory");
	res->n_models++;
	return 0;
}

static int write_model(writer *w, const char *name, uint32_t kind, const sh_rec *recs,
		       size_t n, const char *text, size_t text_len)
{
	char path[4096];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof path, "%s/%s", w->dir, name);
	if (!(f = fopen(path, "wbe")))
		return sh_err(-errno, "cannot create %s: %s", path, strerror(errno));
	if (text)
		rc = fwrite(text, text_len, 1, f) == 1 ? 0 : sh_err(-EIO, "writing %s", path);
	else
		rc = sh_seg_write(f, kind, recs, n);
	if (fclose(f) != 0 && rc == 0)
		rc = sh_err(-EIO, "writing %s: %s", path, strerror(errno));
	return rc < 0 ? rc : add_name(w->res, name);
}

/* Writes consecutive runs of entries with equal aux as one segment each. */
static int write_groups(writer *w, const sh_counter *c, sh_entry *e, size_t n, uint32_t kind,
			void (*name_of)(const sh_counter *, const sh_entry *, void *, char *),
			void *arg)
{
	char name[96];
	size_t i = 0;
	int rc;

	while (i < n) {
		size_t j = i;
		for (; j < n && e[j].aux == e[i].aux; j++) {
			w->recs[j - i].key = sh_counter_key(c, &e[j]);
			w->recs[j - i].key_len = e[j].key_len;
			w->recs[j - i].count = e[j].count;
		}
		name_of(c, &e[i], arg, name);
		if ((rc = write_model(w, name, kind, w->recs, j - i, NULL, 0)) < 0)
			return rc;
		i = j;
	}
	return 0;
}

static void prefix_name(const sh_counter *c, const sh_entry *e, void *arg, char *out)
{
	sh_prefix_bucket((unsigned char)sh_counter_key(c, e)[0], out);
}

static void ngram_name(const sh_counter *c, const sh_entry *e, void *arg, char *out)
{
	const sh_meta *m = arg;

	if (e->aux < SH_NAMED_SEGMENTS)
		snprintf(out, 96, "segment/%s", m->named[e->aux]);
	else
		snprintf(out, 96, "segment/~%02x", (unsigned)(e->aux - SH_NAMED_SEGMENTS));
}

static void freq_name(const sh_counter *c, const sh_entry *e, void *arg, char *out)
{
	snprintf(out, 96, "freq/%u", (unsigned)e->aux);
}

static int pick_named(trainer *t, sh_meta *m)
{
	sh_entry *e = sh_counter_pack(&t->firsts);

	qsort_r(e, t->firsts.len, sizeof *e, cmp_count_key, &t->firsts);
	for (size_t i = 0; i < t->firsts.len && m->n_named < SH_NAMED_SEGMENTS; i++) {
		const char *k = sh_counter_key(&t->firsts, &e[i]);
		if (!sh_token_nameable(k, e[i].key_len))
			continue;
		memcpy(m->named[m->n_named], k, e[i].key_len);
		m->named[m->n_named++][e[i].key_len] = '\0';
	}
	return 0;
}

static int write_prefix(writer *w, trainer *t)
{
	sh_entry *e = t->firsts.slots; /* packed by pick_named */
	char name[16];

	for (size_t i = 0; i < t->firsts.len; i++) {
		sh_prefix_bucket((unsigned char)sh_counter_key(&t->firsts, &e[i])[0], name);
		e[i].aux = (unsigned char)name[7];
	}
	qsort_r(e, t->firsts.len, sizeof *e, cmp_aux_key, &t->firsts);
	return write_groups(w, &t->firsts, e, t->firsts.len, SH_SEG_PREFIX, prefix_name, NULL);
}

static uint32_t group_of(const sh_meta *m, const char *key, size_t len)
{
	const char *sep = memchr(key, SH_SEP_FIRST, len);
	size_t fl = sep ? (size_t)(sep - key) : len;

	for (unsigned i = 0; i < m->n_named; i++)
		if (m->named[i][fl] == '\0' && memcmp(m->named[i], key, fl) == 0)
			return i;
	return SH_NAMED_SEGMENTS + (uint32_t)(sh_hash(key, fl) % SH_HASH_SEGMENTS);
}

static int write_ngrams(writer *w, trainer *t, sh_meta *m)
{
	sh_entry *e = sh_counter_pack(&t->ngrams);

	for (size_t i = 0; i < t->ngrams.len; i++)
		e[i].aux = group_of(m, sh_counter_key(&t->ngrams, &e[i]), e[i].key_len);
	qsort_r(e, t->ngrams.len, sizeof *e, cmp_aux_key, &t->ngrams);
	return write_groups(w, &t->ngrams, e, t->ngrams.len, SH_SEG_NGRAM, ngram_name, m);
}

/* freq/<k>: commands by falling count, in at most SH_FREQ_SEGMENTS chunks of
 * about 256 KiB each. */
static int write_freq(writer *w, trainer *t, sh_meta *m)
{
	sh_entry *e = sh_counter_pack(&t->freq);
	size_t n = t->freq.len, bytes = 0, chunks, per;

	qsort_r(e, n, sizeof *e, cmp_count_key, &t->freq);
	for (size_t i = 0; i < n; i++)
		bytes += SH_SEG_RECORD + e[i].key_len;
	chunks = bytes / (256u << 10) + 1;
	if (chunks > SH_FREQ_SEGMENTS)
		chunks = SH_FREQ_SEGMENTS;
	per = (n + chunks - 1) / chunks;
	for (size_t i = 0; i < n; i++)
		e[i].aux = (uint32_t)(i / per);
	m->freq_segments = n ? e[n - 1].aux + 1 : 0;
	return write_groups(w, &t->freq, e, n, SH_SEG_FREQ, freq_name, NULL);
}

static int make_dirs(const char *dir)
{
	static const char *const sub[] = { "segment", "prefix", "freq" };
	char path[4096];

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, sub[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return sh_err(-errno, "cannot create %s: %s", path, strerror(errno));
	}
	return 0;
}

static int write_all(trainer *t, const char *dir, sh_train_result *res)
{
	writer w = { .dir = dir, .res = res };
	size_t most = t->ngrams.len > t->freq.len ? t->ngrams.len : t->freq.len;
	char text[SH_META_MAX];
	int rc, len;

	if (!(w.recs = malloc((most > t->firsts.len ? most : t->firsts.len) * sizeof *w.recs + 1)))
		return sh_err(-ENOMEM, "out of memory");
	if ((rc = make_dirs(dir)) < 0 || (rc = pick_named(t, &res->meta)) < 0 ||
	    (rc = write_prefix(&w, t)) < 0 || (rc = write_ngrams(&w, t, &res->meta)) < 0 ||
	    (rc = write_freq(&w, t, &res->meta)) < 0)
		goto out;
	res->meta.segments = (unsigned)res->n_models;
	if ((len = sh_meta_format(&res->meta, text, sizeof text)) < 0) {
		rc = sh_err(-ENOSPC, "model metadata too large");
		goto out;
	}
	if ((rc = write_model(&w, SH_META_NAME, 0, NULL, 0, text, (size_t)len)) == 0) {
		char *meta = res->models[res->n_models - 1]; /* put "meta" first */
		memmove(res->models + 1, res->models, (res->n_models - 1) * sizeof *res->models);
		res->models[0] = meta;
	}
out:
	free(w.recs);
	return rc;
}

/** Trains a model from history f and writes its segments below dir. */
int sh_train_dir(FILE *f, sh_hist_format fmt, const char *path_hint, unsigned ngram,
		 uint64_t limit_mb, const char *dir, sh_train_result *res)
{
	trainer *t = calloc(1, sizeof *t);
	int rc;

	memset(res, 0, sizeof *res);
	if (!t)
		return sh_err(-ENOMEM, "out of memory");
	t->ctx = ngram - 1;
	sh_counter_init(&t->ngrams);
	sh_counter_init(&t->firsts);
	sh_counter_init(&t->vocab);
	sh_counter_init(&t->freq);
	rc = sh_history_parse(f, fmt, path_hint, on_command, t, &res->hist, &res->format);
	if (rc < 0)
		goto out;
	res->invalid = t->invalid;
	res->meta.ngram = ngram;
	res->meta.commands = res->hist.accepted - t->invalid;
	res->meta.vocabulary = t->vocab.len;
	res->meta.distinct = t->freq.len;
	res->meta.memory_limit_mb = limit_mb;
	sh_counter_free(&t->vocab);
	if (res->meta.commands == 0) {
		rc = sh_err(-ENODATA, "no usable commands in the history");
		goto out;
	}
	rc = write_all(t, dir, res);
out:
	sh_counter_free(&t->ngrams);
	sh_counter_free(&t->firsts);
	sh_counter_free(&t->freq);
	free(t);
	return rc;
}

/** Frees the model name list of a training result. */
void sh_train_result_free(sh_train_result *res)
{
	for (size_t i = 0; i < res->n_models; i++)
		free(res->models[i]);
	free(res->models);
	res->models = NULL;
	res->n_models = 0;
}
