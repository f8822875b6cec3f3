#!/bin/sh
# docs_test.sh - runs every command of the README and the man pages exactly
# as written (issue 15 item 8).
#
# The commands are extracted, not copied: the README's indented lines in
# "Quick start" (but not its C example) and "Shell completion from your
# history" ("bash:  " / "zsh:   " labels dropped), and every .EX/.EE and
# .nf/.fi block of docs/man/*.1 (roff escapes \- and \e undone, lines
# ending in '\' joined).  Each block runs in order, each command with
# `sh -c` from one work directory whose files the commands name (enc.bin,
# ./models, encoder.onnx ...), with HOME in the test's temp dir and the
# build directory first in PATH (then /usr/bin); every command must exit 0.  Paths such as
# /mnt/models and /srv are the documents' own: the blocks run in a private
# mount namespace (unshare -m) with tmpfs on /mnt and /srv, so nothing
# outside the test sees them.  A command ending in '&' (a mount in the
# foreground) is waited for until its mountpoint is mounted; mounts are
# undone between blocks.  `mount -t fuse.apbundle-mount` finds the build's
# apbundle-mount in /usr/local/sbin, a tmpfs of the namespace.  Snippets
# written for a situation get it first: a `.control` write a mount with
# -o control, the dead-daemon recovery a mount whose daemon was killed.  Lines that are not commands, or that install
# into the system, are listed in SKIP below with the reason, and the test
# fails when the extraction finds fewer commands than it should.
# Skipped (77) without root, unshare, /dev/fuse or fusermount3.
set -eu

