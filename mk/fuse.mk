# front end 2: the apbundle-mount FUSE file system.
bin_PROGRAMS += apbundle-mount
apbundle_mount_SOURCES = src/fuse/main.c src/fuse/mount.h src/fuse/options.c \
	src/fuse/ops.c src/fuse/vfiles.c
apbundle_mount_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS) $(JSONC_CFLAGS)
apbundle_mount_LDADD = libapbundle_internal.la $(FUSE3_LIBS) $(JSONC_LIBS) $(XXHASH_LIBS) $(PTHREAD_LIBS)
dist_man1_MANS += docs/man/apbundle-mount.1

# Mount tests: real FUSE mounts (skipped without /dev/fuse or fusermount3).
# mount_mkbundle builds their bundles with the library's builder;
# mount_verify.py checks bytes, errno values and .stats.json.
check_PROGRAMS += tests/mount_mkbundle
tests_mount_mkbundle_SOURCES = tests/mount_mkbundle.c
tests_mount_mkbundle_LDADD = libapbundle_internal.la $(JSONC_LIBS) $(XXHASH_LIBS) $(PTHREAD_LIBS)
dist_check_SCRIPTS += tests/mount_test.sh tests/mount_stats_test.sh \
	tests/mount_corrupt_test.sh tests/mount_scale_test.sh
EXTRA_DIST += tests/mount_lib.sh tests/mount_verify.py
TESTS += tests/mount_test.sh tests/mount_stats_test.sh \
	tests/mount_corrupt_test.sh tests/mount_scale_test.sh
