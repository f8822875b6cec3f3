/*
 * suggest.c - completions of a command-line prefix from the paged segments.
 *
 * A prefix ending in a blank (or empty) asks for the next token; otherwise
 * its last token is completed.  The first token comes from the prefix/<c>
 * buckets (score = count / trained commands); any later token from the
 * first token's n-gram segment: the context is the last min(n - 1, k + 1)
 * tokens of "B t0 .. t_{k-1}" (B = begin marker), exactly the length
 * training stored, and when it yields fewer than COUNT candidates the
 * lookup backs off to ever shorter contexts, scoring
 * count / context-total * SH_BACKOFF^(tokens dropped) ("stupid back-off").
 * Candidates are continuations of the context only: "git " never offers a
 * first token such as "gitk".
 *
 * Invariants: memory is bounded by COUNT candidates plus fixed buffers; the
 * segments are read through the source (the page cache) by binary search
 * and one sequential range scan per context, never materialized; a model
 * lookup that fails because a segment is absent yields no candidates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"

#define MAX_PREFIX_TOKENS (SH_MAX_CMD / 2 + 1)

static bool starts_with(const char *s, size_t sl, const char *p, size_t pl)
{
	return sl >= pl && memcmp(s, p, pl) == 0;
}

/** Inserts a candidate keeping the list sorted best first and bounded. */
void sh_topk_insert(sh_topk *out, const char *tok, size_t len, uint64_t count, double score)
{
	size_t pos = out->n;

	if (len > SH_MAX_TOKEN || out->max == 0)
		return;
	while (pos > 0) {
		const sh_cand *c = &out->c[pos - 1];
		int cmp = strncmp(tok, c->token, len);
		if (cmp == 0 && c->token[len] != '\0')
			cmp = -1;
		if (score < c->score || (score == c->score && cmp >= 0))
			break;
		pos--;
	}
	if (pos >= out->max)
		return;
	if (out->n == out->max)
		out->n--;
	memmove(&out->c[pos + 1], &out->c[pos], (out->n - pos) * sizeof *out->c);
	memcpy(out->c[pos].token, tok, len);
	out->c[pos].token[len] = '\0';
	out->c[pos].count = count;
	out->c[pos].score = score;
	out->n++;
}

static bool topk_has(const sh_topk *t, const char *tok, size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (strncmp(t->c[i].token, tok, len) == 0 && t->c[i].token[len] == '\0')
			return true;
	return false;
}

/* Scans the records of seg whose key starts with kp; calls fn on each. */
static int scan_prefix(sh_seg *seg, const char *kp, size_t kpl,
		       int (*fn)(void *, const char *, uint32_t, uint64_t), void *arg)
{
	sh_seg_iter *it = malloc(sizeof *it);
	const char *key;
	uint32_t kl;
	uint64_t pos, cnt;
	int rc;

	if (!it)
		return sh_err(-ENOMEM, "out of memory");
	if ((rc = sh_seg_lower_bound(seg, kp, kpl, &pos)) < 0)
		goto out;
	sh_seg_iter_init(it, seg, pos);
	while ((rc = sh_seg_next(it, &key, &kl, &cnt)) > 0) {
		if (!starts_with(key, kl, kp, kpl))
			break;
		if ((rc = fn(arg, key + kpl, kl - (uint32_t)kpl, cnt)) < 0)
			break;
	}
out:
	free(it);
	return rc < 0 ? rc : 0;
}

typedef struct first_scan {
	sh_topk *out;
	const char *partial;
	size_t plen;
	double total;
} first_scan;

static int add_first_tok(void *arg, const char *rest, uint32_t len, uint64_t count)
{
	first_scan *f = arg;
	char tok[SH_MAX_TOKEN + 1];

	if (f->plen + len > SH_MAX_TOKEN)
		return 0;
	memcpy(tok, f->partial, f->plen);
	memcpy(tok + f->plen, rest, len);
	sh_topk_insert(f->out, tok, f->plen + len, count, (double)count / f->total);
	return 0;
}

