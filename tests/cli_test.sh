#!/bin/sh
# cli_test.sh - end-to-end tests of the apbundle command: round trips,
# exit codes and messages, hostile names, extract containment, crash
# safety of create, and the paging statistics of load.
#
# Runs under automake's default test driver: exit 0 pass, 1 fail, 77 skip.
# Finds the binary as $top_builddir/apbundle (set by `make check`) or on
# PATH.  Everything happens below one mktemp -d directory that the trap
# removes, whatever happens.
set -u

if [ -n "${top_builddir:-}" ] && [ -x "$top_builddir/apbundle" ]; then
	APB=$top_builddir/apbundle
elif command -v apbundle >/dev/null 2>&1; then
	APB=$(command -v apbundle)
else
	echo "apbundle binary not found (set top_builddir or PATH)"
	exit 77
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 missing"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/apb-cli.XXXXXX") || exit 1
BGPID=
cleanup() {
	[ -n "$BGPID" ] && kill -KILL "$BGPID" 2>/dev/null
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

# run ARGS...: runs apbundle, stdout to ./out, stderr to ./err, status in $rc.
run() { "$APB" "$@" >out 2>err; rc=$?; }
# expect STATUS DESC: checks $rc of the last run.
expect() {
	if [ "$rc" -eq "$1" ]; then ok "$2"; else fail "$2 (exit $rc, want $1)"; fi
}
# one_line_error DESC: stderr of the last run is exactly one "apbundle: " line.
one_line_error() {
	if [ "$(wc -l <err)" -eq 1 ] && grep -q '^apbundle: ' err; then ok "$1"
	else fail "$1 (stderr has $(wc -l <err) lines)"; fi
}
err_has() {
	if grep -qF -- "$2" err; then ok "$1"; else fail "$1 (no '$2' in stderr)"; fi
}
no_temp() { ! ls "$1".tmp.* >/dev/null 2>&1; }
json_field() { # BUNDLE NAME FIELD: prints a field of a model from list --json
	"$APB" list --json "$1" | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m["name"] == sys.argv[1]:
        print(m[sys.argv[2]])' "$2" "$3"
}
flip_byte() { # FILE OFFSET: xors one byte
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0x5a]))' "$1" "$2"
}

# ---------------------------------------------------------------- data
mkdir -p src/sub/deep src/sp
head -c 200000 /dev/urandom >src/a.bin
: >src/empty
printf x >src/sub/one
head -c 70001 /dev/urandom >src/sub/deep/odd
head -c 131072 /dev/urandom >"src/sp/with space.bin"
head -c 4097 /dev/urandom >"src/$(printf 'caf\303\251')"
NFILES=6
TOTAL=$(cat src/a.bin src/empty src/sub/one src/sub/deep/odd "src/sp/with space.bin" src/caf* | wc -c)

# ---------------------------------------------------------------- round trip
run create b.apbundle src
expect 0 "create OUT DIR"
check "create leaves no temp file" no_temp b.apbundle
run list b.apbundle
expect 0 "list"
check "list prints a header and one line per model" \
	test "$(wc -l <out)" -eq $((NFILES + 1))
check "list sorts names bytewise" \
	test "$(awk 'NR>1 {print $1}' out | head -3 | tr '\n' ' ')" = "a.bin caf$(printf '\303\251') empty "
check "list shows size of sub/deep/odd" \
	test "$(awk '$1 == "sub/deep/odd" {print $2}' out)" = 70001
run list --json b.apbundle
expect 0 "list --json"
check "list --json is valid JSON with every model" \
	test "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' <out)" -eq $NFILES
