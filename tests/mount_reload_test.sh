#!/bin/sh
# mount_reload_test.sh - live reload of a replaced bundle (issue 16 item 3).
#  1. a rename onto the bundle's name (-o watch), then "reload" in
#     .control: a descriptor opened before reads the old bytes,
#     byte-exact, to the end; a new open reads the new bytes; a new model
#     appears, a removed one is gone; .stats.json shows generation 2, and
#     the old generation closes when its last descriptor does;
#  2. a model whose bytes did not change keeps its cached pages: reading it
#     again after the reload is all hits, no miss;
#  3. a bad new bundle (truncated, then one with a flipped manifest byte)
#     changes nothing: the write to .control fails, the log says why, the
#     old bytes are still served;
#  4. -o watch picks up "mv new.apbundle models.apbundle"; SIGHUP reloads;
#  5. 4 readers holding descriptors across 20 reloads between two versions
#     each read exactly the version they opened, a new open after each
#     reload reads the new one; memory_used <= max_memory at every step.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

SRC=$WORK/src
mkdir -p "$SRC"
rand_file "$SRC/a1" 3000000
rand_file "$SRC/a2" 2500000
rand_file "$SRC/keep" 1048576
rand_file "$SRC/old" 70000
rand_file "$SRC/new" 90000
V1=$WORK/v1.apbundle
V2=$WORK/v2.apbundle
make_bundle "$V1" a="$SRC/a1" keep="$SRC/keep" old="$SRC/old"
make_bundle "$V2" a="$SRC/a2" keep="$SRC/keep" dir/new="$SRC/new"
B=$WORK/models.apbundle
cp "$V1" "$B"
M=$WORK/mnt
MAXMEM=16777216

start_fg "$M" "$WORK/log" -o prefetch=0,control,watch,max_memory=$MAXMEM "$B"

# gen: the generation .stats.json shows; budget_ok: memory_used <= max_memory.
gen() { json_of "$M/.stats.json" generation; }
budget_ok() {
	_u=$(json_of "$M/.stats.json" memory_used)
	[ "$_u" -le $MAXMEM ] || fail "memory_used $_u > max_memory $MAXMEM ($1)"
}
# wait_gen N: waits up to 10 s for generation N.
wait_gen() {
	_i=0
	while [ "$(gen)" != "$1" ]; do
		_i=$((_i + 1))
		[ $_i -gt 200 ] && fail "generation $(gen), expected $1"
		sleep 0.05
	done
}
expect_eq "generation at mount" "$(gen)" 1

# ---- 1 and 2: .control reload, an old descriptor, a model that stays ----
cmp "$M/keep" "$SRC/keep" || fail "keep before the reload"
cmp "$M/a" "$SRC/a1" || fail "a before the reload"
hits0=$(model_of "$M/.stats.json" keep hits)
miss0=$(model_of "$M/.stats.json" keep misses)
[ "$miss0" -gt 0 ] || fail "keep was read without a miss"

cat >"$WORK/hold.py" <<'PYEOF'
# hold.py FILE EXPECTED READY GO: reads FILE's first 64 KiB, touches READY,
# waits for GO, reads the rest; the whole must equal EXPECTED.
import os, sys, time
f, want, ready, go = sys.argv[1:5]
fd = os.open(f, os.O_RDONLY)
got = os.read(fd, 65536)
open(ready, "w").close()
for _ in range(600):
    if os.path.exists(go):
        break
    time.sleep(0.05)
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    got += b
os.close(fd)
exp = open(want, "rb").read()
if got != exp:
    raise SystemExit("%s: read %d bytes that differ from %s" % (f, len(got), want))
PYEOF
python3 "$WORK/hold.py" "$M/a" "$SRC/a1" "$WORK/ready" "$WORK/go" &
HOLD=$!
PIDS="$PIDS $HOLD"
i=0
while [ ! -e "$WORK/ready" ]; do
	i=$((i + 1)); [ $i -gt 200 ] && fail "the holding reader did not start"; sleep 0.05
done
cp "$V2" "$WORK/next.apbundle"
mv "$WORK/next.apbundle" "$B"
wait_gen 2	# -o watch saw the rename
echo reload >"$M/.control" || fail "echo reload > .control"
expect_eq "generation after .control reload" "$(gen)" 3
cmp "$M/a" "$SRC/a2" || fail "a new open reads the old bundle"
cmp "$M/dir/new" "$SRC/new" || fail "dir/new missing after the reload"
[ -e "$M/old" ] && fail "old still visible after the reload"
expect_eq "generations open with a descriptor held" "$(json_of "$M/.stats.json" generations_open)" 2
budget_ok "two generations"
touch "$WORK/go"
wait "$HOLD" || fail "the descriptor held across the reload did not read the old bytes"
ok "reload via .control: the held descriptor reads the old bundle byte-exact, new opens the new"

