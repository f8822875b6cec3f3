/*
 * bench_cache.c - micro-benchmark of the page cache (not a test).
 *
 * Prints a table of (1) hit-path page lookups per second with 1, 2 and 4
 * threads (median of 5 runs each) and the 2-thread/1-thread ratio, through
 * the cache (lookup + pin + unpin) and through apb_paged_read_index (4 KiB
 * reads at random offsets, copy included, default paging config; the
 * model's shared readahead stream) and apb_reader_read (a reader, so a
 * stream, per thread) of a 16 MiB and a 1 MiB model, beside their peer: memcpy of 4 KiB from
 * the same offsets of a buffer of the same size, the ceiling the copy sets
 * (at 16 MiB both threads share the last-level cache's bandwidth), and
 * (2) the cost of one insert-with-eviction (a miss in a full cache:
 * victim, evict, claim, publish) at 10^3 .. 10^6 resident pages for each
 * policy, plus the bare policy operations.  A flat cost across sizes is the
 * evidence that every operation is O(1).
 *
 * Usage: bench_cache [seconds-per-measurement, default 0.5] [hits]
 * ("hits": the hit-path table only).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apbundle.h"
#include "cache.h"

static double secs = 0.5;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static ssize_t noop_load(void *ctx, uint32_t m, uint64_t first, uint32_t n,
                         uint8_t *const dst[], int res[])
{
	(void)ctx; (void)m; (void)first; (void)dst; (void)res;
	return (ssize_t)n;
}

/* One timed thread's work: op on random pages of npages, op's inputs beside it. */
typedef struct job job;
typedef void (*op_fn)(job *j, uint64_t page);

struct job {
	op_fn op;
	apbi_cache *c;          /* op_pin, op_brief */
	apb_paged *pb;          /* op_read, op_reader (which opens its own reader r) */
	apb_reader *r;
	const uint8_t *src;     /* op_copy */
	uint64_t npages, ops;
	uint64_t seed;
	volatile int *stop;
};

/* A cache hit through a pin (lookup + CAS pin + unpin). */
static void op_pin(job *j, uint64_t page)
{
	apbi_page *p;
	uint32_t n;
	if (apbi_cache_get_run(j->c, 0, page, 1, &p, &n) == 0)
		apbi_cache_unpin(j->c, &p, n);
}

/* A cache hit through a brief hold, as reads take them. */
static void op_brief(job *j, uint64_t page)
{
	apbi_page *p;
	uint32_t n;
	bool brief;
	if (apbi_cache_get_brief(j->c, 0, page, 1, &p, &n, &brief) == 0)
		apbi_cache_put_brief(j->c, &p, n, brief);
}

/* A 4 KiB read through the model's shared readahead stream. */
static void op_read(job *j, uint64_t page)
{
	char buf[4096];
	apb_paged_read_index(j->pb, 0, buf, sizeof buf, page * sizeof buf);
}

/* A 4 KiB read through the thread's own reader (its own stream). */
static void op_reader(job *j, uint64_t page)
{
	char buf[4096];
	apb_reader_read(j->r, buf, sizeof buf, page * sizeof buf);
}

/* The peer of op_read: the same 4 KiB copy from a plain buffer. */
static void op_copy(job *j, uint64_t page)
{
	char buf[4096];
	memcpy(buf, j->src + page * sizeof buf, sizeof buf);
	__asm__ volatile("" : : "r"(buf) : "memory");   /* keep the copy */
}

/* Runs j->op on random pages until told to stop; counts the ops. */
static void *loop(void *arg)
{
	job *j = arg;
	uint64_t s = j->seed, ops = 0;
	if (j->op == op_reader && apb_reader_open(j->pb, 0, &j->r))
		return NULL;
	while (!*j->stop) {
		for (int k = 0; k < 256; k++)
			j->op(j, xs(&s) % j->npages);
		ops += 256;
	}
	if (j->r)
		apb_reader_close(j->r);
	j->ops = ops;
	return NULL;
}

