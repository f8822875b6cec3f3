# mount_lib.sh - helpers sourced by the apbundle-mount tests (tests/mount_*.sh).
#
# Every test gets a private work dir; every mount it makes and every daemon
# it starts is recorded and undone by the EXIT trap, even when a check fails
# or the test is interrupted.  Anything that could hang runs under timeout.
# Skips (exit 77) only when /dev/fuse or fusermount3 is missing.

set -u

: "${top_builddir:=$(pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
MOUNT_BIN=$top_builddir/apbundle-mount
MKBUNDLE=$top_builddir/tests/mount_mkbundle
VERIFY="timeout 120 python3 $top_srcdir/tests/mount_verify.py"

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
	echo "SKIP: /dev/fuse or fusermount3 missing"
	exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/apbm-test.XXXXXX") || exit 1
MOUNTS=""
PIDS=""
TESTS_RUN=0

cleanup() {
	for m in $MOUNTS; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		fi
	done
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "FAIL: $*" >&2
	if [ -n "${DAEMON_LOG:-}" ] && [ -s "$DAEMON_LOG" ]; then
		echo "--- last lines of the daemon's log $DAEMON_LOG:" >&2
		head -n 60 "$DAEMON_LOG" >&2
	fi
	exit 1
}

ok() {
	TESTS_RUN=$((TESTS_RUN + 1))
	echo "ok $TESTS_RUN - $*"
}

# is_mounted MNT: true when MNT is an apbundle mount right now.
is_mounted() {
	grep -q " $(realpath -m "$1") fuse.apbundle-mount " /proc/self/mounts
}

# wait_mounted MNT [PID]: waits up to 10 s for the mount (and PID to live).
wait_mounted() {
	_i=0
	while ! is_mounted "$1"; do
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			return 1
		fi
		_i=$((_i + 1))
		[ $_i -gt 200 ] && return 1
		sleep 0.05
	done
	# The first access waits until the daemon answered INIT.
	timeout 10 stat "$1" >/dev/null
}

# alive PID: true while PID runs (a zombie counts as exited).
alive() {
	[ -r "/proc/$1/stat" ] && ! awk '{ exit $3 == "Z" ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null
}

# wait_exit PID: waits up to 10 s for PID to exit; sets EXIT_STATUS.
wait_exit() {
	_i=0
	while alive "$1"; do
		_i=$((_i + 1))
		[ $_i -gt 200 ] && return 1
		sleep 0.05
	done
	wait "$1"
	EXIT_STATUS=$?
	return 0
}

# start_fg MNT LOG ARGS...: runs apbundle-mount -f ARGS MNT in the background
# with stderr to LOG; sets DAEMON_PID once the mount is usable.
start_fg() {
	_mnt=$1
	_log=$2
	shift 2
	mkdir -p "$_mnt"
	MOUNTS="$MOUNTS $_mnt"
	"$MOUNT_BIN" -f "$@" "$_mnt" 2>"$_log" &
	DAEMON_PID=$!
	DAEMON_LOG=$_log
	PIDS="$PIDS $DAEMON_PID"
	wait_mounted "$_mnt" "$DAEMON_PID" || { cat "$_log" >&2; fail "mount of $_mnt not ready"; }
}

# stop_fg MNT: unmounts with fusermount3 -u and requires the daemon to exit 0.
stop_fg() {
	timeout 10 fusermount3 -u "$1" || fail "fusermount3 -u $1"
	wait_exit "$DAEMON_PID" || fail "daemon $DAEMON_PID did not exit after unmount"
	[ "$EXIT_STATUS" -eq 0 ] || fail "daemon exited $EXIT_STATUS after unmount"
	is_mounted "$1" && fail "$1 still mounted"
	return 0
}

# daemon_pid MNT: pid of the apbundle-mount process serving MNT (not our child).
daemon_pid() {
	for _p in /proc/[0-9]*; do
		_c=$(tr '\0' ' ' 2>/dev/null <"$_p/cmdline") || continue
		case $_c in
		*apbundle-mount*" $1 "*|*apbundle-mount*" $1") echo "${_p#/proc/}"; return 0 ;;
		esac
	done
	return 1
}

# wait_gone PID: waits up to 10 s for a process that is not our child to end.
wait_gone() {
	_i=0
	while kill -0 "$1" 2>/dev/null; do
		_i=$((_i + 1))
		[ $_i -gt 200 ] && return 1
		sleep 0.05
	done
	return 0
}

# json_of FILE KEY / model_of FILE NAME KEY: values from .stats.json.
json_of() {
	$VERIFY json "$1" "$2" || fail "cannot read $2 from $1"
}

model_of() {
	$VERIFY model "$1" "$2" "$3" || fail "cannot read $2.$3 from $1"
}

# readahead_counters LABEL: saves $J (.stats.json) as $WORK/LABEL.json and
# sets loaded pf used wasted seq seeks win from it.
readahead_counters() {
	cp "$J" "$WORK/$1.json"
	loaded=$(json_of "$WORK/$1.json" bytes_loaded)
	pf=$(json_of "$WORK/$1.json" prefetches)
	used=$(json_of "$WORK/$1.json" prefetch_hits)
	wasted=$(json_of "$WORK/$1.json" prefetch_wasted)
	seq=$(json_of "$WORK/$1.json" sequential_reads)
	seeks=$(json_of "$WORK/$1.json" readahead_seeks)
	win=$(json_of "$WORK/$1.json" readahead_window)
	echo "# $1: bytes_loaded $loaded for $SIZE, prefetches $pf, used $used, wasted $wasted," \
		"sequential reads $seq, seeks $seeks, window $win"
}

# check_loaded_once LABEL: after readahead_counters, one pass over a SIZE-byte
# model (64 KiB pages) loaded it at most 1.02 times and used >= 95% of what it
# prefetched.  How much readahead fetched depends on how fast the reader is;
# a tenth of the model at least keeps the accuracy check meaningful.
check_loaded_once() {
	[ $((loaded * 100)) -le $((SIZE * 102)) ] ||
		fail "$1: $loaded bytes loaded for a $SIZE-byte model (> 1.02x)"
	[ $((pf * 10)) -ge $((SIZE / 65536)) ] || fail "$1: readahead barely ran ($pf prefetches)"
	[ $((used * 100)) -ge $((pf * 95)) ] || fail "$1: prefetch accuracy $used / $pf < 0.95"
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# rand_file PATH SIZE: SIZE bytes of random data.
rand_file() {
	head -c "$2" /dev/urandom >"$1" || fail "cannot write $1"
}

# make_bundle OUT ARGS...: mount_mkbundle with a check.
make_bundle() {
	"$MKBUNDLE" "$@" || fail "cannot build bundle $1"
}

# numpy_python: sets NPY to a python3 that has numpy (Debian's python3-numpy,
# scripts/deps.sh test: an earlier python3 on PATH may lack it), else skips.
numpy_python() {
	for NPY in python3 /usr/bin/python3; do
		"$NPY" -c 'import numpy' 2>/dev/null && return 0
	done
	echo "SKIP: no python3 with numpy (python3-numpy)"
	exit 77
}
