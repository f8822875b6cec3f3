# hardening: fuzz targets (make fuzz), fault injection, stress, crash and
# mount-security tests (issue 5; docs/RELIABILITY.md).

EXTRA_DIST += tests/fuzz

# ---- libFuzzer targets ----------------------------------------------
# `make fuzz` builds fuzz/fuzz_* in the build directory with clang,
# compiling the library sources directly with the fuzz flags (the libtool
# objects are built with gcc and without coverage).  scripts/fuzz.sh runs them.
FUZZ_CC = $(CLANG)
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/src/lib -I$(top_builddir) \
	-D_GNU_SOURCE $(JSONC_CFLAGS) $(XXHASH_CFLAGS)
FUZZ_LIBS = $(JSONC_LIBS) $(XXHASH_LIBS) -pthread
FUZZ_TARGETS = fuzz/fuzz_manifest fuzz/fuzz_bundle fuzz/fuzz_size fuzz/fuzz_mount \
	fuzz/fuzz_options
FUZZ_LIB_OBJS = $(patsubst src/lib/%.c,fuzz/obj/%.o,\
	$(filter %.c,$(libapbundle_internal_la_SOURCES)))

.PHONY: fuzz fuzz-clean
.SECONDARY: $(FUZZ_LIB_OBJS)
fuzz: $(FUZZ_TARGETS)

fuzz/obj/%.o: $(top_srcdir)/src/lib/%.c $(top_srcdir)/src/lib/*.h $(top_srcdir)/include/apbundle.h
	@test -n "$(FUZZ_CC)" || { echo "make fuzz: clang not found by configure" >&2; exit 1; }
	@$(MKDIR_P) fuzz/obj
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

# An archive, so each target links only the objects it needs.
fuzz/libapbfuzz.a: $(FUZZ_LIB_OBJS)
	$(AM_V_AR)rm -f $@ && $(AR) rcs $@ $(FUZZ_LIB_OBJS)

fuzz/fuzz_%: $(top_srcdir)/tests/fuzz/fuzz_%.c fuzz/libapbfuzz.a
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< fuzz/libapbfuzz.a $(FUZZ_LIBS)

# The mount's tree builder and .stats renderers (not main.c: it has main()).
FUZZ_MOUNT_SRCS = $(top_srcdir)/src/fuse/ops.c $(top_srcdir)/src/fuse/vfiles.c
fuzz/fuzz_mount: $(top_srcdir)/tests/fuzz/fuzz_mount.c $(FUZZ_MOUNT_SRCS) $(top_srcdir)/src/fuse/mount.h fuzz/libapbfuzz.a
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CPPFLAGS) -I$(top_srcdir)/src/fuse $(FUSE3_CFLAGS) $(FUZZ_CFLAGS) \
		-o $@ $< $(FUZZ_MOUNT_SRCS) fuzz/libapbfuzz.a $(FUSE3_LIBS) $(FUZZ_LIBS)

# The mount's -o parser alone: options.c calls no libfuse function, so only
# the FUSE headers (mount.h includes fuse_lowlevel.h) and no -lfuse3.
fuzz/fuzz_options: $(top_srcdir)/tests/fuzz/fuzz_options.c $(top_srcdir)/src/fuse/options.c \
		$(top_srcdir)/src/fuse/mount.h fuzz/libapbfuzz.a
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CPPFLAGS) -I$(top_srcdir)/src/fuse $(FUSE3_CFLAGS) $(FUZZ_CFLAGS) \
		-o $@ $< $(top_srcdir)/src/fuse/options.c fuzz/libapbfuzz.a $(FUZZ_LIBS)

fuzz-clean:
	rm -rf fuzz
CLEANFILES += $(FUZZ_TARGETS) $(FUZZ_LIB_OBJS) fuzz/libapbfuzz.a

# ---- tests in make check --------------------------------------------
# SIGKILL of `apbundle create` at random moments (about 10 s).
dist_check_SCRIPTS += tests/crash_test.sh
TESTS += tests/crash_test.sh

# Fault injection through the I/O seam (EIO, short reads, EINTR, flips).
check_PROGRAMS += tests/check_faults
tests_check_faults_SOURCES = tests/check_faults.c
tests_check_faults_CFLAGS = $(TESTFLAGS)
tests_check_faults_LDADD = $(TESTLIBS)
TESTS += tests/check_faults

# Hostile names at create and open, extraction through symlinks, mount exposure.
dist_check_SCRIPTS += tests/security_test.sh
TESTS += tests/security_test.sh

# 8 readers + a chaos thread on a 16-page cache (APB_STRESS_SECONDS, default 2 per policy).
check_PROGRAMS += tests/check_stress
tests_check_stress_SOURCES = tests/check_stress.c
tests_check_stress_CFLAGS = $(TESTFLAGS)
tests_check_stress_LDADD = $(TESTLIBS)
TESTS += tests/check_stress

# 8 reader processes through a real mount, and bundles changed under it.
dist_check_SCRIPTS += tests/stress_mount_test.sh
TESTS += tests/stress_mount_test.sh

# LD_PRELOAD shim: EIO for chosen preads inside the mount daemon (stress_mount_test.sh).
check_LTLIBRARIES += tests/libfaultpreload.la
tests_libfaultpreload_la_SOURCES = tests/fault_preload.c
tests_libfaultpreload_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_libfaultpreload_la_LIBADD = -ldl
