/*
 * cli.h - what the apbundle command's files share: exit codes, the
 * subcommand entry points and the helpers of cli_util.c.
 *
 * Invariants: every message goes to stderr as "apbundle: <cmd>: ..." (the
 * command name is set once by the dispatcher); only requested output
 * (listings, model bytes, summaries) goes to stdout.  Exit status is
 * CLI_OK (0), CLI_BAD (1: bad data, checksum or I/O failure) or CLI_USAGE
 * (2: bad command line).  Bundles are read only through the public API
 * (apbundle.h): this directory includes nothing from src/lib.
 */
#ifndef APB_CLI_H
#define APB_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "apbundle.h"

enum { CLI_OK = 0, CLI_BAD = 1, CLI_USAGE = 2 };

/* ---- subcommands (cmd_*.c): argv[0] is the command name ---- */

/** `apbundle create OUT NAME=PATH|DIR...`; returns an exit status. */
int cli_cmd_create(int argc, char **argv);
/** `apbundle list BUNDLE [--json]`; returns an exit status. */
int cli_cmd_list(int argc, char **argv);
/** `apbundle info BUNDLE`; returns an exit status. */
int cli_cmd_info(int argc, char **argv);
/** `apbundle verify BUNDLE`; returns an exit status. */
int cli_cmd_verify(int argc, char **argv);
/** `apbundle extract BUNDLE [-C DIR] [NAME...]`; returns an exit status. */
int cli_cmd_extract(int argc, char **argv);
/** `apbundle cat BUNDLE NAME`; returns an exit status. */
int cli_cmd_cat(int argc, char **argv);
/** `apbundle load BUNDLE [options] NAME...`; returns an exit status. */
int cli_cmd_load(int argc, char **argv);
/** `apbundle simulate TRACE [options]` (cmd_simulate.c); returns an exit status. */
int cli_cmd_simulate(int argc, char **argv);

/* ---- messages (cli_util.c) ---- */

/** Sets the subcommand name used as the prefix of every message. */
void cli_set_command(const char *cmd);

/** Returns the current subcommand name ("apbundle" before dispatch). */
const char *cli_command(void);

/** Prints "apbundle: <cmd>: <fmt...>\n" to stderr. */
void cli_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Prints "apbundle: <cmd>: <what>: <detail>" where detail is
 * apb_last_error() (or apb_strerror(code) when the library recorded none)
 * and returns CLI_BAD.
 */
int cli_lib_error(const char *what, int code);

/**
 * Prints "apbundle: <cmd>: <fmt...> (try 'apbundle <cmd> --help')" as one
 * line to stderr and returns CLI_USAGE.
 */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Reports the getopt_long() failure c ('?' or ':') for argv and returns
 * CLI_USAGE.  Use with an optstring starting with ':' and opterr = 0.
 */
int cli_getopt_error(int c, char **argv);

/**
 * Writes name to f with every byte that is not printable ASCII or part of
 * valid UTF-8 text escaped as \xNN (and '"' and '\\' escaped), so hostile
 * names cannot forge output.  The quoted form is "name".
 */
void cli_put_name(FILE *f, const char *name);

/**
 * Returns name escaped as by cli_put_name (without quotes) in a static
 * buffer, truncated with "..." when very long; for use inside cli_msg.
 * The buffers rotate: at most CLI_ESC_BUFS results are valid at once (one
 * message may escape that many names).
 */
#define CLI_ESC_BUFS 4
const char *cli_esc(const char *name);

/**
 * Returns a malloc'ed copy of name escaped as by cli_put_name (without
 * quotes, never truncated), or NULL when out of memory.
 */
char *cli_esc_dup(const char *name);

/**
 * Undoes cli_esc: \\, \" and \xNN.  Returns a malloc'ed string, or NULL
 * when s has no escape, a malformed one, or an escape of NUL.
 */
char *cli_unesc(const char *s);

/** Terminal columns that the escaped, printable text s takes (wcwidth). */
size_t cli_width(const char *s);

/* ---- sizes ---- */

/**
 * Parses a size for option opt (K/M/G suffixes, see apb_parse_size).
 * On error prints a usage message and returns CLI_USAGE; 0 on success.
 */
int cli_parse_size(const char *opt, const char *s, uint64_t *out);

/** apb_format_size into a buffer of the right size, for printf arguments. */
#define CLI_SIZE(bytes, buf) apb_format_size((bytes), (buf), sizeof(buf))

/* ---- progress line on stderr (only on a terminal, only for big work) ---- */

#define CLI_PROGRESS_MIN (64u << 20) /* below this many bytes: no progress line */

typedef struct cli_progress {
	bool on;
	uint64_t total;
	uint64_t done;
	double last;           /* monotonic seconds of the last update */
	int width;             /* characters of the last line, to clear it */
} cli_progress;

