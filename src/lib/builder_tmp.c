/*
 * builder_tmp.c - the builder's files: its temporary file, directory sync,
 * and reading source files with holes (SEEK_DATA / SEEK_HOLE).
 *
 * Invariants kept here:
 *  - The temporary file is "<path>.tmp.XXXXXX" next to path, created with
 *    O_EXCL (mode 0644 & ~umask) and returned holding flock(LOCK_EX), so a
 *    cleaner can tell a live build's file (locked) from a killed one's.
 *    Should a cleaner lock and unlink it between our open and flock,
 *    st_nlink is 0 once we hold the lock and we take another name.
 *  - Every failure records a detail (apbi_set_error).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "format_write.h"
#include "internal.h"

/*
 * Takes the temporary file's lock (waiting out a cleaner that holds it for
 * a moment).  Returns 1 when the file was unlinked before we got the lock,
 * else 0.
 */
static int lock_temp(int fd)
{
	struct stat st;

	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR)
			return 0; /* no flock on this filesystem: a cleaner cannot lock it either */
	}
	return fstat(fd, &st) == 0 && st.st_nlink == 0;
}

int apbi_tmp_open(const char *path, int *fd, char **tmp)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t n = strlen(path);
	char *name;
	int f;
	int err = 0;

	if (!(name = malloc(n + sizeof ".tmp.XXXXXX")))
		return apbi_set_error(-ENOMEM, "out of memory");
	for (int t = 0; t < 100; t++) {
		uint8_t r[6];
		struct timespec ts;
		if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t x = (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)getpid() ^ (uint64_t)t << 40;
			memcpy(r, &x, sizeof r);
		}
		snprintf(name, n + sizeof ".tmp.XXXXXX", "%s.tmp.", path);
		for (int k = 0; k < 6; k++)
			name[n + 5 + k] = al[r[k] % (sizeof al - 1)];
		name[n + 11] = '\0';
		f = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (f >= 0 && !lock_temp(f)) {
			*fd = f;
			*tmp = name;
			return 0;
		}
		if (f >= 0) { /* a cleaner removed it in between: take another name */
			close(f);
			f = -1;
			err = EEXIST;
			continue;
		}
		if ((err = errno) != EEXIST)
			break;
	}
	apbi_set_error(-err, "creating a temporary file next to %s: %s", path, strerror(err));
	free(name);
	return -err;
}

int apbi_sync_dir(const char *path)
{
	char *d = strdup(path), *slash;
	const char *dir = ".";
	int fd, rc = 0;

	if (!d)
		return apbi_set_error(-ENOMEM, "out of memory");
	if ((slash = strrchr(d, '/')) != NULL) {
		slash[slash == d] = '\0';
		dir = d;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		rc = apbi_set_error(-errno, "%s was written but opening its directory %s to sync it failed: %s",
		                    path, dir, strerror(errno));
	else if ((rc = apbi_fsync(fd)) != 0)
		rc = apbi_set_error(rc, "%s was written but syncing its directory %s failed: %s",
		                    path, dir, strerror(-rc));
	if (fd >= 0)
		close(fd);
	free(d);
	return rc;
}

/* See format_write.h.  Reads up to want bytes (fewer only at end of file). */
ssize_t apbi_read_upto(int fd, uint8_t *buf, size_t want)
{
	size_t got = 0;

	while (got < want) {
		ssize_t r = apbi_read_some(fd, buf + got, want - got);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* See format_write.h.  Bytes of hole at pos (0 when pos is in data); reads as zeros. */
uint64_t apbi_hole_run(int fd, uint64_t pos, uint64_t size)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO ? size - pos : 0; /* ENXIO: only hole to EOF */
	return (uint64_t)d < size ? (uint64_t)d - pos : size - pos;
}

/* See format_write.h.  Bytes of data at pos before the next hole (or size). */
uint64_t apbi_data_run(int fd, uint64_t pos, uint64_t size)
{
	off_t h = lseek(fd, (off_t)pos, SEEK_HOLE);

	return h < 0 || (uint64_t)h <= pos || (uint64_t)h > size ? size - pos : (uint64_t)h - pos;
}
