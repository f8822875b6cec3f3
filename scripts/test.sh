#!/bin/sh
# test.sh - the project's whole test suite, as CI runs it (README, .ci/run).
#
# On a fresh Debian 12 machine as root: installs missing packages, builds
# out of tree under build/, and runs, each phase in its own build dir:
#   default   `make check`: Check suites, CLI tests, real FUSE mounts
#   asan      the same in an ASan+UBSan build (halting on the first error)
#   tsan      the threaded cache suites in a ThreadSanitizer build
#   valgrind  the unit suites of the default build under memcheck
#   fuzz      every libFuzzer target for APB_FUZZ_SECONDS (default 60) each
# APB_TEST_PHASES selects phases (default: all of them, in that order).
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

# phase NAME BUILDDIR TESTS [configure options]: build, run make check
# (TESTS empty: all of them; extra make arguments in $MAKE_EXTRA).
phase() {
	name=$1; bdir=$2; tests=$3; shift 3
	echo "== $name: build ($bdir)"
	if ! "$top/scripts/build.sh" "$bdir" "$@"; then
		echo "== $name: BUILD FAILED"; status=1; fail=$((fail + 1)); return
	fi
	echo "== $name: make check"
	find "$bdir" -name '*.trs' -delete
	set -- -s -C "$bdir" -j"$jobs" check
	[ -n "$tests" ] && set -- "$@" TESTS="$tests"
	# shellcheck disable=SC2086
	if make "$@" ${MAKE_EXTRA:-} >"$bdir/check.out" 2>&1; then
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

unit="tests/check_format tests/check_format_json tests/check_format_util tests/check_builder
tests/check_builder_atomic tests/check_bundle tests/check_policy tests/check_policies tests/check_simulate
tests/check_cache tests/check_paged
tests/check_paged_integrity tests/check_prefetch tests/check_faults tests/check_shell"
threaded="tests/check_cache tests/check_paged tests/check_paged_integrity tests/check_prefetch
tests/check_stress"
unit=$(echo $unit); threaded=$(echo $threaded)

for ph in ${APB_TEST_PHASES:-default asan tsan valgrind fuzz}; do
	start=$(date +%s)
	case $ph in
	default) phase default "$top/build/default" "" ;;
	asan) phase asan "$top/build/asan" "" --enable-asan ;;
	tsan) phase tsan "$top/build/tsan" "$threaded" --enable-tsan ;;
	valgrind)
		MAKE_EXTRA="LOG_COMPILER=$top/scripts/valgrind-run.sh" \
			phase valgrind "$top/build/default" "$unit" ;;
	fuzz)
		echo "== fuzz: ${APB_FUZZ_SECONDS:-60} s per target"
		if APB_FUZZ_BUILDDIR="$top/build/fuzz" "$top/scripts/fuzz.sh" "${APB_FUZZ_SECONDS:-60}" \
			>"$top/build/fuzz.out" 2>&1; then
			pass=$((pass + $(grep -c 'no crash' "$top/build/fuzz.out" || true)))
		else
			status=1
		fi
		fail=$((fail + $(grep -c ': FAILED' "$top/build/fuzz.out" || true)))
		cat "$top/build/fuzz.out" ;;
	*) echo "test.sh: unknown phase $ph" >&2; exit 2 ;;
	esac
	echo "== $ph: $(( $(date +%s) - start )) s"
done

echo "tests: $pass passed, $fail failed"
exit $status
