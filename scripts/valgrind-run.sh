#!/bin/sh
# valgrind-run.sh - LOG_COMPILER for `make check` under valgrind (scripts/test.sh).
#
# Runs a test program under memcheck with Check's forking off (valgrind
# follows one process), failing the test on any memory error or definite leak.
# libtool wrapper scripts are run through `libtool --mode=execute`.
CK_FORK=no
export CK_FORK
if head -c 2 "$1" 2>/dev/null | grep -q '#!' && [ -x "${top_builddir:-.}/libtool" ]; then
	exec "${top_builddir:-.}/libtool" --mode=execute valgrind -q --error-exitcode=99 \
		--leak-check=full --errors-for-leak-kinds=definite "$@"
fi
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$@"
