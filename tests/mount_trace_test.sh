#!/bin/bash
# mount_trace_test.sh - apbundle-mount -o trace=FILE: the apbundle(1)
# example run as written (daemon, relative trace path), the trace holds
# exactly the lookups .stats counted, and replaying it with the mount's
# policy gives the mount's hit ratio exactly, for every policy, with
# prefetch off and (default policy) on with three readers at once; after
# a reload the trace keeps to the objects it started with and replays; a
# trace path that cannot be created is refused before mounting.
. "$(dirname "$0")/mount_lib.sh"

APB=$top_builddir/apbundle
mkdir -p "$WORK/bin" "$WORK/models"
ln -s "$APB" "$WORK/bin/apbundle"
ln -s "$MOUNT_BIN" "$WORK/bin/apbundle-mount"
PATH=$WORK/bin:$PATH
cd "$WORK" || exit 1
python3 - <<'PY'
import random
r = random.Random(5)
for i in range(6):
    with open("models/m%d.bin" % i, "wb") as f:
        f.write(r.randbytes(300000 + i * 170001))
PY
apbundle create b.apbundle models > /dev/null || fail "create"

# reads: a Zipf-like order of whole models, 1 MiB reads
read_models() {
	for m in m0 m1 m0 m2 m0 m3 m1 m0 m4 m5 m0 m1 m2 m0; do
		dd if="$1/$m.bin" of=/dev/null bs=1M $2 2>/dev/null || fail "read $m"
	done
}

# apbundle(1) EXAMPLES, as written
mkdir mnt
MOUNTS="$MOUNTS $WORK/mnt"
apbundle-mount -o trace=lookups.trace,prefetch=0 b.apbundle mnt || fail "mount with trace="
wait_mounted mnt || fail "mount not ready"
read_models mnt ""
cp mnt/.stats.json stats.json
fusermount3 -u mnt
for i in $(seq 100); do is_mounted mnt || break; sleep 0.05; done
apbundle simulate --max-memory 8M lookups.trace > table || fail "simulate --max-memory 8M"
apbundle simulate --pages 128 --policies lru,tinylfu --json lookups.trace > out.json \
	|| fail "simulate --json"
python3 - <<'PY' || fail "trace lookups differ from .stats"
import json
s = json.load(open("stats.json"))
lines = [l for l in open("lookups.trace") if not l.startswith("#")]
assert len(lines) == s["hits"] + s["misses"], (len(lines), s["hits"], s["misses"])
assert s["misses"] > 0, s   # re-reads may be served by the kernel's page cache
PY
ok "the trace holds exactly the lookups .stats counted (hits + misses)"
grep -q '^# page_size 65536$' lookups.trace && grep -q '^# model m5.bin 1150005$' lookups.trace \
	|| fail "trace header"
ok "the trace starts with page_size and the models' sizes"

# Live hit ratio against the replay: equal (the JSON has 6 decimals), for
# every policy, direct_io so every read reaches the cache.  $1 names the
# policy ("" the default: the replay's "default"), $2 more mount options,
# $3 readers at once (each reads the models in its own order).
live_vs_replay() {
	local p=$1 opts=$2 readers=${3:-1} f=${1:-default} i pids=
	local mnt=$WORK/m-$f
	start_fg "$mnt" "$WORK/d-$f.log" -o "max_memory=2M,${p:+eviction=$p,}direct_io,trace=$WORK/$f.trace$opts" b.apbundle
	for i in $(seq "$readers"); do
		read_models "$mnt" iflag=direct &
		pids="$pids $!"
	done
	for i in $pids; do wait "$i" || fail "$p: a reader failed"; done
	cp "$mnt/.stats.json" "$f-stats.json"
	stop_fg "$mnt"
	apbundle simulate --max-memory 2M --json "$f.trace" > "$f.json" || fail "simulate $f"
	python3 - "$f" "$p" <<'PY' || fail "live and simulated $f hit ratios differ"
import json, sys
f, p = sys.argv[1], sys.argv[2]
s = json.load(open(f + "-stats.json")); o = json.load(open(f + ".json"))
name = p or o["default"]
live = s["hits"] / (s["hits"] + s["misses"])
assert s["eviction"] == name, (s["eviction"], name)
assert o["accesses"] == s["hits"] + s["misses"], (o, s)
assert abs(live - o["policies"][name]) < 1e-6, (name, live, o)
print("# %s: live %.4f simulated %.4f" % (name, live, o["policies"][name]))
PY
}
for p in lru lfu sieve s3fifo 2q tinylfu; do
	live_vs_replay $p ",prefetch=0"
done
ok "replaying the trace gives the mount's hit ratio exactly, every policy (prefetch=0)"
live_vs_replay "" "" 3
ok "and with the default policy, prefetch on and three readers at once"

# A reload while recording: the trace keeps to the cache objects it
# started with (a model the new bundle shares with the old one stays one
# object; a new model is not in the trace) and still replays.
mkdir models2 && cp models/m0.bin models2/ && head -c 200000 /dev/urandom > models2/x.bin
apbundle create b2.apbundle models2 > /dev/null || fail "create b2"
cp b.apbundle r.apbundle
start_fg "$WORK/mr" "$WORK/d-r.log" -o "max_memory=2M,direct_io,control,trace=$WORK/r.trace" r.apbundle
dd if="$WORK/mr/m1.bin" of=/dev/null bs=1M iflag=direct 2>/dev/null || fail "read m1"
cp "$WORK/mr/.stats.json" r-before.json
cp b2.apbundle r.new && mv r.new r.apbundle
echo reload > "$WORK/mr/.control" || fail "reload"
for f in x.bin m0.bin; do
	dd if="$WORK/mr/$f" of=/dev/null bs=1M iflag=direct 2>/dev/null || fail "read $f after the reload"
done
cp "$WORK/mr/.stats.json" r-after.json
stop_fg "$WORK/mr"
apbundle simulate --max-memory 2M --json r.trace > r.json || fail "simulate after a reload"
python3 - <<'PY' || fail "the trace of a reloaded mount"
import json
b = json.load(open("r-before.json")); a = json.load(open("r-after.json"))
o = json.load(open("r.json"))
look = lambda s, n: sum(m["hits"] + m["misses"] for m in s["models"] if m["name"] == n)
# m0.bin is the same model in both bundles (one cache object, in the
# trace); x.bin is new (not in it)
assert look(a, "x.bin") > 0 and look(a, "m0.bin") > 0, a
assert o["accesses"] == b["hits"] + b["misses"] + look(a, "m0.bin"), (b, a, o)
PY
ok "a reload while recording: the trace keeps to the objects it started with and replays"

apbundle-mount -o trace=nodir/x.trace b.apbundle mnt 2> err; st=$?
[ $st -ne 0 ] && grep -q 'trace=nodir/x.trace' err && ! is_mounted mnt \
	|| fail "bad trace path: status $st, $(cat err)"
ok "a trace path that cannot be created is refused before mounting"
echo "1..$TESTS_RUN"
