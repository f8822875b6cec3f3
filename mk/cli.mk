# front end 1: the apbundle command.
bin_PROGRAMS += apbundle
apbundle_SOURCES = src/cli/apbundle.c src/cli/cli.h src/cli/cli_util.c \
	src/cli/cmd_create.c src/cli/cmd_list.c src/cli/cmd_info.c \
	src/cli/cmd_verify.c src/cli/cmd_extract.c src/cli/cmd_cat.c src/cli/cmd_load.c
apbundle_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(XXHASH_CFLAGS)
apbundle_LDADD = libapbundle_internal.la $(JSONC_LIBS) $(XXHASH_LIBS) $(PTHREAD_LIBS)
dist_man1_MANS += docs/man/apbundle.1

# End-to-end tests of the command (default automake driver: 77 = skip).
dist_check_SCRIPTS += tests/cli_test.sh
TESTS += tests/cli_test.sh
