/*
 * fuzz_control.c - libFuzzer target for the .control command parser.
 *
 * The input is one write to .control, copied to a buffer of its exact size
 * (so ASan sees any read past it).  Checked, each violation an abort: the
 * parser returns 0, -EINVAL or -E2BIG; -E2BIG exactly for an empty or
 * over-long write; on success every command is one of the four, a named
 * command's name lies inside the input, is non-empty and holds no byte
 * below 0x20 (so no newline, no NUL) nor 0x7f, and the number of commands
 * equals the number of lines; on failure no command is reported.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "violated: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	apbm_cmd cmds[APBM_CONTROL_MAX_CMDS];
	size_t n = 99, lines = 0;
	int rc;

	CHECK(buf != NULL);
	memcpy(buf, data, size);
	rc = apbm_control_parse(buf, size, cmds, APBM_CONTROL_MAX_CMDS, &n);
	CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG);
	CHECK((rc == -E2BIG) == (size == 0 || size > APBM_CONTROL_MAX_WRITE));
	if (rc != 0) {
		CHECK(n == 0);
		free(buf);
		return 0;
	}
	for (size_t i = 0; i < size; i++)
		lines += buf[i] == '\n';
	lines += buf[size - 1] != '\n';
	CHECK(n == lines && n <= APBM_CONTROL_MAX_CMDS);
	for (size_t i = 0; i < n; i++) {
		const apbm_cmd *c = &cmds[i];
		CHECK(c->op <= APBM_CMD_RELOAD);
		CHECK((c->name != NULL) == (c->op == APBM_CMD_EVICT || c->op == APBM_CMD_PREFETCH));
		if (!c->name)
			continue;
		CHECK(c->name >= buf && c->name_len > 0 && c->name + c->name_len <= buf + size);
		for (size_t k = 0; k < c->name_len; k++)
			CHECK((unsigned char)c->name[k] >= 0x20 && c->name[k] != 0x7f);
	}
	free(buf);
	return 0;
}
