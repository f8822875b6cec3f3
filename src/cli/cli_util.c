/*
 * cli_util.c - helpers shared by the apbundle subcommands: messages,
 * name escaping, sizes, the progress line and verified model streaming.
 *
 * Invariants: messages go to stderr only, always prefixed with
 * "apbundle: <cmd>: "; names read from a bundle are escaped before they
 * are printed, so a hostile name cannot inject terminal controls or fake
 * lines; the progress line appears only when stderr is a terminal and the
 * work is at least CLI_PROGRESS_MIN bytes, and is cleared before any other
 * message; cli_stream_model never hands a byte to its sink before the
 * block holding it has been verified.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <xxhash.h>

#include "cli.h"
#include "internal.h"

#define CHUNK_MIN (1u << 20)     /* read at least this much per pread */
#define MAX_BAD_REPORTS 10       /* bad blocks printed per model */
#define MAX_JSON_FILE (16u << 20) /* metadata files */

static const char *cur_cmd = "apbundle";
static cli_progress *cur_progress;   /* active line, cleared before messages */

/** Sets the subcommand name used as the prefix of every message. */
void cli_set_command(const char *cmd)
{
	cur_cmd = cmd;
}

/** Returns the current subcommand name. */
const char *cli_command(void)
{
	return cur_cmd;
}

