/*
 * history.c - bash, zsh and fish history parsers and the secret filter.
 *
 * Invariants: the file is read one line at a time (getline), so memory is
 * bounded by the longest entry, not the file; every entry passes the secret
 * filter before it reaches the callback, so a secret-looking command never
 * enters a model; blank entries are never emitted.  Formats:
 *   bash  one command per line; "#<digits>" timestamp lines are skipped.
 *   zsh   ": <start>:<elapsed>;<command>" (extended) or plain lines; a line
 *         ending in a backslash continues on the next line (multi-line
 *         entry, joined with a newline); metafied bytes (0x83 x) decoded.
 *   fish  "- cmd: <command>" entries with \\ and \n escapes; the indented
 *         "when:" / "paths:" lines and path list items are skipped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shell.h"

static const char *const secret_words[] = {
	"password", "passwd", "secret", "token", "api_key", "api-key", "apikey",
	"aws_secret", "github_token", "authorization:",
};

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/** Case-insensitive search for a secret-looking word (one pass over cmd). */
bool sh_is_secret(const char *cmd, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = lower((unsigned char)cmd[i]);
		if (!strchr("pstag", c) || c == 0)
			continue;
		for (size_t w = 0; w < sizeof secret_words / sizeof secret_words[0]; w++) {
			const char *word = secret_words[w];
			size_t k = 0;
			if ((unsigned char)word[0] != c)
				continue;
			while (word[k] && i + k < len && lower((unsigned char)cmd[i + k]) == (unsigned char)word[k])
				k++;
			if (word[k] == '\0')
				return true;
		}
	}
	return false;
}

/** Name of a history format. */
const char *sh_hist_format_name(sh_hist_format fmt)
{
	switch (fmt) {
	case SH_HIST_BASH: return "bash";
	case SH_HIST_ZSH: return "zsh";
	case SH_HIST_FISH: return "fish";
	default: return "auto";
	}
}

typedef struct parser {
	sh_hist_format fmt;
	char *entry;              /* zsh entry being joined */
	size_t elen, ecap;
	bool cont;                /* zsh: previous line ended in a backslash */
	sh_cmd_fn fn;
	void *arg;
	sh_hist_counts *counts;
} parser;

static int emit(parser *p, const char *cmd, size_t len)
{
	size_t i = 0;

	while (i < len && isspace((unsigned char)cmd[i]))
		i++;
	if (i == len)
		return 0;
	p->counts->entries++;
	if (sh_is_secret(cmd, len)) {
		p->counts->secrets++;
		return 0;
	}
	p->counts->accepted++;
	return p->fn(p->arg, cmd, len);
}

/* ": <digits>:<digits>;" -> length of the header, else 0. */
static size_t zsh_header(const char *l, size_t len)
{
	size_t i = 2, d;

	if (len < 2 || l[0] != ':' || l[1] != ' ')
		return 0;
	for (d = i; i < len && isdigit((unsigned char)l[i]); i++)
		;
	if (i == d || i >= len || l[i++] != ':')
		return 0;
	for (d = i; i < len && isdigit((unsigned char)l[i]); i++)
		;
	if (i == d || i >= len || l[i] != ';')
		return 0;
	return i + 1;
}

static int entry_append(parser *p, const char *s, size_t len)
{
	if (p->elen + len + 2 > p->ecap) {
		size_t cap = (p->elen + len + 2) * 2;
		char *n = realloc(p->entry, cap);
		if (!n)
			return sh_err(-ENOMEM, "out of memory reading history");
		p->entry = n;
		p->ecap = cap;
	}
	memcpy(p->entry + p->elen, s, len);
	p->elen += len;
	return 0;
}

/* zsh "metafies" bytes >= 0x83: Meta (0x83) then the byte xor 32. */
static size_t zsh_unmetafy(char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] == 0x83 && i + 1 < len)
			s[o++] = (char)(s[++i] ^ 32);
		else
			s[o++] = s[i];
	}
	return o;
}

