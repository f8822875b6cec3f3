# bench.mk - the side-by-side benchmark harness (issue 7): `make bench`.
# nullfs is the memory-backed FUSE ceiling; mnttime times a mount until it
# answers stat.  Both are built with the tree (so warnings stay checked) but
# never installed.  run.sh uses this build directory and does not rebuild.
noinst_PROGRAMS += scripts/bench/nullfs scripts/bench/mnttime
scripts_bench_nullfs_SOURCES = scripts/bench/nullfs.c
scripts_bench_nullfs_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS)
scripts_bench_nullfs_LDADD = $(FUSE3_LIBS) $(PTHREAD_LIBS)
scripts_bench_mnttime_SOURCES = scripts/bench/mnttime.c
scripts_bench_mnttime_CFLAGS = $(AM_CFLAGS)

.PHONY: bench
bench: all
	BUILD='$(abs_top_builddir)' SKIP_BUILD=1 $(SHELL) '$(abs_top_srcdir)/scripts/bench/run.sh'
