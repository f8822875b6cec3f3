#!/bin/sh
# mount_prefetch_test.sh - issue 14's prefetch that pays for itself, through
# the real mount: one sequential pass over a model four times the budget
# loads each byte once (bytes_loaded <= 1.02x the model) and uses what it
# prefetched (prefetch_hits / prefetches >= 0.95), read with dd through the
# page cache and through a direct_io mount, for the default policy and LRU.
# The readahead must have run (at least a tenth of the model prefetched).
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

SIZE=$((64 * 1024 * 1024))
rand_file "$WORK/big" $SIZE
B=$WORK/big.apbundle
make_bundle "$B" big="$WORK/big"
M=$WORK/mnt
J=$M/.stats.json

# check_pass LABEL: asserts the counters of the pass just made.
check_pass() {
	readahead_counters "$1"
	check_loaded_once "$1"
}

for policy in tinylfu lru; do
	for mode in cached direct; do
		opts=max_memory=16M,eviction=$policy
		flag=""
		[ $mode = direct ] && opts=$opts,direct_io && flag=iflag=direct
		start_fg "$M" "$WORK/log.$policy.$mode" -o "$opts" "$B"
		timeout 120 dd if="$M/big" of="$WORK/out" bs=1M $flag status=none ||
			fail "dd $policy $mode"
		cmp -s "$WORK/out" "$WORK/big" || fail "$policy $mode: bytes differ"
		check_pass "$policy.$mode"
		stop_fg "$M"
		ok "$policy, $mode: one sequential pass loads each byte once, prefetches used"
	done
done
exit 0
