#!/bin/sh
# mount_corrupt_test.sh - a corrupted block gives EIO for reads that touch it
# and only those: the rest of the model and the other models read fine, the
# daemon logs one line per bad block naming the model, the block and its byte
# range (from the library's error: /proc/PID/io shows the bad block was read
# once, not again to find it), and keeps serving.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

SRC=$WORK/src
mkdir -p "$SRC"
BS=65536
rand_file "$SRC/victim" $((5 * BS))
rand_file "$SRC/other" 200000
B=$WORK/good.apbundle
make_bundle "$B" -b $BS victim="$SRC/victim" other="$SRC/other"
M=$WORK/mnt

# Where does victim start in the bundle?  Ask the mount.
start_fg "$M" "$WORK/log.good" "$B"
off=$(getfattr --absolute-names --only-values -n user.apbundle.offset "$M/victim") ||
	fail "no offset xattr"
stop_fg "$M"

# Flip one byte in block 2 of victim.
BAD=$WORK/bad.apbundle
cp "$B" "$BAD"
pos=$((off + 2 * BS + 1234))
python3 - "$BAD" "$pos" <<'EOF' || fail "cannot corrupt"
import sys
path, pos = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(pos)
    b = f.read(1)
    f.seek(pos)
    f.write(bytes([b[0] ^ 0x5A]))
EOF

for mode in direct_io keep_cache; do
	opts="prefetch=0"
	[ "$mode" = direct_io ] && opts="$opts,direct_io"
	log=$WORK/log.$mode
	start_fg "$M" "$log" -o "$opts" "$BAD"
	# The first read of the bad block: the daemon reads it once (plus
	# its table and FUSE requests), never a second time to find the block.
	# Asserted with direct_io only: for a buffered read the kernel itself
	# retries a failed readahead with a second request, which loads the
	# block again (printed, not asserted).
	rchar0=$(awk '$1 == "rchar:" { print $2 }' "/proc/$DAEMON_PID/io")
	$VERIFY pread_errno EIO "$M/victim" $((2 * BS)) $BS || fail "$mode: first bad block read"
	rchar1=$(awk '$1 == "rchar:" { print $2 }' "/proc/$DAEMON_PID/io")
	echo "# $mode: the daemon read $((rchar1 - rchar0)) bytes to serve (and fail) a $BS-byte read of the bad block"
	[ "$mode" = keep_cache ] || [ $((rchar1 - rchar0)) -lt $((BS + BS / 2)) ] ||
		fail "$mode: the daemon read $((rchar1 - rchar0)) bytes for one bad $BS-byte block"
	# The bad block, any read overlapping it, twice.
	for r in 1 2; do
		$VERIFY pread_errno EIO "$M/victim" $((2 * BS)) $BS || fail "$mode: bad block read $r"
		$VERIFY pread_errno EIO "$M/victim" $((2 * BS + 1000)) 10 || fail "$mode: read inside bad block"
	done
	if [ "$mode" = direct_io ]; then
		$VERIFY pread_errno EIO "$M/victim" $((BS + 100)) $BS || fail "$mode: read across the bad block"
	fi
	# Every other block of victim, and the other model, are intact.
	for blk in 0 1 3 4; do
		$VERIFY pread_ok "$SRC/victim" "$M/victim" $((blk * BS)) $BS || fail "$mode: block $blk"
	done
	$VERIFY pread_ok "$SRC/victim" "$M/victim" $((3 * BS)) $((2 * BS + 10)) ||
		fail "$mode: blocks 3-4"
	$VERIFY whole "$SRC/other" "$M/other" || fail "$mode: other model"
	$VERIFY random "$SRC/other" "$M/other" 40 5 || fail "$mode: other model, random reads"
	timeout 20 cat "$M/victim" >/dev/null 2>&1 && fail "$mode: cat of the corrupt model succeeded"
	# Still serving after all that.
	$VERIFY pread_ok "$SRC/victim" "$M/victim" 0 $BS || fail "$mode: block 0 after errors"
	failures=$(grep -c "^checksum failures: *[1-9]" "$M/.stats")
	expect_eq "$mode: .stats counts checksum failures" "$failures" 1
	stop_fg "$M"
	lines=$(grep -c 'checksum' "$log")
	expect_eq "$mode: log lines about bad blocks" "$lines" 1
	grep -q "model \"victim\": block 2 (bytes $((2 * BS))-$((3 * BS - 1))) fails its checksum" "$log" ||
		{ cat "$log" >&2; fail "$mode: log names the model, block and range"; }
	ok "$mode: EIO exactly for reads touching the corrupt block, one log line, all else served"
done
exit 0
