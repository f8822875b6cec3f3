#!/bin/sh
# mount_ops_test.sh - .metrics and .control (issue 16 items 1 and 2).
#  1. .metrics parses with python3-prometheus-client's parser, has the
#     documented counters, gauges and a cumulative read-latency histogram
#     (+Inf = _count = reads), and its numbers equal .stats.json after a
#     quiet read; per-model series only with -o metrics_per_model, with
#     names escaped as the format wants;
#  2. .control exists only with -o control, mode 0200: "evict NAME" empties
#     that model's cached bytes, "clear" everything; bad, huge and binary
#     writes fail (EINVAL, E2BIG, ENOENT) and change nothing; another user
#     gets EACCES even with allow_other.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

# The Debian package installs into the system python3 (a PATH python3 may be another).
PROM_PY=
for py in python3 /usr/bin/python3; do
	"$py" -c 'import prometheus_client.parser' 2>/dev/null && { PROM_PY=$py; break; }
done
[ -n "$PROM_PY" ] || { echo "SKIP: python3-prometheus-client missing"; exit 77; }
SRC=$WORK/src
mkdir -p "$SRC"
rand_file "$SRC/enc" 300000
rand_file "$SRC/dec" 200000
printf 'q' >"$SRC/q"
B=$WORK/b.apbundle
make_bundle "$B" enc="$SRC/enc" dec="$SRC/dec" 'we"ird\name'="$SRC/q"
M=$WORK/mnt

cat >"$WORK/check.py" <<'PYEOF'
import json, sys
from prometheus_client.parser import text_string_to_metric_families
mnt, per_model = sys.argv[1], sys.argv[2] == "1"
text = open(mnt + "/.metrics").read()
stats = json.load(open(mnt + "/.stats.json"))
fams = {f.name: f for f in text_string_to_metric_families(text)}
def value(name, labels=None):
    for f in fams.values():
        for s in f.samples:
            if s.name == name and (labels is None or s.labels == labels):
                return s.value
    raise SystemExit("no sample " + name)
pairs = [("apbundle_cache_hits_total", "hits"), ("apbundle_cache_misses_total", "misses"),
         ("apbundle_cache_evictions_total", "evictions"), ("apbundle_bytes_loaded_total", "bytes_loaded"),
         ("apbundle_prefetches_total", "prefetches"), ("apbundle_prefetch_hits_total", "prefetch_hits"),
         ("apbundle_memory_used_bytes", "memory_used"), ("apbundle_memory_max_bytes", "max_memory")]
for m, k in pairs:
    if value(m) != stats[k]:
        raise SystemExit("%s = %s but .stats.json %s = %s" % (m, value(m), k, stats[k]))
assert fams["apbundle_cache_hits"].type == "counter", fams["apbundle_cache_hits"].type
assert fams["apbundle_memory_used_bytes"].type == "gauge"
h = fams["apbundle_fuse_read_duration_seconds"]
assert h.type == "histogram"
buckets = [(s.labels["le"], s.value) for s in h.samples if s.name.endswith("_bucket")]
assert buckets[-1][0] == "+Inf", buckets[-1]
vals = [v for _, v in buckets]
assert vals == sorted(vals), "buckets not cumulative"
count = value("apbundle_fuse_read_duration_seconds_count")
assert buckets[-1][1] == count == value("apbundle_fuse_reads_total") > 0, (buckets[-1], count)
assert value("apbundle_fuse_read_duration_seconds_sum") > 0
models = {m["name"]: m for m in stats["models"]}
has = any(f.name.startswith("apbundle_model_") for f in fams.values())
assert has == per_model, "per-model series present: %s, asked: %s" % (has, per_model)
if per_model:
    for name, m in models.items():
        assert value("apbundle_model_cached_bytes", {"model": name}) == m["cached_bytes"], name
        assert value("apbundle_model_hits_total", {"model": name}) == m["hits"], name
        assert value("apbundle_model_misses_total", {"model": name}) == m["misses"], name