check "list --json names match the files" sh -c "
	python3 -c 'import json,sys; print(\"\\n\".join(sorted(m[\"name\"] for m in json.load(sys.stdin))))' <out >names.json
	(cd src && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >names.find
	cmp -s names.json names.find"
run info b.apbundle
expect 0 "info"
check "info names the layout" grep -q '^layout: *apbundle v1' out
check "info counts models" grep -q "^models: *$NFILES\$" out
check "info sums model bytes" grep -q "^model bytes: *$TOTAL " out
check "info shows alignment and block size" \
	sh -c "grep -q '^alignment: *4096' out && grep -q '^block size: *65536' out"
check "info file size matches the file" \
	grep -q "^file size: *$(wc -c <b.apbundle) " out
run verify b.apbundle
expect 0 "verify a good bundle"
check "verify prints an OK summary" grep -q "OK: $NFILES models, $TOTAL bytes" out
mkdir x
run extract b.apbundle -C x
expect 0 "extract -C DIR (option after the operand)"
check "extract reproduces the tree byte for byte" diff -r src x
check "extract leaves no temp files" \
	test -z "$(find x -name '.apbundle-extract.*')"
allcat=0
for f in a.bin empty sub/one sub/deep/odd "sp/with space.bin"; do
	"$APB" cat b.apbundle "$f" | cmp -s - "src/$f" || allcat=1
done
check "cat gives every model byte for byte" test $allcat -eq 0
mkdir x2
run extract -C x2 b.apbundle sub/ a.bin
expect 0 "extract selected names and a dir/ prefix"
check "extract wrote only the selection" \
	test "$(cd x2 && find . -type f | LC_ALL=C sort | tr '\n' ' ')" = "./a.bin ./sub/deep/odd ./sub/one "

# ---------------------------------------------------------------- options
run create --align 512 n.apbundle first=src/a.bin --block-size 4K \
	second=src/sub/deep/odd --description 'two models' --timestamp
expect 0 "create NAME=PATH with options before and after operands"
run info n.apbundle
check "info shows --align, --block-size and --description" sh -c \
	"grep -q '^alignment: *512' out && grep -q '^block size: *4096' out && grep -q 'two models' out"
check "--timestamp records created at" grep -q '^created at:' out
check "NAME=PATH keeps operand order" \
	test "$("$APB" list n.apbundle | awk 'NR>1 {print $1}' | tr '\n' ' ')" = "first second "
SOURCE_DATE_EPOCH=86400 "$APB" create -t e.apbundle one=src/sub/one 2>err
run info e.apbundle
check "--timestamp honours SOURCE_DATE_EPOCH" grep -q '1970-01-02T00:00:00Z' out
run verify e.apbundle
check "verify counts one model and one block in the singular" \
	grep -q 'OK: 1 model, [0-9]* bytes, 1 block verified' out
"$APB" create r1.apbundle src 2>err && "$APB" create r2.apbundle src 2>err
check "create is reproducible" cmp -s r1.apbundle r2.apbundle
printf '{"version": "1.2", "architecture": "transformer", "hyperparameters": {"layers": 6, "act": "gelu"}, "custom": {"owner": "ml"}}\n' >md.json
run create --metadata enc=md.json m.apbundle enc=src/a.bin
expect 0 "create --metadata"
check "metadata survives the round trip" sh -c "
	'$APB' list --json m.apbundle | python3 -c '
import json, sys
m = json.load(sys.stdin)[0][\"metadata\"]
assert m[\"version\"] == \"1.2\" and m[\"architecture\"] == \"transformer\", m
assert m[\"hyperparameters\"] == {\"layers\": \"6\", \"act\": \"gelu\"}, m
assert m[\"custom\"] == {\"owner\": \"ml\"}, m'"
printf '{"versoin": "1"}' >bad.json
run create --metadata enc=bad.json mb.apbundle enc=src/a.bin
check "a metadata file with an unknown key is refused" test $rc -ne 0
err_has "the refusal names the key" versoin
check "nothing written after a refused metadata file" test ! -e mb.apbundle
run create --metadata nosuch=md.json mb.apbundle enc=src/a.bin
expect 2 "--metadata for a model that is not added"
run create src one=src/a.bin
expect 2 "OUT that is a directory is a usage error"

# ---------------------------------------------------------------- usage errors
for args in "" "frobnicate" "list" "list --bogus b.apbundle" "list b.apbundle extra" \
	"create" "create out.apbundle" "create --align 12Q out.apbundle a=src/a.bin" \
	"create --align 3 out.apbundle a=src/a.bin" "create --block-size 256 out.apbundle a=src/a.bin" \
	"extract b.apbundle -C" "cat b.apbundle" "verify" "info" \
	"load --max-memory lots b.apbundle a.bin" "load --eviction fifo b.apbundle a.bin" \
	"load --page-size 1000 b.apbundle a.bin" "load b.apbundle"; do
	# shellcheck disable=SC2086
	run $args
	expect 2 "usage error: apbundle $args"
	one_line_error "usage error has a one-line message: apbundle $args"
done
check "no bundle created by usage errors" test ! -e out.apbundle
for c in create list info verify extract cat load; do
	run "$c" --help
	if [ $rc -eq 0 ] && grep -q "^Usage: apbundle $c" out && [ ! -s err ]; then
		ok "$c --help"
	else
		fail "$c --help"
	fi
done
run --help
expect 0 "--help"
run --version
expect 0 "--version"
check "--version prints the version" grep -q '^apbundle [0-9]' out

# ---------------------------------------------------------------- bad bundles
run verify missing.apbundle
expect 1 "a missing bundle"
one_line_error "a missing bundle gives one line"
head -c 5000 /dev/urandom >garbage.apbundle
for c in list info verify "extract -C x"; do
	# shellcheck disable=SC2086
	run $c garbage.apbundle
	expect 1 "$c on a garbage bundle"
done
run cat garbage.apbundle a.bin
expect 1 "cat on a garbage bundle"
run info garbage.apbundle
one_line_error "a garbage bundle gives one line"
: >zero.apbundle
run list zero.apbundle
expect 1 "an empty file"
head -c 3000 b.apbundle >trunc.apbundle
run verify trunc.apbundle
expect 1 "a truncated bundle"
run cat b.apbundle no/such/model
expect 1 "cat of an unknown model"
err_has "the message names the unknown model" no/such/model

# ---------------------------------------------------------------- progress line
truncate -s 80M zeros.bin
"$APB" create z.apbundle z=zeros.bin 2>err
run verify z.apbundle
check "no progress line when stderr is not a terminal" test ! -s err
if command -v script >/dev/null 2>&1; then
	script -qec "'$APB' verify z.apbundle" /dev/null >tty.out 2>&1
	check "a progress line on a terminal for big work" grep -q '100% (80.0 MiB of 80.0 MiB)' tty.out
	script -qec "'$APB' verify b.apbundle" /dev/null >tty.out 2>&1
	check "no progress line for small work" sh -c "! grep -q '%' tty.out"
fi
rm -f zeros.bin z.apbundle

# ---------------------------------------------------------------- legacy layout
# aprender's own layout: u64 manifest length and a binary manifest.
python3 -c '
import struct, sys
models = [(b"enc", open("src/a.bin", "rb").read()), (b"dir/tok", b"tokens")]
man = struct.pack("<IQI", 1, 1700000000, 4) + b"desc" + struct.pack("<I", len(models))
data, off = b"", 0
for name, blob in models:
    man += struct.pack("<I", len(name)) + name + struct.pack("<QQ", len(blob), off)
    data += blob
    off += len(blob)
open("legacy.apbundle", "wb").write(b"APBUNDLE" + struct.pack("<IQ", 1, len(man)) + man + data)'
run info legacy.apbundle
expect 0 "info reads the aprender legacy layout"
check "info names the legacy layout" grep -q '^layout: *aprender legacy' out
check "info shows the legacy created_at" grep -q '2023-11-14T22:13:20Z' out
run list legacy.apbundle
check "list marks legacy models as unchecksummed" \
	test "$(awk '$1 == "dir/tok" {print $4}' out)" = "-"
check "cat of a legacy model" sh -c "'$APB' cat legacy.apbundle enc | cmp -s - src/a.bin"
run verify legacy.apbundle
expect 0 "verify of a legacy bundle checks its structure"
check "verify says legacy models have no checksums" grep -q 'no checksums' out

# ---------------------------------------------------------------- corruption
cp b.apbundle c.apbundle
off=$(json_field c.apbundle a.bin offset)
flip_byte c.apbundle $((off + 150000))
run verify c.apbundle
expect 1 "verify finds one flipped data byte"
err_has "verify names the model" 'model "a.bin"'
err_has "verify names the block and its bytes" 'block 2 (bytes 131072-196607): checksum mismatch'
check "verify names only the bad model" test "$(grep -c 'model "' err)" -eq 1
"$APB" cat c.apbundle a.bin >cat.out 2>err
rc=$?
expect 1 "cat of a corrupt model fails"
check "cat wrote only verified bytes (the good blocks before the bad one)" sh -c \
	"test \$(wc -c <cat.out) -eq 131072 && head -c 131072 src/a.bin | cmp -s - cat.out"
mkdir xc
echo old >xc/a.bin
run extract c.apbundle -C xc
expect 1 "extract with a corrupt model fails"
check "the corrupt model is not written, the old file stays" grep -qx old xc/a.bin
check "the good models are extracted" cmp -s xc/sub/deep/odd src/sub/deep/odd
check "no temp file is left by the failed model" \
	test -z "$(find xc -name '.apbundle-extract.*')"

# ---------------------------------------------------------------- hostile names
run create h.apbundle x=src/a.bin x=src/empty
expect 2 "duplicate names are refused"
err_has "the refusal names the duplicate" 'duplicate name "x"'
for bad in "../evil" "/abs" "a//b" "a/./b" "" "$(printf 'bell\007')"; do
	run create h.apbundle "$bad=src/a.bin" ok=src/empty
	expect 2 "hostile name '$bad' is refused at create"
done
err_has "control characters are escaped in messages" 'bell\x07'
check "no bundle and no temp file after refused names" sh -c "test ! -e h.apbundle && ! ls h.apbundle.tmp.* 2>/dev/null"
mkdir -p hd
printf y >"hd/$(printf 'nl\nname')"
run create hd.apbundle hd
expect 1 "a file with a hostile name inside DIR is refused"
err_has "the message names it, escaped" 'nl\x0aname'
# A bundle whose names were patched to leave the target directory.
"$APB" create p.apbundle xx/evil=src/sub/one zetc/passwd=src/sub/one 2>err
python3 -c '
d = open("p.apbundle", "rb").read()
d = d.replace(b"\"xx/evil\"", b"\"../evil\"").replace(b"\"zetc/passwd\"", b"\"/etc/passwd\"")
open("hostile.apbundle", "wb").write(d)'
mkdir -p jail/in
run extract hostile.apbundle -C jail/in
expect 1 "extract refuses a bundle with ../ and absolute names"
check "nothing written outside -C DIR" sh -c "test ! -e jail/evil && test -z \"\$(ls -A jail/in)\""
# Symlinks already present in DIR must not lead out of it.
mkdir -p jail2/in outside
echo keep >outside/target
ln -s ../../outside jail2/in/sub
ln -s ../../outside/target jail2/in/top
"$APB" create s.apbundle sub/file=src/sub/one top=src/sub/one ok/f=src/sub/one 2>err
run extract s.apbundle -C jail2/in
expect 1 "extract refuses to follow a symlinked directory in DIR"
err_has "the refusal names the model" 'model "sub/file"'
check "nothing written through the symlinks" sh -c \
	"test ! -e outside/file && grep -qx keep outside/target && test \$(ls outside | wc -l) -eq 1"
check "a symlink at a model's own path is replaced, not followed" sh -c \
	"test ! -L jail2/in/top && cmp -s jail2/in/top src/sub/one"
check "the other models are extracted" cmp -s jail2/in/ok/f src/sub/one

# ---------------------------------------------------------------- DIR special files
mkdir -p sd/real
printf data >sd/real/f
ln -s real/f sd/link
ln -s real sd/dirlink
ln -s nowhere sd/dangling
mkfifo sd/fifo
run create sd.apbundle sd
expect 0 "create DIR with symlinks and a FIFO"
check "a symlink to a file is followed" sh -c "'$APB' cat sd.apbundle link | cmp -s - sd/real/f"
check "symlinked dirs, dangling links and FIFOs are left out" \
	test "$("$APB" list sd.apbundle | awk 'NR>1 {print $1}' | tr '\n' ' ')" = "link real/f "
check "each skipped entry is named in a warning" sh -c \
	"grep -q 'skipping sd/dirlink' err && grep -q 'skipping sd/dangling' err && grep -q 'skipping sd/fifo' err"
ln -s src srclink
run create viasym.apbundle srclink/
expect 0 "create DIR where DIR is a symlink to a directory"
check "a symlinked DIR gives the same bundle" cmp -s viasym.apbundle b.apbundle
run create nodir.apbundle no-such-dir
expect 1 "a DIR that does not exist"
run create nodir.apbundle src/a.bin
expect 2 "a plain file operand without NAME= is a usage error"
mkdir -p self && cp src/a.bin self/
"$APB" create self/out.apbundle self 2>err
run create self/out.apbundle self
expect 0 "create DIR/OUT from DIR again"
check "the output bundle itself is skipped" \
	test "$("$APB" list self/out.apbundle | awk 'NR>1 {print $1}')" = "a.bin"

# ---------------------------------------------------------------- crash safety
# A source that fails half-way: sysfs files claim 4096 bytes but are shorter.
short=
for f in /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/profiling \
	/sys/kernel/mm/transparent_hugepage/defrag /sys/power/state; do
	if [ -r "$f" ] && [ "$(stat -c %s "$f" 2>/dev/null)" = 4096 ] &&
	   [ "$(wc -c <"$f" 2>/dev/null)" -lt 4096 ] 2>/dev/null; then short=$f; break; fi
done
if [ -n "$short" ]; then
	run create half.apbundle big=src/a.bin short="$short"
	expect 1 "create with a source that shrinks half-way fails"
	check "nothing at OUT and no temp file" sh -c "test ! -e half.apbundle && ! ls half.apbundle.tmp.* 2>/dev/null"
	cp n.apbundle half.apbundle
	run create half.apbundle big=src/a.bin short="$short"
	check "a failed create leaves an existing OUT untouched" cmp -s half.apbundle n.apbundle
else
	echo "# no short sysfs file found: half-way failure test skipped"
fi
# procfs files claim 0 bytes but are not empty: the builder fails on them
# after the first model is already in the temp file.
run create half2.apbundle big=src/a.bin proc=/proc/self/status
expect 1 "create with a source that grows half-way fails"
check "nothing at OUT and no temp file after it" sh -c "test ! -e half2.apbundle && ! ls half2.apbundle.tmp.* 2>/dev/null"
run create gone.apbundle a=src/a.bin b=src/does-not-exist
expect 1 "a missing source is an error"
err_has "the message names the missing source" does-not-exist
check "nothing at OUT after a missing source" test ! -e gone.apbundle

# Signals during the build: a big sparse source keeps the build busy.
truncate -s 16G sparse.bin 2>/dev/null || dd if=/dev/zero of=sparse.bin bs=1 count=0 seek=16G 2>/dev/null
# start_big OUT: starts a long create of OUT in the background ($BGPID)
# and waits until its temp file exists.
start_big() {
	"$APB" create "$1" big=sparse.bin small=src/a.bin 2>err &
	BGPID=$!
	i=0
	while [ $i -lt 500 ] && ! ls "$1".tmp.* >/dev/null 2>&1; do sleep 0.01; i=$((i + 1)); done
}
# stop_big SIG: sends SIG to the background create, sets rc to its status.
stop_big() {
	kill -"$1" $BGPID
	wait $BGPID 2>/dev/null
	rc=$?
	BGPID=
}
for sig in TERM:143 INT:130 HUP:129; do
	start_big sig.apbundle
	stop_big "${sig%:*}"
	check "SIG${sig%:*} during create kills it with it (exit $rc)" test $rc -eq "${sig#*:}"
	check "SIG${sig%:*} leaves nothing at OUT and no temp file" \
		sh -c "test ! -e sig.apbundle && ! ls sig.apbundle.tmp.* 2>/dev/null"
done
cp n.apbundle sig.apbundle
start_big sig.apbundle
stop_big INT
check "SIGINT over an existing OUT leaves it untouched, no temp file" \
	sh -c "test $rc -eq 130 && cmp -s sig.apbundle n.apbundle && ! ls sig.apbundle.tmp.* 2>/dev/null"
# A second create of the same OUT must not take a running create's
# (locked) temp file for a stale one.
start_big sig.apbundle
live=$(ls sig.apbundle.tmp.* 2>/dev/null)
run create sig.apbundle small=src/a.bin
expect 0 "a create of OUT while another create of OUT runs succeeds"
check "it keeps the running create's temp file" sh -c "test -n '$live' && test -e '$live' && ! grep -q 'removed stale' err"
stop_big TERM
check "the running create still cancels cleanly" sh -c "test $rc -eq 143 && test ! -e '$live'"
"$APB" create sig.apbundle big=sparse.bin small=src/a.bin 2>err &
BGPID=$!
i=0
while [ $i -lt 500 ] && ! ls sig.apbundle.tmp.* >/dev/null 2>&1; do sleep 0.01; i=$((i + 1)); done
kill -KILL $BGPID
wait $BGPID 2>/dev/null
BGPID=
check "SIGKILL leaves a recognizable temp file" sh -c "ls sig.apbundle.tmp.* >/dev/null 2>&1"
run create sig.apbundle small=src/a.bin
expect 0 "the next create succeeds"
err_has "it reports removing the stale temp file" "removed stale temporary file"
check "it removed the stale temp file" no_temp sig.apbundle
# A temp file whose flock another live process holds is not stale.
: >busy.apbundle.tmp.abcdef
# One process holds the lock: the subshell locks its fd 8, then becomes sleep.
(exec 8<busy.apbundle.tmp.abcdef && flock 8 && exec sleep 30) &
BGPID=$!
i=0
while [ $i -lt 500 ] && flock -n busy.apbundle.tmp.abcdef true; do sleep 0.01; i=$((i + 1)); done
run create busy.apbundle small=src/a.bin
expect 0 "create succeeds next to a locked temp file"
check "a temp file locked by a live process is kept" test -e busy.apbundle.tmp.abcdef
kill $BGPID
wait $BGPID 2>/dev/null
BGPID=
# Merely holding it open (without the lock) does not keep it: only a lock
# tells a live create (which locks its file) from a dead one.
exec 7<busy.apbundle.tmp.abcdef
run create busy.apbundle small=src/a.bin
exec 7<&-
check "an open but unlocked temp file is removed" test ! -e busy.apbundle.tmp.abcdef
: >busy.apbundle.tmp.abcdef
: >busy.apbundle.tmp.abcdefg
: >busy.apbundle.tmp.ab-def
: >busy.apbundle.tmp.abcdef.x
: >busy.apbundleXtmp.abcdef
run create busy.apbundle small=src/a.bin
check "a temp file of a dead run is removed" test ! -e busy.apbundle.tmp.abcdef
check "only files of the exact temp pattern are touched" sh -c \
	"test -e busy.apbundle.tmp.abcdefg && test -e busy.apbundle.tmp.ab-def && test -e busy.apbundle.tmp.abcdef.x && test -e busy.apbundleXtmp.abcdef"
# An interrupted extract leaves neither the model nor its temp file.
truncate -s 2G sparse2.bin
"$APB" create sp.apbundle big=sparse2.bin 2>err
rm -f sparse.bin sparse2.bin
mkdir -p spx
"$APB" extract sp.apbundle -C spx 2>err &
BGPID=$!
i=0
while [ $i -lt 500 ] && [ -z "$(ls -A spx)" ]; do sleep 0.01; i=$((i + 1)); done
kill -INT $BGPID
wait $BGPID 2>/dev/null
rc=$?
BGPID=
check "SIGINT during extract kills it (exit $rc)" test $rc -gt 128
check "SIGINT during extract leaves no file behind" test -z "$(ls -A spx)"
rm -f sp.apbundle

# ---------------------------------------------------------------- load
head -c 1048576 /dev/urandom >m1
head -c 1048576 /dev/urandom >m2
"$APB" create l.apbundle m1=m1 m2=m2 2>err
stat_of() { awk -v k="$1:" '$1 == k { print $2; exit }' out; }
run load --no-prefetch --max-memory 8M --page-size 64K l.apbundle m1 m1
expect 0 "load the same model twice"
check "first pass: 16 misses (one per 64K page)" test "$(stat_of misses)" = 16
check "second pass: 16 hits" test "$(stat_of hits)" = 16
check "no evictions with enough memory" test "$(stat_of evictions)" = 0
check "hit rate 50%" grep -q '^hit rate: *50.0%' out
# the model (16 blocks of 64K), its 128-byte block table and the table's 8-byte index
check "memory used is the model and its block table" grep -q '^memory used: *1048712 ' out
check "bytes loaded is the model and its block table" grep -q '^bytes loaded: *1048712 ' out
check "prefetches are reported" grep -q '^prefetches: *0 ' out
run load --no-prefetch --max-memory 256K --page-size 64K --eviction lfu l.apbundle m1 m2 m1
expect 0 "load under a budget smaller than a model"
check "evictions happen under a small budget" test "$(stat_of evictions)" -gt 0
check "memory used stays within the budget" sh -c \
	"test \$(awk '/^memory used:/ {print \$3}' out) -le 262144"
check "the eviction policy is reported" grep -q '^eviction: *lfu' out
head -c 8388608 /dev/urandom >m8
"$APB" create l8.apbundle big=m8 m1=m1 2>err
run load l8.apbundle big m1
expect 0 "load with prefetch on"
check "every page lookup is a hit or a miss (128 + 16 pages)" \
	test $(($(stat_of hits) + $(stat_of misses))) -eq 144
# 8 MiB + 1 MiB of models, 1024 + 128 bytes of tables, 8 + 8 of indexes
check "with enough memory each page is read from the file once" \
	grep -q '^bytes loaded: *9438352 ' out
check "prefetched pages used <= pages prefetched" sh -c \
	"awk '/^prefetches:/ { gsub(/[()]/, \"\"); exit !(\$3 <= \$2) }' out"
run load l.apbundle m1 nosuch
expect 1 "load of an unknown model"
err_has "load names the unknown model" nosuch
check "load still prints the statistics" grep -q '^hits:' out
cp l.apbundle lc.apbundle
flip_byte lc.apbundle $(($(json_field lc.apbundle m2 offset) + 5000))
run load --no-prefetch lc.apbundle m1 m2
expect 1 "load of a corrupt model fails"
err_has "the failure names the model" '"m2"'

# ---------------------------------------------------------------- compression
header_version() { od -An -tu4 -j8 -N4 "$1" | tr -d ' '; }
mkdir -p zsrc
python3 -c 'import struct, random; r = random.Random(5)
open("zsrc/w.f32", "wb").write(b"".join(struct.pack("<f", r.gauss(0, 0.02)) for _ in range(60000)))'
cp src/sub/one zsrc/one
: >zsrc/empty
run create --compress zstd z.apbundle zsrc
expect 0 "create --compress zstd"
check "a compressed bundle is format version 2" test "$(header_version z.apbundle)" = 2
check "without --compress the bundle stays version 1" test "$(header_version b.apbundle)" = 1
check "list --json names the codec" test "$(json_field z.apbundle w.f32 codec)" = zstd
check "--filter auto picks byte planes for float32" \
	test "$(json_field z.apbundle w.f32 filter)" = bytegroup4
check "stored_size is below size for float weights" \
	test "$(json_field z.apbundle w.f32 stored_size)" -lt 240000
check "an empty model stays uncompressed" test "$(json_field z.apbundle empty codec)" = none
run info z.apbundle
expect 0 "info of a compressed bundle"
check "info shows the compression and the ratio" sh -c \
	"grep -q '^compression: *zstd, 2 of 3 models' out && grep -q '^stored bytes:.*ratio 0\\.' out"
run create --compress zstd z2.apbundle zsrc
check "compressed output is reproducible" cmp -s z.apbundle z2.apbundle
run create --compress zstd:9 --filter none z3.apbundle zsrc
expect 0 "create --compress zstd:9 --filter none"
check "--filter none is kept" test "$(json_field z3.apbundle w.f32 filter)" = none
for args in "--compress zstd:0" "--compress zstd:20" "--compress lz4" "--compress zstd:3x" \
	"--filter bytegroup4" "--compress zstd --filter bytegroup3"; do
	# shellcheck disable=SC2086
	run create $args bad.apbundle zsrc
	expect 2 "usage error: create $args"
	check "no bundle after: create $args" test ! -e bad.apbundle
done

echo "1..$N"
if [ $FAILS -ne 0 ]; then
	echo "# $FAILS of $N checks failed"
	exit 1
fi
exit 0
