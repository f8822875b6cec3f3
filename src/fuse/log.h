/*
 * log.h - the one logger of apbundle-mount.
 *
 * Lines go to stderr (prefixed "apbundle-mount: ") until
 * apbm_log_to_syslog() is called after daemonizing; from then on they go
 * to syslog, and so do libfuse's own messages.  Safe from any thread.
 */
#ifndef APBM_LOG_H
#define APBM_LOG_H

/** Logs one line at syslog priority prio (LOG_ERR, LOG_WARNING, ...). */
void apbm_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Sends every later line (ours and libfuse's) to syslog as ident. */
void apbm_log_to_syslog(const char *ident);

#endif
