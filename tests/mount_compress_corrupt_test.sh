#!/bin/sh
# mount_compress_corrupt_test.sh - one flipped byte inside a compressed block
# (issue 12's acceptance).  Two bundles, each with one byte flipped: in the
# middle of block 2's zstd frame (the frame decodes to wrong bytes or fails)
# and the first byte of block 4's frame (its magic number: not a frame).
# For each:
#  - `apbundle verify` exits 1 and names the model and the block (index and
#    decoded byte range), and no other block;
#  - `apbundle extract` exits 1, leaves no file and no temporary file for the
#    model, and extracts the other models intact;
#  - `apbundle cat` exits 1 naming the block, having written only the good
#    blocks before it (cat(1) documents that it stops at the bad block);
#  - through the mount (direct_io and the page cache), reads touching the
#    block give EIO, every other block of the model and the other models read
#    correctly, and the daemon logs the model, block and range exactly once.
# Then compressed 4 KiB blocks under 64 KiB pages: a bad block fails only
# its own bytes, not the page's other blocks.
# The stored range of a block comes from the block table, read by
# tests/bundle_block.py from the file itself (docs/FORMAT.md 10.3).
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

APB=$top_builddir/apbundle
BLK="python3 $top_srcdir/tests/bundle_block.py"
BS=65536
SRC=$WORK/src
mkdir -p "$SRC"
# victim: float32 weights, 6 blocks (the last short); near: another
# compressed model; rand: random bytes, stored raw.
python3 - "$SRC" <<'EOF' || fail "cannot generate the models"
import array, random, sys
d, r = sys.argv[1], random.Random(7)
def floats(n):
    return array.array("f", (r.gauss(0, 0.02) for _ in range(n))).tobytes()
