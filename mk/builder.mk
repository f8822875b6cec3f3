# builder layer: manifest encoding, streaming atomic writer, whole-bundle load.
libapbundle_internal_la_SOURCES += \
	src/lib/format_write.c src/lib/builder.c src/lib/bundle.c
