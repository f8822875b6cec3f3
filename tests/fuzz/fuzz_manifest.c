/*
 * fuzz_manifest.c - libFuzzer target for the header + manifest parser.
 *
 * Feeds the input to apbi_manifest_parse() as the first bytes of a file,
 * twice: once as the whole file and once as the head of a file that is
 * larger than the buffer (file_size from the input's last 8 bytes), so the
 * parser's range checks see sizes that disagree with what it holds.  On
 * success every invariant format.h promises is checked and a violation
 * aborts (a finding): names valid and unique and found by the index,
 * stored ranges inside the file, no overlaps, block counts consistent,
 * the version-2 fields (codec, filter, stored_size, entry size) coherent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* Checks what format.h promises about a decoded manifest. */
static void check_manifest(const apbi_manifest *m, uint64_t file_size)
{
	CHECK(m->file_size == file_size);
	CHECK(m->data_start <= file_size);
	for (uint64_t i = 0; i < m->n_models; i++) {
		const apbi_model *md = &m->models[i];
		apb_model_info info;
		CHECK(md->name != NULL);
		CHECK(strlen(md->name) == md->name_len);
		CHECK(apbi_name_check(md->name, md->name_len) == 0);
		CHECK(apbi_manifest_find(m, md->name) == (int64_t)i);
		CHECK(md->offset <= file_size - m->data_start);
		/* stored bytes lie in the file; a compressed model (version 2 only)
		 * stores at most its size, in a 16-byte-entry table */
		CHECK(md->stored_size <= file_size - m->data_start - md->offset);
		if (md->codec == APBI_CODEC_NONE) {
			CHECK(md->stored_size == md->size && md->entry_size == 8);
			CHECK(md->filter == APBI_FILTER_NONE);
		} else {
			CHECK(m->version == 2 && md->codec == APBI_CODEC_ZSTD);
			CHECK(md->stored_size <= md->size && md->entry_size == 16);
			CHECK(md->has_block_table || md->size == 0);
		}
		if (md->block_size && md->size)
			CHECK(md->n_blocks == (md->size - 1) / md->block_size + 1);
		if (md->has_block_table) {
			CHECK(md->blocks_offset <= file_size - m->data_start);
			CHECK(md->n_blocks <= (file_size - m->data_start - md->blocks_offset) / md->entry_size);
		} else {
			CHECK(md->n_blocks <= 1);
		}
		apbi_model_info(m, i, &info);
		CHECK(info.name == md->name && info.size == md->size);
		CHECK(info.file_offset == m->data_start + md->offset);
		CHECK(info.metadata != NULL);
		for (size_t k = 0; k < info.metadata->n_hyperparameters; k++)
			CHECK(info.metadata->hyperparameters[k].key != NULL);
		for (size_t k = 0; k < info.metadata->n_custom; k++)
			CHECK(info.metadata->custom[k].key != NULL);
	}
	/* No two non-empty models overlap (sorted check would need memory; n^2 on small n). */
	if (m->n_models <= 64) {
		for (uint64_t i = 0; i < m->n_models; i++)
			for (uint64_t j = i + 1; j < m->n_models; j++) {
				const apbi_model *a = &m->models[i], *b = &m->models[j];
				if (a->stored_size && b->stored_size)
					CHECK(a->offset + a->stored_size <= b->offset ||
					      b->offset + b->stored_size <= a->offset);
			}
	}
	CHECK(apbi_manifest_find(m, "") == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	apbi_manifest *m = NULL;
	uint64_t big = 0;

	if (apbi_manifest_parse(data, size, size, &m) == 0) {
		CHECK(m != NULL);
		check_manifest(m, size);
		apbi_manifest_free(m);
	}
	m = NULL;
	if (size >= 8) {
		memcpy(&big, data + size - 8, 8);
		if (big < size)
			big = size + (big & 0xffff);
		if (apbi_manifest_parse(data, size, big, &m) == 0) {
			CHECK(m != NULL);
			check_manifest(m, big);
			apbi_manifest_free(m);
		}
	}
	return 0;
}
