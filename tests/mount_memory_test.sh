#!/bin/sh
# mount_memory_test.sh - memory a reader can make the daemon hold stays
# bounded (issue 15 item 1).  Descriptors of .stats.json held open while the
# statistics change (a model read between opens) each used to cost a full
# snapshot (60 of them on 100,000 models: 28 -> 450 MB, 335 MB kept after
# closing).  Now: opens on a quiet mount share one snapshot; the snapshots
# open at once stay under the documented cap (opens beyond it fail with
# EBUSY); closing gives the memory back.  Also prints what the manifest and
# tree cost at mount.  APBM_MEM_MODELS sets the model count (default 20000).
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

N=${APBM_MEM_MODELS:-20000}
B=$WORK/many.apbundle
make_bundle "$B" -G "$N"
M=$WORK/mnt
start_fg "$M" "$WORK/log" -o max_memory=8M,prefetch=0 "$B"

kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
cat "$M/.stats.json" >/dev/null || fail "cannot read .stats.json"
base=$(kib "$DAEMON_PID" VmRSS)
json_bytes=$(wc -c <"$M/.stats.json")
echo "# $N models, max_memory=8M: daemon RSS after mount and one .stats.json read: $base KiB; .stats.json is $json_bytes bytes"

# Quiet mount: 60 descriptors share one snapshot.
python3 - "$M/.stats.json" "$DAEMON_PID" <<'PYEOF' || fail "quiet opens"
import os, sys
path, pid = sys.argv[1], sys.argv[2]
fds = [os.open(path, os.O_RDONLY) for _ in range(60)]
texts = {os.pread(fd, 1 << 26, 0) for fd in fds}
assert len(texts) == 1, "quiet opens saw %d different snapshots" % len(texts)
for fd in fds:
    os.close(fd)
PYEOF
hwm=$(kib "$DAEMON_PID" VmHWM)
grow=$(( (hwm - base) / 1024 ))
echo "# 60 descriptors on a quiet mount: peak RSS +$grow MiB"
[ "$grow" -le 8 ] || fail "60 quiet opens grew the daemon by $grow MiB (limit 8)"
ok "60 .stats.json descriptors on a quiet mount share one snapshot (+$grow MiB)"

# Busy mount: a model read between opens makes every snapshot different.
cat >"$WORK/busy.py" <<'PYEOF'
import errno, os, sys
mnt, n = sys.argv[1], int(sys.argv[2])
fds, busy = [], 0
for i in range(60):
    name = "d%03d/m%06d" % (i // 100, i)
    with open(os.path.join(mnt, name), "rb") as f:
        f.read()
    try:
        fd = os.open(os.path.join(mnt, ".stats.json"), os.O_RDONLY)
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
        busy += 1
        continue
    fds.append(fd)
# Every snapshot held is whole, valid JSON.
import json
for fd in fds:
    text = b""
    while True:
        chunk = os.pread(fd, 1 << 20, len(text))
        if not chunk:
            break
        text += chunk
    assert len(json.loads(text)["models"]) == n
print(len(fds), busy)
for fd in fds:
    os.close(fd)
PYEOF
out=$(python3 "$WORK/busy.py" "$M" "$N") || fail "busy opens: $out"
set -- $out
held=$1 busy=$2
hwm=$(kib "$DAEMON_PID" VmHWM)
grow=$(( (hwm - base) / 1024 ))
# The cap: max(16 MiB, twice the estimated .stats.json); 8 MiB of slack
# for the request threads' stacks and the reads' own pages.
cap=$(( 2 * (1024 + N * 76) / 1048576 ))
[ "$cap" -lt 16 ] && cap=16
echo "# 60 opens with reads between: $held held, $busy refused with EBUSY, peak RSS +$grow MiB (cap $cap MiB)"
[ "$held" -ge 1 ] || fail "no .stats.json open succeeded"
[ "$busy" -ge 1 ] || fail "no open was refused although 60 distinct snapshots exceed the cap"
[ "$grow" -le $((cap + 8)) ] || fail "peak RSS grew by $grow MiB (limit $((cap + 8)))"
sleep 0.2
now=$(kib "$DAEMON_PID" VmRSS)
back=$(( (now - base) / 1024 ))
echo "# after closing them: RSS +$back MiB over the baseline"
[ "$back" -le 4 ] || fail "RSS stayed $back MiB above the baseline after closing"
# And a new open works again.
$VERIFY json "$M/.stats.json" hits >/dev/null || fail ".stats.json after the descriptors closed"
ok "busy opens: $held held, $busy EBUSY, peak +$grow MiB <= cap $cap + 8, +$back MiB after closing"
stop_fg "$M"
exit 0
