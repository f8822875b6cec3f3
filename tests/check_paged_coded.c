/*
 * check_paged_coded.c - compressed models (format version 2) read through
 * the block layer: byte identity at every page size and through streams,
 * and the failures a damaged bundle may show: a flipped byte inside a
 * compressed block fails that block only (every other block still reads),
 * a table entry that lies about a block's stored range fails that block as
 * corrupt without reading outside the model, and nothing bad is cached.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "apbundle.h"
#include "format.h"
#include "internal.h"
#include "testutil.h"

#define BS 4096u
#define SIZE (40u * BS + 123u)

/* Compressible bytes: small integers as float32, so blocks shrink. */
static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i += 4) {
		float f = (float)((i * 2654435761u >> 20) % 64);
		memcpy(p + i, &f, 4);
	}
	for (size_t i = n / 4 * 4; i < n; i++)
		p[i] = (uint8_t)i;
}

static uint8_t *build(const char *path)
{
	uint8_t *d = malloc(SIZE);
	apb_builder *bb = apb_builder_new(path);
	fill(d, SIZE);
	ck_assert_int_eq(apb_builder_set_block_size(bb, BS), 0);
	ck_assert_int_eq(apb_builder_set_compression(bb, APB_CODEC_ZSTD, 3, APB_FILTER_BYTEGROUP4), 0);
	ck_assert_int_eq(apb_builder_add_model(bb, "w", d, SIZE), 0);
	ck_assert_int_eq(apb_builder_build(bb), 0);
	apb_builder_free(bb);
	return d;
}

static apb_paged *open_at(const char *path, uint32_t ps, uint64_t mem)
{
	apb_paging_config cfg;
	apb_paged *pb = NULL;
	apb_paging_config_init(&cfg);
	cfg.page_size = ps;
	cfg.max_memory = mem;
	cfg.prefetch = false;
	ck_assert_msg(apb_paged_open(path, &cfg, &pb) == 0, "%s", apb_last_error());
	return pb;
}

/* Stored offset (absolute) and length of block k, from the table as written. */
static void locate(const char *path, uint64_t k, uint64_t *off, uint64_t *len)
{
	apbi_manifest *m = NULL;
	uint8_t e[32];
	int fd = open(path, O_RDONLY);
	uint64_t o0, o1;
	ck_assert_int_eq(apbi_manifest_read(fd, &m), 0);
	ck_assert_int_eq(m->models[0].entry_size, 16);
	ck_assert_int_eq(pread(fd, e, 32, (off_t)(m->data_start + m->models[0].blocks_offset + 16 * k)), 32);
	memcpy(&o0, e + 8, 8);
	memcpy(&o1, e + 24, 8);
	*off = m->data_start + m->models[0].offset + le64toh(o0);
	*len = le64toh(o1) - le64toh(o0);
	apbi_manifest_free(m);
	close(fd);
}

/* Writes len bytes at off in place, keeping size and mtime (media damage). */
static void poke(const char *path, uint64_t off, const void *b, size_t len)
{
	struct stat st;
	struct timespec ts[2];
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(pwrite(fd, b, len, (off_t)off), (ssize_t)len);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	ck_assert_int_eq(futimens(fd, ts), 0);
	close(fd);
}

static int collect(void *ctx, uint64_t off, const void *buf, size_t len)
{
	memcpy((uint8_t *)ctx + off, buf, len);
	return 0;
}

START_TEST(reads_match_at_every_page_size)
{
	static const uint32_t ps[4] = { 512, 4096, 65536, 1u << 20 };
	char *path = tu_path("c.apbundle");
	uint8_t *d = build(path), *buf = malloc(SIZE);
	apb_stream_ops ops = { .data = collect };
	apb_paging_stats st;
	apb_paged *pb = open_at(path, ps[_i], 3 * (uint64_t)ps[_i] > 64 * 1024 ? 3 * (uint64_t)ps[_i] : 64 * 1024);
	for (uint64_t off = 0; off < SIZE; off += 1000) {
		size_t n = SIZE - off < 1000 ? SIZE - off : 1000;
		ck_assert_int_eq(apb_paged_read(pb, "w", buf, n, off), (ssize_t)n);
		ck_assert_mem_eq(buf, d + off, n);
	}
	memset(buf, 0, SIZE);
	ck_assert_int_eq(apb_paged_stream(pb, 0, &ops, buf, NULL), 0);
	ck_assert_mem_eq(buf, d, SIZE);
	apb_paged_stats(pb, &st);
	ck_assert_uint_gt(st.bytes_decoded, 0);
	ck_assert_uint_eq(st.checksum_failures, 0);
	ck_assert_uint_le(st.memory_used, 3 * (uint64_t)ps[_i] > 64 * 1024 ? 3 * (uint64_t)ps[_i] : 64 * 1024);
	apb_paged_close(pb);
	free(buf);
	free(d);
	free(path);
}
END_TEST

