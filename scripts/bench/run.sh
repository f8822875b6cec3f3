#!/bin/bash
# run.sh - measure apbundle-mount side by side with its peers (issue 7).
#
# Usage: scripts/bench/run.sh        (as root; also `make bench`)
#        QUICK=1 scripts/bench/run.sh   small sizes, one run, for development
#
# Builds the tree (scripts/build.sh), installs missing peers (scripts/deps.sh
# bench), makes its own data under $WORK, and measures in one run, round-robin
# over the peers so that every peer sees the same machine state: the native
# file, nullfs (a memory-backed FUSE daemon: the ceiling), squashfuse_ll on an
# uncompressed squashfs image, archivemount on a tar, fuse-zip on a stored zip,
# and apbundle-mount.  Raw samples go to $WORK/results.tsv; report.py turns
# them into medians and ratios in $OUT_MD (between run.sh markers) and a chart.
#
# Invariants: every mount and daemon started here is unmounted and reaped on
# any exit (trap); every operation has a deadline; a peer that times out on a
# workload is recorded as such and not retried in later runs.
#
# Settings (environment): WORK, BUILD, SIZE (1G), RUNS (5), FIO_RUNTIME (5 s),
# COUNTS ("10 1000 10000 100000"), RA_LIST ("128 4096": read_ahead_kb values
# applied to every FUSE mount alike), PEERS, OP_TIMEOUT (60 s per read),
# ZIPF_MODELS (64), ZIPF_SIZE (4M), ZIPF_READS (400), ZIPF_S (1.0),
# KWARM_PASSES (3 reads per kernel-warm sample), APB_OPTS (extra -o options for apbundle-mount), WORKLOADS ("seq mount zipf";
# "data" only prepares the data sets),
# NICE (a niceness for the whole run, e.g. -10), OUT_MD, OUT_PNG, SKIP_BUILD=1, SKIP_DEPS=1, APB_COMMIT (what to call the
# measured tree in the report when it is not a git checkout).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bench=$top/scripts/bench
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	: "${SIZE:=64M}" "${RUNS:=1}" "${FIO_RUNTIME:=1}" "${COUNTS:=10 1000}"
	: "${ZIPF_MODELS:=16}" "${ZIPF_SIZE:=1M}" "${ZIPF_READS:=40}" "${OP_TIMEOUT:=20}"
fi
WORK=${WORK:-$top/build/bench}
BUILD=${BUILD:-$WORK/build}
SIZE=${SIZE:-1G}
RUNS=${RUNS:-5}
FIO_RUNTIME=${FIO_RUNTIME:-5}
COUNTS=${COUNTS:-10 1000 10000 100000}
RA_LIST=${RA_LIST:-128 4096}
PEERS=${PEERS:-native nullfs squashfuse_ll archivemount fuse-zip apbundle}
OP_TIMEOUT=${OP_TIMEOUT:-60}
ZIPF_MODELS=${ZIPF_MODELS:-64}
ZIPF_SIZE=${ZIPF_SIZE:-4M}
ZIPF_READS=${ZIPF_READS:-400}
ZIPF_S=${ZIPF_S:-1.0}
APB_OPTS=${APB_OPTS:-}
WORKLOADS=${WORKLOADS:-seq mount zipf}
KWARM_PASSES=${KWARM_PASSES:-3}
if [ "$QUICK" = 1 ]; then
	OUT_MD=${OUT_MD:-$WORK/BENCHMARKS.md}
	OUT_PNG=${OUT_PNG:-$WORK/bench.png}
else
	OUT_MD=${OUT_MD:-$top/docs/BENCHMARKS.md}
	OUT_PNG=${OUT_PNG:-$top/docs/bench.png}
fi

die() { echo "run.sh: $*" >&2; exit 1; }
note() { echo "run.sh: $*" >&2; }

# Binary sizes with K/M/G suffixes, as the tools take them.
to_bytes() {
	local v=${1%[KkMmGg]} m=1
	case "$1" in
	*[Kk]) m=1024 ;; *[Mm]) m=$((1024 * 1024)) ;; *[Gg]) m=$((1024 * 1024 * 1024)) ;;
	esac
	case "$v" in '' | *[!0-9]*) die "bad size '$1'" ;; esac
	echo $((v * m))
}