static void vmsg(const char *fmt, va_list ap)
{
	if (cur_progress)
		cli_progress_end(cur_progress);
	fflush(stdout);
	if (strcmp(cur_cmd, "apbundle") == 0)
		fputs("apbundle: ", stderr);
	else
		fprintf(stderr, "apbundle: %s: ", cur_cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/** Prints "apbundle: <cmd>: <fmt...>\n" to stderr. */
void cli_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

/** Prints what and the library's detail for code; returns CLI_BAD. */
int cli_lib_error(const char *what, int code)
{
	const char *detail = apb_last_error();

	if (!detail || !detail[0])
		detail = code > -1000 ? strerror(-code) : apb_strerror(code);
	cli_msg("%s: %s", what, detail);
	return CLI_BAD;
}

/** Prints a usage problem and the --help hint on one line; returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (strcmp(cur_cmd, "apbundle") == 0)
		cli_msg("%s (try 'apbundle --help')", text);
	else
		cli_msg("%s (try 'apbundle %s --help')", text, cur_cmd);
	return CLI_USAGE;
}

/** Reports a getopt_long failure ('?' unknown, ':' missing argument). */
int cli_getopt_error(int c, char **argv)
{
	extern int optind, optopt;
	const char *arg = argv[optind - 1];

	if (c == ':') {
		if (optopt && arg[0] == '-' && arg[1] != '-')
			return cli_usage_error("option '-%c' needs an argument", optopt);
		return cli_usage_error("option '%s' needs an argument", cli_esc(arg));
	}
	if (optopt && !(arg[0] == '-' && arg[1] == '-'))
		return cli_usage_error("unknown option '-%c'", optopt);
	return cli_usage_error("unknown option '%s'", cli_esc(arg));
}

/* Length of the valid UTF-8 sequence at s (2..4), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	size_t i;

	if (n == 0 || s[0] > 0xf4)
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return apbi_utf8_valid((const char *)s, n) ? n : 0;
}

/* Escapes name into out (size cap, >= 8); truncates with "...". */
static void escape_into(const char *name, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t o = 0, n;

	while (*s) {
		char tmp[8];
		size_t tl;

		if (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\') {
			tmp[0] = (char)*s;
			tl = 1, n = 1;
		} else if (*s == '"' || *s == '\\') {
			tmp[0] = '\\', tmp[1] = (char)*s;
			tl = 2, n = 1;
		} else if ((n = utf8_seq(s)) > 0) {
			memcpy(tmp, s, n);
			tl = n;
		} else {
			snprintf(tmp, sizeof(tmp), "\\x%02x", *s);
			tl = 4, n = 1;
		}
		if (o + tl + 4 > cap) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, tmp, tl);
		o += tl;
		s += n;
	}
	out[o] = '\0';
}

/** Writes name, escaped, between double quotes. */
void cli_put_name(FILE *f, const char *name)
{
	size_t cap = strlen(name) * 4 + 8;
	char *buf = malloc(cap);

	if (!buf) {
		fputs("\"?\"", f);
		return;
	}
	escape_into(name, buf, cap);
	fprintf(f, "\"%s\"", buf);
	free(buf);
}

/** Returns name escaped in one of two rotating static buffers. */
const char *cli_esc(const char *name)
{
	static char bufs[2][1024];
	static int which;

	which ^= 1;
	escape_into(name, bufs[which], sizeof(bufs[which]));
	return bufs[which];
}

/** Parses a size option; prints a usage error on failure. */
int cli_parse_size(const char *opt, const char *s, uint64_t *out)
{
	int rc = apb_parse_size(s, out);

	if (rc < 0)
		return cli_usage_error("%s: %s", opt, apb_last_error());
	return 0;
}

/** Formats bytes in binary units. */
const char *cli_human(uint64_t bytes, char buf[32])
{
	static const char *units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/** Starts a progress line (only on a terminal and for big work). */
void cli_progress_start(cli_progress *p, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->total = total;
	p->on = total >= CLI_PROGRESS_MIN && isatty(STDERR_FILENO);
	if (p->on)
		cur_progress = p;
}

/** Adds done work and redraws at most five times a second. */
void cli_progress_add(cli_progress *p, uint64_t n)
{
	char a[32], b[32];
	double t;
	int w;

	if (!p || !p->on)
		return;
	p->done += n;
	t = now_sec();
	if (t - p->last < 0.2 && p->done < p->total)
		return;
	p->last = t;
	w = fprintf(stderr, "\rapbundle: %s: %3d%% (%s of %s)", cur_cmd,
	            (int)(p->total ? p->done * 100 / p->total : 100),
	            cli_human(p->done, a), cli_human(p->total, b));
	if (w < p->width)
		fprintf(stderr, "%*s", p->width - w, "");
	p->width = w;
	fflush(stderr);
}

/** Clears the progress line. */
void cli_progress_end(cli_progress *p)
{
	if (!p || !p->on)
		return;
	if (p->width)
		fprintf(stderr, "\r%*s\r", p->width, "");
	fflush(stderr);
	p->width = 0;
	p->on = false;
	if (cur_progress == p)
		cur_progress = NULL;
}

/** Opens a bundle and reads its manifest, reporting failures. */
int cli_open_bundle(const char *path, int *fd, apbi_manifest **m)
{
	int rc;

	*m = NULL;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		cli_msg("%s: %s", cli_esc(path), strerror(errno));
		return CLI_BAD;
	}
	apbi_clear_error();
	rc = apbi_manifest_read(*fd, m);
	if (rc < 0) {
		close(*fd);
		*fd = -1;
		*m = NULL;
		return cli_lib_error(cli_esc(path), rc);
	}
	return CLI_OK;
}

int cli_open_sole_bundle(int argc, char **argv, int *fd, apbi_manifest **m)
{
	if (optind >= argc)
		return cli_usage_error("missing BUNDLE");
	if (argc - optind > 1)
		return cli_usage_error("too many arguments ('%s')", cli_esc(argv[optind + 1]));
	return cli_open_bundle(argv[optind], fd, m);
}

/** Sum of the sizes of all models. */
uint64_t cli_total_bytes(const apbi_manifest *m)
{
	uint64_t t = 0;

	for (uint64_t i = 0; i < m->n_models; i++)
		t += m->models[i].size;
	return t;
}

/** Writes all of buf, retrying on EINTR and short writes. */
int cli_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reports bad block b of mod. */
static void report_block(const char *bundle, const apbi_model *mod, uint64_t b,
                         uint64_t *reported)
{
	uint64_t start = b * mod->block_size;
	uint64_t end = start + mod->block_size;

	if (end > mod->size)
		end = mod->size;
	if (++*reported > MAX_BAD_REPORTS)
		return;
	cli_msg("%s: model \"%s\": block %llu (bytes %llu-%llu): checksum mismatch",
	        cli_esc(bundle), cli_esc(mod->name), (unsigned long long)b,
	        (unsigned long long)start, (unsigned long long)(end - 1));
}

/*
 * Verifies a chunk [off, off+len) of mod.  On a mismatch, reports the bad
 * blocks (only the first with stop_on_bad) and returns how many were bad.
 */
static uint64_t check_chunk(const char *bundle, const apbi_model *mod,
                            const uint64_t *sums, const uint8_t *buf,
                            uint64_t off, uint64_t len, bool stop_on_bad,
                            uint64_t *reported, uint64_t *first_bad)
{
	uint64_t bad = 0, b, bs = mod->block_size, first;

	if (apbi_verify_blocks(mod, sums, buf, off, len, &first) == 0)
		return 0;
	*first_bad = first;
	for (b = first; b * bs < off + len; b++) {
		uint64_t s = b * bs, l = off + len - s < bs ? off + len - s : bs, x;

		if (b != first && apbi_verify_blocks(mod, sums, buf + (s - off), s, l, &x) == 0)
			continue;
		report_block(bundle, mod, b, reported);
		bad++;
		if (stop_on_bad)
			break;
	}
	return bad;
}

/* Chunk size: a multiple of the block size, at least CHUNK_MIN. */
static size_t chunk_size(const apbi_model *mod)
{
	uint64_t bs = mod->block_size ? mod->block_size : 4096;
	uint64_t c = (CHUNK_MIN + bs - 1) / bs * bs;

	if (c > mod->size && mod->size > 0)
		c = (mod->size + bs - 1) / bs * bs;
	return (size_t)(c ? c : bs);
}

/* Compares the streamed model hash with the manifest's checksum. */
static int check_whole(const char *bundle, const apbi_model *mod, uint64_t h)
{
	char want[22], got[22];

	if (h == mod->checksum)
		return CLI_OK;
	apbi_checksum_format(mod->checksum, want);
	apbi_checksum_format(h, got);
	cli_msg("%s: model \"%s\": checksum mismatch (manifest %s, data %s)",
	        cli_esc(bundle), cli_esc(mod->name), want, got);
	return CLI_BAD;
}

/* One model being streamed. */
typedef struct stream {
	int fd;
	const char *bundle;
	const apbi_manifest *m;
	const apbi_model *mod;
	uint64_t *sums;           /* block checksums, or NULL */
	uint8_t *buf;
	XXH3_state_t *st;
	bool stop_on_bad;
	cli_sink_fn sink;
	void *ctx;
	cli_progress *prog;
	cli_stream_result *res;
	uint64_t reported;        /* bad blocks seen (printed up to a limit) */
} stream;

/* Reports a library failure code about part of the model s. */
static void stream_error(const stream *s, const char *part, int code)
{
	char what[1200];

	snprintf(what, sizeof(what), "%s: model \"%s\": %s", cli_esc(s->bundle),
	         cli_esc(s->mod->name), part);
	cli_lib_error(what, code);
}

/* Reads, verifies and passes on bytes [off, off+n); returns 0 or -1 to stop. */
static int stream_chunk(stream *s, uint64_t off, size_t n)
{
	const apbi_model *mod = s->mod;
	uint64_t bad = 0, first_bad = 0;
	int rc;

	apbi_clear_error();
	rc = apbi_pread_full(s->fd, s->buf, n, s->m->data_start + mod->offset + off);
	if (rc < 0) {
		char part[64];
		snprintf(part, sizeof(part), "bytes %llu-%llu", (unsigned long long)off,
		         (unsigned long long)(off + n - 1));
		stream_error(s, part, rc);
		return -1;
	}
	s->res->bytes += n;
	cli_progress_add(s->prog, n);
	if (s->res->verified) {
		bad = check_chunk(s->bundle, mod, s->sums, s->buf, off, n, s->stop_on_bad,
		                  &s->reported, &first_bad);
		s->res->blocks += (n + mod->block_size - 1) / mod->block_size - bad;
	}
	s->res->bad_blocks += bad;
	if (bad && s->stop_on_bad) {
		/* the blocks before the bad one are good: pass them on */
		n = (size_t)(first_bad * mod->block_size - off);
	} else {
		XXH3_64bits_update(s->st, s->buf, n);
	}
	if ((!bad || s->stop_on_bad) && n && s->sink && s->sink(s->ctx, s->buf, n) < 0) {
		s->res->sink_failed = true;
		return -1;
	}
	return bad && s->stop_on_bad ? -1 : 0;
}

/** Streams model i in verified chunks to sink; see cli.h. */
int cli_stream_model(int fd, const char *bundle, const apbi_manifest *m,
                     uint64_t i, bool stop_on_bad, cli_sink_fn sink, void *ctx,
                     cli_progress *prog, cli_stream_result *res)
{
	stream s = { fd, bundle, m, &m->models[i], NULL, NULL, NULL, stop_on_bad,
	             sink, ctx, prog, res, 0 };
	size_t chunk = chunk_size(s.mod);
	int rc, status = CLI_BAD;

	memset(res, 0, sizeof(*res));
	res->verified = s.mod->has_checksum && s.mod->block_size > 0;
	s.buf = malloc(chunk);
	s.st = XXH3_createState();
	if (!s.buf || !s.st) {
		cli_msg("%s: model \"%s\": out of memory", cli_esc(bundle), cli_esc(s.mod->name));
		goto out;
	}
	XXH3_64bits_reset(s.st);
	apbi_clear_error();
	if (res->verified && (rc = apbi_load_block_sums(fd, m, i, &s.sums)) < 0) {
		stream_error(&s, "block table", rc);
		goto out;
	}
	for (uint64_t off = 0; off < s.mod->size; off += chunk) {
		size_t n = s.mod->size - off < chunk ? (size_t)(s.mod->size - off) : chunk;
		if (stream_chunk(&s, off, n) < 0)
			goto out;
	}
	if (s.reported > MAX_BAD_REPORTS)
		cli_msg("%s: model \"%s\": %llu more bad blocks not shown", cli_esc(bundle),
		        cli_esc(s.mod->name), (unsigned long long)(s.reported - MAX_BAD_REPORTS));
	if (res->bad_blocks == 0)
		status = res->verified ? check_whole(bundle, s.mod, XXH3_64bits_digest(s.st)) : CLI_OK;
out:
	XXH3_freeState(s.st);
	free(s.buf);
	free(s.sums);
	return status;
}

/* ---- fatal signals ---- */

static const int caught[] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction saved_act[3];

/** Installs fn for SIGINT, SIGTERM and SIGHUP (each blocked while it runs). */
void cli_catch_signals(void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;     /* a handler that returns must not fail stdio */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < 3; i++)
		sigaddset(&sa.sa_mask, caught[i]);
	for (size_t i = 0; i < 3; i++)
		sigaction(caught[i], &sa, &saved_act[i]);
}

