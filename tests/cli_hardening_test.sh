#!/bin/sh
# cli_hardening_test.sh - issue 15 (hardening, round 2) through the apbundle
# command, each reproduction of the issue run as a user would:
#   2  an edited manifest is refused; unbound old manifests are read and said so
#   3  `load -m 4K -p 4K` is refused with the minimum
#   5  extract removes the temporary files of a run killed with SIGKILL
#      (only unlocked ones)
#   6  names that cannot share one tree are refused by create and reported
#      by verify, info and extract for existing bundles
#   7  list/cat name round trip (escapes and --null), columns of non-ASCII
#      names, info and verify agree on blocks, FIFOs refused by every
#      command without blocking, --help >/dev/full fails, \ud800 refused
# Every check here fails on the code before issue 15.
#
# Runs under automake's default test driver: exit 0 pass, 1 fail, 77 skip.
set -u

if [ -n "${top_builddir:-}" ] && [ -x "$top_builddir/apbundle" ]; then
	APB=$top_builddir/apbundle
else
	echo "apbundle binary not found (set top_builddir)"
	exit 77
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 missing"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/apb-harden.fecli.XXXXXX") || exit 1
PIDS=
cleanup() {
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
cd "$T" || exit 1

N=0
FAILS=0
ok() { N=$((N + 1)); echo "ok $N - $1"; }
fail() {
	N=$((N + 1)); FAILS=$((FAILS + 1))
	echo "not ok $N - $1"
	[ -s err ] && sed 's/^/#   stderr: /' err | head -5
}
check() { d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
run() { "$APB" "$@" >out 2>err; rc=$?; }
expect() { if [ "$rc" -eq "$1" ]; then ok "$2"; else fail "$2 (exit $rc, want $1)"; fi; }
err_has() { if grep -qF -- "$2" err; then ok "$1"; else fail "$1 (no '$2' in stderr)"; fi; }
out_has() { if grep -qF -- "$2" out; then ok "$1"; else fail "$1 (no '$2' in stdout)"; fi; }

# old_writer BUNDLE [FROM TO]: rewrites BUNDLE's manifest as an older
# apbundle wrote it (no manifest_checksum), replacing FROM by TO (same
# length) first: a bundle with names a writer refuses today.
old_writer() {
	python3 - "$@" <<'EOF'
import re, struct, sys
path = sys.argv[1]
b = bytearray(open(path, "rb").read())
L = struct.unpack_from("<I", b, 12)[0]
m = bytes(b[16:16 + L])
m = re.sub(rb'"manifest_checksum":"xxh3:[0-9a-f]{16}",', b"", m)
if len(sys.argv) > 3:
    f, t = sys.argv[2].encode(), sys.argv[3].encode()
    assert len(f) == len(t) and f in m, (f, t)
    m = m.replace(f, t, 1)
b[16:16 + L] = m.ljust(L, b" ")
open(path, "wb").write(b)
EOF
}

printf 'hello\n' >x
head -c 300000 /dev/urandom >y

# ---------------------------------------------------------------- item 2
"$APB" create c.apbundle model=x 2>err || fail "create c.apbundle"
run info c.apbundle
out_has "info says a new manifest is bound" "manifest:       bound"
sed -i 's/"name":"model"/"name":"modex"/' c.apbundle
run verify c.apbundle
expect 1 "verify refuses an edited manifest (the issue's sed)"
err_has "the error names the manifest" "manifest checksum mismatch"
for cmd in list info "cat c.apbundle modex" "extract -C . c.apbundle"; do
	set -- $cmd
	[ "$1" = cat ] || [ "$1" = extract ] || set -- "$1" c.apbundle
	run "$@"
	expect 1 "$1 refuses an edited manifest"
done
"$APB" create u.apbundle model=x 2>err && old_writer u.apbundle
run verify u.apbundle
expect 0 "verify reads a manifest without manifest_checksum"
out_has "verify says it is unbound" "manifest: unbound (written by an older apbundle)"
run info u.apbundle
out_has "info says it is unbound" "manifest:       unbound (written by an older apbundle)"

# ---------------------------------------------------------------- item 3
"$APB" create big.apbundle m=y 2>err || fail "create big.apbundle"
run load -m 4K -p 4K big.apbundle m
expect 1 "load -m 4K -p 4K is refused"
err_has "the error gives the minimum" "the minimum for this bundle is 64.0 KiB (65584 bytes)"
run load -m 65584 -p 4K big.apbundle m
expect 0 "load at exactly one block works"

# ---------------------------------------------------------------- item 6
run create n.apbundle a=x a/b=y
expect 1 "create refuses a model that is also a directory (a, a/b)"
err_has "the message names both models" '"a" and "a/b" cannot coexist'
check "nothing written" test ! -e n.apbundle
run create n.apbundle a/b/c=y a/b=x
expect 1 "create refuses it in the other order"
for r in .stats .stats.json .metrics .control .stats/x; do
	run create n.apbundle "$r=x"
	expect 2 "create refuses the mount's root name $r"
	err_has "  ... saying it is reserved" "reserved by apbundle-mount"
done
run create n.apbundle sub/.stats=x
expect 0 "a reserved name below the root is fine"
# an existing bundle from an older writer with such names
"$APB" create old.apbundle a=x aXb=y zstats=x 2>err && old_writer old.apbundle aXb a/b &&
	old_writer old.apbundle zstats .stats
run list old.apbundle
expect 0 "list still reads it"
run verify old.apbundle
expect 1 "verify fails it"
err_has "verify names the file/directory clash" 'model "a/b": a directory on its path is also a model'
err_has "verify names the reserved name" 'model ".stats": its first component is a name apbundle-mount reserves'
run info old.apbundle
out_has "info counts the clashes" "name clashes:   3 models"
mkdir xo
run extract -C xo old.apbundle
expect 1 "extract fails for the clashing model"
err_has "extract says why" 'model "a/b": its name cannot share one directory tree'
check "extract wrote the others" sh -c 'cmp xo/a x && cmp xo/.stats x'

# ---------------------------------------------------------------- item 7
# names round trip: list's escapes, and --null
"$APB" create q.apbundle 'a"b\c=x' 'sp ace\=y' 2>err || fail "create q.apbundle"
run list q.apbundle
out_has "list escapes the quote and backslash" 'a\"b\\c'
out_has "list escapes a trailing backslash" 'sp ace\\'
for name in 'a\"b\\c' 'sp ace\\'; do
	run cat q.apbundle "$name"
	expect 0 "cat accepts $name as list printed it"
done
cmp out y || fail "cat of the escaped name gave other bytes"
"$APB" list --null q.apbundle | xargs -0 -n1 "$APB" cat q.apbundle >both 2>err
check "list --null | xargs -0 cat gives every model" test "$(wc -c <both)" -eq 300006
run extract -C xo q.apbundle 'sp ace\\'
expect 0 "extract accepts an escaped name"
check "  ... and writes the raw name" cmp 'xo/sp ace\' y
# columns with non-ASCII names: SIZE ends at the same terminal column
"$APB" create w.apbundle "é=x" "日本語=y" "abc=x" 2>err || fail "create w.apbundle"
run list w.apbundle
python3 - out <<'EOF' && ok "columns align in terminal cells" || fail "columns misalign"
import re, sys, unicodedata
def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)
# the terminal column where the SIZE field ends, header included
ends = {width(re.match(r"\S+\s+\S+", l).group(0))
        for l in open(sys.argv[1], encoding="utf-8").read().splitlines()}
sys.exit(0 if len(ends) == 1 else 1)
EOF
# info and verify agree on blocks
"$APB" create one.apbundle model=x 2>err
run info one.apbundle
out_has "info counts the one block" "blocks:         1"
if grep -q 'none (no checksums)' out; then fail "info says no checksums"; else ok "info does not say 'no checksums'"; fi
run verify one.apbundle
out_has "verify agrees" "1 model, 6 bytes, 1 block verified"
# FIFOs (and other non-regular paths) are refused at once by every command
mkfifo fifo
for cmd in "list fifo" "info fifo" "verify fifo" "cat fifo m" "extract -C xo fifo" \
	"load fifo m"; do
	set -- $cmd
	timeout 10 "$APB" "$@" >out 2>err; rc=$?
	expect 1 "$1 refuses a FIFO without blocking"
	err_has "  ... saying it is not a regular file" "not a regular file"
done
run list .
expect 1 "list refuses a directory"
# output that cannot be written is an error, --help included
for cmd in --help "list --help" "create --help" --version; do
	"$APB" $cmd >/dev/full 2>err; rc=$?
	expect 1 "'$cmd >/dev/full' fails"
	err_has "  ... with a message" "error writing to standard output"
done
# a lone surrogate escape in a name is refused (json-c would make it U+FFFD)
"$APB" create s.apbundle modelx=x 2>err && old_writer s.apbundle '"modelx"' '"\ud800"'
run verify s.apbundle
expect 1 "a \\ud800 name is refused"
err_has "  ... naming the surrogate" "lone UTF-16 surrogate"

# ---------------------------------------------------------------- item 5
# extract killed with SIGKILL leaves its temporary file; the next run removes it
truncate -s 512M huge.bin
"$APB" create h.apbundle huge=huge.bin 2>err || fail "create h.apbundle"
mkdir xk
"$APB" extract -C xk h.apbundle >/dev/null 2>&1 &
PIDS="$PIDS $!"
i=0
while ! ls xk/.apbundle-extract.*.tmp >/dev/null 2>&1 && [ $i -lt 500 ]; do
	sleep 0.01; i=$((i + 1))
done
kill -KILL $! 2>/dev/null
wait $! 2>/dev/null
if ls xk/.apbundle-extract.*.tmp >/dev/null 2>&1 && [ ! -e xk/huge ]; then
	ok "SIGKILL left a temporary file (the reproduction)"
	stale=$(ls xk/.apbundle-extract.*.tmp)
	# a live extract's file (locked) must survive the cleanup
	live=xk/.apbundle-extract.0123456789abcdef.tmp
	flock "$live" sleep 60 &
	PIDS="$PIDS $!"
	i=0; while [ ! -e "$live" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	sleep 0.2
	run extract -C xk h.apbundle
	expect 0 "the next extract succeeds"
	err_has "  ... and says it removed the stale file" "removed stale temporary file $stale "
	check "  ... which is gone" test ! -e "$stale"
	check "  ... while a locked one stays" test -e "$live"
	check "  ... and the model is whole" test "$(wc -c <xk/huge)" -eq 536870912
else
	fail "could not catch extract before it finished (no temporary file)"
fi

echo "1..$N"
[ "$FAILS" -eq 0 ]
