/*
 * check_shell.c - Check suite for apbundle-shell: history parsers, secret
 * filter, tokens, segment encoding, metadata, training and suggestions.
 *
 * Models are trained into the test's temp dir and read back through the
 * directory source (sh_dir_read), i.e. the same segment reader the tool
 * uses over the page cache; the bundle tests then build a real bundle and
 * read it through the PagedBundle (store.c, stats.c).  The command line is
 * tested end to end by tests/shell_test.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apbundle.h"
#include "shell.h"
#include "testutil.h"

/* ---- helpers ---- */

typedef struct collected {
	char *cmd[16];
	size_t n;
} collected;

static int collect(void *arg, const char *cmd, size_t len)
{
	collected *c = arg;

	ck_assert_uint_lt(c->n, 16);
	c->cmd[c->n++] = strndup(cmd, len);
	return 0;
}

static void collected_free(collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->cmd[i]);
}

static sh_hist_counts parse_str(const char *text, sh_hist_format fmt, const char *hint,
				collected *c, sh_hist_format *used)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	sh_hist_counts counts;

	ck_assert_ptr_nonnull(f);
	memset(c, 0, sizeof *c);
	ck_assert_int_eq(sh_history_parse(f, fmt, hint, collect, c, &counts, used), 0);
	fclose(f);
	return counts;
}

/* ---- history formats ---- */

static const char bash_hist[] =
	"#1700000000\ngit status\n#1700000001\nls -la /tmp\n\n   \n#not a stamp\n";

START_TEST(test_bash)
{
	collected c;
	sh_hist_format used;
	sh_hist_counts n = parse_str(bash_hist, SH_HIST_BASH, NULL, &c, &used);

	ck_assert_uint_eq(c.n, 3);
	ck_assert_str_eq(c.cmd[0], "git status");
	ck_assert_str_eq(c.cmd[1], "ls -la /tmp");
	ck_assert_str_eq(c.cmd[2], "#not a stamp");
	ck_assert_uint_eq(n.entries, 3);
	ck_assert_int_eq(used, SH_HIST_BASH);
	collected_free(&c);
}
END_TEST

static const char zsh_hist[] =
	": 1700000000:0;git status\n"
	": 1700000001:3;for i in 1 2; do\\\necho $i\\\ndone\n"
	": 1700000002:0;make\r\n"
	": 1700000003:0;echo caf\x83\xa9\n"
	"plain line\n"
	": 1700000004:0;tail\\\n";

START_TEST(test_zsh)
{
	collected c;
	sh_hist_format used;

	parse_str(zsh_hist, SH_HIST_ZSH, NULL, &c, &used);
	ck_assert_uint_eq(c.n, 6);
	ck_assert_str_eq(c.cmd[0], "git status");
	ck_assert_str_eq(c.cmd[1], "for i in 1 2; do\necho $i\ndone");
	ck_assert_str_eq(c.cmd[2], "make");
	ck_assert_str_eq(c.cmd[3], "echo caf\x89");  /* 0x83 0xa9 unmetafied: 0xa9 ^ 32 */
	ck_assert_str_eq(c.cmd[4], "plain line");
	ck_assert_str_eq(c.cmd[5], "tail");          /* file ended inside an entry */
	collected_free(&c);
}
END_TEST

static const char fish_hist[] =
	"- cmd: git status\n  when: 1700000000\n"
	"- cmd: vim src/a.c\n  when: 1700000001\n  paths:\n    - src/a.c\n"
	"- cmd: echo a\\nb \\\\ c\n  when: 1700000002\n";

START_TEST(test_fish)
{
	collected c;
	sh_hist_format used;

	parse_str(fish_hist, SH_HIST_FISH, NULL, &c, &used);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_str_eq(c.cmd[0], "git status");
	ck_assert_str_eq(c.cmd[1], "vim src/a.c");
	ck_assert_str_eq(c.cmd[2], "echo a\nb \\ c");
	collected_free(&c);
}
END_TEST