[ "$(id -u)" = 0 ] || die "must run as root (drop_caches, FUSE mounts, read_ahead_kb)"
[ -c /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse)"
[ -w /proc/sys/vm/drop_caches ] || die "/proc/sys/vm/drop_caches is not writable"
size_bytes=$(to_bytes "$SIZE")
zipf_bytes=$(to_bytes "$ZIPF_SIZE")

# ---------------------------------------------------------------- cleanup
declare -A LIVE_PID=()   # mountpoint -> daemon pid
cleanup() {
	local m
	for m in "${!LIVE_PID[@]}"; do
		umount_peer "$m" 2>/dev/null
	done
}
# Long commands run in the background under `wait` (see run_child): bash
# runs a trap only once its foreground command ends, and with SIGINT not even
# then if that command exited normally, so a foreground dd could keep the
# script going after ^C or kill.  `wait` returns at once on a trapped signal.
CHILD=""
kill_tree() { # PID: the process and its descendants, children first
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$c"; done
	kill -TERM "$1" 2>/dev/null
}
on_signal() {
	trap '' INT TERM HUP
	note "interrupted: unmounting and stopping what was started"
	[ -n "$CHILD" ] && kill_tree "$CHILD"
	exit 130
}
trap cleanup EXIT
trap on_signal INT TERM HUP

# run_child OUTFILE CMD...: CMD's stdout and stderr to OUTFILE; its status.
run_child() {
	local out=$1 rc
	shift
	"$@" >"$out" 2>&1 </dev/null &
	CHILD=$!
	wait "$CHILD"
	rc=$?
	CHILD=""
	return $rc
}

# Unmount MNT and reap its daemon (TERM, then KILL after a deadline).
umount_peer() {
	local m=$1 pid=${LIVE_PID[$1]:-} i
	if mountpoint -q "$m"; then
		fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null ||
			umount -l "$m" 2>/dev/null
	fi
	if [ -n "$pid" ]; then
		for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -TERM "$pid" 2>/dev/null && sleep 0.2
		kill -KILL "$pid" 2>/dev/null
	fi
	unset "LIVE_PID[$m]"
	return 0
}

# ---------------------------------------------------------------- build
if [ "${SKIP_DEPS:-0}" != 1 ]; then
	"$top/scripts/deps.sh" bench || die "scripts/deps.sh bench failed"
fi
mkdir -p "$WORK" || die "cannot create $WORK"
WORK=$(cd "$WORK" && pwd)
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/mnt" "$WORK/data"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
	"$top/scripts/build.sh" "$BUILD" >"$LOGS/build.log" 2>&1 ||
		note "scripts/build.sh failed (see $LOGS/build.log); using what was built"
	make -C "$BUILD" -s scripts/bench/nullfs scripts/bench/mnttime >>"$LOGS/build.log" 2>&1 ||
		die "cannot build scripts/bench/nullfs and mnttime (see $LOGS/build.log)"
fi
NULLFS=$BUILD/scripts/bench/nullfs
MNTTIME=$BUILD/scripts/bench/mnttime
APB=$BUILD/apbundle
APBMOUNT=$BUILD/apbundle-mount
[ -x "$NULLFS" ] && [ -x "$MNTTIME" ] || die "missing $NULLFS or $MNTTIME"

