/*
 * cli_util.c - helpers shared by the apbundle subcommands: messages,
 * name escaping and display width, sizes, the progress line, signals and
 * metadata files.
 *
 * Invariants: messages go to stderr only, always prefixed with
 * "apbundle: <cmd>: "; names read from a bundle are escaped before they
 * are printed, so a hostile name cannot inject terminal controls or fake
 * lines; the progress line appears only when stderr is a terminal and the
 * work is at least CLI_PROGRESS_MIN bytes, and is cleared before any other
 * message.  Escaping is reversible (cli_unesc), so a name printed by
 * list can be given back to cat and extract.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <json-c/json.h>

#include "cli.h"

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

/*
 * Length of the valid UTF-8 sequence at s (2..4: shortest form, no
 * surrogate, at most U+10FFFF), or 0; *cp gets its code point.
 */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	uint32_t v;

	if (n == 0 || s[0] > 0xf4)
		return 0;
	v = s[0] & (0xff >> (n + 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || (v >= 0xd800 && v <= 0xdfff) ||
	    v > 0x10ffff)
		return 0;
	*cp = v;
	return n;
}

/* Escapes name into out (size cap, >= 8); truncates with "...". */
static void escape_into(const char *name, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t o = 0, n;
	uint32_t cp;

	while (*s) {
		char tmp[8];
		size_t tl;

		if (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\') {
			tmp[0] = (char)*s;
			tl = 1, n = 1;
		} else if (*s == '"' || *s == '\\') {
			tmp[0] = '\\', tmp[1] = (char)*s;
			tl = 2, n = 1;
		} else if ((n = utf8_seq(s, &cp)) > 0) {
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

/** Returns a malloc'ed, untruncated escaped copy of name, or NULL. */
char *cli_esc_dup(const char *name)
{
	size_t cap = strlen(name) * 4 + 8;
	char *buf = malloc(cap);

	if (buf)
		escape_into(name, buf, cap);
	return buf;
}

/** Writes name, escaped, between double quotes. */
void cli_put_name(FILE *f, const char *name)
{
	char *buf = cli_esc_dup(name);

	fprintf(f, "\"%s\"", buf ? buf : "?");
	free(buf);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/** Undoes escape_into; NULL when s has no escape or a bad one. */
char *cli_unesc(const char *s)
{
	char *out = strchr(s, '\\') ? malloc(strlen(s) + 1) : NULL;
	size_t o = 0;

	if (!out)
		return NULL;
	while (*s) {
		int hi, lo;
		if (*s != '\\') {
			out[o++] = *s++;
		} else if (s[1] == '\\' || s[1] == '"') {
			out[o++] = s[1];
			s += 2;
		} else if (s[1] == 'x' && (hi = hexval(s[2])) >= 0 && (lo = hexval(s[3])) >= 0 &&
		           (hi | lo)) {
			out[o++] = (char)(hi << 4 | lo);
			s += 4;
		} else {
			free(out);
			return NULL;
		}
	}
	out[o] = '\0';
	return out;
}

/** Columns of printable text s: wcwidth in a UTF-8 locale, else one per character. */
size_t cli_width(const char *s)
{
	static locale_t utf8;
	static bool tried;
	const unsigned char *p = (const unsigned char *)s;
	locale_t old = (locale_t)0;
	size_t w = 0, n;
	uint32_t cp;

	if (!tried) {
		tried = true;
		utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	if (utf8)
		old = uselocale(utf8);
	for (; *p; p += n) {
		int cw = 1;
		if (*p < 0x80 || (n = utf8_seq(p, &cp)) == 0) {
			n = 1;
		} else if (utf8) {
			cw = wcwidth((wchar_t)cp);
			cw = cw < 0 ? 1 : cw;
		}
		w += (size_t)cw;
	}
	if (utf8)
		uselocale(old);
	return w;
}

/** Returns name escaped in one of two rotating static buffers. */
const char *cli_esc(const char *name)
{
	static char bufs[CLI_ESC_BUFS][1024];
	static int which;

	which = (which + 1) % CLI_ESC_BUFS;
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
	            CLI_SIZE(p->done, a), CLI_SIZE(p->total, b));
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
