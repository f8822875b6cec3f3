# builder layer: manifest encoding, streaming atomic writer, whole-bundle load.
libapbundle_internal_la_SOURCES += \
	src/lib/format_write.h src/lib/format_write.c src/lib/builder.c src/lib/builder_meta.c \
	src/lib/bundle.c

check_PROGRAMS += tests/check_builder
tests_check_builder_SOURCES = tests/check_builder.c tests/rawbundle.c tests/rawbundle.h
tests_check_builder_CFLAGS = $(TESTFLAGS)
tests_check_builder_LDADD = $(TESTLIBS)
TESTS += tests/check_builder

check_PROGRAMS += tests/check_builder_atomic
tests_check_builder_atomic_SOURCES = tests/check_builder_atomic.c tests/rawbundle.c tests/rawbundle.h
tests_check_builder_atomic_CFLAGS = $(TESTFLAGS)
tests_check_builder_atomic_LDADD = $(TESTLIBS)
TESTS += tests/check_builder_atomic

check_PROGRAMS += tests/check_bundle
tests_check_bundle_SOURCES = tests/check_bundle.c
tests_check_bundle_CFLAGS = $(TESTFLAGS)
tests_check_bundle_LDADD = $(TESTLIBS)
TESTS += tests/check_bundle
