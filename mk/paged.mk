# cache layer and paged bundle: page cache, policies, prefetch, PagedBundle.
libapbundle_internal_la_SOURCES += \
	src/lib/cache.h src/lib/cache.c src/lib/policy.h \
	src/lib/policy_lru.c src/lib/policy_lfu.c \
	src/lib/prefetch.h src/lib/prefetch.c src/lib/paged.c
