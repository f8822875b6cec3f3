#!/bin/sh
# fuzz.sh - build the libFuzzer targets and run each one for SECONDS.
#
# Usage: scripts/fuzz.sh [SECONDS]      (default 60, what CI uses)
# Environment: APB_FUZZ_BUILDDIR (default build/fuzz), APB_FUZZ_TARGETS
# (default "manifest bundle size mount options control frame http trace").  Targets run one after another at
# nice 19 (the machine is shared); each starts from the seed corpus in
# tests/fuzz/corpus/<target> plus what earlier runs found (kept in the
# build dir, never written into the source tree).  Prints one summary line
# per target (executions, cov, ft, crash file if any); exits 1 if any
# target found a crash, leak or timeout.
set -eu
secs=${1:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
bdir=${APB_FUZZ_BUILDDIR:-$top/build/fuzz}
targets=${APB_FUZZ_TARGETS:-manifest bundle size mount options control frame http trace}

[ -x "$top/configure" ] || "$top/autogen.sh" >/dev/null 2>&1
. "$top/scripts/srcdir.sh"
apb_srcdir "$top"
mkdir -p "$bdir"
[ -f "$bdir/Makefile" ] || (cd "$bdir" && "$src/configure" -q)
make -s -C "$bdir" $(for t in $targets; do printf "fuzz/fuzz_%s " "$t"; done)

out="$bdir/fuzz-run"
mkdir -p "$out"
status=0
for t in $targets; do
	work="$out/corpus-$t"
	log="$out/$t.log"
	mkdir -p "$work"
	rm -f "$out/$t-"crash-* "$out/$t-"leak-* "$out/$t-"timeout-* "$out/$t-"oom-* "$out/$t-"slow-unit-*
	set -- -max_total_time="$secs" -print_final_stats=1 -timeout=20 \
		-rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$out/$t-" \
		-dict="$top/tests/fuzz/apbundle.dict"
	# Short text inputs: no manifest dictionary, default max_len.
	case $t in size | options | control | http | trace) set -- -max_total_time="$secs" -print_final_stats=1 \
		-timeout=20 -artifact_prefix="$out/$t-" ;;
	# Stored blocks: binary, no manifest dictionary, up to a 64 KiB block.
	frame) set -- -max_total_time="$secs" -print_final_stats=1 -timeout=20 \
		-rss_limit_mb=2048 -max_len=65600 -artifact_prefix="$out/$t-" ;; esac
	rc=0
	nice -n 19 "$bdir/fuzz/fuzz_$t" "$@" "$work" "$top/tests/fuzz/corpus/$t" \
		>"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -aE '^#[0-9]+.*(DONE|cov:)' "$log" | tail -n 1 |
		sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\).*/\1 \2/p')
	crash=$(ls "$out/$t-"* 2>/dev/null | head -n 1 || true)
	if [ $rc -ne 0 ] || [ -n "$crash" ]; then
		status=1
		echo "fuzz_$t: FAILED (exit $rc) after ${execs:-?} executions; ${crash:-no artifact}; log $log"
		grep -aE 'ERROR|CHECK failed|SUMMARY' "$log" | head -n 5 || true
	else
		echo "fuzz_$t: ${execs:-?} executions in ${secs} s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) files, no crash"
	fi
done
exit $status
