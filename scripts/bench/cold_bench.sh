#!/bin/bash
# cold_bench.sh - issue 11 item 5: the cold path of one large model, read
# through apbundle-mount, squashfuse_ll and the native file, in one run.
#
# Usage: scripts/bench/cold_bench.sh          (as root: drop_caches, FUSE, bdi)
#        SIZE=64M RUNS=1 scripts/bench/cold_bench.sh   (a quick smoke run)
#
# Data (made once under $WORK/data, fixed seeds): model.bin (SIZE of
# random bytes) and weights.npy (NPY_SIZE of float32 from a normal
# distribution), packed as an uncompressed bundle and an uncompressed
# squashfs image (-noI -noD -noF -noX, as run.sh).
# Readers, each on a cold page cache (sync; drop_caches before each read):
#   dd1m   dd bs=1M of model.bin          (1 MiB read() calls)
#   dd64m  dd bs=64M of model.bin         (64 MiB read() calls)
#   npload np.load(weights.npy)           (numpy's own read path)
#   npmmap np.load(weights.npy, mmap_mode='r'), one byte of every 4 KiB page
# Peers: native (the files on the work disk), apbundle-mount at its
# defaults ("apbundle", nothing changed after mounting), and apbundle-mount
# and squashfuse_ll with the FUSE bdi's read_ahead_kb set to each of
# RA_LIST.  Every peer gets a fresh mount for every read; the order of the
# peers rotates from run to run so that each sees the same machine state.
# Prints, per reader, the median seconds of every peer, its ratio to native
# (time / native time: lower is better, target <= 1.05 for apbundle at its
# defaults) and apbundle's speed ratio to squashfuse_ll at the same
# readahead (squashfuse time / apbundle time: target >= 1.0), and the
# daemons' CPU seconds per GiB read (utime+stime from /proc, median).
# Raw samples: $WORK/samples.tsv.  Timings need a quiet machine; the load
# average at start and end is printed: quote the run only if it was low.
#
# OLD_BUILD, when set, adds the peer "apbold": apbundle-mount of that build
# tree (say, the commit before a change) at its defaults, on the same bundle,
# so "before" and "after" are measured in one run.  NOTHP=1 adds the peer
# "apbnothp": this build's apbundle-mount with -o huge_pages=0.  NULLFS=1
# adds scripts/bench/nullfs (a FUSE daemon serving model.bin from memory,
# loaded before the page cache is dropped: the FUSE ceiling), dd readers only.
#
# Settings: WORK (build/cold-bench), BUILD (build/default), SIZE (512M),
# NPY_SIZE (256M), RUNS (5), RA_LIST ("128 1024 4096"), READERS
# ("dd1m dd64m npload npmmap"), PY (/usr/bin/python3: must have numpy).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$top/build/cold-bench}
BUILD=${BUILD:-$top/build/default}
SIZE=${SIZE:-512M}
NPY_SIZE=${NPY_SIZE:-256M}
RUNS=${RUNS:-5}
RA_LIST=${RA_LIST:-128 1024 4096}
READERS=${READERS:-dd1m dd64m npload npmmap}
PY=${PY:-/usr/bin/python3}
die() { echo "cold_bench.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (drop_caches, FUSE mounts, read_ahead_kb)"
for c in squashfuse_ll mksquashfs fusermount3 dd; do
	command -v $c >/dev/null || die "$c missing (scripts/deps.sh bench)"
done
"$PY" -c 'import numpy' 2>/dev/null || die "$PY has no numpy (apt-get install python3-numpy)"
APB=$BUILD/apbundle
APBMOUNT=$BUILD/apbundle-mount
[ -x "$APB" ] && [ -x "$APBMOUNT" ] || die "build first: $APB, $APBMOUNT missing"
[ -z "${OLD_BUILD:-}" ] || [ -x "$OLD_BUILD/apbundle-mount" ] || die "no $OLD_BUILD/apbundle-mount"

mkdir -p "$WORK/data"
WORK=$(cd "$WORK" && pwd)
mnt=$(mktemp -d /tmp/apb-cold-bench.XXXXXX)
pid=""
cleanup() {
	mountpoint -q "$mnt" && { fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; }
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rmdir "$mnt" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bytes() { numfmt --from=iec "$1"; }
# ---- data ------------------------------------------------------------------
d=$WORK/data/set
stamp="$SIZE $NPY_SIZE v1"
if [ "$(cat "$WORK/data/stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$d" "$WORK/data/set.sqfs" "$WORK/data/stamp"
	mkdir -p "$d"
	"$PY" - "$d" "$(bytes "$SIZE")" "$(bytes "$NPY_SIZE")" <<-'EOF' || die "making the data failed"
	import numpy as np, sys
	d, size, npy = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
	rng = np.random.default_rng(11)
	with open(d + "/model.bin", "wb") as f:
	    left = size
	    while left:
	        n = min(left, 64 << 20)
	        f.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
	        left -= n
	np.save(d + "/weights.npy", rng.standard_normal(npy // 4 - 32, dtype=np.float32))
	EOF
	mksquashfs "$d" "$WORK/data/set.sqfs" -noI -noD -noF -noX -no-xattrs -quiet -noappend \
		>/dev/null || die "mksquashfs failed"
	echo "$stamp" >"$WORK/data/stamp"
fi
rm -f "$WORK/data/set.apbundle"
"$APB" create "$WORK/data/set.apbundle" "$d" >/dev/null || die "apbundle create failed"

# ---- one cold read -----------------------------------------------------------
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s%N; }
cpu_s() { # PID: utime+stime in seconds
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo NA
}
# read_one READER DIR: sets SECS (wall seconds) and BYTES
read_one() {
	local t0 t1 f
	case $1 in
	dd1m | dd64m)
		f=$2/model.bin
		t0=$(now)
		dd if="$f" of=/dev/null bs=$([ "$1" = dd1m ] && echo 1M || echo 64M) status=none ||
			die "dd of $f failed"
		t1=$(now)
		BYTES=$(stat -c %s "$f") ;;
	npload | npmmap)
		f=$2/weights.npy
		t0=$(now)
		"$PY" -c 'import numpy as np, sys
if sys.argv[2] == "npload":
    a = np.load(sys.argv[1]); assert a.size > 0
else:
    a = np.load(sys.argv[1], mmap_mode="r"); int(a.view(np.uint8)[::4096].sum())' "$f" "$1" ||
			die "numpy read of $f failed"
		t1=$(now)
		BYTES=$(stat -c %s "$f") ;;
	esac
	SECS=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.4f", ns / 1e9 }')
}

mount_peer() { # PEER RA: mounts on $mnt, sets pid
	local i
	case $1 in
	apbundle) "$APBMOUNT" -f "$WORK/data/set.apbundle" "$mnt" 2>>"$WORK/apbundle.log" & ;;
	nullfs) "$BUILD/scripts/bench/nullfs" -f -o "size=$(stat -c %s "$d/model.bin"),source=$d/model.bin,name=model.bin" \
		"$mnt" 2>>"$WORK/nullfs.log" & ;;
	apbnothp) "$APBMOUNT" -f -o huge_pages=0 "$WORK/data/set.apbundle" "$mnt" 2>>"$WORK/apbundle.log" & ;;
	apbold) "$OLD_BUILD/apbundle-mount" -f "$WORK/data/set.apbundle" "$mnt" 2>>"$WORK/apbold.log" & ;;
	squashfuse_ll) squashfuse_ll -f "$WORK/data/set.sqfs" "$mnt" 2>>"$WORK/squashfuse.log" & ;;
	esac
	pid=$!
	for i in $(seq 200); do [ -f "$mnt/model.bin" ] && break; sleep 0.05; done
	[ -f "$mnt/model.bin" ] || die "mounting $1 failed"
	if [ "$2" != default ]; then
		echo "$2" >"/sys/class/bdi/$(mountpoint -d "$mnt")/read_ahead_kb" || die "cannot set read_ahead_kb"
	fi
}
umount_peer() {
	local i
	fusermount3 -u "$mnt" 2>/dev/null || { sleep 0.2; fusermount3 -u "$mnt" || umount -l "$mnt"; }
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=""
}

