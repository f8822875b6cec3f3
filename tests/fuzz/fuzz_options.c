/*
 * fuzz_options.c - libFuzzer target for the mount's -o option parser.
 *
 * Input: byte 0 is the size of the error buffer (0..255, allocated to the
 * exact size so ASan sees any overrun); the rest, up to the first NUL, is
 * one -o list, split on commas the way fuse_opt hands items over.  Each item
 * goes to apbm_opts_set() and is checked against an independent model of
 * what it must keep (ours or not, last occurrence wins, others untouched);
 * then apbm_opts_check() runs on defaults.  On success every promise of
 * mount.h must hold (page_size a power of two in 512..1G, max_memory >= 1,
 * eviction LRU or LFU, prefetch_count <= 1024, max_read 4K..1M, readahead
 * <= 1G, values agree with what was given, options not given keep their
 * defaults); on failure fs is unchanged and err is one NUL-terminated line
 * naming an option that was given.  Any violation aborts.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mount.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "violated: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

enum { K_MEM, K_PAGE, K_EVICT, K_PREF, K_COUNT, K_RA, K_MR, K_UID, K_GID, K_TRACE,
       K_CA, K_HDR, K_DISK, K_DSIZE, K_TIMEOUT, K_CTIMEOUT, K_RETRIES, K_HUGE, N_KEYS };
static const char *const key_names[N_KEYS] = {
	"max_memory", "page_size", "eviction", "prefetch", "prefetch_count",
	"readahead", "max_read", "uid", "gid", "trace", "ca_file", "header_file",
	"disk_cache", "disk_cache_size", "timeout", "connect_timeout", "retries", "huge_pages",
};

static char *const *slot_of(const apbm_opts *o, int k)
{
	char *const *s[N_KEYS] = { &o->max_memory, &o->page_size, &o->eviction, &o->prefetch,
	                           &o->prefetch_count, &o->readahead, &o->max_read,
	                           &o->uid, &o->gid, &o->trace, &o->ca_file, &o->header_file,
	                           &o->disk_cache, &o->disk_cache_size, &o->timeout,
	                           &o->connect_timeout, &o->retries, &o->huge_pages };
	return s[k];
}

/* The flags (options without a value), as bits of ref_flags. */
static const char *const flag_names[4] = { "direct_io", "metrics_per_model", "control", "watch" };

/* The reference: which key an item sets, or -1 (a flag: N_KEYS + its bit). */
static int ref_key(const char *item, const char **val)
{
	for (int f = 0; f < 4; f++)
		if (!strcmp(item, flag_names[f]))
			return N_KEYS + f;
	for (int k = 0; k < N_KEYS; k++) {
		size_t n = strlen(key_names[k]);
		if (!strncmp(item, key_names[k], n) && item[n] == '=') {
			*val = item + n + 1;
			return k;
		}
	}
	return -1;
}

