/*
 * control.h - the command language of .control (-o control).
 *
 * One write() holds whole commands, one per line (the last newline may be
 * missing): "evict NAME", "prefetch NAME", "clear", "reload".  NAME is the
 * rest of the line after one space, taken byte for byte.  The parser is a
 * pure function of its input (no allocation, no I/O), so the fuzz target
 * (tests/fuzz/fuzz_control.c) drives it alone.
 */
#ifndef APBM_CONTROL_H
#define APBM_CONTROL_H

#include <stddef.h>

#define APBM_CONTROL_MAX_WRITE 4096u  /* bytes in one write */
#define APBM_CONTROL_MAX_CMDS 64u     /* commands in one write */

typedef enum apbm_cmd_op { APBM_CMD_EVICT, APBM_CMD_PREFETCH, APBM_CMD_CLEAR,
	APBM_CMD_RELOAD } apbm_cmd_op;

typedef struct apbm_cmd {
	apbm_cmd_op op;
	const char *name;  /* evict, prefetch: points into the input, not NUL-ended */
	size_t name_len;
} apbm_cmd;

/**
 * Parses len bytes of buf into cmds[0..*n).  Returns 0, -EINVAL (an
 * unknown command, a missing or extra argument, an empty line, a NUL or
 * control byte, *n would exceed max) or -E2BIG (len > APBM_CONTROL_MAX_WRITE
 * or 0).  On error *n is 0.
 */
int apbm_control_parse(const char *buf, size_t len, apbm_cmd *cmds, size_t max, size_t *n);

#endif