START_TEST(test_autodetect)
{
	collected c;
	sh_hist_format used;

	parse_str(zsh_hist, SH_HIST_AUTO, NULL, &c, &used);
	ck_assert_int_eq(used, SH_HIST_ZSH);
	ck_assert_str_eq(c.cmd[1], "for i in 1 2; do\necho $i\ndone");
	collected_free(&c);
	parse_str(fish_hist, SH_HIST_AUTO, NULL, &c, &used);
	ck_assert_int_eq(used, SH_HIST_FISH);
	ck_assert_uint_eq(c.n, 3);
	collected_free(&c);
	parse_str(bash_hist, SH_HIST_AUTO, NULL, &c, &used);
	ck_assert_int_eq(used, SH_HIST_BASH);
	ck_assert_uint_eq(c.n, 3);
	collected_free(&c);
	/* a plain zsh history (no extended lines) is recognised by its name */
	parse_str("ls\ncd \\\n/tmp\n", SH_HIST_AUTO, "/home/u/.zsh_history", &c, &used);
	ck_assert_int_eq(used, SH_HIST_ZSH);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_str_eq(c.cmd[1], "cd \n/tmp");
	collected_free(&c);
}
END_TEST

/* ---- secret filter ---- */

START_TEST(test_secrets)
{
	static const char *const bad[] = {
		"export GITHUB_TOKEN=ghp_abc", "curl -H 'Authorization: Bearer x' url",
		"mysql --password=hunter2", "echo PassWd", "aws configure set AWS_SECRET_ACCESS_KEY x",
		"API_KEY=1 ./run", "vault read secret/db", "gh auth login --with-token",
	};
	static const char *const good[] = { "git status", "ls -la", "make -j2", "passw" };
	collected c;
	sh_hist_format used;
	sh_hist_counts n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(sh_is_secret(bad[i], strlen(bad[i])), "not caught: %s", bad[i]);
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		ck_assert_msg(!sh_is_secret(good[i], strlen(good[i])), "false alarm: %s", good[i]);
	n = parse_str("ls\nexport TOKEN=1\n#17\nls\n", SH_HIST_BASH, NULL, &c, &used);
	ck_assert_uint_eq(n.entries, 3);
	ck_assert_uint_eq(n.secrets, 1);
	ck_assert_uint_eq(n.accepted, 2);
	ck_assert_uint_eq(c.n, 2);
	collected_free(&c);
}
END_TEST

/* ---- tokens and names ---- */

START_TEST(test_tokenize)
{
	const char *tok[8];
	size_t len[8];
	char big[SH_MAX_TOKEN + 8];

	ck_assert_int_eq(sh_tokenize("  git\tcommit \n -m  ", 19, tok, len, 8), 3);
	ck_assert_int_eq((int)len[1], 6);
	ck_assert(memcmp(tok[1], "commit", 6) == 0);
	ck_assert_int_eq(sh_tokenize("a\x01" "b", 3, tok, len, 8), -EINVAL);
	ck_assert_int_eq(sh_tokenize("a b c d", 7, tok, len, 2), 2);
	memset(big, 'x', sizeof big);
	ck_assert_int_eq(sh_tokenize(big, SH_MAX_TOKEN, tok, len, 8), 1);
	ck_assert_int_eq(sh_tokenize(big, SH_MAX_TOKEN + 1, tok, len, 8), -EINVAL);
	ck_assert(sh_token_nameable("git", 3));
	ck_assert(sh_token_nameable("docker-compose", 14));
	ck_assert(!sh_token_nameable("./configure", 11));
	ck_assert(!sh_token_nameable("..", 2));
	ck_assert(!sh_token_nameable("a/b", 3));
	ck_assert(!sh_token_nameable("~3f", 3));
}
END_TEST

/* ---- segments ---- */

static sh_source dir_source(void)
{
	sh_source s = { sh_dir_read, NULL, (void *)tu_tmpdir() };
	return s;
}