B=${top_builddir:-$(pwd)}
S=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
[ "$(id -u)" = 0 ] || { echo "not root: skipped"; exit 77; }
command -v unshare >/dev/null || { echo "no unshare: skipped"; exit 77; }
command -v fusermount3 >/dev/null && [ -c /dev/fuse ] || { echo "no FUSE: skipped"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/apbdocs.fecli.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- extraction ----
# README: code lines of the two sections, the C example cut out.
awk '
	/^Quick start$/ || /^Shell completion from your history$/ { on = 1; next }
	/^[A-Z][A-Za-z ]+$/ && !/^From C/ { on = 0 }
	on && /^From C:/ { c = 1; next }
	on && /^Compile with/ { c = 0; next }
	on && !c && /^    [^ ]/ {
		sub(/^    /, ""); sub(/^(bash|zsh): +/, ""); print
	}' "$S/README" >"$T/readme.cmds"
# man pages: one block per .EX/.nf, blocks separated by a line "@@"
for m in apbundle apbundle-shell apbundle-mount; do
	awk '
		/^\.(EX|nf)/ { on = 1; next }
		/^\.(EE|fi)/ { if (on) print "@@"; on = 0; next }
		on && /^\.(RS|RE)/ { next }
		on { gsub(/\\-/, "-"); gsub(/\\e/, "\\"); print }' "$S/docs/man/$m.1" |
	awk '/\\$/ { sub(/\\$/, ""); line = line $0; next } { print line $0; line = "" }' \
		>"$T/$m.cmds"
done

# Lines that are not commands (an fstab entry, a systemd environment file,
# a sample message), or install into the system.
SKIP='./autogen.sh && ./configure && make && make install
./autogen.sh && ./configure && make
make install && ldconfig
/srv/models.apbundle /mnt/models fuse.apbundle-mount ro,max_memory=64M 0 0
BUNDLE=/srv/models.apbundle
OPTIONS="-o max_memory=1G -o eviction=lfu"
apbundle: verify: b.apbundle: model "enc": block 3 (bytes 196608-262143): checksum mismatch'

# ---- the files the commands name ----
W=$T/work
mkdir -p "$W/models" "$T/home"
head -c 3000000 /dev/urandom >"$W/enc.bin"
head -c 1000000 /dev/urandom >"$W/dec.bin"
cp "$W/enc.bin" "$W/models/encoder"
cp "$W/dec.bin" "$W/models/decoder"
cp "$W/enc.bin" "$W/encoder.onnx"
cp "$W/dec.bin" "$W/decoder.onnx"
printf 'hello\nworld\n' >"$W/vocab.txt"
printf '{"version": "1.0", "architecture": "transformer"}\n' >"$W/enc.json"
for i in 1 2 3; do printf 'git commit -m x\ngit status\nmake\n'; done >"$T/home/.bash_history"

# ---- running, inside a private mount namespace ----
cat >"$T/run.sh" <<'EOF'
set -u
T=$1
mount -t tmpfs tmpfs /mnt
mount -t tmpfs tmpfs /srv
# mount(8) runs helpers with a fixed PATH: show it this build's
# apbundle-mount where `make install` would put it (this namespace only)
mount -t tmpfs tmpfs /usr/local/sbin
ln -s "$(command -v apbundle-mount)" /usr/local/sbin/apbundle-mount
mkdir -p /mnt/models /mnt/m
cd "$T/work"
unmount_all() {
	for d in /mnt/models /mnt/m mnt; do
		while mountpoint -q "$d"; do fusermount3 -u "$d" 2>/dev/null || umount -l "$d"; done
	done
	wait
}
trap unmount_all EXIT
ran=0
while IFS= read -r cmd; do
	[ -n "$cmd" ] || continue
	if [ "$cmd" = "@@" ]; then unmount_all; continue; fi
	if printf "%s\n" "$SKIP" | grep -qxF -- "$(printf '%s\n' "$cmd" | sed 's/ *# .*$//')"; then
		echo "skipped (not a command, or installs): $cmd"
		continue
	fi
	# the situation a snippet of apbundle-mount(1) is written for
	case $cmd in
	"mount -t fuse.apbundle-mount /srv/models.apbundle "*)
		[ -f /srv/models.apbundle ] || apbundle create /srv/models.apbundle ./models >/dev/null ;;
	*"> /mnt/models/.control")        # a mount with -o control
		mountpoint -q /mnt/models || apbundle-mount -o control models.apbundle /mnt/models ;;
	"fusermount3 -u /mnt/models")     # WHEN THE DAEMON DIES: a dead mount
		if ! mountpoint -q /mnt/models; then
			apbundle-mount -f models.apbundle /mnt/models & d=$!
			until mountpoint -q /mnt/models; do sleep 0.1; done
			kill -KILL $d; wait $d 2>/dev/null
		fi ;;
	esac
	echo "\$ $cmd"
	case $cmd in
	*'&')
		sh -c "$cmd" </dev/null
		mnt=$(printf '%s\n' "$cmd" | awk '{ print $(NF - 1) }')
		n=0
		until mountpoint -q "$mnt"; do
			n=$((n + 1)); [ $n -lt 100 ] || { echo "FAIL: $mnt never mounted"; exit 1; }
			sleep 0.1
		done ;;
	*)
		sh -c "$cmd" </dev/null >"$T/out" 2>&1 || {
			rc=$?; cat "$T/out"; echo "FAIL: exit status $rc from: $cmd"; exit 1; }
		head -n 5 "$T/out" ;;
	esac
	ran=$((ran + 1))
done
unmount_all
echo "ran $ran commands"
EOF

# /usr/bin before the rest: Debian's python3 is the one with python3-numpy
# (scripts/deps.sh), whatever python an earlier PATH entry offers
export SKIP HOME="$T/home" PATH="$B:/usr/bin:$PATH"
for doc in readme apbundle apbundle-shell apbundle-mount; do
	echo "== $doc"
	{ cat "$T/$doc.cmds"; echo "@@"; } |
		unshare -m --propagation private sh "$T/run.sh" "$T" >"$T/$doc.log" 2>&1 ||
		{ cat "$T/$doc.log"; fail "$doc: a command failed"; }
	cat "$T/$doc.log"
	ran=$(sed -n 's/^ran \([0-9]*\) commands$/\1/p' "$T/$doc.log")
	case $doc in
	readme) want=14 ;; apbundle) want=14 ;; apbundle-shell) want=4 ;; apbundle-mount) want=11 ;;
	esac
	[ "${ran:-0}" -ge "$want" ] || fail "$doc: ran ${ran:-0} commands, expected at least $want"
done
pgrep -f "apbundle-mount.*(/mnt/models|/mnt/m)\$" >/dev/null &&
	echo "note: an apbundle-mount of another test or user is running" || true
echo "PASS: every README and man page command ran"
