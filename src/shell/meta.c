/*
 * meta.c - the model's small metadata segment ("meta") and segment naming.
 *
 * The meta model is UTF-8 text, one "key value" per line, first line
 * "apbundle-shell-model 1"; keys: ngram, commands, vocabulary, distinct,
 * memory_limit_mb, segments, freq_segments, named, then one
 * "segment <token>" line per named segment.  Unknown keys are ignored so
 * later versions can add some.
 *
 * Invariants: the text is at most SH_META_MAX bytes (it holds a bounded
 * number of named tokens, never anything that grows with the history);
 * the parser trusts nothing: numbers are range-checked, named tokens must be
 * nameable, and a missing required key is an error naming that key.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"

#define META_MAGIC "apbundle-shell-model 1"

/** Formats the metadata text. */
int sh_meta_format(const sh_meta *m, char *buf, size_t len)
{
	size_t o;
	int n = snprintf(buf, len,
			 META_MAGIC "\nngram %u\ncommands %" PRIu64 "\nvocabulary %" PRIu64
			 "\ndistinct %" PRIu64 "\nmemory_limit_mb %" PRIu64
			 "\nsegments %u\nfreq_segments %u\nnamed %u\n",
			 m->ngram, m->commands, m->vocabulary, m->distinct,
			 m->memory_limit_mb, m->segments, m->freq_segments, m->n_named);

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	o = (size_t)n;
	for (unsigned i = 0; i < m->n_named; i++) {
		n = snprintf(buf + o, len - o, "segment %s\n", m->named[i]);
		if (n < 0 || (size_t)n >= len - o)
			return -ENOSPC;
		o += (size_t)n;
	}
	return (int)o;
}

static int parse_num(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x > max)
		return -1;
	*out = x;
	return 0;
}

static int meta_line(sh_meta *m, const char *k, const char *v, unsigned *seen)
{
	static const char *const keys[] = { "ngram", "commands", "vocabulary", "distinct",
		"memory_limit_mb", "segments", "freq_segments", "named" };
	uint64_t x;

	if (strcmp(k, "segment") == 0) {
		size_t l = strlen(v);
		if (m->n_named >= SH_NAMED_SEGMENTS || !sh_token_nameable(v, l))
			return sh_err(-EBADMSG, "model metadata: bad named segment \"%.64s\"", v);
		memcpy(m->named[m->n_named++], v, l + 1);
		return 0;
	}
	for (unsigned i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (strcmp(k, keys[i]) != 0)
			continue;
		if (parse_num(v, i == 0 ? SH_NGRAM_MAX : i >= 5 ? 1u << 20 : UINT64_MAX / 2, &x) < 0 ||
		    (i == 0 && x < SH_NGRAM_MIN))
			return sh_err(-EBADMSG, "model metadata: bad value for %s", k);
		switch (i) {
		case 0: m->ngram = (unsigned)x; break;
		case 1: m->commands = x; break;
		case 2: m->vocabulary = x; break;
		case 3: m->distinct = x; break;
		case 4: m->memory_limit_mb = x; break;
		case 5: m->segments = (unsigned)x; break;
		case 6: m->freq_segments = (unsigned)x; break;
		default: break; /* named: checked against the segment lines */
		}
		*seen |= 1u << i;
		return 0;
	}
	return 0;
}

/** Parses the metadata text. */
int sh_meta_parse(const char *text, size_t len, sh_meta *m)
{
	char buf[SH_META_MAX + 1], *save = NULL, *line;
	unsigned seen = 0;
	int rc;

	memset(m, 0, sizeof *m);
	if (len > SH_META_MAX || memchr(text, '\0', len))
		return sh_err(-EBADMSG, "model metadata is not text or too large");
	memcpy(buf, text, len);
	buf[len] = '\0';
	line = strtok_r(buf, "\n", &save);
	if (!line || strcmp(line, META_MAGIC) != 0)
		return sh_err(-EBADMSG, "not an apbundle-shell model (metadata header)");
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *sp = strchr(line, ' ');
		if (!sp)
			return sh_err(-EBADMSG, "model metadata: malformed line \"%.64s\"", line);
		*sp = '\0';
		if ((rc = meta_line(m, line, sp + 1, &seen)) < 0)
			return rc;
	}
	if (seen != 0xffu)
		return sh_err(-EBADMSG, "model metadata: a required key is missing");
	if (m->freq_segments > SH_FREQ_SEGMENTS)
		return sh_err(-EBADMSG, "model metadata: too many freq segments");
	return 0;
}

/** Reads and parses the meta model. */
int sh_meta_read(const sh_source *src, sh_meta *m)
{
	char buf[SH_META_MAX + 1];
	ssize_t n = src->read(src->ctx, SH_META_NAME, buf, sizeof buf, 0);

	if (n == -ENOENT)
		return sh_err(-EBADMSG, "not an apbundle-shell model (no \"meta\" segment)");
	if (n < 0)
		return sh_err((int)n, "reading model metadata: %s",
			      src->describe ? src->describe(src->ctx, (int)n) : strerror((int)-n));
	if ((size_t)n > SH_META_MAX)
		return sh_err(-EBADMSG, "model metadata larger than %u bytes", SH_META_MAX);
	return sh_meta_parse(buf, (size_t)n, m);
}

/** Name of the n-gram segment holding commands that start with tok. */
void sh_segment_name(const sh_meta *m, const char *tok, size_t len, char out[96])
{
	for (unsigned i = 0; i < m->n_named; i++) {
		if (strlen(m->named[i]) == len && memcmp(m->named[i], tok, len) == 0) {
			snprintf(out, 96, "segment/%s", m->named[i]);
			return;
		}
	}
	snprintf(out, 96, "segment/~%02x", (unsigned)(sh_hash(tok, len) % SH_HASH_SEGMENTS));
}
