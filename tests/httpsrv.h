/*
 * httpsrv.h - real HTTP servers on loopback for the remote-source suites:
 * nginx (configured by tests/http_lib.sh) and tests/faultsrv.py.
 *
 * Servers run in the foreground as children of the test process with
 * PR_SET_PDEATHSIG, so a test that dies takes its server with it; ports
 * are in 18000-18999 on 127.0.0.1.  Scripts are found through $top_srcdir
 * (set by make check) or the source tree the suite was built from.
 */
#ifndef APB_HTTPSRV_H
#define APB_HTTPSRV_H

#include <sys/types.h>

typedef struct httpsrv {
	pid_t pid;
	int port;
	int nginx;                /* 1: nginx, 0: faultsrv.py */
	char dir[512];            /* the server's work dir (config, logs, ctl) */
	char url[600];            /* http://127.0.0.1:PORT/NAME */
} httpsrv;

/**
 * Starts nginx serving root; url names root/name.  Work files in workdir.
 * Returns 0, or -1 (nginx missing or not started: the caller skips/fails).
 */
int httpsrv_nginx(httpsrv *s, const char *root, const char *name, const char *workdir);

/** httpsrv_nginx over TLS with the PEM cert and key given (url: https://). */
int httpsrv_nginx_tls(httpsrv *s, const char *root, const char *name, const char *workdir,
                      const char *cert, const char *key);

/** Starts a stopped nginx again on the same port and config.  0 or -1. */
int httpsrv_nginx_restart(httpsrv *s);

/** Starts faultsrv.py serving file; ctl file and log in workdir.  0 or -1. */
int httpsrv_fault(httpsrv *s, const char *file, const char *workdir);

/** Writes "mode count" to a fault server's control file. */
void httpsrv_fault_set(httpsrv *s, const char *mode, int count);

/** Counts lines of the server's request log containing needle (NULL: all). */
int httpsrv_log_count(httpsrv *s, const char *needle);

/** Stops the server (SIGTERM, then SIGKILL) and reaps it.  Idempotent. */
void httpsrv_stop(httpsrv *s);

#endif
