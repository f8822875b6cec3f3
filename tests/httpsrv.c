/*
 * httpsrv.c - spawn and stop nginx and faultsrv.py for the Check suites
 * (see httpsrv.h).
 *
 * Invariants: a started server is a direct child, killed by the kernel if
 * the test process dies (PR_SET_PDEATHSIG) and by httpsrv_stop otherwise;
 * httpsrv_* return only once the server accepts connections or has failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpsrv.h"

static const char *srcdir(void)
{
	const char *t = getenv("top_srcdir");
	return t ? t : TOP_SRCDIR;
}

static pid_t spawn(char *const argv[], const char *logpath)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void nap(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

/* Waits until port accepts or the child exits; 0 when up. */
static int wait_up(httpsrv *s)
{
	for (int i = 0; i < 500; i++) {
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			return -1;
		}
		if (s->port && port_open(s->port))
			return 0;
		nap();
	}
	httpsrv_stop(s);
	return -1;
}

/** See httpsrv.h. */
int httpsrv_nginx(httpsrv *s, const char *root, const char *name, const char *workdir)
{
	return httpsrv_nginx_tls(s, root, name, workdir, NULL, NULL);
}

/** See httpsrv.h. */
int httpsrv_nginx_tls(httpsrv *s, const char *root, const char *name, const char *workdir,
                      const char *cert, const char *key)
{
	char cmd[3072], conf[600], log[600], tls[1300] = "";
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "%s", workdir);
	snprintf(conf, sizeof conf, "%s/ngx.conf", workdir);
	snprintf(log, sizeof log, "%s/start.log", workdir);
	for (int i = 0; i < 20; i++) {
		s->port = 18000 + (int)((getpid() * 31u + (unsigned)time(NULL) + i * 97u) % 1000u);
		if (cert)
			snprintf(tls, sizeof tls, "NGX_TLS_CERT='%s' NGX_TLS_KEY='%s' && ", cert, key);
		snprintf(cmd, sizeof cmd, "mkdir -p '%s/tmp' && NGX_DAEMON=off && %s. "
		         "'%s/tests/http_lib.sh' && http_nginx_conf '%s' '%s' %d", workdir, tls,
		         srcdir(), root, workdir, s->port);
		if (system(cmd) != 0)
			return -1;
		char *argv[] = { "nginx", "-c", conf, "-p", s->dir, NULL };
		if (access("/usr/sbin/nginx", X_OK) == 0)
			argv[0] = "/usr/sbin/nginx";
		s->pid = spawn(argv, log);
		s->nginx = 1;
		if (s->pid > 0 && wait_up(s) == 0) {
			snprintf(s->url, sizeof s->url, "%s://127.0.0.1:%d/%s", cert ? "https" : "http",
			         s->port, name);
			return 0;
		}
	}
	return -1;
}

/** See httpsrv.h. */
int httpsrv_nginx_restart(httpsrv *s)
{
	char conf[600], log[600];
	snprintf(conf, sizeof conf, "%s/ngx.conf", s->dir);
	snprintf(log, sizeof log, "%s/start.log", s->dir);
	char *argv[] = { "nginx", "-c", conf, "-p", s->dir, NULL };
	if (access("/usr/sbin/nginx", X_OK) == 0)
		argv[0] = "/usr/sbin/nginx";
	httpsrv_stop(s);
	s->pid = spawn(argv, log);
	return s->pid > 0 ? wait_up(s) : -1;
}

/* One start of faultsrv.py; 0 once it accepts connections. */
static int fault_once(httpsrv *s, char *const argv[], const char *pf, const char *out)
{
	FILE *f;
	unlink(pf);
	s->port = 0;
	s->pid = spawn(argv, out);
	for (int i = 0; i < 1500 && s->pid > 0 && !s->port; i++) {   /* 30 s: a loaded machine */
		if ((f = fopen(pf, "r"))) {
			if (fscanf(f, "%d", &s->port) != 1)
				s->port = 0;
			fclose(f);
		}
		if (!s->port && waitpid(s->pid, NULL, WNOHANG) == s->pid)
			return s->pid = 0, -1;
		if (!s->port)
			nap();
	}
	return s->pid > 0 ? wait_up(s) : -1;
}

/** See httpsrv.h. */
int httpsrv_fault(httpsrv *s, const char *file, const char *workdir)
{
	char script[600], ctl[600], log[600], pf[600], out[600];
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "%s", workdir);
	snprintf(script, sizeof script, "%s/tests/faultsrv.py", srcdir());
	snprintf(ctl, sizeof ctl, "%s/ctl", workdir);
	snprintf(log, sizeof log, "%s/requests.log", workdir);
	snprintf(pf, sizeof pf, "%s/port", workdir);
	snprintf(out, sizeof out, "%s/server.log", workdir);
	httpsrv_fault_set(s, "ok", -1);
	char *argv[] = { "python3", script, "--file", (char *)file, "--ctl", ctl, "--log", log,
	                 "--port-file", pf, NULL };
	for (int i = 0; i < 3; i++)
		if (fault_once(s, argv, pf, out) == 0) {
			snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/obj", s->port);
			return 0;
		}
	return -1;
}

/** See httpsrv.h. */
void httpsrv_fault_set(httpsrv *s, const char *mode, int count)
{
	char path[600], tmp[610];
	FILE *f;
	static unsigned seq;
	snprintf(path, sizeof path, "%s/ctl", s->dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		abort();
	fprintf(f, "%s %d %u\n", mode, count, ++seq);   /* seq: every call is a change */
	fclose(f);
	rename(tmp, path);
}

/** See httpsrv.h. */
int httpsrv_log_count(httpsrv *s, const char *needle)
{
	char path[600], line[1024];
	int n = 0;
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", s->dir, s->nginx ? "access.log" : "requests.log");
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof line, f))
		n += !needle || strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/** See httpsrv.h. */
void httpsrv_stop(httpsrv *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			return;
		}
		nap();
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}
