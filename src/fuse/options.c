/*
 * options.c - apbundle-mount: recognising and validating our -o options.
 *
 * Two steps, as libfuse's fuse_opt does them: apbm_opts_set() recognises one
 * option of a -o list and keeps its value as a string (the last occurrence
 * wins, nothing is checked yet); apbm_opts_check() then validates every
 * value at once into the mount's configuration.  The invariants: on
 * success the configuration is usable as is (page_size a power of two from
 * 512 to 1 GiB, max_memory >= 1, eviction a policy name, prefetch_count <=
 * 1024, max_read from 4 KiB to 1 MiB, readahead <= 1 GiB, fs->net an
 * apb_open_options whose strings fs->net owns: ca_file absolute and
 * readable, the header one validated line that no message ever quotes,
 * timeouts >= 1 ms, retries <= 100); on failure
 * nothing has been promised about fs, and err holds one line naming the
 * option and the offending value.  Nothing here calls libfuse or prints,
 * so the fuzz target links this file alone (tests/fuzz/fuzz_options.c);
 * only ca_file and header_file touch the file system.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mount.h"

#define MAX_PAGE_SIZE (1u << 30)
#define MAX_READAHEAD (1u << 30)
#define MIN_MAX_READ 4096u
#define MAX_PREFETCH_COUNT 1024u
#define MAX_RETRIES 100u

/* Options taking a value ("name=value"), and where apbm_opts keeps it. */
static const struct {
	const char *name;
	size_t off;
} value_opts[] = {
	{ "max_memory", offsetof(apbm_opts, max_memory) },
	{ "page_size", offsetof(apbm_opts, page_size) },
	{ "eviction", offsetof(apbm_opts, eviction) },
	{ "prefetch", offsetof(apbm_opts, prefetch) },
	{ "prefetch_count", offsetof(apbm_opts, prefetch_count) },
	{ "huge_pages", offsetof(apbm_opts, huge_pages) },
	{ "readahead", offsetof(apbm_opts, readahead) },
	{ "max_read", offsetof(apbm_opts, max_read) },
	{ "uid", offsetof(apbm_opts, uid) },
	{ "gid", offsetof(apbm_opts, gid) },
	{ "trace", offsetof(apbm_opts, trace) },
	{ "ca_file", offsetof(apbm_opts, ca_file) },
	{ "header_file", offsetof(apbm_opts, header_file) },
	{ "disk_cache", offsetof(apbm_opts, disk_cache) },
	{ "disk_cache_size", offsetof(apbm_opts, disk_cache_size) },
	{ "timeout", offsetof(apbm_opts, timeout) },
	{ "connect_timeout", offsetof(apbm_opts, connect_timeout) },
	{ "retries", offsetof(apbm_opts, retries) },
};

int apbm_opts_set(apbm_opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (!strcmp(arg, "direct_io") || !strcmp(arg, "metrics_per_model") || !strcmp(arg, "control") ||
	    !strcmp(arg, "watch")) {
		bool *flag = arg[0] == 'd' ? &o->direct_io : arg[0] == 'm' ? &o->metrics_per_model
		           : arg[0] == 'w' ? &o->watch : &o->control;
		*flag = true;
		return 1;
	}
	if (!eq)
		return 0;
	for (size_t i = 0; i < sizeof(value_opts) / sizeof(value_opts[0]); i++) {
		size_t n = strlen(value_opts[i].name);
		char **slot, *copy;

		if ((size_t)(eq - arg) != n || strncmp(arg, value_opts[i].name, n) != 0)
			continue;
		if (!(copy = strdup(eq + 1)))
			return -ENOMEM;
		slot = (char **)((char *)o + value_opts[i].off);
		free(*slot);
		*slot = copy;
		return 1;
	}
	return 0;
}

void apbm_opts_free(apbm_opts *o)
{
	for (size_t i = 0; i < sizeof(value_opts) / sizeof(value_opts[0]); i++) {
		char **slot = (char **)((char *)o + value_opts[i].off);
		free(*slot);
		*slot = NULL;
	}
	o->direct_io = o->metrics_per_model = o->control = o->watch = false;
}

void apbm_opts_defaults(apbm_fs *fs)
{
	apb_paging_config_init(&fs->cfg);
	fs->max_read = APBM_DEFAULT_MAX_READ;
	fs->readahead = APBM_DEFAULT_READAHEAD;
	fs->direct_io = false;
	apb_open_options_init(&fs->net.opt);
}

