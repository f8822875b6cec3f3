# srcdir.sh - sourced by build.sh and fuzz.sh: apb_srcdir TOP sets $src, the
# source tree to configure out of tree from.
#
# A tree configured in place (`./autogen.sh && ./configure && make` at the
# top, as the README's quick start does) cannot also be configured out of
# tree: configure stops with "source directory already configured".  For
# such a tree $src is a mirror of its source files in TOP/build/src,
# refreshed at every call (tar keeps their mtimes, so make rebuilds only
# what changed) and given its own configure; the in-place build is left
# alone.  Otherwise $src is TOP itself.

apb_srcdir() {
	src=$1
	[ -f "$1/config.status" ] || return 0
	src=$1/build/src
	mkdir -p "$src"
	if git -C "$1" rev-parse --git-dir >/dev/null 2>&1; then
		# tracked and new (not ignored) files, as they are in the work tree
		(cd "$1" && git ls-files -z --cached --others --exclude-standard |
			tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$src"
	else
		# a release tarball: its own list of source files
		make -s -C "$1" distdir distdir="$src" >/dev/null
	fi
	if [ ! -x "$src/configure" ] || [ "$src/configure.ac" -nt "$src/configure" ] \
	   || [ "$src/Makefile.am" -nt "$src/Makefile.in" ]; then
		"$src/autogen.sh" >/dev/null 2>&1 || "$src/autogen.sh"
	fi
}
