/*
 * source_open.c - opening a bundle by path or URL (apbi_source_open), the
 * remote open options (apb_open_options), and source statistics.
 *
 * Invariants: options are checked before anything is contacted; the extra
 * header's value never appears in a detail (only its name may); a URL goes
 * to the HTTP source, and through the disk tier when one is configured, so
 * a server that cannot be reached still opens the last version the tier saw.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"
#include "source.h"

const uint64_t APBI_LAT_BOUNDS_US[APBI_LAT_BUCKETS - 1] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
};

/** See apbundle.h. */
void apb_open_options_init(apb_open_options *opt)
{
	memset(opt, 0, sizeof *opt);
	opt->connect_timeout_ms = APB_DEFAULT_CONNECT_TIMEOUT_MS;
	opt->timeout_ms = APB_DEFAULT_TIMEOUT_MS;
	opt->retries = APB_DEFAULT_RETRIES;
	opt->disk_cache_size = APB_DEFAULT_DISK_CACHE_SIZE;
}

/** See apbundle.h. */
bool apb_is_url(const char *s)
{
	return s && (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0);
}

/* "Name: value": a token name, a colon, no CR, LF or other control byte. */
static int check_header(const char *h)
{
	size_t i = 0;
	while (h[i] && h[i] != ':' && h[i] > ' ' && h[i] < 0x7f)
		i++;
	if (i == 0 || h[i] != ':')
		return apbi_set_error(-EINVAL, "header option: expected \"Name: value\"");
	for (const char *p = h; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return apbi_set_error(-EINVAL, "header option: control character in "
			                      "the header (value not shown)");
	return 0;
}

static int check_options(const apb_open_options *opt)
{
	if (!opt->timeout_ms || !opt->connect_timeout_ms)
		return apbi_set_error(-EINVAL, "timeouts must be at least 1 ms");
	if (opt->retries > 100)
		return apbi_set_error(-EINVAL, "retries: at most 100");
	if (opt->header && check_header(opt->header) != 0)
		return -EINVAL;
	if (opt->ca_file && access(opt->ca_file, R_OK) != 0)
		return apbi_set_error(-errno, "ca_file %.300s: %s", opt->ca_file, strerror(errno));
	if (opt->disk_cache && !opt->disk_cache[0])
		return apbi_set_error(-EINVAL, "disk_cache: empty directory name");
	return 0;
}

/** See source.h. */
int apbi_source_err_unreachable(int err)
{
	return err == -ECONNREFUSED || err == -ETIMEDOUT || err == -EHOSTDOWN;
}

/* What an offline tier needs to try the server again (copies: the caller's
 * strings live only for the open call). */
typedef struct reopen_ctx {
	char *url, *ca_file, *header;
	apb_open_options opt;
} reopen_ctx;

static void reopen_free(void *p)
{
	reopen_ctx *c = p;
	if (!c)
		return;
	free(c->url);
	free(c->ca_file);
	free(c->header);
	free(c);
}

static int reopen_http(void *p, apbi_source **out)
{
	reopen_ctx *c = p;
	return apbi_source_open_http(c->url, &c->opt, out);
}

static reopen_ctx *reopen_new(const char *url, const apb_open_options *opt)
{
	reopen_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->opt = *opt;
	c->url = strdup(url);
	c->ca_file = opt->ca_file ? strdup(opt->ca_file) : NULL;
	c->header = opt->header ? strdup(opt->header) : NULL;
	c->opt.ca_file = c->ca_file;
	c->opt.header = c->header;
	c->opt.disk_cache = NULL;
	c->opt.retries = 0;       /* a read miss waits for one quick attempt, no more */
	if (!c->url || (opt->ca_file && !c->ca_file) || (opt->header && !c->header)) {
		reopen_free(c);
		return NULL;
	}
	return c;
}

/* A tier in front of the HTTP source (offline when inner is NULL). */
static int open_tiered(const char *url, const apb_open_options *opt, apbi_source *inner,
                       int err, apbi_source **out)
{
	char name[256];
	reopen_ctx *c = NULL;
	int r;
	if (inner)
		snprintf(name, sizeof name, "%s", inner->name);
	else if (apbi_source_url_name(url, name, sizeof name) != 0 || !(c = reopen_new(url, opt)))
		return err;
	r = apbi_source_tier_wrap(inner, name, err, opt->disk_cache, opt->disk_cache_size ?
	                          opt->disk_cache_size : APB_DEFAULT_DISK_CACHE_SIZE, out);
	if (r == 0 && c)
		apbi_source_tier_reconnect(*out, reopen_http, c, reopen_free);
	else
		reopen_free(c);
	return r;
}

/** See source.h. */
int apbi_source_open(const char *path_or_url, const apb_open_options *opt, apbi_source **out)
{
	apb_open_options def;
	apbi_source *inner = NULL;
	int r;
	*out = NULL;
	if (!apb_is_url(path_or_url))
		return apbi_source_open_file(path_or_url, out);
	if (!opt) {
		apb_open_options_init(&def);
		opt = &def;
	}
	if ((r = check_options(opt)) != 0)
		return r;
	r = apbi_source_open_http(path_or_url, opt, &inner);
	if (!opt->disk_cache || (r != 0 && !apbi_source_err_unreachable(r))) {
		*out = inner;
		return r;
	}
	return open_tiered(path_or_url, opt, inner, r, out);
}

/** See source.h. */
void apbi_source_get_stats(apbi_source *s, apbi_source_stats *out)
{
	memset(out, 0, sizeof *out);
	if (s && s->ops->stats)
		s->ops->stats(s, out);
}
