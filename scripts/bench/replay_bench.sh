#!/bin/bash
# replay_bench.sh - issue 14's acceptance as a new user would try it: record
# a trace of a workload through apbundle-mount -o trace=FILE, replay it with
# `apbundle simulate`, and compare the live hit ratio (.stats.json) with the
# simulated one for the same policy, under several mount configurations.
#
# Usage: scripts/bench/replay_bench.sh [BUILD_DIR]   (default build/default)
#
# Models: the traineddata files of Debian's tesseract-ocr-{eng,deu,fra,spa,
# ita,por,nld,swe} (fetched with apt-get download, cached in $DATA), or,
# when they cannot be fetched, 8 files of random bytes of 1-6 MiB.
# Workload: READERS (3) processes at once, each REQUESTS (60) requests of
# Zipf(1.0)-chosen models (its own seed): 2 in 3 read the whole model with
# 1 MiB reads, 1 in 3 reads a 64 KiB header and a 1 MiB range (O_DIRECT,
# so the kernel's page cache answers nothing).  Budget
# MAX_MEMORY (8M), about a third of the models' bytes.  Every mount runs
# the same workload; the table gives lookups, live and simulated hit ratio
# and their difference in points (the acceptance asks for <= 1).
#
# Needs root or fuse access, /dev/fuse, python3.  Deterministic replay; the
# live side depends on thread timing (with prefetch and several readers),
# which the recorded trace captures.  Settings: WORK (temp dir, removed
# unless KEEP=1), DATA (model cache, default /tmp/apbundle-bench-data),
# OUT_MD (also write the table there).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/default}
apb=$build/apbundle
mnt_bin=$build/apbundle-mount
[ -x "$apb" ] && [ -x "$mnt_bin" ] || { echo "replay_bench.sh: build $build first (scripts/build.sh $build)" >&2; exit 2; }
work=${WORK:-$(mktemp -d /tmp/replay-bench.XXXXXX)}
data=${DATA:-/tmp/apbundle-bench-data}
readers=${READERS:-3}
requests=${REQUESTS:-60}
max_memory=${MAX_MEMORY:-8M}
mnt=$work/mnt
daemon=
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; fi
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/models" "$mnt" "$data/tesseract"

# models: tesseract's traineddata, else random bytes
if [ -z "$(ls "$data/tesseract" 2>/dev/null)" ]; then
	(cd "$work" && mkdir deb && cd deb &&
	 for l in eng deu fra spa ita por nld swe; do apt-get download "tesseract-ocr-$l" >/dev/null 2>&1 || true; done
	 for d in ./*.deb; do [ -f "$d" ] && dpkg-deb -x "$d" x; done
	 find x -name '*.traineddata' -exec cp {} "$data/tesseract/" \; ) 2>/dev/null || true
fi
if [ -n "$(ls "$data/tesseract" 2>/dev/null)" ]; then
	cp "$data/tesseract"/*.traineddata "$work/models/"
	models="tesseract-ocr traineddata"
else
	python3 - "$work/models" <<'PY'
import os, random, sys
r = random.Random(1)
for i in range(8):
    with open(os.path.join(sys.argv[1], "m%d.bin" % i), "wb") as f:
        f.write(r.randbytes(r.randrange(1 << 20, 6 << 20)))
PY
	models="random bytes (tesseract data not available)"
fi
"$apb" create "$work/b.apbundle" "$work/models" > /dev/null

# one reader: its own Zipf order of whole and partial loads
reader=$work/reader.py
cat > "$reader" <<'PY'
import os, random, sys
mnt, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = sorted(f for f in os.listdir(mnt) if not f.startswith("."))
r = random.Random(seed)
weights = [1.0 / (i + 1) for i in range(len(names))]
r.shuffle(names)
for _ in range(n):
    name = r.choices(names, weights)[0]
    fd = os.open(os.path.join(mnt, name), os.O_RDONLY | os.O_DIRECT)
    size = os.fstat(fd).st_size
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    if r.randrange(3):
        off = 0
        while off < size:
            got = os.preadv(fd, [mv], off)
            if got <= 0:
                break
            off += got
    else:
        os.preadv(fd, [mv[:65536]], 0)
        os.preadv(fd, [mv], r.randrange(0, max(1, size - (1 << 20))) & ~4095)
    os.close(fd)
PY

results=$work/results.txt
: > "$results"
# run LABEL OPTIONS: mount, run the readers, unmount, replay
run() {
	local label=$1 opts=$2 pids= i pol
	"$mnt_bin" -f -o "max_memory=$max_memory,trace=$work/t.trace${opts:+,$opts}" "$work/b.apbundle" "$mnt" 2> "$work/daemon.log" &
	daemon=$!
	for i in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.05; done
	mountpoint -q "$mnt" || { cat "$work/daemon.log" >&2; exit 1; }
	for i in $(seq "$readers"); do
		python3 "$reader" "$mnt" "$i" "$requests" &
		pids="$pids $!"
	done
	for i in $pids; do wait "$i"; done
	cp "$mnt/.stats.json" "$work/stats.json"
	fusermount3 -u "$mnt"
	wait "$daemon"
	daemon=
	"$apb" simulate --max-memory "$max_memory" --json "$work/t.trace" > "$work/sim.json"
	python3 - "$label" "$opts" "$work/stats.json" "$work/sim.json" >> "$results" <<'PY'
import json, sys
label, opts = sys.argv[1], sys.argv[2]
s = json.load(open(sys.argv[3])); o = json.load(open(sys.argv[4]))
pol = s["eviction"]
n = s["hits"] + s["misses"]
live = s["hits"] / n if n else 0.0
sim = o["policies"][pol]
assert o["accesses"] == n, (o["accesses"], n)
print("| %s | %s | %d | %d | %.2f%% | %.2f%% | %.2f |" % (
    "`%s`" % opts if opts else "(none: the defaults)", pol, n, s["prefetches"],
    100 * live, 100 * sim, round(100 * (live - sim), 2) + 0.0))
PY
}

for p in lru lfu sieve s3fifo 2q tinylfu; do
	run "$p" "eviction=$p,prefetch=0,direct_io"
done
for p in lru tinylfu; do
	run "$p" "eviction=$p,direct_io"
done
run default ""

{
	echo "| mount options (max_memory=$max_memory) | policy | lookups | prefetches | live | simulated | live - simulated (points) |"
	echo "|---|---|---|---|---|---|---|"
	cat "$results"
	echo
	echo "Models: $models, $(ls "$work/models" | wc -l) files, $(du -sh "$work/models" | cut -f1); $readers readers x $requests requests at once."
} | tee "${OUT_MD:-/dev/null}"