static void write_seg(const char *name, uint32_t kind, const sh_rec *r, size_t n)
{
	char *p = tu_path(name);
	FILE *f = fopen(p, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(sh_seg_write(f, kind, r, n), 0);
	ck_assert_int_eq(fclose(f), 0);
	free(p);
}

static const sh_rec seg_recs[] = {
	{ "apple", 5, 3 }, { "apricot", 7, 1 }, { "banana", 6, 9 }, { "band", 4, 2 },
	{ "bandana", 7, 4 }, { "cherry", 6, 7 },
};
#define NREC (sizeof seg_recs / sizeof seg_recs[0])

START_TEST(test_segment_roundtrip)
{
	sh_source src = dir_source();
	sh_seg seg;
	sh_seg_iter it;
	char key[SH_MAX_KEY];
	const char *k;
	uint32_t kl;
	uint64_t pos, cnt;
	size_t i = 0;

	write_seg("s", SH_SEG_PREFIX, seg_recs, NREC);
	ck_assert_int_eq(sh_seg_open(&seg, &src, "s", SH_SEG_PREFIX), 0);
	ck_assert_uint_eq(seg.count, NREC);
	ck_assert_int_eq(sh_seg_open(&seg, &src, "s", SH_SEG_NGRAM), -EBADMSG);
	ck_assert_int_eq(sh_seg_open(&seg, &src, "missing", SH_SEG_PREFIX), -ENOENT);
	ck_assert_int_eq(sh_seg_open(&seg, &src, "s", SH_SEG_PREFIX), 0);
	ck_assert_int_eq(sh_seg_get(&seg, 3, key, &kl, &cnt), 0);
	ck_assert(kl == 4 && memcmp(key, "band", 4) == 0 && cnt == 2);
	ck_assert_int_eq(sh_seg_lower_bound(&seg, "ban", 3, &pos), 0);
	ck_assert_uint_eq(pos, 2);
	ck_assert_int_eq(sh_seg_lower_bound(&seg, "band", 4, &pos), 0);
	ck_assert_uint_eq(pos, 3);
	ck_assert_int_eq(sh_seg_lower_bound(&seg, "a", 1, &pos), 0);
	ck_assert_uint_eq(pos, 0);
	ck_assert_int_eq(sh_seg_lower_bound(&seg, "zebra", 5, &pos), 0);
	ck_assert_uint_eq(pos, NREC);
	sh_seg_iter_init(&it, &seg, 0);
	while (sh_seg_next(&it, &k, &kl, &cnt) == 1) {
		ck_assert_uint_eq(kl, seg_recs[i].key_len);
		ck_assert(memcmp(k, seg_recs[i].key, kl) == 0);
		ck_assert_uint_eq(cnt, seg_recs[i].count);
		i++;
	}
	ck_assert_uint_eq(i, NREC);
}
END_TEST

/* A big segment: the iterator's record chunks and key window refill. */
START_TEST(test_segment_large)
{
	enum { N = 5000 };
	sh_rec *r = calloc(N, sizeof *r);
	char (*keys)[16] = calloc(N, 16);
	sh_source src = dir_source();
	sh_seg seg;
	sh_seg_iter it;
	const char *k;
	uint32_t kl;
	uint64_t pos, cnt, i = 0;

	for (int j = 0; j < N; j++) {
		r[j].key_len = (uint32_t)snprintf(keys[j], 16, "k%08d", j * 2);
		r[j].key = keys[j];
		r[j].count = (uint64_t)j;
	}
	write_seg("big", SH_SEG_NGRAM, r, N);
	ck_assert_int_eq(sh_seg_open(&seg, &src, "big", SH_SEG_NGRAM), 0);
	ck_assert_int_eq(sh_seg_lower_bound(&seg, "k00004001", 9, &pos), 0);
	ck_assert_uint_eq(pos, 2001);
	sh_seg_iter_init(&it, &seg, 0);
	while (sh_seg_next(&it, &k, &kl, &cnt) == 1) {
		ck_assert(kl == r[i].key_len && memcmp(k, r[i].key, kl) == 0 && cnt == i);
		i++;
	}
	ck_assert_uint_eq(i, N);
	free(r);
	free(keys);
}
END_TEST

/* Every truncation and a bad key range give a clean error, never a crash. */
START_TEST(test_segment_corrupt)
{
	sh_source src = dir_source();
	char *p = tu_path("s"), *q = tu_path("t");
	unsigned char *data;
	size_t len;
	sh_seg seg;
	sh_seg_iter it;
	const char *k;
	uint32_t kl;
	uint64_t pos, cnt;

	write_seg("s", SH_SEG_PREFIX, seg_recs, NREC);
	data = tu_read_file(p, &len);
	for (size_t cut = 0; cut < len; cut++) {
		int rc;
		tu_write_file(q, data, cut);
		rc = sh_seg_open(&seg, &src, "t", SH_SEG_PREFIX);
		if (rc == 0) {
			rc = sh_seg_lower_bound(&seg, "cherry", 6, &pos);
			sh_seg_iter_init(&it, &seg, 0);
			while (rc >= 0 && (rc = sh_seg_next(&it, &k, &kl, &cnt)) > 0)
				;
		}
		ck_assert_msg(rc == -EBADMSG, "cut at %zu gave %d", cut, rc);
	}
	data[SH_SEG_HEADER + 2 * SH_SEG_RECORD + 4] = 0xff; /* key length of record 2 */
	tu_write_file(q, data, len);
	ck_assert_int_eq(sh_seg_open(&seg, &src, "t", SH_SEG_PREFIX), 0);
	ck_assert_int_eq(sh_seg_lower_bound(&seg, "banana", 6, &pos), -EBADMSG);
	data[0] = 'X';
	tu_write_file(q, data, len);
	ck_assert_int_eq(sh_seg_open(&seg, &src, "t", SH_SEG_PREFIX), -EBADMSG);
	free(data);
	free(p);
	free(q);
}
END_TEST

/* ---- metadata ---- */

START_TEST(test_meta)
{
	sh_meta m = { .ngram = 3, .commands = 10, .vocabulary = 7, .distinct = 5,
		      .memory_limit_mb = 4, .freq_segments = 1, .segments = 9, .n_named = 2 };
	sh_meta back;
	char text[SH_META_MAX], bad[SH_META_MAX];
	int len;

	strcpy(m.named[0], "git");
	strcpy(m.named[1], "make");
	len = sh_meta_format(&m, text, sizeof text);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(sh_meta_parse(text, (size_t)len, &back), 0);
	ck_assert_uint_eq(back.ngram, 3);
	ck_assert_uint_eq(back.commands, 10);
	ck_assert_uint_eq(back.n_named, 2);
	ck_assert_str_eq(back.named[1], "make");
	ck_assert_int_eq(sh_meta_parse("hello\n", 6, &back), -EBADMSG);
	memcpy(bad, text, (size_t)len);
	memcpy(strstr(bad, "ngram 3"), "ngram 9", 7);
	ck_assert_int_eq(sh_meta_parse(bad, (size_t)len, &back), -EBADMSG);
	ck_assert_int_eq(sh_meta_parse(text, (size_t)(strstr(text, "vocab") - text), &back),
			 -EBADMSG);
}
END_TEST

/* ---- training and suggestions ---- */

static const char known_hist[] =
	"git commit -m fix\n"
	"git commit -m fix\n"
	"git commit --amend\n"
	"git push origin main\n"
	"git status\ngit status\ngit status\n"
	"gitk --all\n"
	"git log -n 5\n"
	"git diff -n 7\ngit diff -n 7\n"
	"make -j2\nmake install\n"
	"export GITHUB_TOKEN=abc\n"
	"./configure --prefix=/usr\n";

static sh_train_result train_str(const char *hist, unsigned ngram)
{
	FILE *f = fmemopen((void *)hist, strlen(hist), "r");
	sh_train_result res;

	ck_assert_ptr_nonnull(f);
	ck_assert_msg(sh_train_dir(f, SH_HIST_BASH, NULL, ngram, 10, tu_tmpdir(), &res) == 0,
		      "train: %s", sh_errmsg());
	fclose(f);
	return res;
}

typedef struct sugg {
	sh_cand c[SH_MAX_COUNT];
	sh_topk t;
	size_t base;
} sugg;

static sugg *suggest(const char *prefix, size_t max)
{
	static sugg s;
	sh_source src = dir_source();
	sh_meta m;

	ck_assert_int_eq(sh_meta_read(&src, &m), 0);
	s.t.c = s.c;
	s.t.max = max;
	ck_assert_msg(sh_suggest(&src, &m, prefix, &s.t, &s.base) == 0, "suggest: %s", sh_errmsg());
	return &s;
}

static bool has(const sugg *s, const char *tok)
{
	for (size_t i = 0; i < s->t.n; i++)
		if (strcmp(s->c[i].token, tok) == 0)
			return true;
	return false;
}

START_TEST(test_train_meta)
{
	sh_train_result res = train_str(known_hist, 3);
	struct stat st;
	char *p;

	ck_assert_uint_eq(res.meta.commands, 14);      /* 16 lines - 1 secret - 0 invalid */
	ck_assert_uint_eq(res.hist.secrets, 1);
	ck_assert_uint_eq(res.meta.distinct, 10);
	ck_assert_str_eq(res.models[0], SH_META_NAME);
	ck_assert_uint_eq(res.meta.segments, res.n_models - 1);
	ck_assert_str_eq(res.meta.named[0], "git");   /* most frequent first token */
	p = tu_path("segment/git");
	ck_assert_int_eq(stat(p, &st), 0);
	free(p);
	/* "./configure" cannot name a segment: it is hashed into a bucket */
	for (size_t i = 0; i < res.meta.n_named; i++)
		ck_assert_str_ne(res.meta.named[i], "./configure");
	sh_train_result_free(&res);
}
END_TEST

START_TEST(test_next_token)
{
	sh_train_result res = train_str(known_hist, 3);
	sugg *s = suggest("git ", 10);

	/* context (B, git): commit 3, status 3, diff 2, log 1, push 1 of 10 */
	ck_assert_uint_eq(s->t.n, 5);
	ck_assert_str_eq(s->c[0].token, "commit");
	ck_assert_str_eq(s->c[1].token, "status");
	ck_assert_str_eq(s->c[2].token, "diff");
	ck_assert(s->c[0].score > 0.2999 && s->c[0].score < 0.3001);
	ck_assert(!has(s, "gitk"));
	ck_assert_uint_eq(s->base, 4);
	s = suggest("git commit ", 10);
	ck_assert_uint_eq(s->t.n, 2);
	ck_assert_str_eq(s->c[0].token, "-m");
	ck_assert_str_eq(s->c[1].token, "--amend");
	s = suggest("git commit -m ", 10);
	ck_assert_uint_eq(s->t.n, 1);
	ck_assert_str_eq(s->c[0].token, "fix");
	ck_assert(s->c[0].score == 1.0);
	sh_train_result_free(&res);
}
END_TEST

/* Lookups use the full trained context (n-1 tokens), not one token less:
 * after "git log -n" the answer is 5, though "-n" alone is followed by 7
 * twice as often. */
START_TEST(test_context_length)
{
	sh_train_result res = train_str(known_hist, 3);
	sugg *s = suggest("git log -n ", 10);

	ck_assert_uint_ge(s->t.n, 1);
	ck_assert_str_eq(s->c[0].token, "5");
	ck_assert(s->c[0].score == 1.0);
	/* an unseen context backs off to the last token, with the back-off factor */
	s = suggest("git show -n ", 10);
	ck_assert_uint_eq(s->t.n, 2);
	ck_assert_str_eq(s->c[0].token, "7");
	ck_assert(s->c[0].score > SH_BACKOFF * 2 / 3 - 1e-9 && s->c[0].score < SH_BACKOFF * 2 / 3 + 1e-9);
	sh_train_result_free(&res);
}
END_TEST

START_TEST(test_bigram)
{
	sh_train_result res = train_str(known_hist, 2);
	sugg *s = suggest("git log -n ", 10);

	/* n = 2: the context is one token, "-n": 7 (2) before 5 (1) */
	ck_assert_uint_eq(s->t.n, 2);
	ck_assert_str_eq(s->c[0].token, "7");
	ck_assert_str_eq(s->c[1].token, "5");
	sh_train_result_free(&res);
}
END_TEST

START_TEST(test_current_token)
{
	sh_train_result res = train_str(known_hist, 3);
	sugg *s = suggest("gi", 10);

	ck_assert_uint_eq(s->t.n, 2);
	ck_assert_str_eq(s->c[0].token, "git");
	ck_assert_str_eq(s->c[1].token, "gitk");
	ck_assert_uint_eq(s->base, 0);
	ck_assert(s->c[0].score > 10.0 / 14 - 1e-9 && s->c[0].score < 10.0 / 14 + 1e-9);
	s = suggest("git com", 10);
	ck_assert_uint_eq(s->t.n, 1);
	ck_assert_str_eq(s->c[0].token, "commit");
	ck_assert_uint_eq(s->base, 4);
	s = suggest("make -", 10);
	ck_assert_uint_eq(s->t.n, 1);
	ck_assert_str_eq(s->c[0].token, "-j2");
	s = suggest("./con", 10);
	ck_assert_uint_eq(s->t.n, 1);
	ck_assert_str_eq(s->c[0].token, "./configure");
	s = suggest("./configure ", 10);            /* hashed segment */
	ck_assert_uint_eq(s->t.n, 1);
	ck_assert_str_eq(s->c[0].token, "--prefix=/usr");
	s = suggest("", 1);                          /* every first token, bounded */
	ck_assert_uint_eq(s->t.n, 1);
	ck_assert_str_eq(s->c[0].token, "git");
	sh_train_result_free(&res);
}
END_TEST

START_TEST(test_no_suggestions)
{
	sh_train_result res = train_str(known_hist, 3);

	ck_assert_uint_eq(suggest("zzz ", 5)->t.n, 0);
	ck_assert_uint_eq(suggest("zz", 5)->t.n, 0);
	ck_assert_uint_eq(suggest("export ", 5)->t.n, 0); /* the secret was dropped */
	ck_assert_uint_eq(suggest("git \x01", 5)->t.n, 0);
	ck_assert_uint_eq(suggest("git commit ", 1)->t.n, 1);
	sh_train_result_free(&res);
}
END_TEST

START_TEST(test_empty_history)
{
	FILE *f = fmemopen((void *)"#1700\n\nexport TOKEN=1\n", 22, "r");
	sh_train_result res;

	ck_assert_int_eq(sh_train_dir(f, SH_HIST_BASH, NULL, 3, 10, tu_tmpdir(), &res), -ENODATA);
	fclose(f);
	sh_train_result_free(&res);
}
END_TEST

START_TEST(test_topk)
{
	sh_cand c[3];
	sh_topk t = { c, 0, 3 };

	sh_topk_insert(&t, "b", 1, 1, 0.5);
	sh_topk_insert(&t, "a", 1, 1, 0.5);
	sh_topk_insert(&t, "z", 1, 1, 0.9);
	sh_topk_insert(&t, "y", 1, 1, 0.1);   /* full, worse than all: dropped */
	sh_topk_insert(&t, "ab", 2, 1, 0.5);  /* ties sort by token */
	ck_assert_uint_eq(t.n, 3);
	ck_assert_str_eq(c[0].token, "z");
	ck_assert_str_eq(c[1].token, "a");
	ck_assert_str_eq(c[2].token, "ab");
}
END_TEST

/* ---- through a real bundle and the page cache (store.c, stats.c) ---- */

static char *build_bundle(sh_train_result *res)
{
	char *work = tu_path("work"), *out = tu_path("m.apbundle");
	FILE *f = fmemopen((void *)known_hist, strlen(known_hist), "r");

	ck_assert_int_eq(mkdir(work, 0700), 0);
	ck_assert_int_eq(sh_train_dir(f, SH_HIST_BASH, NULL, 3, 1, work, res), 0);
	fclose(f);
	ck_assert_msg(sh_store_build(out, work, res->models, res->n_models) == 0, "%s", sh_errmsg());
	free(work);
	return out;
}

START_TEST(test_bundle_suggest)
{
	sh_train_result res;
	char *path = build_bundle(&res);
	struct apb_paged *pb;
	apb_paging_stats st;
	sh_source src;
	sh_meta m;
	sh_cand c[4];
	sh_topk t = { c, 0, 4 };
	size_t base;

	ck_assert_int_eq(sh_store_open(path, 1, &pb, &src), 0);
	ck_assert_int_eq(sh_meta_read(&src, &m), 0);
	ck_assert_uint_eq(m.segments, apb_paged_model_count(pb) - 1);
	ck_assert_uint_eq(m.memory_limit_mb, 1);
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(sh_suggest(&src, &m, i % 2 ? "git " : "gi", &t, &base), 0);
		ck_assert_str_eq(c[0].token, i % 2 ? "commit" : "git");
	}
	ck_assert_int_eq(sh_suggest(&src, &m, "git log -n ", &t, &base), 0);
	ck_assert_str_eq(c[0].token, "5");
	apb_paged_stats(pb, &st);
	ck_assert_uint_le(st.memory_used, 1u << 20);
	ck_assert_uint_gt(st.hits, 0);
	apb_paged_close(pb);
	ck_assert_int_eq(sh_store_open("/nonexistent/m.apbundle", 1, &pb, &src), -ENOENT);
	ck_assert(strstr(sh_errmsg(), "no model at /nonexistent/m.apbundle") != NULL);
	sh_train_result_free(&res);
	free(path);
}
END_TEST

