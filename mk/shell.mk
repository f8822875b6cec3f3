# front end 3: apbundle-shell, paged n-gram shell completion (issue 6).
# The tool's modules except main.c, store.c and stats.c; the Check suite
# links all but main.c.
SHELL_CORE = src/shell/shell.h src/shell/util.c src/shell/history.c \
	src/shell/counter.c src/shell/segment.c src/shell/meta.c \
	src/shell/train.c src/shell/suggest.c
bin_PROGRAMS += apbundle-shell
apbundle_shell_SOURCES = src/shell/main.c src/shell/store.c src/shell/stats.c $(SHELL_CORE)
apbundle_shell_CFLAGS = $(AM_CFLAGS) $(XXHASH_CFLAGS)
apbundle_shell_LDADD = libapbundle_internal.la $(JSONC_LIBS) $(XXHASH_LIBS) $(PTHREAD_LIBS)
dist_man1_MANS += docs/man/apbundle-shell.1
# scripts/apbundle-shell.{bash,zsh} and scripts/bench/shell_bench.sh ship
# through EXTRA_DIST's "scripts"; the test's history generator:
EXTRA_DIST += tests/shell_histgen.sh

check_PROGRAMS += tests/check_shell
tests_check_shell_SOURCES = tests/check_shell.c src/shell/store.c src/shell/stats.c $(SHELL_CORE)
tests_check_shell_CFLAGS = $(TESTFLAGS) -I$(top_srcdir)/src/shell
tests_check_shell_LDADD = $(TESTLIBS)
TESTS += tests/check_shell

dist_check_SCRIPTS += tests/shell_test.sh
TESTS += tests/shell_test.sh

# LD_PRELOAD helper: peak RSS (VmHWM) of a process at exit, for shell_test.sh.
check_LTLIBRARIES += tests/librsswrap.la
tests_librsswrap_la_SOURCES = tests/rsswrap.c
tests_librsswrap_la_CFLAGS = $(WARN_CFLAGS)
tests_librsswrap_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere

# Key-binding snippets, installed to $(pkgdatadir) (README).
dist_pkgdata_DATA = scripts/apbundle-shell.bash scripts/apbundle-shell.zsh
