/*
 * tier_open.c - opening the disk tier (apbi_source_tier_wrap): the object's
 * directory, its `current` record of the last version seen, the version
 * directory, and the offline open from that record.
 *
 * Invariants: `current` is replaced atomically (temp file, fsync, rename,
 * directory fsync) and holds name, identity and size; a tier opened online
 * removes every other version's directory first, so a new version never
 * reads old ranges; an offline tier serves only the version `current`
 * names.  Several processes may share DIR as long as they serve the same
 * version of an object (the range files are written atomically).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "source.h"
#include "tier_priv.h"

#define CURRENT_MAX 1024

static int mkdir_at(int dfd, const char *nm)
{
	if (mkdirat(dfd, nm, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Writes `current` for this version if it says anything else. */
static int record_current(int ofd, const char *name, const apbi_source *s)
{
	char want[CURRENT_MAX], have[CURRENT_MAX];
	int n = snprintf(want, sizeof want, "apbundle-tier 1\nname %s\nidentity %s\nsize %" PRIu64
	                 "\n", name, s->identity, s->size), fd, r;
	ssize_t k = 0;
	if ((fd = openat(ofd, "current", O_RDONLY | O_CLOEXEC)) >= 0) {
		k = apbi_read_some(fd, have, sizeof have - 1);
		close(fd);
		if (k == n && memcmp(have, want, (size_t)n) == 0)
			return 0;
	}
	fd = openat(ofd, "current.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = apbi_pwrite_full(fd, want, (size_t)n, 0);
	if (!r)
		r = apbi_fsync(fd);
	close(fd);
	if (!r && renameat(ofd, "current.tmp", ofd, "current") != 0)
		r = -errno;
	if (!r)
		r = apbi_fsync(ofd);
	return r;
}

/* Copies the value of line "key VALUE\n" at *p into out; advances *p. */
static int field(const char **p, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	const char *nl;
	if (strncmp(*p, key, kl) != 0 || (*p)[kl] != ' ' || !(nl = strchr(*p, '\n')))
		return -1;
	if ((size_t)(nl - (*p + kl + 1)) >= cap)
		return -1;
	memcpy(out, *p + kl + 1, (size_t)(nl - (*p + kl + 1)));
	out[nl - (*p + kl + 1)] = 0;
	*p = nl + 1;
	return 0;
}

/* Reads `current` for an offline open: identity and size of name's last version. */
static int read_current(int ofd, const char *name, apbi_source *s)
{
	char buf[CURRENT_MAX], nm[256], sz[24], *end;
	const char *p = buf;
	int fd = openat(ofd, "current", O_RDONLY | O_CLOEXEC);
	ssize_t k;
	if (fd < 0)
		return -ENOENT;
	k = apbi_read_some(fd, buf, sizeof buf - 1);
	close(fd);
	if (k <= 0)
		return -ENOENT;
	buf[k] = 0;
	if (strncmp(p, "apbundle-tier 1\n", 16) != 0)
		return -ENOENT;
	p += 16;
	if (field(&p, "name", nm, sizeof nm) || strcmp(nm, name) != 0 ||
	    field(&p, "identity", s->identity, sizeof s->identity) ||
	    field(&p, "size", sz, sizeof sz) || *p)
		return -ENOENT;
	errno = 0;
	s->size = strtoull(sz, &end, 10);
	return errno || *end || sz[0] < '0' || sz[0] > '9' ? -ENOENT : 0;
}

/* Removes the directories of versions other than keep (online opens only). */
static void prune_versions(int ofd, const char *keep)
{
	DIR *d = fdopendir(dup(ofd));
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "v-", 2) != 0 || strcmp(de->d_name, keep) == 0)
			continue;
		int vfd = openat(ofd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *v = vfd >= 0 ? fdopendir(vfd) : NULL;
		struct dirent *f;
		while (v && (f = readdir(v)))
			if (f->d_name[0] != '.')
				unlinkat(vfd, f->d_name, 0);
		if (v)
			closedir(v);
		unlinkat(ofd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* Indexes the version directory's range files. */
static int scan(tier *t)
{
	DIR *d = fdopendir(dup(t->vfd));
	struct dirent *de;
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			apbi_tier_adopt(t, de->d_name);
	closedir(d);
	apbi_tier_trim(t);
	return 0;
}

/* Object directory, version record and version directory. */
static int open_dirs(tier *t, const char *name, const char *dir)
{
	char onm[24], vnm[24];
	int ofd, r;
	if ((r = mkdir_at(AT_FDCWD, dir)) != 0)
		return apbi_set_error(r, "disk_cache %.300s: %s", dir, strerror(-r));
	snprintf(onm, sizeof onm, "o-%016" PRIx64, apbi_xxh3(name, strlen(name)));
	if ((ofd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return apbi_set_error(-errno, "disk_cache %.300s: %s", dir, strerror(errno));
	r = mkdir_at(ofd, onm);
	int sub = r ? -1 : openat(ofd, onm, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(ofd);
	if (sub < 0)
		return apbi_set_error(r ? r : -errno, "disk_cache %.300s/%s: %s", dir, onm,
		                      strerror(r ? -r : errno));
	if (t->inner)
		r = record_current(sub, name, &t->head);
	else if ((r = read_current(sub, name, &t->head)) != 0)
		r = apbi_set_error(-ENOENT, "%.200s: server unreachable (%.150s) and the disk "
		                   "tier %.200s holds no version of it", name, t->why, dir);
	t->idhash = apbi_xxh3(t->head.identity, strlen(t->head.identity));
	snprintf(vnm, sizeof vnm, "v-%016" PRIx64, t->idhash);
	if (!r && t->inner)
		prune_versions(sub, vnm);
	if (!r && (r = mkdir_at(sub, vnm)) == 0 &&
	    (t->vfd = openat(sub, vnm, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	close(sub);
	if (r && r != -ENOENT)
		r = apbi_set_error(r, "disk_cache %.300s: %s", dir, strerror(-r));
	return r;
}

/** See source.h. */
int apbi_source_tier_wrap(apbi_source *inner, const char *name, int inner_err,
                          const char *dir, uint64_t size_limit, apbi_source **out)
{
	tier *t = calloc(1, sizeof *t);
	int r;
	*out = NULL;
	if (!t) {
		apbi_source_close(inner);
		return apbi_set_error(-ENOMEM, "out of memory");
	}
	if (!inner)
		snprintf(t->why, sizeof t->why, "%s", apb_last_error()[0] ? apb_last_error() :
		         strerror(-inner_err));
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->reopen_lock, NULL);
	t->head.ops = &apbi_tier_ops;
	t->inner = inner;
	t->vfd = -1;
	t->limit = size_limit;
	snprintf(t->head.name, sizeof t->head.name, "%s", name);
	if (inner) {
		t->head.size = inner->size;
		memcpy(t->head.identity, inner->identity, sizeof t->head.identity);
	}
	if ((r = open_dirs(t, name, dir)) != 0 || (r = scan(t)) != 0) {
		t->head.ops->close(&t->head);
		return r;
	}
	*out = &t->head;
	return 0;
}