print(int(count))
PYEOF

for pm in 0 1; do
	opts=prefetch=0
	[ $pm = 1 ] && opts="$opts,metrics_per_model"
	start_fg "$M" "$WORK/log.$pm" -o "$opts" "$B"
	$VERIFY whole "$SRC/enc" "$M/enc" || fail "read enc"
	$VERIFY random "$SRC/dec" "$M/dec" 20 3 || fail "read dec"
	reads=$("$PROM_PY" "$WORK/check.py" "$M" $pm) || fail "metrics_per_model=$pm: $reads"
	[ -e "$M/.control" ] && fail ".control exists without -o control"
	stop_fg "$M"
	ok ".metrics (per_model=$pm) parses, equals .stats.json, histogram of $reads reads"
done

start_fg "$M" "$WORK/log.c" -o prefetch=0,control,allow_other "$B"
expect_eq ".control mode" "$(stat -c %a "$M/.control")" 200
$VERIFY whole "$SRC/enc" "$M/enc" || fail "read enc"
$VERIFY whole "$SRC/dec" "$M/dec" || fail "read dec"
[ "$(model_of "$M/.stats.json" enc cached_bytes)" -gt 0 ] || fail "enc not cached after a read"
echo "evict enc" > "$M/.control" || fail "echo evict enc > .control"
expect_eq "enc cached bytes after evict" "$(model_of "$M/.stats.json" enc cached_bytes)" 0
[ "$(model_of "$M/.stats.json" dec cached_bytes)" -gt 0 ] || fail "evict enc emptied dec too"
# Bad writes: each fails and changes nothing.
cat >"$WORK/bad.py" <<'PYEOF'
import errno, os, sys
path = sys.argv[1]
cases = [(b"evict\n", errno.EINVAL), (b"frobnicate\n", errno.EINVAL), (b"evict nosuch\n", errno.ENOENT),
         (b"clear\nevict nosuch\n", errno.ENOENT), (b"\x00\xff\x01binary", errno.EINVAL),
         (b"evict dec" + b"x" * 8000, errno.E2BIG), (b"clear extra\n", errno.EINVAL),
         (b"\n", errno.EINVAL), (b"reload now\n", errno.EINVAL)]
fd = os.open(path, os.O_WRONLY)
for data, want in cases:
    try:
        os.write(fd, data)
        raise SystemExit("write %r succeeded" % data[:20])
    except OSError as e:
        if e.errno != want:
            raise SystemExit("write %r: %s, expected %s" % (data[:20], e.strerror, os.strerror(want)))
try:
    os.read(os.open(path, os.O_RDONLY), 1)
    raise SystemExit("reading .control worked")
except OSError as e:
    assert e.errno == errno.EACCES, e
PYEOF
python3 "$WORK/bad.py" "$M/.control" || fail "bad writes to .control"
[ "$(model_of "$M/.stats.json" dec cached_bytes)" -gt 0 ] || fail "a refused write changed the cache"
# Another user, allow_other on: may read models, may not write .control.
chmod 755 "$WORK"
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "cat '$M/dec' >/dev/null" ||
	fail "user 65534 cannot read a model with allow_other"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo clear > '$M/.control'" 2>&1) &&
	fail "user 65534 wrote .control"
case $out in *"Permission denied"*) ;; *) fail "non-owner write: '$out', expected EACCES" ;; esac
[ "$(model_of "$M/.stats.json" dec cached_bytes)" -gt 0 ] || fail "a non-owner's clear ran"
printf 'clear' > "$M/.control" || fail "clear without a newline"
expect_eq "memory used after clear" "$(json_of "$M/.stats.json" memory_used)" 0
stop_fg "$M"
ok ".control: evict and clear act, bad/huge/binary writes refused, EACCES for another user"
exit 0
