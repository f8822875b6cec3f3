#!/bin/sh
# mount_budget_test.sh - the budget holds for models whose block tables are
# larger than the budget itself (issue: block layer).
#
# Sparse models (no disk space, no reading of holes by the builder) with
# large block tables: 4 GiB at 512-byte blocks (a 64 MiB table) mounted with
# max_memory=1M, and 20 GiB at 4 KiB blocks (a 40 MiB table) with
# max_memory=8M.  Reading part of each must make the daemon read about
# what it serves (the model bytes plus the table chunks of those blocks,
# from /proc/PID/io rchar) and keep its peak RSS (VmHWM) within
# max_memory + 24 MiB, whatever the size of the whole table.
. "$(dirname "$0")/mount_lib.sh"

APB=$top_builddir/apbundle

# check_read NAME SIZE BLOCK MAXMEM MIB: builds, mounts, reads MIB MiB, checks.
check_read() {
	name=$1 size=$2 block=$3 maxmem=$4 mib=$5
	truncate -s "$size" "$WORK/$name.bin"
	"$APB" create --block-size "$block" "$WORK/$name.apbundle" "m=$WORK/$name.bin" \
		>/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "$name: create"; }
	start_fg "$WORK/mnt.$name" "$WORK/log.$name" -o "max_memory=$maxmem" "$WORK/$name.apbundle"
	r0=$(awk '/^rchar/ { print $2 }' "/proc/$DAEMON_PID/io")
	timeout 60 dd if="$WORK/mnt.$name/m" of="$WORK/part.$name" bs=1M count="$mib" status=none ||
		fail "$name: read of $mib MiB"
	r1=$(awk '/^rchar/ { print $2 }' "/proc/$DAEMON_PID/io")
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$DAEMON_PID/status")
	cmp -s "$WORK/part.$name" "$WORK/$name.bin" -n $((mib << 20)) ||
		fail "$name: bytes differ from the source"
	stop_fg "$WORK/mnt.$name"
	# needed: the model bytes read and 8 bytes of table per block of them
	need=$(( (mib << 20) + (mib << 20) / block * 8 ))
	read=$((r1 - r0))
	echo "# $name: read $read bytes for $need needed ($((read * 100 / need))%), VmHWM ${hwm} KiB"
	[ $((read * 100)) -le $((need * 125)) ] ||
		fail "$name: the daemon read $read bytes, more than 1.25 x the $need it needed"
	limit=$(( ($(awk -v s="$maxmem" 'BEGIN { print (s ~ /M$/) ? s * 1024 : s / 1024 }') ) + 24 * 1024 ))
	[ "$hwm" -le "$limit" ] ||
		fail "$name: peak RSS ${hwm} KiB > max_memory + 24 MiB (${limit} KiB)"
	ok "$name: $mib MiB of a $size model ($block-byte blocks) under max_memory=$maxmem"
	rm -f "$WORK/$name.apbundle" "$WORK/part.$name"
}

check_read b512 4G 512 1M 16
check_read b4k 20G 4096 8M 64
echo "1..$TESTS_RUN"