static void feed(apbm_opts *o, char *list, const char *ref[N_KEYS], unsigned *ref_flags)
{
	char *item = list, *comma;

	for (;;) {
		const char *val = NULL;
		int k, r;

		if ((comma = strchr(item, ',')))
			*comma = '\0';
		k = ref_key(item, &val);
		r = apbm_opts_set(o, item);
		CHECK(r == (k >= 0 ? 1 : 0));
		if (k >= N_KEYS)
			*ref_flags |= 1u << (k - N_KEYS);
		else if (k >= 0)
			ref[k] = val;
		for (int j = 0; j < N_KEYS; j++) {
			char *s = *slot_of(o, j);
			CHECK((s == NULL) == (ref[j] == NULL));
			CHECK(!s || !strcmp(s, ref[j]));
		}
		CHECK(o->direct_io == !!(*ref_flags & 1) && o->metrics_per_model == !!(*ref_flags & 2) &&
		      o->control == !!(*ref_flags & 4) && o->watch == !!(*ref_flags & 8));
		if (!comma)
			break;
		item = comma + 1;
	}
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* An independent model of the default for readahead and max_read. */
static uint64_t quarter_or(uint64_t mem, uint64_t dflt)
{
	uint64_t q = mem / 4 - (mem / 4) % 4096;

	if (q < 131072)
		q = 131072;
	return q < dflt ? q : dflt;
}

static void check_success(const apbm_fs *fs, const apbm_fs *def, const char *ref[N_KEYS],
                          unsigned flags)
{
	uint64_t v;
	const apb_paging_config *c = &fs->cfg;

	CHECK(c->page_size >= 512 && c->page_size <= (1u << 30));
	CHECK((c->page_size & (c->page_size - 1)) == 0);
	CHECK(c->max_memory >= 1);
	CHECK((unsigned)c->eviction < APB_EVICT_COUNT);
	CHECK(c->prefetch_count <= 1024);
	CHECK(fs->max_read >= 4096 && fs->max_read <= APBM_DEFAULT_MAX_READ);
	CHECK(fs->readahead <= (1u << 30));
	CHECK(fs->direct_io == !!(flags & 1) && fs->metrics_per_model == !!(flags & 2) &&
	      fs->control == !!(flags & 4) && fs->watch == !!(flags & 8));
	CHECK(ref[K_MEM] ? apb_parse_size(ref[K_MEM], &v) == 0 && v == c->max_memory
	                 : c->max_memory == def->cfg.max_memory);
	CHECK(ref[K_PAGE] ? apb_parse_size(ref[K_PAGE], &v) == 0 && v == c->page_size
	                  : c->page_size == def->cfg.page_size);
	/* Not given: the default, or a quarter of the budget if less (4 KiB
	 * multiple, at least 128 KiB), so requests in flight cannot pin it all. */
	CHECK(ref[K_RA] ? apb_parse_size(ref[K_RA], &v) == 0 && v == fs->readahead
	                : fs->readahead == quarter_or(c->max_memory, def->readahead));
	CHECK(ref[K_MR] ? apb_parse_size(ref[K_MR], &v) == 0 && v == fs->max_read
	                : fs->max_read == quarter_or(c->max_memory, def->max_read));
	{
		apb_eviction e;
		CHECK(!ref[K_EVICT] || (apb_eviction_parse(ref[K_EVICT], &e) == 0 && e == c->eviction));
	}
	CHECK(ref[K_EVICT] || c->eviction == def->cfg.eviction);
	CHECK(ref[K_PREF] || c->prefetch == def->cfg.prefetch);
	CHECK(ref[K_HUGE] || c->huge_pages == def->cfg.huge_pages);
	CHECK(!ref[K_HUGE] || c->huge_pages == (!strcmp(ref[K_HUGE], "1") ||
	      !strcmp(ref[K_HUGE], "yes") || !strcmp(ref[K_HUGE], "on") ||
	      !strcmp(ref[K_HUGE], "true")));
	CHECK(!ref[K_PREF] || c->prefetch == (!strcmp(ref[K_PREF], "1") ||
	      !strcmp(ref[K_PREF], "yes") || !strcmp(ref[K_PREF], "on") ||
	      !strcmp(ref[K_PREF], "true")));
	CHECK(ref[K_COUNT] ? ref[K_COUNT][0] != '-' &&
	                     strtoull(ref[K_COUNT], NULL, 10) == c->prefetch_count
	                   : c->prefetch_count == def->cfg.prefetch_count);
	/* Ids: exactly the decimal number (no sign, no wrap-around), else a known name. */
	if (!ref[K_UID]) {
		CHECK(fs->uid == def->uid);
	} else if (all_digits(ref[K_UID])) {
		CHECK(strtoull(ref[K_UID], NULL, 10) == fs->uid);
	} else {
		struct passwd *pw = getpwnam(ref[K_UID]);
		CHECK(pw && pw->pw_uid == fs->uid);
	}
	if (!ref[K_GID]) {
		CHECK(fs->gid == def->gid);
	} else if (all_digits(ref[K_GID])) {
		CHECK(strtoull(ref[K_GID], NULL, 10) == fs->gid);
	} else {
		struct group *gr = getgrnam(ref[K_GID]);
		CHECK(gr && gr->gr_gid == fs->gid);
	}
}

static void check_failure(const char *err, size_t errlen, const char *ref[N_KEYS])
{
	bool named = false;

	if (errlen == 0)
		return;
	CHECK(memchr(err, '\0', errlen) != NULL);
	CHECK(errlen == 1 || err[0] != '\0');
	if (errlen < 64)
		return;
	CHECK(!strncmp(err, "invalid ", 8));
	for (int k = 0; k < N_KEYS; k++) {
		size_t n = strlen(key_names[k]);
		if (ref[k] && !strncmp(err + 8, key_names[k], n) && err[8 + n] == ' ')
			named = true;
	}
	CHECK(named);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *ref[N_KEYS] = { 0 };
	apbm_opts o = { 0 };
	apbm_fs fs, def;
	unsigned flags = 0;
	size_t errlen;
	char *list, *err;
	int rc;

	if (size < 1)
		return 0;
	errlen = data[0];
	list = strndup((const char *)data + 1, size - 1);
	err = malloc(errlen ? errlen : 1);
	if (!list || !err)
		abort();
	feed(&o, list, ref, &flags);

	memset(&fs, 0, sizeof(fs));
	apbm_opts_defaults(&fs);
	fs.uid = 4242;
	fs.gid = 4343;
	memcpy(&def, &fs, sizeof(fs));
	rc = apbm_opts_check(&o, &fs, errlen ? err : NULL, errlen);
	if (rc == 0) {
		check_success(&fs, &def, ref, flags);
		apbm_remote_free(&fs.net);   /* the remote options' strings, owned by fs */
	} else {
		CHECK(rc == -EINVAL);
		CHECK(memcmp(&fs, &def, sizeof(fs)) == 0);
		check_failure(err, errlen, ref);
	}
	apbm_opts_free(&o);
	CHECK(!o.max_memory && !o.uid && !o.gid && !o.direct_io);
	free(err);
	free(list);
	return 0;
}
