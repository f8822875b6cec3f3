/*
 * trace.c - page-lookup trace recorder (see trace.h; format at
 * apb_paged_trace_start in apbundle.h).
 *
 * Two buffers of TR_RECS binary records: readers append to the active one
 * under t->lock (taken inside the cache lock; the writer never takes the
 * cache lock, so the order is cache lock -> trace lock only).  A full
 * buffer is handed to the writer thread, which formats and write()s it
 * holding no lock at all; a reader waits only if the other buffer is still
 * being written.  So the file lists the lookups in the order the cache
 * counted them, and nothing is dropped.  Beside the lookups the cache
 * records what a replay needs to account pages as it did (claims before
 * the policy sees a page, metadata lookups, parked pages: trace.h), as
 * "#@ " lines, which the format's readers take for comments.
 *
 * Memory (outside max_memory, fixed at open): 2 * TR_RECS * 16 bytes
 * (1 MiB) of records, OUT_CAP bytes of formatting buffer, the escaped
 * model names.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apbundle.h"
#include "sim.h"
#include "trace.h"

#define TR_RECS 32768u
#define OUT_CAP (64u * 1024u)

typedef struct rec {
	uint64_t page;         /* OBJECT: the object's size */
	uint32_t model;
	uint16_t ev;           /* enum apbi_trace_ev */
	uint16_t arg;          /* FILL: the policy entry kind */
} rec;

struct apbi_trace {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	rec *buf[2];
	uint32_t n[2];
	int active, pending;   /* buffer being filled; buffer handed over, or -1 */
	bool stop;
	int fd, err;
	uint32_t n_models;
	char **names;          /* escaped */
	char out[OUT_CAP];
	size_t out_n;
	pthread_t th;
};

static int out_flush(apbi_trace *t)
{
	size_t done = 0;
	while (done < t->out_n && !t->err) {
		ssize_t w = write(t->fd, t->out + done, t->out_n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			t->err = w < 0 ? -errno : -EIO;
		else
			done += (size_t)w;
	}
	t->out_n = 0;
	return t->err;
}

/* Appends s (len bytes) to the output buffer, flushing when needed. */
static void out_put(apbi_trace *t, const char *s, size_t len)
{
	while (len) {
		size_t k = OUT_CAP - t->out_n < len ? OUT_CAP - t->out_n : len;
		memcpy(t->out + t->out_n, s, k);
		t->out_n += k;
		s += k;
		len -= k;
		if (t->out_n == OUT_CAP)
			out_flush(t);
	}
}

/* Formats one record: a lookup line, or "#@ WORD OBJ PAGE[ ARG]". */
static void write_rec(apbi_trace *t, const rec *r)
{
	char line[96];
	int k;
	if (r->ev == APBI_TR_LOOKUP) {
		const char *name = r->model < t->n_models ? t->names[r->model] : "?";
		out_put(t, name, strlen(name));
		k = snprintf(line, sizeof line, "\t%llu\n", (unsigned long long)r->page);
	} else if (r->ev == APBI_TR_FILL) {
		k = snprintf(line, sizeof line, "#@ %s %u %llu %u\n", apbi_trace_words[r->ev], r->model,
		             (unsigned long long)r->page, (unsigned)r->arg);
	} else {
		k = snprintf(line, sizeof line, "#@ %s %u %llu\n", apbi_trace_words[r->ev], r->model,
		             (unsigned long long)r->page);
	}
	out_put(t, line, (size_t)k);
}

static void write_recs(apbi_trace *t, const rec *r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		write_rec(t, &r[i]);
	out_flush(t);
}

static void *writer(void *arg)
{
	apbi_trace *t = arg;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		int b;
		while (t->pending < 0 && !t->stop)
			pthread_cond_wait(&t->cond, &t->lock);
		b = t->pending >= 0 ? t->pending : t->active;
		pthread_mutex_unlock(&t->lock);
		write_recs(t, t->buf[b], t->n[b]);
		pthread_mutex_lock(&t->lock);
		t->n[b] = 0;
		if (t->pending < 0)
			break;   /* stopping, the active buffer is written */
		t->pending = -1;
		pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/** See trace.h. */
void apbi_trace_event(apbi_trace *t, enum apbi_trace_ev ev, uint32_t obj, uint64_t page,
                      uint64_t arg)
{
	pthread_mutex_lock(&t->lock);
	if (t->n[t->active] == TR_RECS) {
		while (t->pending >= 0)
			pthread_cond_wait(&t->cond, &t->lock);
		t->pending = t->active;
		t->active ^= 1;
		pthread_cond_broadcast(&t->cond);
	}
	t->buf[t->active][t->n[t->active]++] = (rec){ .page = page, .model = obj,
	                                              .ev = (uint16_t)ev, .arg = (uint16_t)arg };
	pthread_mutex_unlock(&t->lock);
}

static void trace_free(apbi_trace *t)
{
	if (t->fd >= 0)
		close(t->fd);
	for (uint32_t i = 0; t->names && i < t->n_models; i++)
		free(t->names[i]);
	free(t->names);
	free(t->buf[0]);
	free(t->buf[1]);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}

/* Escaped copies of the names and the header lines. */
static int write_header(apbi_trace *t, uint32_t page_size, const char *const names[],
                        const uint64_t sizes[])
{
	char line[64];
	int k = snprintf(line, sizeof line, "# page_size %u\n", page_size);
	out_put(t, line, (size_t)k);
	for (uint32_t i = 0; i < t->n_models; i++) {
		size_t need = apbi_trace_escape(names[i], NULL, 0) + 1;
		if (!(t->names[i] = malloc(need)))
			return -ENOMEM;
		apbi_trace_escape(names[i], t->names[i], need);
		out_put(t, "# model ", 8);
		out_put(t, t->names[i], need - 1);
		k = snprintf(line, sizeof line, " %llu\n", (unsigned long long)sizes[i]);
		out_put(t, line, (size_t)k);
	}
	return out_flush(t);
}

/** See trace.h. */
int apbi_trace_open(const char *path, uint32_t page_size, uint32_t n_models,
                    const char *const names[], const uint64_t sizes[], apbi_trace **out)
{
	apbi_trace *t = calloc(1, sizeof *t);
	int r;
	*out = NULL;
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->pending = -1;
	t->n_models = n_models;
	t->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (t->fd < 0) {
		r = -errno;
		trace_free(t);
		return r;
	}
	t->names = calloc(n_models ? n_models : 1, sizeof *t->names);
	t->buf[0] = malloc(TR_RECS * sizeof(rec));
	t->buf[1] = malloc(TR_RECS * sizeof(rec));
	r = !t->names || !t->buf[0] || !t->buf[1] ? -ENOMEM : write_header(t, page_size, names, sizes);
	if (!r)
		r = -pthread_create(&t->th, NULL, writer, t);
	if (r) {
		trace_free(t);
		return r;
	}
	*out = t;
	return 0;
}

/** See trace.h. */
int apbi_trace_close(apbi_trace *t)
{
	int r;
	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->th, NULL);
	r = t->err;
	if (!r && close(t->fd) < 0)
		r = -errno;
	else if (r)
		close(t->fd);
	t->fd = -1;
	trace_free(t);
	return r;
}
