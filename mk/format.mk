# format layer: errors, I/O seam, checksums, names, sizes, manifest decode.
libapbundle_internal_la_SOURCES += \
	src/lib/internal.h src/lib/format.h src/lib/format_priv.h \
	src/lib/errors.c src/lib/io.c src/lib/checksum.c src/lib/names.c \
	src/lib/size.c src/lib/format.c src/lib/format_json.c src/lib/format_legacy.c \
	src/lib/json_scan.c
# Suites: hand-made bundles (tests/craft.c), never our own writer.
check_PROGRAMS += tests/check_format tests/check_format_json tests/check_format_util
tests_check_format_SOURCES = tests/check_format.c tests/craft.c tests/craft.h
tests_check_format_CFLAGS = $(TESTFLAGS)
tests_check_format_LDADD = $(TESTLIBS)
tests_check_format_json_SOURCES = tests/check_format_json.c tests/craft.c tests/craft.h
tests_check_format_json_CFLAGS = $(TESTFLAGS)
tests_check_format_json_LDADD = $(TESTLIBS)
tests_check_format_util_SOURCES = tests/check_format_util.c tests/craft.c tests/craft.h
tests_check_format_util_CFLAGS = $(TESTFLAGS)
tests_check_format_util_LDADD = $(TESTLIBS)
TESTS += tests/check_format tests/check_format_json tests/check_format_util
