#!/bin/sh
# crash_test.sh - SIGKILL `apbundle create` at random moments.
#
# Each trial starts a create of OUT (half of the trials over an existing,
# older bundle at OUT), kills it with SIGKILL after a random delay between
# 0 and 1.3 times the time a clean create takes to rename OUT into place
# (so most kills land while the bundle is being written), and asserts:
#   - OUT is absent (fresh trials only), the old bundle byte for byte, or
#     the complete new bundle (byte-identical to a clean build, and
#     `apbundle verify` passes): never a partial file;
#   - every other file left in OUT's directory is named OUT.tmp.XXXXXX.
# Then a last create must succeed and remove every leftover temp file.
# APB_CRASH_TRIALS sets the number of trials (default 200).
set -u
trials=${APB_CRASH_TRIALS:-200}
APB=${APBUNDLE:-apbundle}
command -v "$APB" >/dev/null 2>&1 || { echo "crash_test: $APB not found" >&2; exit 99; }

work=$(mktemp -d "${TMPDIR:-/tmp}/apbcrash.XXXXXX") || exit 99
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() { echo "crash_test: FAIL: $*" >&2; exit 1; }

# rand N: a random integer in [0, N).
rand() { echo $(( $(od -An -N4 -tu4 /dev/urandom) % $1 )); }

# now_us: microseconds since the epoch.
now_us() { echo $(( $(date +%s%N) / 1000 )); }

# Sources: 24 files, 1 byte to 512 KiB, some nested (about 6 MiB).
mkdir -p "$work/src/sub/deep" "$work/old" "$work/out"
i=0
while [ $i -lt 24 ]; do
	case $((i % 3)) in 0) d=src ;; 1) d=src/sub ;; *) d=src/sub/deep ;; esac
	head -c $(( (i * 40503 + 1) % 524288 + 1 )) /dev/urandom > "$work/$d/m$i.bin"
	i=$((i + 1))
done
head -c 100000 /dev/urandom > "$work/old/only-old"

out="$work/out/b.apbundle"
"$APB" create -b 4K "$work/ref_new.apbundle" "$work/src" >/dev/null || fail "reference create failed"
"$APB" create -b 4K "$work/ref_old.apbundle" "$work/old" >/dev/null || fail "old create failed"

# Calibrate the delay range: how long until a clean create renames OUT
# into place (polled; the process may take longer to exit).
t0=$(now_us)
"$APB" create -b 4K "$out" "$work/src" >/dev/null &
pid=$!
while [ ! -e "$out" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.001; done
t1=$(now_us)
wait "$pid" || fail "clean create failed"
pid=
span=$(( (t1 - t0) * 13 / 10 + 1000 ))
cmp -s "$out" "$work/ref_new.apbundle" || fail "create is not reproducible"

absent=0 old=0 new=0 done_=0 killed=0 leftovers=0
n=1
while [ $n -le "$trials" ]; do
	existing=$((n % 2))
	rm -f "$out"
	[ $existing -eq 1 ] && cp "$work/ref_old.apbundle" "$out"
	delay=$(rand "$span")
	"$APB" create -b 4K "$out" "$work/src" >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '%d.%06d' $((delay / 1000000)) $((delay % 1000000)))"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	st=$?
	pid=
	if [ $st -eq 137 ]; then killed=$((killed + 1)); else done_=$((done_ + 1)); fi
	[ $st -eq 0 ] || [ $st -eq 137 ] || fail "trial $n: create exited $st"
	if [ ! -e "$out" ]; then
		[ $existing -eq 0 ] || fail "trial $n: the old bundle at OUT vanished (delay ${delay}us)"
		absent=$((absent + 1))
	elif cmp -s "$out" "$work/ref_old.apbundle"; then
		[ $existing -eq 1 ] || fail "trial $n: old bytes appeared at OUT"
		old=$((old + 1))
	elif cmp -s "$out" "$work/ref_new.apbundle"; then
		"$APB" verify "$out" >/dev/null 2>&1 || fail "trial $n: complete bundle fails verify"
		new=$((new + 1))
	else
		cp "$out" "${TMPDIR:-/tmp}/crash_test_partial.apbundle"
		fail "trial $n: PARTIAL file at OUT ($(wc -c < "$out") bytes, kept as ${TMPDIR:-/tmp}/crash_test_partial.apbundle)"
	fi
	[ $st -eq 0 ] && ! [ -e "$out" ] && fail "trial $n: create exited 0 but OUT is absent"
	seen=0
	for f in "$work/out"/* "$work/out"/.[!.]*; do
		[ -e "$f" ] || continue
		case ${f##*/} in
		b.apbundle) ;;
		b.apbundle.tmp.[A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9])
			seen=1 ;;
		*) fail "trial $n: unexpected file ${f##*/} next to OUT" ;;
		esac
	done
	leftovers=$((leftovers + seen))
	n=$((n + 1))
done

before=$(ls "$work/out" | grep -c '\.tmp\.' || true)
"$APB" create -b 4K "$out" "$work/src" >/dev/null 2>"$work/last.err" || fail "final create failed: $(cat "$work/last.err")"
after=$(ls "$work/out" | grep -c '\.tmp\.' || true)
[ "$after" -eq 0 ] || fail "a later create left $after stale temp files (of $before): $(ls "$work/out")"
cmp -s "$out" "$work/ref_new.apbundle" || fail "final create: wrong bytes"
echo "crash_test: $trials trials (OUT in place after ~$(( (t1 - t0) / 1000 )) ms): killed $killed, finished $done_;" \
	"OUT absent $absent, old $old, new $new; $leftovers trials left a temp file;" \
	"$before stale at the end, all removed by the next create"
exit 0