/** Starts a progress line for total bytes (inactive unless isatty(2) and big). */
void cli_progress_start(cli_progress *p, uint64_t total);

/** Adds n bytes of done work; redraws at most 5 times a second. */
void cli_progress_add(cli_progress *p, uint64_t n);

/** Clears the line (call before printing anything else to stderr). */
void cli_progress_end(cli_progress *p);

/* ---- reading bundles ---- */

/* Budget of the paged handle of list/info/verify/extract/cat: streaming
 * goes around the cache, so only block-table chunks are ever cached. */
#define CLI_MAX_MEMORY (4u << 20)

/**
 * Opens path with apb_paged_open (CLI_MAX_MEMORY, no prefetch): regular
 * files only, nothing blocks.  On failure prints "apbundle: <cmd>: <path>:
 * <detail>" and returns CLI_BAD; on success *pb is the caller's to close.
 */
int cli_open(const char *path, apb_paged **pb);

/**
 * For commands taking exactly one operand, BUNDLE, after getopt: checks
 * that argv[optind] is the only operand (usage error CLI_USAGE otherwise)
 * and opens it with cli_open.  Returns CLI_OK, CLI_USAGE or CLI_BAD.
 */
int cli_open_sole_bundle(int argc, char **argv, apb_paged **pb);

/**
 * Finds model name, or the name that list printed as name (cli_unesc),
 * when no model has name literally.  Returns the index, or -1 after
 * printing "no model named".
 */
ssize_t cli_find(apb_paged *pb, const char *bundle, const char *name);

/** Receives verified model bytes in order; returns 0 or a negative errno. */
typedef int (*cli_sink_fn)(void *ctx, const void *buf, size_t len);

/** How cli_stream_model went. */
typedef struct cli_stream_result {
	uint64_t bytes;        /* bytes read */
	uint64_t blocks;       /* blocks verified good */
	uint64_t bad_blocks;   /* blocks that failed */
	bool verified;         /* false: the model has no checksums (legacy) */
	bool sink_failed;      /* the sink returned an error (already reported) */
} cli_stream_result;

/**
 * Streams model i through apb_paged_stream: every block is verified before
 * sink (which may be NULL) sees it, and the whole-model checksum at the
 * end.  Problems are printed naming the bundle, the model and the block
 * from apb_last_block_error ("model "enc": block 3 (bytes 196608-262143):
 * checksum mismatch").  With stop_on_bad the first bad block ends the
 * stream (the good blocks before it were passed on); without it every bad
 * block is reported (the first ten printed) and nothing of it is passed
 * on.  The sink reports its own error.  prog may be NULL.  Returns CLI_OK
 * when everything read was good, else CLI_BAD.
 */
int cli_stream_model(apb_paged *pb, const char *bundle, size_t i, bool stop_on_bad,
                     cli_sink_fn sink, void *ctx, cli_progress *prog, cli_stream_result *res);

/** Total model bytes of an open bundle. */
uint64_t cli_total_bytes(apb_paged *pb);

/**
 * Prints one warning per model whose name cannot coexist with the others
 * in one tree (apb_model_info.name_clash; at most ten, then a count).
 * Returns how many models are flagged.
 */
size_t cli_warn_clashes(apb_paged *pb, const char *bundle);

/** Writes all of buf to fd, retrying on EINTR; returns 0 or -errno. */
int cli_write_all(int fd, const void *buf, size_t len);

/* ---- cleanup on SIGINT, SIGTERM, SIGHUP ---- */

/**
 * Installs fn for SIGINT, SIGTERM and SIGHUP, all three blocked while it
 * runs, with SA_RESTART.  fn must be async-signal-safe; it either ends by
 * resetting the signal to SIG_DFL and raising it again, so the process
 * dies of it, or only sets a flag that the caller acts on (and then dies
 * of the signal the same way).
 */
void cli_catch_signals(void (*fn)(int));

/** Restores the dispositions that cli_catch_signals replaced. */
void cli_restore_signals(void);

/* ---- model metadata files (create --metadata) ---- */

/** A parsed metadata file; md points into root and kv. */
typedef struct cli_metadata {
	const char *file;
	void *root;               /* json_object */
	apb_kv *kv;               /* hyperparameters, then custom */
	apb_metadata md;
} cli_metadata;

/**
 * Reads file as a strict JSON object {"version", "architecture",
 * "hyperparameters": {}, "custom": {}} (all optional; map values must be
 * strings, numbers or booleans, the latter two kept as written; unknown
 * keys are refused) into *out.  Returns 0, or -1 after printing why.
 * Free with cli_metadata_free in both cases.
 */
int cli_metadata_load(const char *file, cli_metadata *out);

/** Frees what cli_metadata_load allocated; the struct may be reused. */
void cli_metadata_free(cli_metadata *m);

#endif