/* A flipped byte in block 7's frame (or raw bytes): that block only. */
START_TEST(damaged_block_fails_alone)
{
	char *path = tu_path("c.apbundle");
	uint8_t *d = build(path), buf[BS], b;
	uint64_t off, len;
	apb_block_error be;
	apb_paging_stats st;
	apb_paged *pb;
	locate(path, 7, &off, &len);
	ck_assert_uint_lt(len, BS);                 /* it was compressed */
	int fd = open(path, O_RDONLY);
	ck_assert_int_eq(pread(fd, &b, 1, (off_t)(off + len / 2)), 1);
	close(fd);
	b ^= 0x40;
	poke(path, off + len / 2, &b, 1);
	pb = open_at(path, 4096, 1 << 20);
	for (uint64_t k = 0; k * BS < SIZE; k++) {
		size_t n = SIZE - k * BS < BS ? SIZE - k * BS : BS;
		ssize_t r = apb_paged_read(pb, "w", buf, n, k * BS);
		if (k == 7) {
			ck_assert_msg(r == APB_E_CHECKSUM || r == APB_E_CORRUPT, "block 7 gave %zd", r);
			ck_assert(apb_last_block_error(&be));
			ck_assert_uint_eq(be.block, 7);
			ck_assert_uint_eq(be.offset, 7 * BS);
			ck_assert_ptr_nonnull(strstr(apb_last_error(), "block 7"));
		} else {
			ck_assert_int_eq(r, (ssize_t)n);
			ck_assert_mem_eq(buf, d + k * BS, n);
		}
	}
	apb_paged_stats(pb, &st);
	ck_assert_uint_ge(st.checksum_failures, 1);
	ck_assert(!apb_paged_is_cached(pb, "w"));
	apb_paged_close(pb);
	free(d);
	free(path);
}
END_TEST

/*
 * Block 4's entry moved 1 GiB past the model: the table chunk no longer
 * matches its index, so the model fails cleanly before the entry is used
 * (entries that pass their checksums yet lie are apbi_block_locate's and
 * the fuzzers' business).
 */
START_TEST(lying_entry_caught_by_the_index)
{
	char *path = tu_path("c.apbundle");
	uint8_t *d = build(path), buf[BS];
	apbi_manifest *m = NULL;
	uint64_t toff, v;
	int fd = open(path, O_RDONLY);
	ck_assert_int_eq(apbi_manifest_read(fd, &m), 0);
	toff = m->data_start + m->models[0].blocks_offset;
	apbi_manifest_free(m);
	close(fd);
	v = htole64(1u << 30);                      /* block 4 "starts" 1 GiB in */
	poke(path, toff + 16 * 4 + 8, &v, 8);
	/* the table no longer matches its index: every read of w fails, none crashes */
	{
		apb_paged *pb = open_at(path, 4096, 1 << 20);
		ck_assert_int_eq(apb_paged_read(pb, "w", buf, 10, 3 * BS), APB_E_CHECKSUM);
		apb_paged_close(pb);
	}
	free(d);
	free(path);
}
END_TEST

/*
 * Entries that pass their checksums yet lie, located directly: an empty
 * stored range (the fuzzer's find: a zero-length block read no bytes and
 * formed a pointer from a null buffer), a range running backwards, past
 * the model, or longer than the block decodes to; each is APB_E_CORRUPT
 * for its block, and an honest pair locates.
 */
START_TEST(lying_entries_located)
{
	apbi_model mod = { .name = "w", .size = 3 * BS, .block_size = BS, .n_blocks = 3,
	                   .entry_size = 16, .stored_size = 3000 };
	uint8_t a[16] = { 0 }, b[16] = { 0 };
	apbi_block_loc loc;
	uint64_t v;
	struct { uint64_t off, next; int want; } c[] = {
		{ 100, 100, APB_E_CORRUPT },        /* zero stored bytes */
		{ 100, 50, APB_E_CORRUPT },         /* backwards */
		{ 100, 3001, APB_E_CORRUPT },       /* past the stored bytes */
		{ 100, 100 + BS + 1, APB_E_CORRUPT },
		{ 100, 900, 0 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		v = htole64(c[i].off);
		memcpy(a + 8, &v, 8);
		v = htole64(c[i].next);
		memcpy(b + 8, &v, 8);
		ck_assert_int_eq(apbi_block_locate(&mod, 0, 1, a, b, &loc), c[i].want);
	}
	ck_assert_uint_eq(loc.offset, 100);
	ck_assert_uint_eq(loc.stored_len, 800);
	ck_assert_uint_eq(loc.len, BS);
}
END_TEST

Suite *test_suite(void)
{
	Suite *s = suite_create("paged_coded");
	TCase *tc = tcase_create("coded");
	tu_add_fixture(tc);
	tcase_add_loop_test(tc, reads_match_at_every_page_size, 0, 4);
	tcase_add_test(tc, damaged_block_fails_alone);
	tcase_add_test(tc, lying_entry_caught_by_the_index);
	tcase_add_test(tc, lying_entries_located);
	suite_add_tcase(s, tc);
	return s;
}

APB_TEST_MAIN()
