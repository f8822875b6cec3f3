/*
 * shell.h - declarations shared by apbundle-shell's modules.
 *
 * Layout of a model bundle written by `apbundle-shell train` (see
 * docs/man/apbundle-shell.1, "MODEL FORMAT"):
 *   meta            small text model: n, counts, named segment list
 *   segment/<tok>   n-gram records of commands whose first token is <tok>
 *                   (the SH_NAMED_SEGMENTS most frequent name-safe tokens)
 *   segment/~<hh>   the same for every other first token, hashed into
 *                   SH_HASH_SEGMENTS buckets (hh = two hex digits)
 *   prefix/<c>      first tokens and their counts, bucketed by first letter
 *                   (lower-cased a-z; "_" for everything else)
 *   freq/<k>        distinct commands by falling count, split in rank chunks
 * Every segment is a sorted table of (key, count) records (segment.c), so
 * the number of models, and hence the manifest, is bounded whatever the
 * history's size, and a lookup reads only a few pages of one segment.
 *
 * Errors: functions return 0 / a count on success and a negative errno on
 * failure, after recording a message with sh_err(); main prints it.
 */
#ifndef APB_SHELL_H
#define APB_SHELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define SH_MAX_TOKEN     255u   /* bytes in one token */
#define SH_MAX_CMD       4096u  /* bytes in one command (after joining lines) */
#define SH_MAX_POSITIONS 64u    /* tokens per command used for training */
#define SH_MAX_KEY       4096u  /* bytes in one segment key */
#define SH_NGRAM_MIN     2
#define SH_NGRAM_MAX     8
#define SH_NGRAM_DEFAULT 3
#define SH_PAGE_SIZE     4096u  /* page size used to read models */
#define SH_NAMED_SEGMENTS 32u   /* first tokens with a segment of their own */
#define SH_NAMED_MAXLEN   64u   /* longest token used in a segment name */
#define SH_HASH_SEGMENTS  32u   /* buckets for all other first tokens */
#define SH_FREQ_SEGMENTS  8u    /* at most this many freq/<k> chunks */
#define SH_MAX_COUNT      1000u /* largest -n */
#define SH_DEFAULT_LIMIT_MB 10u
#define SH_BACKOFF        0.4   /* score factor per context token dropped */

/* Separators inside n-gram keys: "first \x01 ctx-tokens \x02 next". */
#define SH_SEP_FIRST '\x01'
#define SH_SEP_NEXT  '\x02'
#define SH_BOS       '\x03'     /* begin-of-command token in contexts */

/* ---- errors (util.c) ---- */

/** Records a printf-style message for sh_errmsg() and returns code. */
int sh_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** The last message recorded with sh_err() ("" if none). */
const char *sh_errmsg(void);

/* ---- history parsing (history.c) ---- */

typedef enum { SH_HIST_AUTO, SH_HIST_BASH, SH_HIST_ZSH, SH_HIST_FISH } sh_hist_format;

/** Called once per accepted command; a non-zero return stops parsing. */
typedef int (*sh_cmd_fn)(void *arg, const char *cmd, size_t len);

typedef struct sh_hist_counts {
	uint64_t entries;  /* history entries seen (commands before filtering) */
	uint64_t secrets;  /* entries dropped by the secret filter */
	uint64_t accepted; /* entries passed to the callback */
} sh_hist_counts;

/**
 * Parses history from f in format fmt (SH_HIST_AUTO: guessed from the first
 * non-empty line, then from path_hint's name) and calls fn for every entry
 * that is not a secret.  *used gets the format used.  Returns 0, fn's
 * non-zero value, or -errno on a read error.
 */
int sh_history_parse(FILE *f, sh_hist_format fmt, const char *path_hint,
		     sh_cmd_fn fn, void *arg, sh_hist_counts *counts,
		     sh_hist_format *used);

/** True when cmd[0..len) contains a secret-looking word (case-insensitive). */
bool sh_is_secret(const char *cmd, size_t len);

/** "bash", "zsh", "fish" or "auto". */
const char *sh_hist_format_name(sh_hist_format fmt);

/**
 * Finds the user's history: ~/.zsh_history, ~/.bash_history, then
 * ~/.local/share/fish/fish_history (first that exists).  Writes the path
 * into buf and returns 0, or -ENOENT with a message.
 */
int sh_history_default(char *buf, size_t len);