/** Restores the dispositions saved by cli_catch_signals. */
void cli_restore_signals(void)
{
	for (size_t i = 0; i < 3; i++)
		sigaction(caught[i], &saved_act[i], NULL);
}

/* ---- metadata files ---- */

/* Reads path and parses it strictly as JSON; NULL after a message. */
static json_object *read_json(const char *path)
{
	json_object *root = NULL;
	json_tokener *tok = NULL;
	char *buf = NULL;
	size_t len = 0, end;
	FILE *f = fopen(path, "rb");

	if (!f) {
		cli_msg("--metadata: %s: %s", cli_esc(path), strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_JSON_FILE + 1);
	tok = json_tokener_new();
	if (!buf || !tok) {
		cli_msg("out of memory");
		goto out;
	}
	len = fread(buf, 1, MAX_JSON_FILE + 1, f);
	if (ferror(f) || len > MAX_JSON_FILE) {
		cli_msg("--metadata: %s: %s", cli_esc(path),
		        ferror(f) ? "read error" : "larger than 16 MiB");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
	                       JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, buf, (int)len);
	end = json_tokener_get_parse_end(tok);
	while (root && end < len && strchr(" \t\r\n", buf[end]) && buf[end])
		end++;
	if (!root || end != len) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		cli_msg("--metadata: %s: not valid JSON (%s at byte %zu)", cli_esc(path),
		        root ? "trailing data" : e == json_tokener_continue ? "the text ends early"
		        : json_tokener_error_desc(e), end);
		json_object_put(root);
		root = NULL;
	}
out:
	json_tokener_free(tok);
	free(buf);
	fclose(f);
	return root;
}