/* Parses an optional size option into *out. */
static int size_opt(const char *name, const char *val, uint64_t min, uint64_t max,
                    uint64_t *out, char *err, size_t errlen)
{
	uint64_t v;

	if (!val)
		return 0;
	if (apb_parse_size(val, &v) != 0 || v < min || v > max) {
		snprintf(err, errlen, "invalid %s '%s': expected a size from %llu to %llu bytes "
		         "(K, M, G suffixes allowed)", name, val,
		         (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Parses a user or group given by number (no sign, below UINT_MAX) or name. */
static int id_opt(const char *name, const char *val, bool group, unsigned *out,
                  char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	if (!val)
		return 0;
	errno = 0;
	v = strtoul(val, &end, 10);
	if (*val >= '0' && *val <= '9' && !*end && errno == 0 && v < UINT_MAX) {
		*out = (unsigned)v;
		return 0;
	}
	if (!group) {
		struct passwd *pw = getpwnam(val);
		if (pw) {
			*out = pw->pw_uid;
			return 0;
		}
	} else {
		struct group *gr = getgrnam(val);
		if (gr) {
			*out = gr->gr_gid;
			return 0;
		}
	}
	snprintf(err, errlen, "invalid %s '%s': no such %s", name, val, group ? "group" : "user");
	return -EINVAL;
}

static int bool_opt(const char *name, const char *val, bool *out, char *err, size_t errlen)
{
	if (!val)
		return 0;
	if (!strcmp(val, "1") || !strcmp(val, "yes") || !strcmp(val, "on") || !strcmp(val, "true"))
		*out = true;
	else if (!strcmp(val, "0") || !strcmp(val, "no") || !strcmp(val, "off") || !strcmp(val, "false"))
		*out = false;
	else {
		snprintf(err, errlen, "invalid %s '%s': expected 0 or 1", name, val);
		return -EINVAL;
	}
	return 0;
}

static int eviction_opt(const char *val, apb_eviction *out, char *err, size_t errlen)
{
	if (!val)
		return 0;
	if (apb_eviction_parse(val, out) < 0) {
		snprintf(err, errlen, "invalid eviction '%.64s': %s", val, apb_last_error());
		return -EINVAL;
	}
	return 0;
}

int apbm_eviction_help(FILE *out)
{
	apb_paging_config def;
	apb_paging_config_init(&def);
	fprintf(out, "eviction policies (-o eviction=NAME):\n");
	for (int i = 0; i < APB_EVICT_COUNT; i++)
		fprintf(out, "  %-8s %s%s\n", apb_eviction_name((apb_eviction)i),
		        apb_eviction_describe((apb_eviction)i),
		        def.eviction == (apb_eviction)i ? " (default)" : "");
	return 0;
}

char *apbm_trace_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char *abs;
	if (fd < 0 || close(fd) < 0 || !(abs = realpath(path, NULL))) {
		fprintf(stderr, "apbundle-mount: trace=%s: %s\n", path, strerror(errno));
		return NULL;
	}
	return abs;
}

/* prefetch_count, retries: a decimal count from 0 to max. */
static int count_opt(const char *name, const char *val, uint64_t max, uint64_t *out,
                     char *err, size_t errlen)
{
	char *end;
	uint64_t v;

	if (!val)
		return 0;
	errno = 0;
	v = strtoull(val, &end, 10);
	if (!*val || *end || errno || v > max || val[0] < '0' || val[0] > '9') {
		snprintf(err, errlen, "invalid %s '%s': expected 0 to %llu", name, val,
		         (unsigned long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* min(dflt, max_memory / 4), rounded down to 4 KiB and at least 128 KiB. */
static uint64_t clamp_quarter(uint64_t mem, uint64_t dflt)
{
	uint64_t q = mem / 4 / 4096 * 4096;
	if (q < (128u << 10))
		q = 128u << 10;
	return q < dflt ? q : dflt;
}

void apbm_remote_free(apbm_remote *r)
{
	if (r->header)
		explicit_bzero(r->header, strlen(r->header));
	free(r->header);
	free(r->ca_file);
	free(r->disk_cache);
	memset(r, 0, sizeof(*r));
}

/* Seconds (decimals allowed) from 0.001 to 3600, as milliseconds. */
static int seconds_opt(const char *name, const char *val, uint32_t *ms, char *err, size_t errlen)
{
	char *end;
	double v;

	if (!val)
		return 0;
	errno = 0;
	v = strtod(val, &end);
	if (!*val || *end || errno || !(v >= 0.001 && v <= 3600)) {
		snprintf(err, errlen, "invalid %s '%s': expected seconds from 0.001 to 3600",
		         name, val);
		return -EINVAL;
	}
	*ms = (uint32_t)(v * 1000 + 0.5);
	return 0;
}

/*
 * header_file: its first line, which must be one "Name: value" header of
 * printable characters.  The error names the file, never the content (a
 * bearer token).
 */
static int header_opt(const char *path, char **out, char *err, size_t errlen)
{
	FILE *f;
	char *line = NULL, *colon;
	size_t cap = 0;
	ssize_t n;
	bool bad = false;

	if (!path)
		return 0;
	if (!(f = fopen(path, "re"))) {
		snprintf(err, errlen, "invalid header_file '%s': %s", path, strerror(errno));
		return -EINVAL;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		bad |= (unsigned char)line[i] < 0x20 && line[i] != '\t';
	colon = n > 0 ? strchr(line, ':') : NULL;
	if (n <= 0 || bad || !colon || colon == line || n > 8192) {
		snprintf(err, errlen, "invalid header_file '%s': its first line is not one header "
		         "\"Name: value\" (at most 8 KiB, no control characters)", path);
		if (line)
			explicit_bzero(line, cap);
		free(line);
		return -EINVAL;
	}
	*out = line;
	return 0;
}

static int ca_file_opt(const char *path, char **out, char *err, size_t errlen)
{
	if (!path)
		return 0;
	if (access(path, R_OK) != 0 || !(*out = realpath(path, NULL))) {
		snprintf(err, errlen, "invalid ca_file '%s': %s", path, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/* The remote options into *r (r->opt holds the defaults on entry); r is freed on failure. */
static int remote_check(const apbm_opts *o, apbm_remote *r, char *err, size_t errlen)
{
	uint64_t dcs = r->opt.disk_cache_size, retries = r->opt.retries;
	int rc = -EINVAL;

	if (seconds_opt("timeout", o->timeout, &r->opt.timeout_ms, err, errlen) ||
	    seconds_opt("connect_timeout", o->connect_timeout, &r->opt.connect_timeout_ms,
	                err, errlen) ||
	    count_opt("retries", o->retries, MAX_RETRIES, &retries, err, errlen) ||
	    size_opt("disk_cache_size", o->disk_cache_size, 1u << 20, UINT64_MAX, &dcs,
	             err, errlen) ||
	    ca_file_opt(o->ca_file, &r->ca_file, err, errlen) ||
	    header_opt(o->header_file, &r->header, err, errlen))
		goto fail;
	if (o->disk_cache && !o->disk_cache[0]) {
		snprintf(err, errlen, "invalid disk_cache '': expected a directory");
		goto fail;
	}
	rc = -ENOMEM;
	if (o->disk_cache && !(r->disk_cache = strdup(o->disk_cache)))
		goto fail;
	r->opt.disk_cache_size = dcs;
	r->opt.retries = (uint32_t)retries;
	r->opt.ca_file = r->ca_file;
	r->opt.header = r->header;
	r->opt.disk_cache = r->disk_cache;
	return 0;
fail:
	apbm_remote_free(r);
	return rc;
}

int apbm_opts_check(const apbm_opts *o, apbm_fs *fs, char *err, size_t errlen)
{
	uint64_t page = fs->cfg.page_size, count = fs->cfg.prefetch_count, mr = fs->max_read;
	uint64_t mem = fs->cfg.max_memory, ra = fs->readahead;
	apb_eviction ev = fs->cfg.eviction;
	bool prefetch = fs->cfg.prefetch, huge = fs->cfg.huge_pages;
	unsigned uid = fs->uid, gid = fs->gid;
	apbm_remote net = { .opt = fs->net.opt };

	if (errlen)
		err[0] = '\0';
	if (size_opt("max_memory", o->max_memory, 1, UINT64_MAX, &mem, err, errlen) ||
	    size_opt("page_size", o->page_size, 512, MAX_PAGE_SIZE, &page, err, errlen) ||
	    size_opt("readahead", o->readahead, 0, MAX_READAHEAD, &ra, err, errlen) ||
	    size_opt("max_read", o->max_read, MIN_MAX_READ, APBM_DEFAULT_MAX_READ, &mr, err, errlen) ||
	    eviction_opt(o->eviction, &ev, err, errlen) ||
	    bool_opt("prefetch", o->prefetch, &prefetch, err, errlen) ||
	    bool_opt("huge_pages", o->huge_pages, &huge, err, errlen) ||
	    id_opt("uid", o->uid, false, &uid, err, errlen) ||
	    id_opt("gid", o->gid, true, &gid, err, errlen))
		return -EINVAL;
	if (page & (page - 1)) {
		snprintf(err, errlen, "invalid page_size '%s': not a power of two", o->page_size);
		return -EINVAL;
	}
	if (count_opt("prefetch_count", o->prefetch_count, MAX_PREFETCH_COUNT, &count, err, errlen) ||
	    remote_check(o, &net, err, errlen) != 0)
		return -EINVAL;
	/* Unless given: no more readahead, nor larger requests, than a quarter
	 * of the budget, so the requests the kernel keeps in flight cannot pin
	 * the whole cache and make each other's pages load twice. */
	if (!o->readahead)
		ra = clamp_quarter(mem, ra);
	if (!o->max_read)
		mr = clamp_quarter(mem, mr);
	fs->cfg.max_memory = mem;
	fs->cfg.page_size = (uint32_t)page;
	fs->cfg.eviction = ev;
	fs->cfg.prefetch = prefetch;
	fs->cfg.huge_pages = huge;
	fs->cfg.prefetch_count = (uint32_t)count;
	fs->readahead = ra;
	fs->max_read = (uint32_t)mr;
	fs->uid = uid;
	fs->gid = gid;
	fs->direct_io = o->direct_io;
	fs->metrics_per_model = o->metrics_per_model;
	fs->control = o->control;
	fs->watch = o->watch;
	apbm_remote_free(&fs->net);
	fs->net = net;
	return 0;
}
