#!/bin/bash
# mount_trace_test.sh - apbundle-mount -o trace=FILE: the apbundle(1)
# example run as written (daemon, relative trace path), the trace holds
# exactly the lookups .stats counted, and replaying it with the mount's
# policy gives the mount's hit ratio (prefetch off, so only the recorded
# lookups fill the cache); a trace path that cannot be created is refused
# before mounting.
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

# Live hit ratio against the replay, LRU, direct_io so every read reaches
# the cache: equal.
start_fg "$WORK/m2" "$WORK/d2.log" -o max_memory=2M,eviction=lru,prefetch=0,direct_io,trace="$WORK/lru.trace" b.apbundle
read_models "$WORK/m2" iflag=direct
cp "$WORK/m2/.stats.json" lru-stats.json
stop_fg "$WORK/m2"
apbundle simulate --max-memory 2M --policies lru --json lru.trace > lru.json || fail "simulate lru"
python3 - <<'PY' || fail "live and simulated LRU hit ratios differ"
import json
s = json.load(open("lru-stats.json")); o = json.load(open("lru.json"))
live = s["hits"] / (s["hits"] + s["misses"])
assert o["accesses"] == s["hits"] + s["misses"], (o, s)
assert abs(live - o["policies"]["lru"]) < 1e-6, (live, o)   # JSON has 6 decimals
print("# live %.4f simulated %.4f" % (live, o["policies"]["lru"]))
PY
ok "replaying the trace with lru gives the mount's hit ratio exactly"

apbundle-mount -o trace=nodir/x.trace b.apbundle mnt 2> err; st=$?
[ $st -ne 0 ] && grep -q 'trace=nodir/x.trace' err && ! is_mounted mnt \
	|| fail "bad trace path: status $st, $(cat err)"
ok "a trace path that cannot be created is refused before mounting"
echo "1..$TESTS_RUN"
