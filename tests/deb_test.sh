#!/bin/sh
# deb_test.sh - build the Debian packages from a temp copy of the tree
# (dpkg-buildpackage -us -uc -b, tests skipped: make check is its own
# phase), check lintian has no error, that every file is where Debian
# expects it, that the packaged version is configure.ac's, then install
# the three packages, run the installed programs and build a program
# against libapbundle-dev with pkg-config; purge them on any exit.
# Run by scripts/test.sh (phase deb), not by make check: it takes minutes
# and dh_auto_test would run it inside its own build.
# Skips (77) without dpkg-buildpackage/dh, when not root (dpkg -i), or
# when any of the packages is already installed (it would be replaced).
set -u
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
pkgs="libapbundle0 libapbundle-dev apbundle"

skip() { echo "SKIP: $*"; exit 77; }
command -v dpkg-buildpackage >/dev/null || skip "dpkg-buildpackage missing (apt-get install dpkg-dev)"
command -v dh >/dev/null || skip "debhelper missing"
[ "$(id -u)" = 0 ] || skip "dpkg -i needs root"
for p in $pkgs; do
	case $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) in
	*" installed"|*" unpacked"|*" half-"*) skip "$p is installed already; not replacing it" ;;
	esac
done

tmp=$(mktemp -d /tmp/packaging-debtest.XXXXXX)
installed=""
cleanup() {
	# shellcheck disable=SC2086
	[ -n "$installed" ] && dpkg --purge $pkgs >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The tree's files (git's tracked and untracked-but-not-ignored ones, or
# everything but build products outside a git checkout).
src="$tmp/apbundle"
mkdir "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -x -C "$src"
else
	(cd "$top" && tar --exclude=./build --exclude=./.git -cf - .) | tar -x -C "$src"
fi || { echo "FAIL: copying the tree"; exit 1; }

cd "$src" || exit 1
want=$(sed -n 's/^AC_INIT(\[apbundle\], \[\([^]]*\)\].*/\1/p' configure.ac)
have=$(dpkg-parsechangelog -S Version)
[ "$want" = "$have" ] || fail "debian/changelog says $have, configure.ac $want"

echo "== dpkg-buildpackage -us -uc -b (nocheck)"
if ! DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b -Pnocheck \
	>"$tmp/build.log" 2>&1; then
	tail -n 40 "$tmp/build.log"
	echo "FAIL: dpkg-buildpackage"; exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
cd "$tmp" || exit 1
for p in $pkgs; do
	[ -f "${p}_${have}_$arch.deb" ] || fail "no ${p}_${have}_$arch.deb"
done

if command -v lintian >/dev/null; then
	echo "== lintian"
	lintian --fail-on error "apbundle_${have}_$arch.changes" >"$tmp/lintian.out" 2>&1 \
		|| fail "lintian: $(grep -c '^E:' "$tmp/lintian.out") error(s)"
	grep -E '^[EWI]:' "$tmp/lintian.out"
else
	echo "lintian not installed: not run"
fi

# has PACKAGE PATH...: each PATH (a shell pattern) is in PACKAGE's .deb.
has() {
	deb="${1}_${have}_$arch.deb"; shift
	list=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\.||')
	for pat in "$@"; do
		found=""
		for f in $list; do
			# shellcheck disable=SC2254
			case $f in $pat) found=1; break ;; esac
		done
		[ -n "$found" ] || fail "$deb lacks $pat"
	done
}
echo "== contents"
has libapbundle0 "/usr/lib/$ma/libapbundle.so.0" "/usr/lib/$ma/libapbundle.so.0.*"
has libapbundle-dev /usr/include/apbundle.h "/usr/lib/$ma/libapbundle.so" \
	"/usr/lib/$ma/pkgconfig/libapbundle.pc"
has apbundle /usr/bin/apbundle /usr/bin/apbundle-mount /usr/bin/apbundle-shell \
	/usr/share/man/man1/apbundle.1.gz /usr/share/man/man1/apbundle-mount.1.gz \
	/usr/share/man/man1/apbundle-shell.1.gz \
	/usr/share/apbundle/apbundle-shell.bash /usr/share/apbundle/apbundle-shell.zsh \
	/usr/share/bash-completion/completions/apbundle \
	/usr/share/bash-completion/completions/apbundle-mount \
	"/lib/systemd/system/apbundle-mount@.service"
# No libtool archive, and the library only in the library package.
dpkg-deb -c "libapbundle-dev_${have}_$arch.deb" | grep -q '\.la$' && fail "a .la file is shipped"
dpkg-deb -c "apbundle_${have}_$arch.deb" | grep -q 'libapbundle\.so' && fail "apbundle ships the library"

echo "== dpkg -i"
installed=1
# shellcheck disable=SC2046
if ! dpkg -i $(for p in $pkgs; do echo "${p}_${have}_$arch.deb"; done) >"$tmp/dpkg.log" 2>&1; then
	cat "$tmp/dpkg.log"; fail "dpkg -i"
fi
out=$(/usr/bin/apbundle --version) || fail "apbundle --version exits non-zero"
echo "$out"
case $out in "apbundle $have "*) ;; *) fail "apbundle --version says: $out" ;; esac
/usr/bin/apbundle-mount --version >/dev/null 2>&1 || fail "apbundle-mount --version"
grep -q '^ExecStart=/usr/bin/apbundle-mount ' "/lib/systemd/system/apbundle-mount@.service" \
	|| fail "the installed unit does not run /usr/bin/apbundle-mount"

# A program built against the installed -dev package and run on libapbundle0.
cat >"$tmp/v.c" <<'CEOF'
#include <apbundle.h>
#include <stdio.h>
int main(void) { puts(apb_version()); return 0; }
CEOF
# shellcheck disable=SC2046 # pkg-config's flags are separate words
if cc -o "$tmp/v" "$tmp/v.c" $(pkg-config --cflags --libs libapbundle) 2>"$tmp/cc.log"; then
	v=$("$tmp/v") || fail "the program built against libapbundle-dev does not run"
	[ "$v" = "$have" ] || fail "apb_version() says $v"
	ldd "$tmp/v" | grep -Eq "=> (/usr)?/lib/$ma/libapbundle\.so\.0 " || fail "not linked to the packaged library: $(ldd "$tmp/v" | grep apbundle)"
else
	cat "$tmp/cc.log"; fail "cc with pkg-config libapbundle"
fi

echo "deb_test: $fails failure(s)"
[ "$fails" = 0 ]
