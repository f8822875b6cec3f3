#!/bin/sh
# build.sh - configure and build apbundle out of tree.
#
# Usage: scripts/build.sh BUILDDIR [configure options...]
# Runs autogen.sh when configure is missing or older than its inputs, then
# configures BUILDDIR (only when needed) and runs make.  A source tree that
# was configured in place is built from a mirror in build/src instead
# (scripts/srcdir.sh), since configure refuses a second configuration.
# Prints nothing on success beyond make's own summary lines.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bdir=${1:?usage: build.sh BUILDDIR [configure options...]}
shift
jobs=$(nproc 2>/dev/null || echo 2)

if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ] \
   || [ "$top/Makefile.am" -nt "$top/Makefile.in" ]; then
	"$top/autogen.sh" >/dev/null 2>&1 || "$top/autogen.sh"
fi
# an in-place configured tree is built from a mirror (scripts/srcdir.sh)
. "$top/scripts/srcdir.sh"
apb_srcdir "$top"
mkdir -p "$bdir"
cd "$bdir"
want="$src $*"
have=$(cat .apb-configure-args 2>/dev/null || echo "<none>")
if [ ! -f Makefile ] || [ "$want" != "$have" ]; then
	"$src/configure" -q "$@"
	printf '%s' "$want" > .apb-configure-args
fi
make -s -j"$jobs"
