/*
 * control.c - parses and runs the commands written to .control (-o control).
 *
 * The parser (apbm_control_parse) checks a whole write before anything
 * runs, so a write with one bad line does nothing at all.  Every byte is
 * untrusted: lengths are bounded (APBM_CONTROL_MAX_WRITE, _MAX_CMDS), a
 * NUL or any control byte but the newline is refused, and names are only
 * ever looked up (apb_paged_find with a bounded NUL-ended copy), never
 * used as paths.  Who may write is decided at open (ops.c): the mount's
 * owner only, mode 0200.
 */
#include <errno.h>
#include <string.h>
#include <syslog.h>

#include "mount.h"

static const struct {
	const char *word;
	apbm_cmd_op op;
	int takes_name;
} commands[] = {
	{ "evict", APBM_CMD_EVICT, 1 },
	{ "prefetch", APBM_CMD_PREFETCH, 1 },
	{ "clear", APBM_CMD_CLEAR, 0 },
	{ "reload", APBM_CMD_RELOAD, 0 },
};

/* Parses one line (no newline in it) into *c.  Returns 0 or -EINVAL. */
static int parse_line(const char *line, size_t len, apbm_cmd *c)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return -EINVAL;
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		size_t w = strlen(commands[k].word);
		if (len < w || memcmp(line, commands[k].word, w) != 0)
			continue;
		if (!commands[k].takes_name) {
			if (len != w)
				return -EINVAL;
			*c = (apbm_cmd){ .op = commands[k].op };
			return 0;
		}
		if (len < w + 2 || line[w] != ' ')
			return -EINVAL;
		*c = (apbm_cmd){ .op = commands[k].op, .name = line + w + 1, .name_len = len - w - 1 };
		return 0;
	}
	return -EINVAL;
}

int apbm_control_parse(const char *buf, size_t len, apbm_cmd *cmds, size_t max, size_t *n)
{
	size_t count = 0, start = 0;

	*n = 0;
	if (len == 0 || len > APBM_CONTROL_MAX_WRITE)
		return -E2BIG;
	while (start < len) {
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - buf) : len;

		if (count == max || parse_line(buf + start, end - start, &cmds[count]) != 0)
			return -EINVAL;
		count++;
		start = end + 1;
	}
	*n = count;
	return 0;
}

/* The model index of a command's name, or -ENOENT. */
static ssize_t find_model(apb_paged *pb, const apbm_cmd *c)
{
	char name[APB_MAX_NAME_LEN + 1];

	if (c->name_len > APB_MAX_NAME_LEN)
		return -ENOENT;
	memcpy(name, c->name, c->name_len);
	name[c->name_len] = '\0';
	return apb_paged_find(pb, name);
}

/*
 * Runs the parsed commands on generation g (the current one when the
 * write came).  A reload that fails stops there with its error; the
 * commands after a reload still act on g's models (names were checked
 * against g), which share the cache with the new generation.
 */
static int run_commands(apbm_fs *fs, apbm_gen *g, const apbm_cmd *cmds, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		char name[APB_MAX_NAME_LEN + 1] = "";
		if (cmds[i].name) {
			memcpy(name, cmds[i].name, cmds[i].name_len);
			name[cmds[i].name_len] = '\0';
		}
		apbm_log(LOG_INFO, ".control: %s%s%s", commands[cmds[i].op].word,
		         cmds[i].name ? " " : "", cmds[i].name ? name : "");
		if (cmds[i].op == APBM_CMD_EVICT)
			apb_paged_evict(g->pb, name);
		else if (cmds[i].op == APBM_CMD_PREFETCH && (rc = apb_paged_prefetch_hint(g->pb, name)) != 0)
			return rc;
		else if (cmds[i].op == APBM_CMD_CLEAR)
			apb_paged_clear_cache(g->pb);
		else if (cmds[i].op == APBM_CMD_RELOAD && (rc = apbm_reload(fs, ".control")) != 0)
			return -(apb_errno(rc) ? apb_errno(rc) : EIO);
	}
	return 0;
}

int apbm_control_write(apbm_fs *fs, const char *buf, size_t len)
{
	apbm_cmd cmds[APBM_CONTROL_MAX_CMDS];
	size_t n;
	int rc = apbm_control_parse(buf, len, cmds, APBM_CONTROL_MAX_CMDS, &n);
	apbm_gen *g;

	if (rc != 0)
		return rc;
	g = apbm_gen_cur(fs);
	for (size_t i = 0; i < n; i++)
		if (cmds[i].name && find_model(g->pb, &cmds[i]) < 0) {
			apbm_gen_put(fs, g);
			return -ENOENT;
		}
	rc = run_commands(fs, g, cmds, n);
	apbm_gen_put(fs, g);
	return rc;
}
