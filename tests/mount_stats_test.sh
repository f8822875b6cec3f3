#!/bin/sh
# mount_stats_test.sh - .stats.json counters are exact for a known access
# pattern, LRU and LFU evict differently, and the daemon's peak RSS stays
# within max_memory + 24 MiB for a workload 20 times the budget.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

SRC=$WORK/src
mkdir -p "$SRC"
rand_file "$SRC/four" 16384
for m in a b c d e; do rand_file "$SRC/$m" 4096; done
B=$WORK/small.apbundle
# Checksum blocks of one page, so that a page miss loads exactly one page.
make_bundle "$B" -b 4096 four="$SRC/four" a="$SRC/a" b="$SRC/b" c="$SRC/c" \
	d="$SRC/d" e="$SRC/e"
M=$WORK/mnt
J=$M/.stats.json

# Exact counters: a 4-page model read twice, one page per read, O_DIRECT.
start_fg "$M" "$WORK/log.exact" -o direct_io,prefetch=0,page_size=4K,max_memory=64K "$B"
for pass in 1 2; do
	timeout 20 dd if="$M/four" of="$WORK/four.$pass" bs=4096 iflag=direct status=none ||
		fail "dd pass $pass"
	cmp -s "$WORK/four.$pass" "$SRC/four" || fail "dd pass $pass bytes"
done
cp "$J" "$WORK/exact.json"
expect_eq misses "$(json_of "$WORK/exact.json" misses)" 4
expect_eq hits "$(json_of "$WORK/exact.json" hits)" 4
expect_eq evictions "$(json_of "$WORK/exact.json" evictions)" 0
expect_eq hit_rate "$(json_of "$WORK/exact.json" hit_rate)" 0.5
# four's 16 KiB, its block table (4 blocks: 32 bytes) and the table's 8-byte index
expect_eq memory_used "$(json_of "$WORK/exact.json" memory_used)" 16424
expect_eq bytes_loaded "$(json_of "$WORK/exact.json" bytes_loaded)" 16424
expect_eq max_memory "$(json_of "$WORK/exact.json" max_memory)" 65536
expect_eq page_size "$(json_of "$WORK/exact.json" page_size)" 4096
expect_eq prefetches "$(json_of "$WORK/exact.json" prefetches)" 0
expect_eq eviction "$(json_of "$WORK/exact.json" eviction)" '"tinylfu"'
expect_eq "four.hits" "$(model_of "$WORK/exact.json" four hits)" 4
expect_eq "four.misses" "$(model_of "$WORK/exact.json" four misses)" 4
expect_eq "four.cached_bytes" "$(model_of "$WORK/exact.json" four cached_bytes)" 16384
expect_eq "a.misses" "$(model_of "$WORK/exact.json" a misses)" 0
# Reading the statistics does not touch the cache.
expect_eq "misses after reading .stats" "$(json_of "$J" misses)" 4
grep -q "^hits: *4\$" "$M/.stats" || fail ".stats hits"
grep -q "^hit rate: *50.00%\$" "$M/.stats" || fail ".stats hit rate"
stop_fg "$M"
ok "exact .stats.json counters under direct_io,prefetch=0 (4 misses, then 4 hits)"

# LRU versus LFU, with room for 4 pages: a is read 3 times, then b, c, d
# fill the cache and e needs one page.  LRU evicts a (least recently used);
# LFU keeps a (used most often) and evicts one of b, c, d.
for policy in lru lfu; do
	start_fg "$M" "$WORK/log.$policy" \
		-o direct_io,prefetch=0,page_size=4K,max_memory=16K,eviction=$policy "$B"
	for m in a a a b c d e; do
		timeout 20 dd if="$M/$m" of=/dev/null bs=4096 iflag=direct status=none || fail "read $m"
	done
	cp "$J" "$WORK/$policy.json"
	stop_fg "$M"
	expect_eq "$policy evictions" "$(json_of "$WORK/$policy.json" evictions)" 1
	expect_eq "$policy memory_used" "$(json_of "$WORK/$policy.json" memory_used)" 16384
	expect_eq "$policy e cached" "$(model_of "$WORK/$policy.json" e cached_bytes)" 4096
	expect_eq "$policy a hits" "$(model_of "$WORK/$policy.json" a hits)" 2
	expect_eq "$policy eviction key" "$(json_of "$WORK/$policy.json" eviction)" "\"$policy\""
