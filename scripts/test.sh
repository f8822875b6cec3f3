#!/bin/sh
# test.sh - the project's whole test suite, as CI runs it (README, .ci/run).
#
# On a fresh Debian 12 machine as root: installs missing packages, builds
# out of tree under build/, and runs `make check` (Check suites, CLI tests
# and real FUSE mounts) in a normal build and in an ASan+UBSan build.
# Prints "tests: N passed, M failed" last; exits non-zero on any failure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/deps.sh" test

jobs=$(nproc 2>/dev/null || echo 2)
pass=0; fail=0; status=0

# tally DIR: add the results recorded in DIR's .trs files to pass/fail.
tally() {
	p=$(find "$1" -name '*.trs' -exec grep -h '^:test-result: \(PASS\|XFAIL\|SKIP\)' {} + | wc -l)
	f=$(find "$1" -name '*.trs' -exec grep -h '^:test-result: \(FAIL\|XPASS\|ERROR\)' {} + | wc -l)
	pass=$((pass + p)); fail=$((fail + f))
}

# phase NAME BUILDDIR [configure options]: build and run make check.
phase() {
	name=$1; bdir=$2; shift 2
	echo "== $name: build ($bdir)"
	if ! "$top/scripts/build.sh" "$bdir" "$@"; then
		echo "== $name: BUILD FAILED"; status=1; fail=$((fail + 1)); return
	fi
	echo "== $name: make check"
	find "$bdir" -name '*.trs' -delete
	if make -s -C "$bdir" -j"$jobs" check >"$bdir/check.out" 2>&1; then
		grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR|XFAIL|XPASS):' "$bdir/check.out" || true
	else
		status=1
		grep -E '^(FAIL|ERROR|XPASS):|^# ' "$bdir/check.out" || true
		for log in $(grep -lE '^:test-result: (FAIL|ERROR|XPASS)' $(find "$bdir" -name '*.trs') 2>/dev/null); do
			echo "---- ${log%.trs}.log (last 40 lines)"
			tail -n 40 "${log%.trs}.log" || true
		done
	fi
	tally "$bdir"
}

phase default "$top/build/default"
phase asan "$top/build/asan" --enable-asan

echo "tests: $pass passed, $fail failed"
exit $status