static int feed_zsh(parser *p, const char *l, size_t len)
{
	size_t h = p->cont ? 0 : zsh_header(l, len);
	int rc;

	if ((rc = entry_append(p, l + h, len - h)) < 0)
		return rc;
	if (p->elen > 0 && p->entry[p->elen - 1] == '\\') {
		p->entry[p->elen - 1] = '\n';
		p->cont = true;
		return 0;
	}
	p->cont = false;
	p->elen = zsh_unmetafy(p->entry, p->elen);
	rc = emit(p, p->entry, p->elen);
	p->elen = 0;
	return rc;
}

static int feed_fish(parser *p, char *l, size_t len)
{
	static const char tag[] = "- cmd: ";
	size_t o = 0;

	if (len < sizeof tag - 1 || memcmp(l, tag, sizeof tag - 1) != 0)
		return 0; /* "  when:", "  paths:", "    - path" */
	for (size_t i = sizeof tag - 1; i < len; i++) {
		if (l[i] == '\\' && i + 1 < len && (l[i + 1] == '\\' || l[i + 1] == 'n')) {
			l[o++] = l[i + 1] == 'n' ? '\n' : '\\';
			i++;
		} else {
			l[o++] = l[i];
		}
	}
	return emit(p, l, o);
}

static int feed_bash(parser *p, const char *l, size_t len)
{
	size_t i = 1;

	if (len > 1 && l[0] == '#') {
		while (i < len && isdigit((unsigned char)l[i]))
			i++;
		while (i < len && isspace((unsigned char)l[i]))
			i++;
		if (i == len)
			return 0; /* "#1700000000" timestamp */
	}
	return emit(p, l, len);
}

static sh_hist_format detect(const char *l, size_t len, const char *hint)
{
	const char *base = hint ? strrchr(hint, '/') : NULL;

	if (len >= 6 && memcmp(l, "- cmd:", 6) == 0)
		return SH_HIST_FISH;
	if (zsh_header(l, len))
		return SH_HIST_ZSH;
	base = base ? base + 1 : hint;
	if (base && strstr(base, "zsh"))
		return SH_HIST_ZSH;
	if (base && strstr(base, "fish"))
		return SH_HIST_FISH;
	return SH_HIST_BASH;
}

static int feed(parser *p, char *l, size_t len)
{
	if (p->fmt == SH_HIST_ZSH)
		return feed_zsh(p, l, len);
	if (p->fmt == SH_HIST_FISH)
		return feed_fish(p, l, len);
	return feed_bash(p, l, len);
}

/** Parses a history file (see shell.h and the header of this file). */
int sh_history_parse(FILE *f, sh_hist_format fmt, const char *path_hint,
		     sh_cmd_fn fn, void *arg, sh_hist_counts *counts,
		     sh_hist_format *used)
{
	parser p = { .fmt = fmt, .fn = fn, .arg = arg, .counts = counts };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	memset(counts, 0, sizeof *counts);
	errno = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		size_t len = (size_t)n;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (p.fmt == SH_HIST_AUTO) {
			if (len == 0)
				continue;
			p.fmt = detect(line, len, path_hint);
		}
		if ((rc = feed(&p, line, len)) != 0)
			goto out;
	}
	if (ferror(f)) {
		rc = sh_err(-EIO, "reading history: %s", strerror(errno ? errno : EIO));
		goto out;
	}
	if (p.cont && p.elen > 0) /* file ended inside a multi-line entry */
		rc = emit(&p, p.entry, zsh_unmetafy(p.entry, p.elen - 1));
out:
	if (used)
		*used = p.fmt == SH_HIST_AUTO ? SH_HIST_BASH : p.fmt;
	free(line);
	free(p.entry);
	return rc;
}

/** Finds the first existing default history file. */
int sh_history_default(char *buf, size_t len)
{
	static const char *const rel[] = {
		".zsh_history", ".bash_history", ".local/share/fish/fish_history",
	};
	const char *home = getenv("HOME");
	struct stat st;

	if (!home || !*home)
		return sh_err(-ENOENT, "HOME is not set; give --history FILE");
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		if (snprintf(buf, len, "%s/%s", home, rel[i]) >= (int)len)
			continue;
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode))
			return 0;
	}
	return sh_err(-ENOENT, "no history found (~/.zsh_history, ~/.bash_history, "
		      "~/.local/share/fish/fish_history); give --history FILE");
}