#define MAX_THREADS 4
#define RUNS 5   /* each hit-path figure is the median of RUNS runs */

/* Runs nt copies of job t for secs; returns total ops per second. */
static double run_threads(const job *t, int nt)
{
	pthread_t th[MAX_THREADS];
	job jobs[MAX_THREADS];
	volatile int stop = 0;
	double t0 = now(), el;
	uint64_t total = 0;
	for (int i = 0; i < nt; i++) {
		jobs[i] = *t;
		jobs[i].seed = 88172645463325252ull + (uint64_t)i;
		jobs[i].stop = &stop;
		pthread_create(&th[i], NULL, loop, &jobs[i]);
	}
	usleep((useconds_t)(secs * 1e6));
	stop = 1;
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		total += jobs[i].ops;
	}
	el = now() - t0;
	return (double)total / el;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/*
 * Prints the median of RUNS runs of fn with 1, 2 and 4 threads (runs
 * interleaved, so a burst of load elsewhere hits every count alike) and
 * the ratio of 2 threads to 1.
 */
static void hit_table(const char *what, job t)
{
	static const int nts[3] = { 1, 2, 4 };
	double v[3][RUNS], med[3];
	for (int r = 0; r < RUNS; r++)
		for (int i = 0; i < 3; i++)
			v[i][r] = run_threads(&t, nts[i]);
	for (int i = 0; i < 3; i++) {
		qsort(v[i], RUNS, sizeof v[i][0], cmp_double);
		med[i] = v[i][RUNS / 2];
	}
	printf("%-40s %9.2f M/s %9.2f M/s %9.2f M/s %8.2fx\n", what, med[0] / 1e6, med[1] / 1e6,
	       med[2] / 1e6, med[1] / med[0]);
}

static apbi_cache *make(const apbi_policy_ops *pol, uint64_t *sizes, uint64_t pages, uint32_t ps)
{
	apbi_cache_config cfg = {
		.max_memory = pages * ps, .page_size = ps, .policy = pol, .n_models = 1,
		.model_sizes = sizes, .load = noop_load,
	};
	apbi_cache *c;
	if (apbi_cache_new(&cfg, &c)) {
		fprintf(stderr, "bench_cache: cannot create a cache of %llu pages\n",
		        (unsigned long long)pages);
		exit(1);
	}
	return c;
}

static void bench_hits(void)
{
	uint64_t sizes[1] = { 1024ull * 4096 };
	apbi_cache *c = make(&apbi_policy_lru, sizes, 1024, 4096);
	apbi_page *p;
	uint32_t n;
	for (uint64_t i = 0; i < 1024; i++)
		if (apbi_cache_get_run(c, 0, i, 1, &p, &n) == 0)
			apbi_cache_unpin(c, &p, 1);
	hit_table("cache hit lookup+pin+unpin", (job){ .op = op_pin, .c = c, .npages = 1024 });
	hit_table("cache hit lookup+hold+let go (brief)",
	          (job){ .op = op_brief, .c = c, .npages = 1024 });
	apbi_cache_free(c);
}

static void bench_paged_reads(size_t size)
{
	char path[] = "/tmp/bench_cache.XXXXXX";
	int fd = mkstemp(path);
	char what[64];
	uint8_t *data = malloc(size);
	apb_builder *bb;
	apb_paged *pb;
	char buf[4096];
	if (fd < 0 || !data)
		return;
	close(fd);
	memset(data, 7, size);
	bb = apb_builder_new(path);
	if (!bb || apb_builder_add_model(bb, "m", data, size) || apb_builder_build(bb)) {
		fprintf(stderr, "bench_cache: cannot build %s: %s\n", path, apb_last_error());
		goto out;
	}
	if (apb_paged_open(path, NULL, &pb)) {
		fprintf(stderr, "bench_cache: cannot open %s: %s\n", path, apb_last_error());
		goto out;
	}
	for (uint64_t off = 0; off < size; off += sizeof buf)
		apb_paged_read_index(pb, 0, buf, sizeof buf, off);
	snprintf(what, sizeof what, "apb_paged_read_index 4 KiB, %zu MiB", size >> 20);
	hit_table(what, (job){ .op = op_read, .pb = pb, .npages = size / 4096 });
	snprintf(what, sizeof what, "apb_reader_read 4 KiB, %zu MiB", size >> 20);
	hit_table(what, (job){ .op = op_reader, .pb = pb, .npages = size / 4096 });
	snprintf(what, sizeof what, "  peer: memcpy 4 KiB, %zu MiB", size >> 20);
	hit_table(what, (job){ .op = op_copy, .src = data, .npages = size / 4096 });
	apb_paged_close(pb);
out:
	apb_builder_free(bb);
	unlink(path);
	free(data);
}