cmp "$M/keep" "$SRC/keep" || fail "keep after the reload"
expect_eq "keep misses after the reload" "$(model_of "$M/.stats.json" keep misses)" "$miss0"
[ "$(model_of "$M/.stats.json" keep hits)" -gt "$hits0" ] || fail "keep was not read from the cache"
i=0
while [ "$(json_of "$M/.stats.json" generations_open)" != 1 ]; do
	i=$((i + 1)); [ $i -gt 200 ] && fail "the old generation stayed open"; sleep 0.05
done
grep -q "generation 1 closed" "$WORK/log" || fail "no log line for the closed generation"
ok "an unchanged model keeps its cached pages (hits, no new miss); the old generation closes"

# ---- 3: bad bundles change nothing ----
g=$(gen)
head -c 5000 "$V1" >"$WORK/bad.apbundle"
mv "$WORK/bad.apbundle" "$B"
echo reload >"$M/.control" 2>"$WORK/err" && fail "reload of a truncated bundle succeeded"
grep -q "reload (.control) of '$B' failed, still serving generation $g" "$WORK/log" ||
	fail "the log does not say why the reload failed"
expect_eq "generation after a bad reload" "$(gen)" "$g"
cmp "$M/a" "$SRC/a2" || fail "a after a bad reload"
python3 - "$V1" "$WORK/bad2.apbundle" <<'PYEOF' || fail "cannot corrupt a copy"
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.find(b'"keep"')
b[i + 1] ^= 0x20    # the manifest's checksum no longer matches
open(sys.argv[2], "wb").write(b)
PYEOF
mv "$WORK/bad2.apbundle" "$B"
echo reload >"$M/.control" 2>/dev/null && fail "reload of a corrupt bundle succeeded"
expect_eq "generation after a corrupt reload" "$(gen)" "$g"
[ "$(json_of "$M/.stats.json" reload_failures)" -ge 2 ] || fail "reload_failures not counted"
cmp "$M/keep" "$SRC/keep" || fail "keep after a bad reload"
ok "a truncated or corrupt bundle is refused: .control write fails, log says why, old one stays"

# ---- 4: -o watch and SIGHUP ----
cp "$V1" "$WORK/new.apbundle"
mv "$WORK/new.apbundle" "$B"
wait_gen $((g + 1))
cmp "$M/a" "$SRC/a1" || fail "a after the watched rename"
kill -HUP "$DAEMON_PID"
wait_gen $((g + 2))
cmp "$M/old" "$SRC/old" || fail "old after SIGHUP"
alive "$DAEMON_PID" || fail "SIGHUP ended the daemon"
ok "-o watch reloads on a rename onto the bundle's name; SIGHUP reloads"

# ---- 5: 4 readers across 20 reloads ----
cat >"$WORK/many.py" <<'PYEOF'
# many.py MNT BUNDLE V1 V2 A1 A2 MAXMEM: 20 reloads, alternating V1 and V2
# (copied and renamed onto BUNDLE, then "reload" written to .control);
# before each one a descriptor on a is opened and read a little; at most 4
# are held, each read to the end against the version it opened.
import json, os, shutil, sys
mnt, bundle, v1, v2, a1, a2, maxmem = sys.argv[1:8]
want = {1: open(a1, "rb").read(), 2: open(a2, "rb").read()}
held = []
def check(fd, ver):
    got = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
    os.close(fd)
    if got != want[ver][65536:]:
        raise SystemExit("a descriptor of version %d read other bytes" % ver)
def budget():
    s = json.load(open(mnt + "/.stats.json"))
    if s["memory_used"] > int(maxmem):
        raise SystemExit("memory_used %d > %s" % (s["memory_used"], maxmem))
cur = 1
for i in range(20):
    fd = os.open(mnt + "/a", os.O_RDONLY)
    if os.read(fd, 65536) != want[cur][:65536]:
        raise SystemExit("reload %d: a new open read the wrong version" % i)
    held.append((fd, cur))
    if len(held) > 4:
        check(*held.pop(0))
    cur = 3 - cur
    shutil.copyfile(v1 if cur == 1 else v2, bundle + ".tmp")
    os.rename(bundle + ".tmp", bundle)
    with open(mnt + "/.control", "w") as c:
        c.write("reload\n")
    budget()
for fd, ver in held:
    check(fd, ver)
budget()
PYEOF
python3 "$WORK/many.py" "$M" "$B" "$V1" "$V2" "$SRC/a1" "$SRC/a2" $MAXMEM ||
	fail "readers across 20 reloads"
budget_ok "after 20 reloads"
i=0
while [ "$(json_of "$M/.stats.json" generations_open)" != 1 ]; do
	i=$((i + 1)); [ $i -gt 200 ] && fail "generations stay open after every descriptor closed"; sleep 0.05
done
ok "4 readers across 20 reloads read the version they opened; memory_used <= max_memory; every old generation closed"

stop_fg "$M"
echo "1..$TESTS_RUN"