readonly RES=$WORK/results.tsv
: >"$RES"
# max_memory given to apbundle-mount per workload, for the RSS target.
echo "default: $((100 * 1048576))" >"$WORK/maxmem.txt"
record() { # workload peer variant run value [flag]
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" >>"$RES"
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now_ns() { date +%s%N; }

# ---------------------------------------------------------------- data
# Make DIR/NAME of BYTES random bytes unless it already has that size.
make_blob() {
	local f=$1 bytes=$2
	[ -f "$f" ] && [ "$(stat -c %s "$f")" = "$bytes" ] && return 0
	mkdir -p "$(dirname "$f")"
	head -c "$bytes" /dev/urandom >"$f.tmp" && mv "$f.tmp" "$f"
}

# Build the peer images of directory SRC as PREFIX.{sqfs,tar,zip,apbundle}.
make_images() {
	local src=$1 pre=$2 stamp=$2.stamp
	if [ ! -f "$stamp" ] || [ "$src" -nt "$stamp" ] || [ -n "$(find "$src" -newer "$stamp" -print -quit)" ]; then
		rm -f "$pre.sqfs" "$pre.tar" "$pre.zip"
		mksquashfs "$src" "$pre.sqfs" -noI -noD -noF -noX -no-xattrs -quiet -noappend \
			>>"$LOGS/data.log" 2>&1 || die "mksquashfs $src failed"
		tar -C "$src" -cf "$pre.tar" . || die "tar $src failed"
		(cd "$src" && find . -type f | sed 's|^\./||' | sort | zip -0 -q "$pre.zip" -@) ||
			die "zip $src failed"
		touch "$stamp"
	fi
	# The bundle is always rebuilt: the format and writer may have changed.
	rm -f "$pre.apbundle"
	if [ -x "$APB" ]; then
		"$APB" create "$pre.apbundle" "$src" >>"$LOGS/data.log" 2>&1 ||
			{ note "apbundle create $pre.apbundle failed (see $LOGS/data.log)"; rm -f "$pre.apbundle"; }
	fi
}

# A directory of COUNT distinct small models of 256..8192 bytes (deterministic sizes).
make_small_set() {
	local n=$1 d=$WORK/data/small-$1
	if [ "$(cat "$d.done" 2>/dev/null)" != v2 ]; then
		rm -rf "$d"
		python3 - "$d" "$n" <<-'EOF' || die "making $d failed"
		import os, random, sys
		d, n = sys.argv[1], int(sys.argv[2])
		os.makedirs(d)
		rng = random.Random(n)
		blob = os.urandom(8192)
		for i in range(n):
		    with open(os.path.join(d, "model-%06d.bin" % i), "wb") as f:
		        # Unique content: no peer may deduplicate (mksquashfs would).
		        f.write(b"%08d" % i + blob[: rng.randint(256, 8192) - 8])
		EOF
		echo v2 >"$d.done"
	fi
	make_images "$d" "$WORK/data/small-$n"
}

# ---------------------------------------------------------------- peers
# Image file and in-mount path of the model for PEER on data set PREFIX.
peer_image() {
	case $1 in
	nullfs) echo "$2/model.bin" ;;
	squashfuse_ll) echo "$2.sqfs" ;;
	archivemount) echo "$2.tar" ;;
	fuse-zip) echo "$2.zip" ;;
	apbundle) echo "$2.apbundle" ;;
	esac
}

# mount_peer PEER IMAGE MNT PROBE [apbundle -o options]
# Sets MNT_MS (time until MNT/PROBE answers stat) and MNT_PID; 1 on failure.
mount_peer() {
	local peer=$1 img=$2 m=$3 probe=$4 opts=${5:-} out
	local -a cmd
	case $peer in
	nullfs) cmd=("$NULLFS" -f -o "size=$(stat -c %s "$img"),source=$img,name=model.bin" "$m") ;;
	squashfuse_ll) cmd=(squashfuse_ll -f "$img" "$m") ;;
	archivemount) cmd=(archivemount -f -o ro,readonly "$img" "$m") ;;
	fuse-zip) cmd=(fuse-zip -f -r "$img" "$m") ;;
	apbundle)
		[ -x "$APBMOUNT" ] && [ -f "$img" ] || return 1
		cmd=("$APBMOUNT" -f ${opts:+-o "$opts"} "$img" "$m") ;;
	*) die "unknown peer $peer" ;;
	esac
	mkdir -p "$m"
	mountpoint -q "$m" && umount_peer "$m"
	echo "== $(date +%T) ${cmd[*]}" >>"$LOGS/$peer.log"
	# Not run_child: the daemon inherits stderr, which must stay its log.
	"$MNTTIME" -t "$OP_TIMEOUT" -p "$probe" "$m" -- "${cmd[@]}" \
		>"$WORK/mnttime.out" 2>>"$LOGS/$peer.log" </dev/null &
	CHILD=$!
	wait "$CHILD"
	local rc=$?
	CHILD=""
	out=$(tail -n 1 "$WORK/mnttime.out")
	if [ $rc != 0 ] || [ -z "$out" ]; then
		note "mounting $peer failed (see $LOGS/$peer.log)"
		return 1
	fi
	MNT_MS=${out% *}
	MNT_PID=${out#* }
	LIVE_PID[$m]=$MNT_PID
	return 0
}

