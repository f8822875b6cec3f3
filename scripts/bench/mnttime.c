/*
 * mnttime.c - start a FUSE daemon and time how long until its mount answers.
 *
 * Usage: mnttime [-t SECONDS] [-p RELPATH] MOUNTPOINT -- COMMAND [ARG...]
 *
 * Records the device of MOUNTPOINT, starts COMMAND (a daemon, normally run
 * with -f so that its pid is the daemon's), then polls stat(MOUNTPOINT) every
 * 100 microseconds until the device changes, i.e. until the new file system
 * answers stat; with -p it then also waits until MOUNTPOINT/RELPATH answers
 * stat.  Prints "MILLISECONDS PID" on stdout and exits 0, leaving the daemon
 * running (the caller unmounts it).  Exits 1, after killing the daemon, if
 * the command exits with an error before mounting or the deadline (-t,
 * default 120 s) passes.  The clock starts just before fork().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: mnttime [-t SECONDS] [-p RELPATH] MOUNTPOINT -- COMMAND [ARG...]\n");
	return 2;
}

/* 1 when the mount (and probe, if any) answers, 0 not yet. */
static int answers(const char *mnt, dev_t orig, const char *probe)
{
	struct stat st;

	if (stat(mnt, &st) != 0 || st.st_dev == orig)
		return 0;
	return probe == NULL || stat(probe, &st) == 0;
}

/* Child still running (1), exited with status 0 (0), or failed (-1). */
static int child_state(pid_t pid, int *exited_ok)
{
	int status;
	pid_t r = waitpid(pid, &status, WNOHANG);

	if (r == 0)
		return 1;
	if (r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		*exited_ok = 1;
		return 0;
	}
	return -1;
}

int main(int argc, char *argv[])
{
	double timeout_s = 120, t0, elapsed;
	const char *relprobe = NULL, *mnt;
	char *probe = NULL;
	struct stat st;
	int opt, exited_ok = 0, alive = 1;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+t:p:")) != -1) {
		switch (opt) {
		case 't': timeout_s = atof(optarg); break;
		case 'p': relprobe = optarg; break;
		default: return usage();
		}
	}
	if (argc - optind < 3 || strcmp(argv[optind + 1], "--") != 0)
		return usage();
	mnt = argv[optind];
	if (stat(mnt, &st) != 0) {
		fprintf(stderr, "mnttime: %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	if (relprobe && asprintf(&probe, "%s/%s", mnt, relprobe) < 0)
		return 1;
	t0 = now_ms();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		/* The daemon outlives us: keep it off our stdout (a pipe, often). */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execvp(argv[optind + 2], &argv[optind + 2]);
		fprintf(stderr, "mnttime: %s: %s\n", argv[optind + 2], strerror(errno));
		_exit(127);
	}
	for (;;) {
		if (answers(mnt, st.st_dev, probe))
			break;
		if (alive) {
			int s = child_state(pid, &exited_ok);
			if (s < 0) {
				fprintf(stderr, "mnttime: %s failed before mounting\n", argv[optind + 2]);
				return 1;
			}
			alive = s;
		}
		if (now_ms() - t0 > timeout_s * 1e3) {
			fprintf(stderr, "mnttime: %s not mounted after %.0f s\n", mnt, timeout_s);
			if (alive)
				kill(pid, SIGTERM);
			return 1;
		}
		usleep(100);
	}
	elapsed = now_ms() - t0;
	printf("%.3f %ld\n", elapsed, (long)pid);
	free(probe);
	return 0;
}