/* Returns a string value's text (numbers and booleans as written), or NULL. */
static const char *md_string(json_object *v)
{
	json_type t = json_object_get_type(v);

	if (t != json_type_string && t != json_type_int && t != json_type_double &&
	    t != json_type_boolean)
		return NULL;
	if (t == json_type_string &&
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return NULL;
	return json_object_get_string(v);
}

/* Fills kv[*n...] from the object under key; returns 0 or -1 after a message. */
static int md_map(cli_metadata *s, json_object *obj, const char *key, size_t *n)
{
	if (!json_object_is_type(obj, json_type_object)) {
		cli_msg("--metadata: %s: \"%s\" must be an object", cli_esc(s->file), key);
		return -1;
	}
	json_object_object_foreach(obj, k, v) {
		const char *val = md_string(v);
		if (!val) {
			cli_msg("--metadata: %s: %s.%s: value must be a string, number or boolean",
			        cli_esc(s->file), key, cli_esc(k));
			return -1;
		}
		s->kv[*n].key = k;
		s->kv[(*n)++].value = val;
	}
	return 0;
}

/* Counts the entries of an object member (0 when absent or no object). */
static size_t md_count(json_object *root, const char *key)
{
	json_object *o;

	if (!json_object_object_get_ex(root, key, &o) || !json_object_is_type(o, json_type_object))
		return 0;
	return (size_t)json_object_object_length(o);
}

/* Turns s->root into s->md; returns 0 or -1 after a message. */
static int md_convert(cli_metadata *s)
{
	json_object *root = s->root;
	size_t n = 0, nh;

	if (!json_object_is_type(root, json_type_object)) {
		cli_msg("--metadata: %s: must be a JSON object", cli_esc(s->file));
		return -1;
	}
	nh = md_count(root, "hyperparameters");
	s->kv = calloc(nh + md_count(root, "custom") + 1, sizeof(*s->kv));
	if (!s->kv)
		return cli_msg("out of memory"), -1;
	json_object_object_foreach(root, key, v) {
		if (strcmp(key, "version") == 0 || strcmp(key, "architecture") == 0) {
			const char *str = md_string(v);
			if (!str) {
				cli_msg("--metadata: %s: \"%s\" must be a string", cli_esc(s->file), key);
				return -1;
			}
			*(key[0] == 'v' ? &s->md.version : &s->md.architecture) = str;
		} else if (strcmp(key, "hyperparameters") != 0 && strcmp(key, "custom") != 0) {
			cli_msg("--metadata: %s: unknown key \"%s\" (expected version, "
			        "architecture, hyperparameters, custom)", cli_esc(s->file), cli_esc(key));
			return -1;
		}
	}
	json_object_object_foreach(root, k2, v2) {
		if (strcmp(k2, "hyperparameters") == 0 && md_map(s, v2, k2, &n) < 0)
			return -1;
	}
	s->md.hyperparameters = s->kv;
	s->md.n_hyperparameters = n;
	json_object_object_foreach(root, k3, v3) {
		if (strcmp(k3, "custom") == 0 && md_map(s, v3, k3, &n) < 0)
			return -1;
	}
	s->md.custom = s->kv + s->md.n_hyperparameters;
	s->md.n_custom = n - s->md.n_hyperparameters;
	return 0;
}

/** Reads a model metadata file; see cli.h. */
int cli_metadata_load(const char *file, cli_metadata *out)
{
	memset(out, 0, sizeof(*out));
	out->file = file;
	out->root = read_json(file);
	if (!out->root || md_convert(out) < 0)
		return -1;
	return 0;
}

/** Frees what cli_metadata_load allocated. */
void cli_metadata_free(cli_metadata *m)
{
	json_object_put(m->root);
	free(m->kv);
	memset(m, 0, sizeof(*m));
}