set_ra() { # MNT KB
	local bdi
	bdi=$(mountpoint -d "$1") || return 1
	echo "$2" >"/sys/class/bdi/$bdi/read_ahead_kb"
}

hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo NA; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }

# seqread FILE [PASSES]: reads FILE whole PASSES times (default 1) back to
# back with dd bs=1M; sets VAL to MB/s over all passes, with " T" appended
# when it hit the deadline (MB/s is then what was read before it, an upper
# bound).  Several passes keep a 0.1 s page-cache read from being all noise.
seqread() {
	local t0 t1 bytes=0 b i rc=0
	t0=$(now_ns)
	for i in $(seq "${2:-1}"); do
		run_child "$WORK/dd.out" timeout -s INT "$OP_TIMEOUT" dd if="$1" of=/dev/null bs=1M
		rc=$?
		b=$(awk '/bytes/ {print $1; exit}' "$WORK/dd.out")
		[ -n "$b" ] || { VAL="NA E"; return; }
		bytes=$((bytes + b))
		[ $rc = 0 ] || break
	done
	t1=$(now_ns)
	VAL=$(awk -v b="$bytes" -v ns=$((t1 - t0)) -v rc=$rc \
		'BEGIN { printf "%.1f%s\n", b / 1e6 / (ns / 1e9), rc == 0 ? "" : " T" }')
}