static int complete_first(const sh_source *src, const sh_meta *m, const char *partial,
			  size_t plen, sh_topk *out)
{
	static const char buckets[] = "abcdefghijklmnopqrstuvwxyz_";
	first_scan f = { out, partial, plen, m->commands ? (double)m->commands : 1.0 };
	char name[16];
	sh_seg seg;
	int rc;

	for (size_t b = 0; b < sizeof buckets - 1; b++) {
		if (plen)
			sh_prefix_bucket((unsigned char)partial[0], name);
		else
			snprintf(name, sizeof name, "prefix/%c", buckets[b]);
		rc = sh_seg_open(&seg, src, name, SH_SEG_PREFIX);
		if (rc == 0)
			rc = scan_prefix(&seg, partial, plen, add_first_tok, &f);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		if (plen)
			break;
	}
	return 0;
}

typedef struct next_scan {
	const sh_topk *have;     /* candidates from longer contexts */
	sh_topk level;           /* this context's best, ranked by count */
	const char *partial;
	size_t plen;
	uint64_t total;          /* all continuations of the context */
} next_scan;

static int add_next(void *arg, const char *tok, uint32_t len, uint64_t count)
{
	next_scan *ns = arg;

	ns->total += count;
	if (starts_with(tok, len, ns->partial, ns->plen) && !topk_has(ns->have, tok, len))
		sh_topk_insert(&ns->level, tok, len, count, (double)count);
	return 0;
}

static int complete_next(const sh_source *src, const sh_meta *m, const char **tok,
			 const size_t *len, size_t k, const char *partial, size_t plen,
			 sh_topk *out)
{
	next_scan ns = { .have = out, .partial = partial, .plen = plen };
	size_t lmax = k + 1 < m->ngram - 1 ? k + 1 : m->ngram - 1;
	double factor = 1.0;
	char name[96], *kp = NULL;
	sh_seg seg;
	int rc;

	sh_segment_name(m, tok[0], len[0], name);
	if ((rc = sh_seg_open(&seg, src, name, SH_SEG_NGRAM)) < 0)
		return rc == -ENOENT ? 0 : rc;
	ns.level.max = out->max;
	ns.level.c = malloc(out->max * sizeof *ns.level.c);
	kp = malloc(SH_MAX_KEY);
	if (!ns.level.c || !kp) {
		rc = sh_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (size_t l = lmax; l >= 1 && out->n < out->max; l--, factor *= SH_BACKOFF) {
		size_t kpl = sh_context_key(kp, tok, len, k, l);
		ns.level.n = 0;
		ns.total = 0;
		if ((rc = scan_prefix(&seg, kp, kpl, add_next, &ns)) < 0)
			goto out;
		for (size_t i = 0; i < ns.level.n; i++) {
			const sh_cand *c = &ns.level.c[i];
			sh_topk_insert(out, c->token, strlen(c->token), c->count,
				       factor * (double)c->count / (double)ns.total);
		}
	}
out:
	free(ns.level.c);
	free(kp);
	return rc;
}

/** Computes completions of prefix (see the header of this file). */
int sh_suggest(const sh_source *src, const sh_meta *m, const char *prefix,
	       sh_topk *out, size_t *base_len)
{
	size_t plen = strlen(prefix), k;
	const char **tok = NULL;
	size_t *len = NULL;
	const char *partial = "";
	size_t partial_len = 0;
	int n, rc;

	out->n = 0;
	*base_len = plen;
	if (plen > SH_MAX_CMD)
		return sh_err(-EINVAL, "prefix longer than %u bytes", SH_MAX_CMD);
	tok = malloc(MAX_PREFIX_TOKENS * sizeof *tok);
	len = malloc(MAX_PREFIX_TOKENS * sizeof *len);
	if (!tok || !len) {
		rc = sh_err(-ENOMEM, "out of memory");
		goto out;
	}
	rc = 0;
	n = sh_tokenize(prefix, plen, tok, len, MAX_PREFIX_TOKENS);
	if (n < 0)
		goto out; /* control bytes or a giant token: nothing to suggest */
	k = (size_t)n;
	if (k > 0 && tok[k - 1] + len[k - 1] == prefix + plen) {
		partial = tok[k - 1];
		partial_len = len[k - 1];
		*base_len = (size_t)(partial - prefix);
		k--;
	}
	if (k == 0)
		rc = complete_first(src, m, partial, partial_len, out);
	else
		rc = complete_next(src, m, tok, len, k, partial, partial_len, out);
out:
	free(tok);
	free(len);
	return rc;
}