open(d + "/victim", "wb").write(floats((5 * 65536 + 1000) // 4))
open(d + "/near", "wb").write(floats(40000))
open(d + "/rand", "wb").write(r.randbytes(100000))
EOF
B=$WORK/good.apbundle
"$APB" create --compress zstd "$B" "victim=$SRC/victim" "near=$SRC/near" "rand=$SRC/rand" \
	>/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "create"; }
NBLK=$(( ($(wc -c <"$SRC/victim") + BS - 1) / BS ))

# bad_bundle OUT K WHERE: a copy of B with one byte of block K's stored
# frame flipped (WHERE: mid or first); sets FIRST and LAST, the block's
# decoded byte range.
bad_bundle() {
	set -- "$1" "$2" "$3" $($BLK range "$B" victim "$2")
	[ $# -eq 8 ] || fail "no stored range for block $2"
	[ "$8" = zstd ] && [ "$5" -lt "$BS" ] || fail "block $2 is not a compressed frame ($5 bytes, $8)"
	FIRST=$6 LAST=$7
	cp "$B" "$1"
	if [ "$3" = mid ]; then pos=$(($4 + $5 / 2)); else pos=$4; fi
	$BLK flip "$1" "$pos" || fail "cannot flip byte $pos"
}

M=$WORK/mnt
for case in 2:mid 4:first; do
	K=${case%%:*} where=${case#*:}
	BAD=$WORK/bad.$K.apbundle
	bad_bundle "$BAD" "$K" "$where"
	named="model \"victim\": block $K (bytes $FIRST-$LAST)"

	"$APB" verify "$BAD" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	expect_eq "block $K: verify exit status" "$rc" 1
	grep -qF "$named" "$WORK/err" || { cat "$WORK/err" >&2; fail "verify does not say: $named"; }
	expect_eq "block $K: blocks verify names" "$(grep -c 'block [0-9]' "$WORK/err")" 1
	ok "block $K ($where byte): verify exits 1 naming $named"

	rm -rf "$WORK/x" && mkdir "$WORK/x"
	"$APB" extract "$BAD" -C "$WORK/x" >/dev/null 2>"$WORK/err"
	rc=$?
	expect_eq "block $K: extract exit status" "$rc" 1
	grep -qF "$named" "$WORK/err" || { cat "$WORK/err" >&2; fail "extract does not say: $named"; }
	expect_eq "block $K: files left by extract" "$(ls -A "$WORK/x" | tr '\n' ' ')" "near rand "
	cmp "$SRC/near" "$WORK/x/near" >&2 && cmp "$SRC/rand" "$WORK/x/rand" >&2 ||
		fail "block $K: extract of the good models"
	ok "block $K: extract exits 1, no file or temporary file for victim, the others intact"

	"$APB" cat "$BAD" victim >"$WORK/cat.out" 2>"$WORK/err"
	rc=$?
	expect_eq "block $K: cat exit status" "$rc" 1
	grep -qF "$named" "$WORK/err" || { cat "$WORK/err" >&2; fail "cat does not say: $named"; }
	expect_eq "block $K: bytes cat wrote" "$(wc -c <"$WORK/cat.out")" "$FIRST"
	cmp -n "$FIRST" "$SRC/victim" "$WORK/cat.out" >&2 || fail "block $K: cat wrote bad bytes"
	ok "block $K: cat exits 1 after exactly the $FIRST good bytes before the block"

	for mode in direct_io keep_cache; do
		opts="max_memory=2M"
		[ "$mode" = direct_io ] && opts="$opts,direct_io"
		log=$WORK/log.$K.$mode
		start_fg "$M" "$log" -o "$opts" "$BAD"
		for r in 1 2; do
			$VERIFY pread_errno EIO "$M/victim" "$FIRST" $BS || fail "$mode: block $K read $r"
			$VERIFY pread_errno EIO "$M/victim" $((FIRST + 1000)) 10 || fail "$mode: inside block $K"
		done
		if [ "$mode" = direct_io ]; then
			$VERIFY pread_errno EIO "$M/victim" $((FIRST - 100)) 200 ||
				fail "$mode: read across the start of block $K"
		fi
		b=0
		while [ $b -lt "$NBLK" ]; do
			[ $b -eq "$K" ] || $VERIFY pread_ok "$SRC/victim" "$M/victim" $((b * BS)) $BS ||
				fail "$mode: block $b of victim"
			b=$((b + 1))
		done
		# the bytes right before and right after the bad block
		$VERIFY pread_ok "$SRC/victim" "$M/victim" $((FIRST - 4096)) 4096 ||
			fail "$mode: the 4 KiB before block $K"
		$VERIFY pread_ok "$SRC/victim" "$M/victim" $((LAST + 1)) 4096 ||
			fail "$mode: the 4 KiB after block $K"
		for other in near rand; do
			$VERIFY whole "$SRC/$other" "$M/$other" || fail "$mode: model $other"
			$VERIFY random "$SRC/$other" "$M/$other" 30 3 || fail "$mode: random reads of $other"
		done
		timeout 20 cat "$M/victim" >/dev/null 2>&1 && fail "$mode: cat of the corrupt model succeeded"
		$VERIFY pread_ok "$SRC/victim" "$M/victim" 0 $BS || fail "$mode: block 0 after the errors"
		stop_fg "$M"
		expect_eq "$mode: log lines about bad blocks" "$(grep -c 'fails its checksum' "$log")" 1
		grep -qF "$named fails its checksum" "$log" ||
			{ cat "$log" >&2; fail "$mode: the log does not say: $named"; }
		ok "block $K, $mode: EIO for reads touching block $K only, logged once: $(grep -F "$named" "$log")"
	done
done

# Compressed 4 KiB blocks under the mount's 64 KiB pages: the page holding
# bad block 5 fails whole, its good blocks are still served (paged.c).
B=$WORK/small.apbundle
"$APB" create --compress zstd --block-size 4K "$B" "victim=$SRC/victim" >/dev/null 2>"$WORK/err" ||
	{ cat "$WORK/err" >&2; fail "create --block-size 4K"; }
BS=4096
bad_bundle "$WORK/bad.small.apbundle" 5 mid
start_fg "$M" "$WORK/log.small" -o direct_io,page_size=64K "$WORK/bad.small.apbundle"
$VERIFY pread_errno EIO "$M/victim" "$FIRST" $BS || fail "4K blocks: block 5"
$VERIFY pread_errno EIO "$M/victim" $((FIRST - 100)) 200 || fail "4K blocks: across block 5"
$VERIFY pread_ok "$SRC/victim" "$M/victim" 0 "$FIRST" || fail "4K blocks: blocks 0-4 in one read"
$VERIFY pread_ok "$SRC/victim" "$M/victim" $((LAST + 1)) $((65536 - LAST - 1)) ||
	fail "4K blocks: blocks 6-15, the rest of the page"
$VERIFY pread_ok "$SRC/victim" "$M/victim" 65536 65536 || fail "4K blocks: the next page"
stop_fg "$M"
grep -qF "model \"victim\": block 5 (bytes $FIRST-$LAST) fails its checksum" "$WORK/log.small" ||
	{ cat "$WORK/log.small" >&2; fail "4K blocks: the log does not name block 5"; }
ok "compressed 4 KiB blocks in 64 KiB pages: EIO for block 5 only, the page's other blocks served"
exit 0