START_TEST(test_bundle_stats)
{
	sh_train_result res;
	char *path = build_bundle(&res), *text = NULL;
	size_t len = 0;
	struct apb_paged *pb;
	sh_source src;
	sh_meta m;
	FILE *out = open_memstream(&text, &len);

	ck_assert_int_eq(sh_store_open(path, 2, &pb, &src), 0);
	ck_assert_int_eq(sh_meta_read(&src, &m), 0);
	ck_assert_int_eq(sh_stats_print(out, pb, &src, &m, 2), 0);
	fclose(out);
	ck_assert_msg(strncmp(text, "N-gram size: 3\nTotal commands: 14\nVocabulary size: ", 51) == 0,
		      "%s", text);
	ck_assert_ptr_nonnull(strstr(text, "\nMemory limit: 2 MiB\nLoaded bytes: "));
	ck_assert_ptr_nonnull(strstr(text, "\nLoaded segments: 1\n"));  /* freq/0 */
	ck_assert_ptr_nonnull(strstr(text, "\nTop commands:\n       3  git status\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nPage hits: "));
	apb_paged_close(pb);
	free(text);
	sh_train_result_free(&res);
	free(path);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("shell");
	TCase *hist = tcase_create("history"), *seg = tcase_create("segment"),
	      *model = tcase_create("model");

	tu_add_fixture(hist);
	tcase_add_test(hist, test_bash);
	tcase_add_test(hist, test_zsh);
	tcase_add_test(hist, test_fish);
	tcase_add_test(hist, test_autodetect);
	tcase_add_test(hist, test_secrets);
	tcase_add_test(hist, test_tokenize);
	suite_add_tcase(s, hist);
	tu_add_fixture(seg);
	tcase_add_test(seg, test_segment_roundtrip);
	tcase_add_test(seg, test_segment_large);
	tcase_add_test(seg, test_segment_corrupt);
	tcase_add_test(seg, test_meta);
	tcase_add_test(seg, test_topk);
	suite_add_tcase(s, seg);
	tu_add_fixture(model);
	tcase_add_test(model, test_train_meta);
	tcase_add_test(model, test_next_token);
	tcase_add_test(model, test_context_length);
	tcase_add_test(model, test_bigram);
	tcase_add_test(model, test_current_token);
	tcase_add_test(model, test_no_suggestions);
	tcase_add_test(model, test_empty_history);
	tcase_add_test(model, test_bundle_suggest);
	tcase_add_test(model, test_bundle_stats);
	suite_add_tcase(s, model);
	return s;
}

APB_TEST_MAIN()
