# front end 2: the apbundle-mount FUSE file system.
bin_PROGRAMS += apbundle-mount
apbundle_mount_SOURCES = src/fuse/main.c src/fuse/mount.h src/fuse/ops.c src/fuse/vfiles.c
apbundle_mount_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS) $(JSONC_CFLAGS)
apbundle_mount_LDADD = libapbundle_internal.la $(FUSE3_LIBS) $(JSONC_LIBS) $(XXHASH_LIBS) $(PTHREAD_LIBS)
dist_man1_MANS += docs/man/apbundle-mount.1