# fio_iops FILE JOBS: 4 KiB random O_DIRECT reads for FIO_RUNTIME seconds;
# sets VAL to the IOPS, or "NA E".
fio_iops() {
	run_child "$WORK/fio.out" timeout -s INT $((FIO_RUNTIME + OP_TIMEOUT)) fio --name=rr \
		--filename="$1" --rw=randread --bs=4k --direct=1 --ioengine=psync --numjobs="$2" \
		--time_based --runtime="$FIO_RUNTIME" --ramp_time=0 --group_reporting \
		--readonly --invalidate=0 --output-format=json --output="$WORK/fio.json"
	cat "$WORK/fio.out" >>"$LOGS/fio.log"
	VAL=$(python3 -c 'import json,sys
try:
    d = json.load(open(sys.argv[1])); print("%.0f" % sum(j["read"]["iops"] for j in d["jobs"]))
except Exception:
    print("NA E")' "$WORK/fio.json")
	rm -f "$WORK/fio.json"
}

# ---------------------------------------------------------------- workloads
declare -A SKIP=()

# One timed sequential read for workload W of PEER; records value and RSS.
seq_step() { # w peer variant run file pid
	local w=$1 p=$2 v=$3 r=$4 f=$5 pid=$6 res passes=1
	[ "$w" = kwarm ] && passes=$KWARM_PASSES
	if [ -n "${SKIP[$p.seq]:-}" ]; then record "$w" "$p" "$v" "$r" NA S; return; fi
	[ "$pid" = - ] || reset_hwm "$pid"
	seqread "$f" "$passes"
	res=$VAL
	record "$w" "$p" "$v" "$r" ${res% *} "$([ "${res#* }" != "$res" ] && echo "${res#* }")"
	# One timeout skips every sequential read of this peer from then on.
	case "$res" in *" T"*) SKIP[$p.seq]=1; note "$p $w $v timed out after ${OP_TIMEOUT}s" ;; esac
	[ "$pid" = - ] || record "rss_$w" "$p" "$v" "$r" "$(hwm_kb "$pid")"
}

fio_step() { # peer run file pid
	local p=$1 r=$2 f=$3 pid=$4 j res
	for j in 1 4; do
		if [ -n "${SKIP[$p.fio$j]:-}" ]; then record "fio$j" "$p" - "$r" NA S; continue; fi
		[ "$pid" = - ] || reset_hwm "$pid"
		fio_iops "$f" "$j"
		res=$VAL
		record "fio$j" "$p" - "$r" ${res% *} "$([ "${res#* }" != "$res" ] && echo "${res#* }")"
		[ "$res" = "NA E" ] && SKIP[$p.fio$j]=1
		[ "$pid" = - ] || record "rss_fio$j" "$p" - "$r" "$(hwm_kb "$pid")"
	done
}

# Workloads 1-4 and 6 for one peer, one run, one readahead setting.
seq_peer() { # peer run ra first_ra
	local p=$1 r=$2 ra=$3 first=$4 v="ra$3" m=$WORK/mnt/$1 f pid
	local big=$WORK/data/big
	if [ "$p" = native ]; then
		[ "$first" = 1 ] || return 0
		v="dev$(cat "/sys/class/bdi/$(mountpoint -d "$(df --output=target "$big/model.bin" | tail -1)")/read_ahead_kb" 2>/dev/null)"
		f=$big/model.bin
		drop_caches; seq_step cold native "$v" "$r" "$f" -
		drop_caches; seq_step dwarm native "$v" "$r" "$f" -
		seq_step kwarm native "$v" "$r" "$f" -
		fio_step native "$r" "$f" -
		return 0
	fi
	local opts=""
	# readahead=0: apbundle-mount keeps the bdi's value, so set_ra below is
	# the only readahead setting, the same for every FUSE peer.
	[ "$p" = apbundle ] && opts="max_memory=$((size_bytes + 64 * 1048576)),readahead=0${APB_OPTS:+,$APB_OPTS}"
	if ! mount_peer "$p" "$(peer_image "$p" "$big")" "$m" model.bin "$opts"; then
		record cold "$p" "$v" "$r" NA F
		return 0
	fi
	pid=$MNT_PID
	set_ra "$m" "$ra" || note "cannot set read_ahead_kb on $m"
	f=$m/model.bin
	drop_caches; seq_step cold "$p" "$v" "$r" "$f" "$pid"
	drop_caches; seq_step dwarm "$p" "$v" "$r" "$f" "$pid"
	seq_step kwarm "$p" "$v" "$r" "$f" "$pid"
	[ "$first" = 1 ] && fio_step "$p" "$r" "$f" "$pid"
	if [ "$p" = apbundle ] && [ -r "$m/.stats.json" ]; then
		cp "$m/.stats.json" "$LOGS/apbundle-seq-$v-$r.stats.json" 2>/dev/null
	fi
	umount_peer "$m"
}

run_seq() {
	local r ra first i n k p
	local -a peers=($PEERS)
	n=${#peers[@]}
	make_blob "$WORK/data/big/model.bin" "$size_bytes"
	make_images "$WORK/data/big" "$WORK/data/big"
	for w in cold dwarm kwarm fio1 fio4; do
		echo "rss_$w: $((size_bytes + 64 * 1048576))" >>"$WORK/maxmem.txt"
	done
	for r in $(seq "$RUNS"); do
		first=1
		for ra in $RA_LIST; do
			note "run $r/$RUNS, sequential + fio, read_ahead_kb=$ra"
			for i in $(seq 0 $((n - 1))); do
				k=$(((i + r - 1) % n))   # rotate the order from run to run
				p=${peers[$k]}
				seq_peer "$p" "$r" "$ra" "$first"
			done
			first=0
		done
	done
}

# Workload 5: mount time (cold and warm page cache) and `ls -l`, per set size.
run_mount() {
	local n r p m pid ms t0 t1 probe
	for n in $COUNTS; do
		make_small_set "$n"
		probe=model-000000.bin
		for r in $(seq "$RUNS"); do
			note "run $r/$RUNS, mount time, $n models"
			t0=$(now_ns); ls -l "$WORK/data/small-$n" >/dev/null; t1=$(now_ns)
			record "ls_$n" native - "$r" "$(((t1 - t0) / 1000))e-3"
			for p in $PEERS; do
				case $p in native | nullfs) continue ;; esac
				m=$WORK/mnt/$p
				for mode in cold warm; do
					[ "$mode" = cold ] && drop_caches
					if ! mount_peer "$p" "$(peer_image "$p" "$WORK/data/small-$n")" "$m" "$probe"; then
						record "mount_${mode}_$n" "$p" - "$r" NA F
						continue
					fi
					pid=$MNT_PID
					record "mount_${mode}_$n" "$p" - "$r" "$MNT_MS"
					if [ "$mode" = warm ]; then
						t0=$(now_ns)
						run_child /dev/null timeout "$OP_TIMEOUT" ls -l "$m"
						t1=$(now_ns)
						record "ls_$n" "$p" - "$r" "$(((t1 - t0) / 1000))e-3"
						record "rss_mount_$n" "$p" - "$r" "$(hwm_kb "$pid")"
					fi
					umount_peer "$m"
				done
			done
		done
	done
}

# Workload 7: Zipf-popular whole-model reads, budget 10% of the bundle.
run_zipf() {
	local d=$WORK/data/zipf i r pol m=$WORK/mnt/zipf out pid rb stats budget total
	if [ ! -f "$d.done" ] || [ "$(stat -c %s "$d/model-000.bin" 2>/dev/null)" != "$zipf_bytes" ] ||
		[ "$(find "$d" -type f | wc -l)" != "$ZIPF_MODELS" ]; then
		rm -rf "$d" "$d.done"
		for i in $(seq 0 $((ZIPF_MODELS - 1))); do
			make_blob "$(printf '%s/model-%03d.bin' "$d" "$i")" "$zipf_bytes"
		done
		touch "$d.done"
	fi
	make_images "$d" "$d"
	(cd "$d" && ls) >"$WORK/zipf.names"
	python3 "$bench/zipf.py" seq "$WORK/zipf.names" "$ZIPF_READS" "$ZIPF_S" 42 >"$WORK/zipf.seq"
	total=$((ZIPF_MODELS * zipf_bytes))
	budget=$((total / 10))
	echo "rss_zipf: $budget" >>"$WORK/maxmem.txt"
	for r in $(seq "$RUNS"); do
		note "run $r/$RUNS, zipf ($ZIPF_READS reads of $ZIPF_MODELS models)"
		for pol in native squashfuse_ll lru lfu; do
			case $pol in
			native) drop_caches
				run_child "$WORK/zipf.out" timeout $((OP_TIMEOUT * 4)) python3 "$bench/zipf.py" read "$d" "$WORK/zipf.seq"
				out=$(tail -n 1 "$WORK/zipf.out")
				set -- $out
				record zipf_wall native - "$r" "${1:-NA}"
				record zipf_disk native - "$r" "${3:-NA}"
				continue ;;
			squashfuse_ll) mount_peer squashfuse_ll "$d.sqfs" "$m" model-000.bin || continue ;;
			*) mount_peer apbundle "$d.apbundle" "$m" model-000.bin \
				"max_memory=$budget,eviction=$pol,direct_io${APB_OPTS:+,$APB_OPTS}" || {
					record zipf_wall "apbundle-$pol" - "$r" NA F; continue; } ;;
			esac
			pid=$MNT_PID
			local name=$pol
			[ "$pol" = squashfuse_ll ] || name=apbundle-$pol
			drop_caches
			reset_hwm "$pid"
			run_child "$WORK/zipf.out" timeout $((OP_TIMEOUT * 4)) python3 "$bench/zipf.py" read "$m" "$WORK/zipf.seq"
			out=$(tail -n 1 "$WORK/zipf.out")
			set -- $out
			rb=$(awk '/^read_bytes/ {print $2}' "/proc/$pid/io" 2>/dev/null)
			record zipf_wall "$name" - "$r" "${1:-NA}"
			record zipf_disk "$name" - "$r" "$(( ${3:-0} + ${rb:-0} ))"
			record rss_zipf "$name" - "$r" "$(hwm_kb "$pid")"
			if [ "$name" != squashfuse_ll ]; then
				local sj=$LOGS/zipf-$pol-$r.stats.json
				cat "$m/.stats.json" >"$sj" 2>/dev/null
				python3 - "$name" "$r" "$RES" "$sj" <<-'EOF'
				import json, sys
				name, run, res, sj = sys.argv[1:5]
				try:
				    s = json.load(open(sj))
				    rows = [("zipf_hit", s["hit_rate"]), ("zipf_loaded", s["bytes_loaded"])]
				except Exception:
				    rows = [("zipf_hit", "NA"), ("zipf_loaded", "NA")]
				with open(res, "a") as f:
				    for w, v in rows:
				        f.write("%s\t%s\t-\t%s\t%s\t\n" % (w, name, run, v))
				EOF
			fi
			umount_peer "$m"
		done
	done
	echo "$budget $total $ZIPF_MODELS $zipf_bytes $ZIPF_READS $ZIPF_S" >"$WORK/zipf.params"
}

