# cache layer and paged bundle: page cache, policies, prefetch, PagedBundle.
libapbundle_internal_la_SOURCES += \
	src/lib/cache.h src/lib/cache_priv.h src/lib/cache.c src/lib/cache_view.c src/lib/policy.h \
	src/lib/policy_lru.c src/lib/policy_lfu.c \
	src/lib/prefetch.h src/lib/prefetch.c src/lib/paged.c

check_PROGRAMS += tests/check_policy
tests_check_policy_SOURCES = tests/check_policy.c tests/refpol.h
tests_check_policy_CFLAGS = $(TESTFLAGS)
tests_check_policy_LDADD = $(TESTLIBS)
TESTS += tests/check_policy

check_PROGRAMS += tests/check_cache
tests_check_cache_SOURCES = tests/check_cache.c tests/refpol.h
tests_check_cache_CFLAGS = $(TESTFLAGS)
tests_check_cache_LDADD = $(TESTLIBS)
TESTS += tests/check_cache

check_PROGRAMS += tests/check_paged
tests_check_paged_SOURCES = tests/check_paged.c tests/tbundle.c tests/tbundle.h
tests_check_paged_CFLAGS = $(TESTFLAGS)
tests_check_paged_LDADD = $(TESTLIBS)
TESTS += tests/check_paged

check_PROGRAMS += tests/check_paged_integrity
tests_check_paged_integrity_SOURCES = tests/check_paged_integrity.c tests/tbundle.c tests/tbundle.h
tests_check_paged_integrity_CFLAGS = $(TESTFLAGS)
tests_check_paged_integrity_LDADD = $(TESTLIBS)
TESTS += tests/check_paged_integrity

check_PROGRAMS += tests/check_prefetch
tests_check_prefetch_SOURCES = tests/check_prefetch.c tests/tbundle.c tests/tbundle.h
tests_check_prefetch_CFLAGS = $(TESTFLAGS)
tests_check_prefetch_LDADD = $(TESTLIBS)
TESTS += tests/check_prefetch

# Micro-benchmark of the cache (make scripts/bench/bench_cache; not a test).
noinst_PROGRAMS += scripts/bench/bench_cache
scripts_bench_bench_cache_SOURCES = scripts/bench/bench_cache.c
scripts_bench_bench_cache_LDADD = libapbundle_internal.la $(JSONC_LIBS) $(XXHASH_LIBS) $(PTHREAD_LIBS)