/* ns per miss in a full cache of r pages (each miss evicts one page). */
static double bench_evict(const apbi_policy_ops *pol, uint64_t r)
{
	uint64_t sizes[1] = { 4 * r * 512 }, ops = 0, p = 0, np = 4 * r;
	apbi_cache *c = make(pol, sizes, r, 512);
	apbi_page *pg;
	uint32_t n;
	double t0;
	for (; p < r; p++)
		if (apbi_cache_get_run(c, 0, p, 1, &pg, &n) == 0)
			apbi_cache_unpin(c, &pg, 1);
	t0 = now();
	while (now() - t0 < secs) {
		for (int k = 0; k < 4096; k++, p = (p + 1) % np)
			if (apbi_cache_get_run(c, 0, p, 1, &pg, &n) == 0)
				apbi_cache_unpin(c, &pg, 1);
		ops += 4096;
	}
	t0 = (now() - t0) * 1e9 / (double)ops;
	apbi_cache_free(c);
	return t0;
}

/*
 * ns per victim + remove + insert + touch on a policy holding r nodes; the
 * touched node is random, or (seq) the next one, which keeps the memory
 * traffic cache-friendly and so isolates the algorithm from DRAM latency.
 */
static double bench_policy(const apbi_policy_ops *pol, uint64_t r, bool seq)
{
	apbi_pol_node *nodes = calloc(r, sizeof *nodes);
	void *p = pol->create(r);
	uint64_t s = 12345, ops = 0, next = 0;
	double t0;
	for (uint64_t i = 0; i < r; i++)
		pol->insert(p, &nodes[i], APBI_POL_DEMAND);
	t0 = now();
	while (now() - t0 < secs) {
		for (int k = 0; k < 4096; k++) {
			apbi_pol_node *v = pol->victim(p);
			pol->remove(p, v, true);
			pol->insert(p, v, APBI_POL_DEMAND);
			pol->touch(p, &nodes[seq ? next++ % r : xs(&s) % r]);
		}
		ops += 4096;
	}
	t0 = (now() - t0) * 1e9 / (double)ops;
	pol->destroy(p);
	free(nodes);
	return t0;
}

int main(int argc, char **argv)
{
	static const apbi_policy_ops *pols[2] = { &apbi_policy_lru, &apbi_policy_lfu };
	if (argc > 1)
		secs = atof(argv[1]) > 0 ? atof(argv[1]) : secs;
	printf("%-40s %13s %13s %13s %9s\n", "hit path (median of 5)", "1 thread", "2 threads",
	       "4 threads", "2t/1t");
	bench_hits();
	bench_paged_reads(16u << 20);
	bench_paged_reads(1u << 20);
	if (argc > 2 && !strcmp(argv[2], "hits"))
		return 0;
	printf("\n%-6s %9s %18s %20s %20s\n", "policy", "resident", "miss+evict ns/op",
	       "policy round ns/op", "(sequential touch)");
	for (int i = 0; i < 2; i++)
		for (uint64_t r = 1000; r <= 1000000; r *= 10)
			printf("%-6s %9llu %18.1f %20.1f %20.1f\n", pols[i]->name, (unsigned long long)r,
			       bench_evict(pols[i], r), bench_policy(pols[i], r, false),
			       bench_policy(pols[i], r, true));
	return 0;
}
