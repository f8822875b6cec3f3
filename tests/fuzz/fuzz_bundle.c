/*
 * fuzz_bundle.c - libFuzzer target: an arbitrary byte string as a bundle.
 *
 * The input is written to a memfd and opened by path (/proc/self/fd/N)
 * twice: whole (apb_bundle_load, every model fetched) and paged
 * (apb_paged_open with a 2 KiB budget of 512-byte pages, or 1 MiB when
 * 2 KiB cannot hold one load of its models (refused since issue 15), every model read
 * in odd-sized chunks, then as a pinned view).  Invariants checked, each
 * violation an abort (a finding): memory_used never exceeds max_memory;
 * clear_cache brings it to 0 once no view is held (no leaked pin); every
 * block the paged reader serves matches its checksum, from the model's
 * block table in the file or, for a single-block model, the manifest's
 * model checksum (never unverified bytes); bytes served by both readers
 * agree.  (A block table is not itself covered by the manifest, so a model
 * whose blocks match its table but not its manifest checksum is served:
 * that is the format's design, see docs/RELIABILITY.md.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "apbundle.h"
#include "format.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

#define BUDGET 2048u
#define BIG_BUDGET (1u << 20)   /* holds one load of any input of up to max_len */
#define PAGE 512u
#define CHUNK 700u          /* not a divisor of the page size */
#define MAX_MODEL (1u << 20)

/* Reads model i of pb in CHUNK pieces into a new buffer; NULL on error. */
static uint8_t *paged_read_all(apb_paged *pb, size_t i, uint64_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	uint64_t off = 0;
	apb_paging_stats st;
	apb_paging_config cfg;

	if (!buf)
		return NULL;
	apb_paged_config(pb, &cfg);
	while (off < size) {
		size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t n = apb_paged_read_index(pb, i, buf + off, want, off);
		apb_paged_stats(pb, &st);
		CHECK(st.memory_used <= cfg.max_memory);
		if (n < 0) {
			free(buf);
			return NULL;
		}
		CHECK((size_t)n == want);   /* the model's size is known: no short read */
		off += (uint64_t)n;
	}
	return buf;
}

/*
 * Checks the chain that binds model md's block table to the manifest, as
 * the paged reader uses it: with an index, the index against
 * index_checksum and every table chunk (APBI_TABLE_CHUNK) against its index entry
 * (table_checksum is then checked only by verify: FORMAT.md 4.2); without
 * one, the whole table against table_checksum when the manifest has it.
 */
static void check_table(const apbi_manifest *m, const apbi_model *md, const uint8_t *file)
{
	const uint8_t *t = file + m->data_start + md->blocks_offset;
	uint64_t tb = apbi_table_bytes(md);

	if (!md->has_index) {
		if (md->has_table_checksum)
			CHECK(apbi_xxh3(t, tb) == md->table_checksum);
		return;
	}
	const uint8_t *ix = file + m->data_start + md->index_offset;
	CHECK(apbi_xxh3(ix, apbi_index_bytes(md)) == md->index_checksum);
	for (uint64_t j = 0; j * APBI_TABLE_CHUNK < tb; j++) {
		uint64_t left = tb - j * APBI_TABLE_CHUNK;
		uint64_t len = left < APBI_TABLE_CHUNK ? left : APBI_TABLE_CHUNK;
		uint64_t want = 0;
		for (int b = 7; b >= 0; b--)
			want = want << 8 | ix[8 * j + (unsigned)b];
		CHECK(apbi_xxh3(t + j * APBI_TABLE_CHUNK, len) == want);
	}
}

/*
 * Checks that the size bytes at p, served as model name, match what the
 * file says they must: the block table (8-byte entries, or 16 for a
 * compressed model; read here from the raw input, and
 * matching the manifest's table_checksum when it has one) or, without a
 * table, the model checksum (also for empty models).
 */