done
expect_eq "lru evicts a" "$(model_of "$WORK/lru.json" a cached_bytes)" 0
expect_eq "lfu keeps a" "$(model_of "$WORK/lfu.json" a cached_bytes)" 4096
kept=0
for m in b c d; do
	kept=$((kept + $(model_of "$WORK/lfu.json" $m cached_bytes)))
done
expect_eq "lfu evicts one of b c d" "$kept" 8192
ok "LRU evicts the early hot model, LFU keeps it (visible in .stats.json)"

# A snapshot still open when the daemon stops is freed at exit: the kernel
# may end the session before the RELEASE of a just-closed file arrives (what
# `grep -q .stats; fusermount3 -u` can do), and SIGTERM with both files held
# open makes that certain.  Under ASan a leak makes the daemon exit non-zero.
start_fg "$M" "$WORK/log.open" -o prefetch=0 "$B"
sleep 60 <"$M/.stats" 3<"$J" &
HOLDER=$!
PIDS="$PIDS $HOLDER"
i=0
until [ "$(readlink "/proc/$HOLDER/fd/3" 2>/dev/null)" = "$(realpath -m "$J")" ]; do
	i=$((i + 1)); [ $i -gt 200 ] && fail "reader of .stats did not start"
	sleep 0.05
done
kill -TERM "$DAEMON_PID"
wait_exit "$DAEMON_PID" || fail "daemon did not exit on SIGTERM"
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
[ "$EXIT_STATUS" -eq 0 ] || fail "daemon exited $EXIT_STATUS on SIGTERM with .stats open"
is_mounted "$M" && fail "$M still mounted after SIGTERM"
ok "SIGTERM with .stats and .stats.json open: clean exit, nothing leaked"

# Peak RSS: 160 MiB of reads through an 8 MiB budget.
for i in 0 1 2 3 4 5 6 7; do rand_file "$SRC/big$i" 20971520; done
BIG=$WORK/big.apbundle
make_bundle "$BIG" big0="$SRC/big0" big1="$SRC/big1" big2="$SRC/big2" \
	big3="$SRC/big3" big4="$SRC/big4" big5="$SRC/big5" big6="$SRC/big6" big7="$SRC/big7"
LIMIT_KB=$(( (8 + 24) * 1024 ))
for mode in direct_io keep_cache; do
	opts=max_memory=8M
	[ "$mode" = direct_io ] && opts="$opts,direct_io"
	start_fg "$M" "$WORK/log.rss.$mode" -o "$opts" "$BIG"
	sanitized=no
	grep -q 'lib[at]san' "/proc/$DAEMON_PID/maps" && sanitized=yes
	readers=""
	for i in 0 1 2 3 4 5 6 7; do
		timeout 120 cmp -s "$SRC/big$i" "$M/big$i" &
		readers="$readers $!"
	done
	for p in $readers; do wait "$p" || fail "$mode: a big model differs"; done
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status")
	used=$(json_of "$J" memory_used)
	[ "$used" -le 8388608 ] || fail "$mode: memory_used $used > max_memory"
	loaded=$(json_of "$J" bytes_loaded)
	[ "$loaded" -ge 167772160 ] || fail "$mode: only $loaded bytes loaded for 160 MiB of reads"
	stop_fg "$M"
	echo "# $mode: daemon VmHWM ${hwm} kB for 160 MiB read with max_memory=8M (limit $LIMIT_KB kB)"
	if [ "$sanitized" = yes ]; then
		echo "# sanitizer build: RSS bound not asserted"
	else
		[ "$hwm" -le "$LIMIT_KB" ] || fail "$mode: peak RSS ${hwm} kB > ${LIMIT_KB} kB"
	fi
done
ok "peak RSS within max_memory + 24 MiB for 8 parallel readers of 20x the budget"
exit 0
