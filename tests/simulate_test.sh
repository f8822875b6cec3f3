#!/bin/sh
# simulate_test.sh - `apbundle simulate` end to end: the commands of
# apbundle(1) run exactly as written, the JSON object, the table, errors
# (a malformed trace names its line, exit 1; bad options exit 2) and
# `apbundle-mount -o eviction=help`.  Needs no FUSE: the recorded-trace side
# is tests/mount_trace_test.sh.
set -u

if [ -n "${top_builddir:-}" ] && [ -x "$top_builddir/apbundle" ]; then
	APB=$top_builddir/apbundle
	MNT_BIN=$top_builddir/apbundle-mount
else
	echo "apbundle binary not found (set top_builddir)"
	exit 77
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 missing"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/apb-simulate.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP
cd "$T" || exit 1
# the man pages' commands, with these names on PATH
mkdir bin && ln -s "$APB" bin/apbundle && ln -s "$MNT_BIN" bin/apbundle-mount
PATH=$T/bin:$PATH

N=0
FAILS=0
ok() { N=$((N + 1)); echo "ok $N - $1"; }
fail() {
	N=$((N + 1)); FAILS=$((FAILS + 1))
	echo "not ok $N - $1"
	[ -s err ] && sed 's/^/#   stderr: /' err | head -5
}
check() { d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }

# A trace: two models at 64 KiB pages, a hot model read 3 times between
# reads of a cold one; a name with a tab and a leading '#'.
{
	printf '# page_size 65536\n# model hot 1048576\n# model \\#cold\\tone 4194304\n'
	for round in 1 2 3; do
		p=0; while [ $p -lt 16 ]; do printf 'hot\t%d\n' $p; p=$((p + 1)); done
		p=0; while [ $p -lt 64 ]; do printf '\\#cold\\tone\t%d\n' $p; p=$((p + 1)); done
	done
} > lookups.trace

# apbundle(1) EXAMPLES, exactly
apbundle simulate --max-memory 8M lookups.trace > table 2>err
check "simulate --max-memory 8M prints a table" grep -q '^belady ' table
check "the table names every policy" \
	sh -c 'for p in lru lfu sieve s3fifo 2q tinylfu; do grep -q "^$p " table || exit 1; done'
check "the table marks the default" grep -q '^tinylfu .*(default)' table
apbundle simulate --pages 128 --policies lru,tinylfu --json lookups.trace > out.json 2>err
check "simulate --json prints one object with the documented keys" python3 - <<'PY'
import json
o = json.load(open("out.json"))
assert set(o) == {"accesses", "capacity_pages", "default", "policies", "belady"}, o
assert o["accesses"] == 240 and o["capacity_pages"] == 128, o
assert o["default"] == "tinylfu" and set(o["policies"]) == {"lru", "tinylfu"}, o
assert all(0 <= v <= 1 for v in list(o["policies"].values()) + [o["belady"]]), o
assert all(v <= o["belady"] for v in o["policies"].values()), o
assert abs(o["belady"] - 160 / 240) < 1e-6, o   # 80 pages fit: every re-read hits
PY
check "--json output is exactly one line" test "$(wc -l < out.json)" -eq 1

# With 16 pages of budget: LRU loses the hot model to each cold scan,
# Belady keeps it (hits 2 x 16 of the hot re-reads).
apbundle simulate --pages 16 --policies lru --json lookups.trace > small.json 2>err
check "LRU hits nothing when a scan passes, Belady keeps the hot model" python3 - <<'PY'
import json
o = json.load(open("small.json"))
assert o["policies"]["lru"] == 0, o
assert abs(o["belady"] - 32 / 240) < 1e-6, o
PY

# errors
printf '# page_size 65536\nhot\t1\nhot 2\n' > bad.trace
apbundle simulate bad.trace > out 2>err; st=$?
check "a malformed trace exits 1" test $st -eq 1
check "... naming its line" grep -q 'line 3' err
check "... and printing nothing" test ! -s out
apbundle simulate --max-memory 8M --pages 3 lookups.trace > /dev/null 2>err; st=$?
check "--max-memory with --pages is a usage error" test $st -eq 2
apbundle simulate --policies lru,nope lookups.trace > /dev/null 2>err; st=$?
check "an unknown policy is a usage error naming the valid ones" \
	sh -c "test $st -eq 2 && grep -q 'lru, lfu, sieve, s3fifo, 2q, tinylfu' err"
apbundle simulate --page-size 4K lookups.trace > /dev/null 2>err; st=$?
check "another page size than the trace's is a usage error" test $st -eq 2
apbundle simulate missing.trace > /dev/null 2>err; st=$?
check "a missing trace exits 1" sh -c "test $st -eq 1 && grep -q missing.trace err"
apbundle simulate --help > out 2>err
check "--help exits 0 and shows the usage" grep -q '^Usage: apbundle simulate' out

# apbundle-mount(1) EXAMPLES: the policy list
apbundle-mount -o eviction=help > out 2>err; st=$?
check "apbundle-mount -o eviction=help exits 0" test $st -eq 0
check "... listing six policies, one default" \
	sh -c 'test "$(grep -c "^  [a-z0-9]" out)" -eq 6 && test "$(grep -c "(default)" out)" -eq 1'

echo "1..$N"
[ "$FAILS" -eq 0 ]
