/*
 * util.c - apbundle-shell helpers: error messages, tokens, names, hashing.
 *
 * Invariants: a token never contains a blank or a control byte, so the
 * separators SH_SEP_FIRST, SH_SEP_NEXT and SH_BOS can never occur inside
 * one and n-gram keys decode unambiguously; segment names built from
 * tokens are always valid bundle model names (sh_token_nameable).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "shell.h"

static char errbuf[512];

/** Records a message for sh_errmsg() and returns code. */
int sh_err(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return code;
}

/** The last recorded message. */
const char *sh_errmsg(void)
{
	return errbuf;
}

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/** Splits a command into blank-separated tokens (see shell.h). */
int sh_tokenize(const char *cmd, size_t len, const char **toks, size_t *lens, size_t max)
{
	size_t i = 0, n = 0;

	if (len > SH_MAX_CMD)
		return -EINVAL;
	for (size_t j = 0; j < len; j++) {
		unsigned char c = (unsigned char)cmd[j];
		if ((c < 0x20 && !is_blank(c)) || c == 0x7f)
			return -EINVAL;
	}
	while (i < len) {
		size_t start;
		while (i < len && is_blank((unsigned char)cmd[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !is_blank((unsigned char)cmd[i]))
			i++;
		if (i - start > SH_MAX_TOKEN)
			return -EINVAL;
		if (n < max) {
			toks[n] = cmd + start;
			lens[n] = i - start;
			n++;
		}
	}
	return (int)n;
}

/** True when tok may appear as the last component of "segment/<tok>". */
bool sh_token_nameable(const char *tok, size_t len)
{
	if (len == 0 || len > SH_NAMED_MAXLEN)
		return false;
	if (!((tok[0] >= 'a' && tok[0] <= 'z') || (tok[0] >= 'A' && tok[0] <= 'Z') ||
	      (tok[0] >= '0' && tok[0] <= '9')))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tok[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr("._+-@%=,:", c) != NULL;
		if (!ok || c == 0)
			return false;
	}
	return true;
}

/** XXH3-64 of a byte string. */
uint64_t sh_hash(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

/** Name of the first-token bucket for a token starting with first. */
void sh_prefix_bucket(unsigned char first, char out[16])
{
	char c = '_';

	if (first >= 'A' && first <= 'Z')
		c = (char)(first - 'A' + 'a');
	else if (first >= 'a' && first <= 'z')
		c = (char)first;
	snprintf(out, 16, "prefix/%c", c);
}

/** Writes the key prefix of a context (see shell.h); returns its length. */
size_t sh_context_key(char *kp, const char **tok, const size_t *len, size_t k, size_t l)
{
	size_t o = len[0], have = k + 1;

	memcpy(kp, tok[0], len[0]);
	kp[o++] = SH_SEP_FIRST;
	for (size_t j = have - l; j < have; j++) {
		if (j > have - l)
			kp[o++] = ' ';
		if (j == 0) {
			kp[o++] = SH_BOS;
		} else {
			memcpy(kp + o, tok[j - 1], len[j - 1]);
			o += len[j - 1];
		}
	}
	kp[o++] = SH_SEP_NEXT;
	return o;
}

/** Reads model name from the file ctx/name (a directory-backed source). */
ssize_t sh_dir_read(void *ctx, const char *name, void *buf, size_t len, uint64_t off)
{
	char path[4096];
	ssize_t got = 0;
	int fd;

	if (snprintf(path, sizeof path, "%s/%s", (const char *)ctx, name) >= (int)sizeof path)
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - (size_t)got, (off_t)(off + (uint64_t)got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			got = -errno;
			break;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	return got;
}