static void check_verified(const apbi_manifest *m, const uint8_t *file, const char *name,
                           const uint8_t *p, uint64_t size)
{
	int64_t i = apbi_manifest_find(m, name);
	const apbi_model *md;

	CHECK(i >= 0);
	md = &m->models[i];
	CHECK(md->size == size);
	if (!md->has_checksum)
		return;
	if (!md->has_block_table) {
		CHECK(apbi_xxh3(p, size) == md->checksum);
		return;
	}
	check_table(m, md, file);
	for (uint64_t k = 0; k < md->n_blocks; k++) {
		uint64_t off = k * md->block_size, want;
		uint64_t len = size - off < md->block_size ? size - off : md->block_size;
		/* each entry starts with the block's XXH3-64 (of its decoded bytes) */
		const uint8_t *t = file + m->data_start + md->blocks_offset + md->entry_size * k;
		want = 0;
		for (int j = 7; j >= 0; j--)
			want = want << 8 | t[j];
		CHECK(apbi_xxh3(p + off, len) == want);
	}
}

/* Paged pass over every model; bundle b (may be NULL) gives reference bytes. */
static void paged_pass(const char *path, const apb_bundle *b, const apbi_manifest *m,
                       const uint8_t *file)
{
	apb_paging_config cfg;
	apb_paging_stats st;
	apb_paged *pb = NULL;

	apb_paging_config_init(&cfg);
	cfg.max_memory = BUDGET;
	cfg.page_size = PAGE;
	cfg.prefetch = false;
	if (apb_paged_open(path, &cfg, &pb) == -EINVAL) {
		cfg.max_memory = BIG_BUDGET;
		if (apb_paged_open(path, &cfg, &pb) == -EINVAL)
			CHECK(!"a 1 MiB budget was refused");
	}
	if (!pb)
		return;
	for (size_t i = 0; i < apb_paged_model_count(pb); i++) {
		apb_model_info info;
		const void *view = NULL, *ref = NULL;
		size_t vsize = 0, rsize = 0;
		uint8_t *all, byte;

		CHECK(apb_paged_model_info(pb, i, &info) == 0);
		CHECK(apb_paged_find(pb, info.name) == (ssize_t)i);
		if (info.size > MAX_MODEL)
			continue;
		all = paged_read_all(pb, i, info.size);
		if (b && apb_bundle_get_model(b, info.name, &ref, &rsize) == 0 && all) {
			CHECK(rsize == info.size);
			CHECK(memcmp(ref, all, rsize) == 0);
		}
		if (all && m)
			check_verified(m, file, info.name, all, info.size);
		if (apb_paged_get_model(pb, info.name, &view, &vsize) == 0) {
			CHECK(vsize == info.size);
			if (m)
				check_verified(m, file, info.name, view, vsize);
			if (all)
				CHECK(memcmp(view, all, vsize) == 0);
			apb_paged_stats(pb, &st);
			CHECK(st.memory_used <= cfg.max_memory);
			apb_paged_release(pb, view);
		}
		free(all);
		CHECK(apb_paged_read_index(pb, i, &byte, 1, info.size) == 0);
	}
	apb_paged_clear_cache(pb);
	apb_paged_stats(pb, &st);
	CHECK(st.memory_used == 0);
	CHECK(st.cached_pages == 0);
	apb_paged_close(pb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	apb_bundle *b = NULL;
	apbi_manifest *m = NULL;
	int fd = memfd_create("fuzz_bundle", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (apb_bundle_load(path, &b) == 0) {
		size_t n = apb_bundle_model_count(b);
		for (size_t i = 0; i < n; i++) {
			const char *name = apb_bundle_model_name(b, i);
			const void *p;
			size_t len;
			CHECK(name != NULL);
			CHECK(apb_bundle_get_model(b, name, &p, &len) == 0);
			CHECK(apbi_name_check(name, strlen(name)) == 0);
		}
		CHECK(apb_bundle_model_name(b, n) == NULL);
	}
	if (apbi_manifest_parse(data, size, size, &m) != 0)
		m = NULL;
	paged_pass(path, b, m, data);
	apbi_manifest_free(m);
	apb_bundle_free(b);
	close(fd);
	return 0;
}
