/*
 * obuf.c - growable text buffers in anonymous mappings (see obuf.h).
 *
 * Invariants: data is NULL or a mapping of cap bytes (a multiple of the
 * page size) of which the first len are the text; len <= cap; once failed
 * is set, data and len never change again until apbm_obuf_free.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "obuf.h"

#define FIRST_CAP (64u * 1024u)

static size_t page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) / pg * pg;
}

/* Makes room for n more bytes; false (and failed set) when it cannot. */
static bool reserve(apbm_obuf *b, size_t n)
{
	size_t want, cap;
	void *p;

	if (b->failed)
		return false;
	if (b->limit && n > b->limit - b->len) {
		b->failed = b->over_limit = true;
		return false;
	}
	if (n <= b->cap - b->len)
		return true;
	if (n > SIZE_MAX / 4 - b->len) {
		b->failed = true;
		return false;
	}
	want = b->len + n;
	cap = b->cap ? b->cap : FIRST_CAP;
	while (cap < want)
		cap *= 2;
	cap = page_round(cap);
	if (b->data)
		p = mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
	else
		p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void apbm_obuf_put(apbm_obuf *b, const char *s, size_t n)
{
	if (n == 0 || !reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

void apbm_obuf_puts(apbm_obuf *b, const char *s)
{
	apbm_obuf_put(b, s, strlen(s));
}

void apbm_obuf_printf(apbm_obuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		apbm_obuf_put(b, small, (size_t)n);
		return;
	}
	if (!reserve(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void apbm_obuf_json_str(apbm_obuf *b, const char *s)
{
	const char *run = s;

	apbm_obuf_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		apbm_obuf_put(b, run, (size_t)(s - run));
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			apbm_obuf_put(b, esc, 2);
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			apbm_obuf_put(b, esc, 6);
		}
		run = s + 1;
	}
	apbm_obuf_put(b, run, (size_t)(s - run));
	apbm_obuf_put(b, "\"", 1);
}

void apbm_obuf_shrink(apbm_obuf *b)
{
	size_t cap = page_round(b->len ? b->len : 1);
	void *p;

	if (!b->data || cap >= b->cap)
		return;
	p = mremap(b->data, b->cap, cap, 0);
	if (p != MAP_FAILED)
		b->cap = cap;
}

void apbm_obuf_free(apbm_obuf *b)
{
	if (b->data)
		munmap(b->data, b->cap);
	*b = (apbm_obuf){ 0 };
}