/* ---- tokens (util.c) ---- */

/**
 * Splits cmd[0..len) on blanks into at most max tokens (pointers into cmd,
 * lengths in lens).  Returns the token count, or -EINVAL when the command
 * holds control bytes, a token longer than SH_MAX_TOKEN or is longer than
 * SH_MAX_CMD.  Tokens beyond max are not counted.
 */
int sh_tokenize(const char *cmd, size_t len, const char **toks, size_t *lens, size_t max);

/** True when tok can name a segment (`segment/<tok>`). */
bool sh_token_nameable(const char *tok, size_t len);

/**
 * Writes "t0 \x01 ctx \x02" into kp, ctx being the last l tokens of
 * "B t0 .. t_{k-1}" (B = SH_BOS) joined by spaces, l <= k + 1; kp needs
 * SH_MAX_KEY bytes for l <= SH_NGRAM_MAX - 1.  Training and lookup share it
 * so both use exactly the same context.  Returns the length.
 */
size_t sh_context_key(char *kp, const char **tok, const size_t *len, size_t k, size_t l);

/** 64-bit hash of a byte string (XXH3). */
uint64_t sh_hash(const void *p, size_t len);

/** Bucket name for first-token completion: "prefix/a".."prefix/z", "prefix/_". */
void sh_prefix_bucket(unsigned char first, char out[16]);

/* ---- counting (counter.c) ---- */

typedef struct sh_entry {
	uint64_t hash;
	uint64_t count;
	uint64_t key_off;  /* into the counter's arena */
	uint32_t key_len;
	uint32_t aux;      /* caller's tag (segment index) */
} sh_entry;

typedef struct sh_counter {
	sh_entry *slots;   /* open addressing; key_len == UINT32_MAX: empty */
	size_t cap, len;
	char *arena;
	size_t arena_len, arena_cap;
} sh_counter;

void sh_counter_init(sh_counter *c);
/** Adds n to key's count (inserting it).  Returns 0 or -ENOMEM. */
int sh_counter_add(sh_counter *c, const char *key, size_t len, uint64_t n);
/** Key bytes of an entry (valid until the next add or free). */
const char *sh_counter_key(const sh_counter *c, const sh_entry *e);
/**
 * Packs the entries to the front of the slot array and returns it (len
 * entries); the counter accepts no more adds afterwards.
 */
sh_entry *sh_counter_pack(sh_counter *c);
void sh_counter_free(sh_counter *c);

/* ---- segments (segment.c) ---- */

enum { SH_SEG_NGRAM = 1, SH_SEG_PREFIX = 2, SH_SEG_FREQ = 3 };
#define SH_SEG_HEADER 32u
#define SH_SEG_RECORD 16u

/** Where models are read from: a paged bundle (store.c) or a directory (tests). */
typedef struct sh_source {
	ssize_t (*read)(void *ctx, const char *name, void *buf, size_t len, uint64_t off);
	const char *(*describe)(void *ctx, int code); /* NULL: strerror */
	void *ctx;
} sh_source;

typedef struct sh_rec {
	const char *key;
	uint32_t key_len;
	uint64_t count;
} sh_rec;

/** Writes a segment of kind with n records (already in order) to out. */
int sh_seg_write(FILE *out, uint32_t kind, const sh_rec *recs, size_t n);

typedef struct sh_seg {
	const sh_source *src;
	char name[96];
	uint32_t kind;
	uint64_t count;         /* records */
	uint64_t strings_off;   /* offset of the string area in the model */
	uint64_t strings_size;
} sh_seg;

/**
 * Opens segment name and validates its header against kind.  Returns 0,
 * -ENOENT when the model does not exist, -EBADMSG when it is malformed.
 */
int sh_seg_open(sh_seg *s, const sh_source *src, const char *name, uint32_t kind);

/** Reads record i: its key into key (SH_MAX_KEY bytes), length and count. */
int sh_seg_get(sh_seg *s, uint64_t i, char *key, uint32_t *key_len, uint64_t *count);

/** Index of the first record whose key is >= prefix (count if none). */
int sh_seg_lower_bound(sh_seg *s, const char *prefix, size_t plen, uint64_t *pos);

