#!/bin/sh
# test.sh - the project's whole test suite, as CI runs it (README, .ci/run).
#
# On a fresh Debian 12 machine as root: installs missing packages, builds
# out of tree under build/, and runs, each phase in its own build dir:
#   default   `make check`: Check suites, CLI tests, real FUSE mounts
#   asan      the same in an ASan+UBSan build (halting on the first error)
#   tsan      the threaded suites in a ThreadSanitizer build
#   valgrind  the Check suites of the default build under memcheck
# (which suites: Makefile.am's THREADED_SUITES and VALGRIND_EXCLUDE, read
# with `make print-suites`)
#   deb       tests/deb_test.sh: build, lint, install and purge the .debs
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

# suites BUILDDIR KIND: the suites of KIND (unit or threaded) that
# Makefile.am lists for the phases (`make print-suites`, its one source).
# Fails when make fails or the list is empty (an empty TESTS runs them all).
suites() {
	out=$(make -s --no-print-directory -C "$1" print-suites) || return 1
	list=$(printf '%s\n' "$out" | sed -n "s/^$2: //p")
	[ -n "$list" ] && printf '%s\n' "$list"
}

# phase NAME BUILDDIR SUITES [configure options]: build, run make check
# (SUITES "all": every test; unit or threaded: those of `suites`; extra
# make arguments in $MAKE_EXTRA).
phase() {
	name=$1; bdir=$2; kind=$3; shift 3
	echo "== $name: build ($bdir)"
	if ! "$top/scripts/build.sh" "$bdir" "$@"; then
		echo "== $name: BUILD FAILED"; status=1; fail=$((fail + 1)); return
	fi
	tests=""
	if [ "$kind" != all ] && ! tests=$(suites "$bdir" "$kind"); then
		echo "== $name: make print-suites FAILED"; status=1; fail=$((fail + 1)); return
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

for ph in ${APB_TEST_PHASES:-default asan tsan valgrind deb fuzz}; do
	start=$(date +%s)
	case $ph in
	default) phase default "$top/build/default" all ;;
	asan) phase asan "$top/build/asan" all --enable-asan ;;
	tsan) phase tsan "$top/build/tsan" threaded --enable-tsan ;;
	valgrind)
		MAKE_EXTRA="LOG_COMPILER=$top/scripts/valgrind-run.sh" \
			phase valgrind "$top/build/default" unit ;;
	deb)
		mkdir -p "$top/build"; rc=0
		"$top/tests/deb_test.sh" >"$top/build/deb.out" 2>&1 || rc=$?
		cat "$top/build/deb.out"
		case $rc in
		0 | 77) pass=$((pass + 1)) ;;
		*) fail=$((fail + 1)); status=1 ;;
		esac ;;
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