# ---------------------------------------------------------------- machine
# "virtio_blk disk vda, 256G, rotational=1, read_ahead_kb=8192" for a device.
disk_of() {
	local name pk
	name=$(basename "$(readlink -f "$1")")
	pk=$(lsblk -no PKNAME "/dev/$name" 2>/dev/null | head -1)
	[ -n "$pk" ] && name=$pk
	[ -e "/sys/block/$name" ] || { echo "$1"; return; }
	echo "$(basename "$(readlink -f "/sys/block/$name/device/driver" 2>/dev/null)") disk $name," \
		"$(lsblk -dno SIZE "/dev/$name" | tr -d ' '), model '$(lsblk -dno MODEL "/dev/$name" | sed 's/ *$//')'," \
		"rotational=$(cat "/sys/block/$name/queue/rotational")," \
		"read_ahead_kb=$(cat "/sys/block/$name/queue/read_ahead_kb")"
}

describe_machine() {
	local dev fs
	dev=$(df --output=source "$WORK" | tail -1)
	fs=$(df --output=fstype "$WORK" | tail -1)
	{
		echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
		echo "cores: $(nproc) online ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
		echo "ram: $(free -h | awk '/^Mem:/ {print $2}')"
		echo "kernel: $(uname -r)"
		local pr=/sys/module/page_reporting/parameters
		if [ -r "$pr/reported_kib" ]; then
			echo "free page reporting: on (virtio-balloon; order $(cat "$pr/page_reporting_order"), $(( $(cat "$pr/reported_kib") / 1048576 )) GiB handed back to the host since boot)"
		fi
		echo "workdir: $WORK on $dev ($fs; $(disk_of "$dev"))"
		echo "libfuse: $(pkg-config --modversion fuse3 2>/dev/null)"
		echo "peers: squashfuse $(dpkg-query -W -f='${Version}' squashfuse 2>/dev/null), archivemount $(dpkg-query -W -f='${Version}' archivemount 2>/dev/null), fuse-zip $(dpkg-query -W -f='${Version}' fuse-zip 2>/dev/null), fio $(dpkg-query -W -f='${Version}' fio 2>/dev/null)"
		echo "apbundle: ${APB_COMMIT:-$(git -C "$top" describe --always --dirty 2>/dev/null) ($(git -C "$top" log -1 --format='%cd' --date=format:'%F %R' 2>/dev/null))}"
		echo "started: $START_UTC"
		echo "finished: $(date -u '+%F %T UTC')"
		echo "load average at start: $LOAD0; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "settings: SIZE=$SIZE RUNS=$RUNS FIO_RUNTIME=${FIO_RUNTIME}s RA_LIST='$RA_LIST' COUNTS='$COUNTS' ZIPF_MODELS=$ZIPF_MODELS ZIPF_SIZE=$ZIPF_SIZE ZIPF_READS=$ZIPF_READS ZIPF_S=$ZIPF_S APB_OPTS='$APB_OPTS' QUICK=$QUICK NICE=${NICE:-0}"
	} >"$WORK/machine.txt"
}

# NICE=-10 gives the whole run (the daemons inherit it) a head start over
# other work on a shared machine; every peer gets the same priority.
if [ -n "${NICE:-}" ]; then
	renice -n "$NICE" -p $$ >/dev/null || die "renice $NICE failed"
fi
START_UTC=$(date -u '+%F %T UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
[ -x "$APBMOUNT" ] || note "no $APBMOUNT: apbundle is left out"
for w in $WORKLOADS; do
	case $w in
	seq) run_seq ;;
	mount) run_mount ;;
	zipf) run_zipf ;;
	data) # only prepare the data sets (the slow part), measure nothing
		make_blob "$WORK/data/big/model.bin" "$size_bytes"
		make_images "$WORK/data/big" "$WORK/data/big"
		for n in $COUNTS; do make_small_set "$n"; done
		note "data ready under $WORK/data"; exit 0 ;;
	*) die "unknown workload '$w' (seq mount zipf data)" ;;
	esac
done
describe_machine
python3 "$bench/report.py" "$WORK" "$OUT_MD" "$OUT_PNG" || die "report.py failed"
note "results: $OUT_MD, $OUT_PNG (raw samples: $RES)"
