/*
 * rsswrap.c - LD_PRELOAD helper for tests/shell_test.sh: reports peak RSS.
 *
 * When the process exits, appends its VmHWM (peak resident set size, KiB,
 * from /proc/self/status) as one line to the file named by $APB_RSS_OUT.
 * Reading our own status at exit measures exactly the traced program;
 * /usr/bin/time's ru_maxrss would also count the forked copy of `time`
 * itself before exec (about 1 MiB here).  Without $APB_RSS_OUT it does
 * nothing.  Uses only raw system calls so it allocates nothing itself.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void apb_rsswrap_report(void) __attribute__((destructor));

/** Appends "VmHWM-in-KiB\n" to $APB_RSS_OUT. */
void apb_rsswrap_report(void)
{
	const char *out = getenv("APB_RSS_OUT");
	char buf[4096], *p, *e;
	ssize_t n;
	int fd;

	if (!out || !*out || (fd = open("/proc/self/status", O_RDONLY)) < 0)
		return;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (!(p = strstr(buf, "VmHWM:")))
		return;
	for (p += 6; *p == ' ' || *p == '\t'; p++)
		;
	for (e = p; *e >= '0' && *e <= '9'; e++)
		;
	*e++ = '\n';
	if ((fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644)) < 0)
		return;
	if (write(fd, p, (size_t)(e - p)) < 0)
		(void)0;
	close(fd);
}