/** Sequential reader over records [pos, count): bounded buffers. */
typedef struct sh_seg_iter {
	sh_seg *seg;
	uint64_t pos;
	unsigned char recs[64 * SH_SEG_RECORD];
	uint64_t rec_first, rec_n;       /* records held in recs */
	char strbuf[2 * SH_MAX_KEY];
	uint64_t str_first, str_n;       /* string-area bytes held in strbuf */
} sh_seg_iter;

void sh_seg_iter_init(sh_seg_iter *it, sh_seg *s, uint64_t pos);
/**
 * Next record: *key points into the iterator (valid until the next call).
 * Returns 1, 0 at the end, or a negative error.
 */
int sh_seg_next(sh_seg_iter *it, const char **key, uint32_t *key_len, uint64_t *count);

/* ---- metadata model (meta.c) ---- */

typedef struct sh_meta {
	unsigned ngram;
	uint64_t commands;        /* trained commands (with repeats) */
	uint64_t vocabulary;      /* distinct tokens */
	uint64_t distinct;        /* distinct commands */
	uint64_t memory_limit_mb; /* default --memory-limit recorded by train */
	unsigned freq_segments;
	unsigned segments;        /* models in the bundle other than meta */
	unsigned n_named;
	char named[SH_NAMED_SEGMENTS][SH_NAMED_MAXLEN + 1];
} sh_meta;

#define SH_META_NAME "meta"
#define SH_META_MAX  8192u

/** Formats m as the meta model's text into buf; returns the length or -ENOSPC. */
int sh_meta_format(const sh_meta *m, char *buf, size_t len);
/** Parses and validates the meta model text.  Returns 0 or -EBADMSG. */
int sh_meta_parse(const char *text, size_t len, sh_meta *m);
/** Reads the meta model from src.  Returns 0, -ENOENT or -EBADMSG. */
int sh_meta_read(const sh_source *src, sh_meta *m);
/** Segment name for first token tok: named or hashed bucket. */
void sh_segment_name(const sh_meta *m, const char *tok, size_t len, char out[96]);

/* ---- training (train.c) ---- */

typedef struct sh_train_result {
	sh_hist_counts hist;
	sh_hist_format format;
	uint64_t invalid;       /* commands dropped by sh_tokenize */
	sh_meta meta;
	size_t n_models;
	char **models;          /* model names, in bundle order */
} sh_train_result;

/**
 * Reads history from f and writes every model as a file below dir (model
 * "a/b" is dir/a/b).  Memory is proportional to the history's distinct
 * n-grams; files are written streaming.  res->models must be freed with
 * sh_train_result_free.
 */
int sh_train_dir(FILE *f, sh_hist_format fmt, const char *path_hint, unsigned ngram,
		 uint64_t limit_mb, const char *dir, sh_train_result *res);
void sh_train_result_free(sh_train_result *res);

/* ---- suggestions (suggest.c) ---- */

typedef struct sh_cand {
	char token[SH_MAX_TOKEN + 1];
	uint64_t count;
	double score;
} sh_cand;

typedef struct sh_topk {
	sh_cand *c;
	size_t n, max;
} sh_topk;

/**
 * Computes up to out->max completions of prefix: each is the token to put
 * after the first *base_len bytes of prefix.  out->c must hold out->max
 * entries; results are sorted best first.
 */
int sh_suggest(const sh_source *src, const sh_meta *m, const char *prefix,
	       sh_topk *out, size_t *base_len);

/** Inserts a candidate keeping out sorted (score desc, token asc) and bounded. */
void sh_topk_insert(sh_topk *out, const char *tok, size_t len, uint64_t count, double score);

/* ---- directory source for tests and tools (util.c) ---- */

/** A source reading model "a/b" from the file dir/a/b; ctx is the dir path. */
ssize_t sh_dir_read(void *ctx, const char *name, void *buf, size_t len, uint64_t off);

/* ---- bundle access (store.c, the only user of libapbundle) ---- */

struct apb_paged;
/** Builds the bundle at out from the models written by sh_train_dir. */
int sh_store_build(const char *out, const char *dir, char *const *models, size_t n);
/** Opens model paged with a budget of limit_mb MiB; src reads through it. */
int sh_store_open(const char *path, uint64_t limit_mb, struct apb_paged **pb, sh_source *src);

/* ---- stats (stats.c) ---- */

/** Prints the `stats` report (layout in stats.c) for an open model. */
int sh_stats_print(FILE *out, struct apb_paged *pb, const sh_source *src, const sh_meta *m,
		   uint64_t limit_mb);

#endif
