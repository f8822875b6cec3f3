/*
 * log.c - the one logger of apbundle-mount (see log.h).
 *
 * The only state is whether syslog is in use; it is set once, by the main
 * thread after fork and before any other thread starts, and only read
 * afterwards.  A line longer than 1 KiB is truncated, never split.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <syslog.h>

#include <fuse_log.h>

#include "log.h"

static bool use_syslog;

void apbm_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		char line[1024];
		vsnprintf(line, sizeof(line), fmt, ap);
		fprintf(stderr, "apbundle-mount: %s\n", line);
	}
	va_end(ap);
}

static void fuse_log_to_syslog(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

void apbm_log_to_syslog(const char *ident)
{
	openlog(ident, LOG_PID, LOG_DAEMON);
	use_syslog = true;
	fuse_set_log_func(fuse_log_to_syslog);
}