vs=(native:default apbundle:default)
[ -n "${OLD_BUILD:-}" ] && vs+=(apbold:default)
[ "${NOTHP:-0}" = 1 ] && vs+=(apbnothp:default)
[ "${NULLFS:-0}" = 1 ] && vs+=(nullfs:default)
for ra in $RA_LIST; do vs+=("apbundle:$ra" "squashfuse_ll:$ra"); done
nv=${#vs[@]}
S=$WORK/samples.tsv
: >"$S"
echo "cold_bench: SIZE=$SIZE NPY_SIZE=$NPY_SIZE RUNS=$RUNS RA_LIST='$RA_LIST' commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null)"
echo "cold_bench: load at start: $(cut -d' ' -f1-3 /proc/loadavg); native disk read_ahead_kb:" \
	"$(cat "/sys/class/bdi/$(mountpoint -d "$(df --output=target "$WORK" | tail -1)")/read_ahead_kb" 2>/dev/null || echo ?)"
for run in $(seq "$RUNS"); do
	for reader in $READERS; do
		for ((k = 0; k < nv; k++)); do
			v=${vs[$(((k + run - 1) % nv))]}
			peer=${v%%:*} ra=${v#*:} cpu=NA
			case $peer:$reader in nullfs:np*) continue ;; esac
			if [ "$peer" = native ]; then
				drop
				read_one "$reader" "$d"
			else
				mount_peer "$peer" "$ra"
				drop
				c0=$(cpu_s "$pid")
				read_one "$reader" "$mnt"
				c1=$(cpu_s "$pid")
				cpu=$(awk -v a="$c0" -v b="$c1" -v n="$BYTES" 'BEGIN { printf "%.3f", (b - a) / (n / 1073741824) }')
				umount_peer
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$reader" "$peer" "$ra" "$run" "$SECS" "$cpu" >>"$S"
		done
	done
	echo "cold_bench: run $run of $RUNS done ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
done
echo "cold_bench: load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

"$PY" - "$S" "$RA_LIST" "$(bytes "$SIZE")" "$(bytes "$NPY_SIZE")" <<-'EOF'
import sys, statistics as st, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
ras = sys.argv[2].split()
t = collections.defaultdict(list); c = collections.defaultdict(list)
for r, p, ra, run, secs, cpu in rows:
    t[r, p, ra].append(float(secs))
    if cpu != "NA": c[r, p, ra].append(float(cpu))
for r in dict.fromkeys(x[0] for x in rows):
    size = int(sys.argv[3] if r.startswith("dd") else sys.argv[4])
    nat = st.median(t[r, "native", "default"])
    print(f"\n{r}: {size >> 20} MiB, median of {len(t[r, 'native', 'default'])}")
    print("| peer | read_ahead_kb | median s | MB/s | time x native | apbundle speed x squashfuse_ll | daemon CPU s/GiB |")
    print("|---|---|---|---|---|---|---|")
    for (rr, p, ra) in sorted(k for k in t if k[0] == r):
        m = st.median(t[rr, p, ra])
        sq = t.get((r, "squashfuse_ll", ra))
        vs = f"{st.median(sq) / m:.2f}x" if p == "apbundle" and sq else ""
        cpu = f"{st.median(c[rr, p, ra]):.2f}" if c[rr, p, ra] else ""
        print(f"| {p} | {ra} | {m:.3f} | {size / m / 1e6:,.0f} | {m / nat:.2f}x | {vs} | {cpu} |")
EOF
