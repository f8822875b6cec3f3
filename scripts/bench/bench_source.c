/*
 * bench_source.c - reads a whole bundle through apbi_source_open (local path
 * or URL) in CHUNK-sized reads, one reader, and prints MB/s: the source
 * layer's own rate, without cache or FUSE (remote_bench.sh measures those).
 *
 * Usage: bench_source PATH_OR_URL [CHUNK (default 4M)] [disk_cache DIR]
 * Invariant: every read is checked for success; nothing is verified (the
 * block layer does that), so this is an upper bound for a cold read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "source.h"

int main(int argc, char **argv)
{
	apb_open_options o;
	apbi_source *s;
	uint64_t chunk = 4u << 20;
	struct timespec a, b;
	char *buf;
	if (argc < 2 || (argc > 2 && apb_parse_size(argv[2], &chunk) != 0) || !chunk) {
		fprintf(stderr, "usage: bench_source PATH_OR_URL [CHUNK] [DISK_CACHE_DIR]\n");
		return 2;
	}
	apb_open_options_init(&o);
	o.disk_cache = argc > 3 ? argv[3] : NULL;
	if (apbi_source_open(argv[1], &o, &s) != 0 || !(buf = malloc(chunk))) {
		fprintf(stderr, "bench_source: %s\n", apb_last_error());
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint64_t off = 0; off < s->size; off += chunk) {
		size_t n = s->size - off < chunk ? (size_t)(s->size - off) : (size_t)chunk;
		if (apbi_source_read(s, buf, n, off) != 0) {
			fprintf(stderr, "bench_source: %s\n", apb_last_error());
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double t = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%s: %llu bytes in %.3f s, %.1f MB/s (chunk %llu)\n", s->ops->kind,
	       (unsigned long long)s->size, t, (double)s->size / t / 1e6, (unsigned long long)chunk);
	apbi_source_close(s);
	free(buf);
	return 0;
}
