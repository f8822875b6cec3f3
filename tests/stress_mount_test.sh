#!/bin/sh
# stress_mount_test.sh - parallel readers through a real mount, and bundles
# changed under a live mount.
#
# Phase 1 (stress): apbundle-mount -f with a 16-page budget (4 KiB pages),
# once with direct_io (every read through the paging cache) and once with
# the kernel page cache; 8 reader processes compare random ranges of random
# models with the source files (cmp -i/-n) for APB_STRESS_SECONDS seconds
# (default 3 per mount) while .stats is read; then unmount, exit status 0.
# Phase 2 (changed bundle): under a direct_io mount one block of one model
# is corrupted in place (then exactly that model fails, only from that
# block on, and everything else is served), or the bundle is truncated,
# overwritten in place, or replaced by rename; every model is then read
# whole: each read either succeeds with exactly the original bytes or fails
# (EIO), and whatever a failing read returned before the error is a correct
# prefix.  The daemon must survive, keep answering, and unmount cleanly.
# Phase 3 (I/O errors in the daemon): with tests/fault_preload.c preloaded,
# preads of one block of one model fail with EIO: exactly the reads of that
# block fail, everything else is served; once the faults stop, that block
# and every model read back exactly (the error was not cached).
# Skips (77) only without a usable /dev/fuse.
set -u
APB=${APBUNDLE:-apbundle}
MOUNT=${APBUNDLE_MOUNT:-apbundle-mount}
secs=${APB_STRESS_SECONDS:-3}
[ -r /dev/fuse ] && [ -w /dev/fuse ] || { echo "stress_mount_test: no usable /dev/fuse, skipped"; exit 77; }
for c in "$APB" "$MOUNT" fusermount3 cmp; do
	command -v "$c" >/dev/null 2>&1 || { echo "stress_mount_test: $c not found" >&2; exit 99; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/apbstress.XXXXXX") || exit 99
mnt="$work/mnt"
mpid=
readers=
cleanup() {
	for p in $readers; do kill "$p" 2>/dev/null; done
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	[ -n "$mpid" ] && { kill "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null; }
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() { echo "stress_mount_test: FAIL: $*" >&2; [ -s "$work/mount.log" ] && tail -n 5 "$work/mount.log" >&2; exit 1; }

# Sources: 50 models, 0 bytes to 400 KiB, nested names.
mkdir -p "$work/src/a/b" "$work/src/c" "$mnt"
i=0
while [ $i -lt 50 ]; do
	case $((i % 4)) in 0) d=src ;; 1) d=src/a ;; 2) d=src/a/b ;; *) d=src/c ;; esac
	head -c $(( (i * 97213 + i * i * 13) % 409600 )) /dev/urandom > "$work/$d/m$i"
	i=$((i + 1))
done
"$APB" create -b 4K "$work/b.apbundle" "$work/src" >/dev/null || fail "create"
(cd "$work/src" && find . -type f | sed 's|^\./||' | sort) > "$work/names"
while read -r n; do printf '%s %s\n' "$n" "$(wc -c < "$work/src/$n")"; done < "$work/names" > "$work/sizes"

# mount OPTS BUNDLE: starts the daemon in the foreground, waits for the mount.
mount_it() {
	"$MOUNT" -f -o "$1" "$2" "$mnt" >"$work/mount.log" 2>&1 &
	mpid=$!
	t=0
	while ! mountpoint -q "$mnt"; do
		kill -0 "$mpid" 2>/dev/null || fail "mount exited early: $(cat "$work/mount.log")"
		t=$((t + 1))
		[ $t -lt 1000 ] || fail "mount not ready after 10 s"
		sleep 0.01
	done
}

# unmount_it: fusermount3 -u, then the daemon must exit 0.
unmount_it() {
	fusermount3 -u "$mnt" || fail "fusermount3 -u failed"
	wait "$mpid"
	st=$?
	mpid=
	[ $st -eq 0 ] || fail "daemon exited $st after unmount"
}

# reader SEED END OUT: random ranges until time END; writes "bytes ops" to OUT.
reader() {
	awk -v seed="$1" 'BEGIN { srand(seed) } { n[NR] = $1; s[NR] = $2 }
	END { for (k = 0; k < 200000; k++) { i = int(rand() * NR) + 1; sz = s[i];
		off = int(rand() * (sz + 1)); len = int(rand() * 40000) + 1;
		if (off + len > sz) len = sz - off; print n[i], off, len } }' "$work/sizes" |
	{
		bytes=0 ops=0
		while read -r name off len; do
			if [ "$len" -gt 0 ]; then
				cmp -s -i "$off:$off" -n "$len" "$mnt/$name" "$work/src/$name" ||
					{ echo "MISMATCH $name $off $len" > "$3"; exit 1; }
			fi
			bytes=$((bytes + len)) ops=$((ops + 1))
			[ $((ops % 16)) -ne 0 ] || [ "$(date +%s)" -lt "$2" ] || break
		done
		echo "$bytes $ops" > "$3"
	}
}

total_bytes=0 total_ops=0
for opts in "max_memory=64K,page_size=4K,direct_io" "max_memory=64K,page_size=4K"; do
	mount_it "$opts" "$work/b.apbundle"
	want=$( (printf '%s\n' .metrics .stats .stats.json a c; cd "$work/src" && ls -d m*) | sort | tr '\n' ' ')
	[ "$(ls -A "$mnt" | sort | tr '\n' ' ')" = "$want" ] ||
		fail "unexpected root listing: $(ls -A "$mnt" | tr '\n' ' ')"
	end=$(( $(date +%s) + secs ))
	readers=
	r=1
	while [ $r -le 8 ]; do
		reader "$r$$" "$end" "$work/r$r" &
		readers="$readers $!"
		r=$((r + 1))
	done
	while [ "$(date +%s)" -lt "$end" ]; do
		grep -qi 'memory' "$mnt/.stats" ||
			fail ".stats unreadable during the stress"
		sleep 0.3
	done
	for p in $readers; do wait "$p" || true; done
	readers=
	r=1
	while [ $r -le 8 ]; do
		[ -s "$work/r$r" ] || fail "reader $r produced no result"
		read -r b o < "$work/r$r"
		[ "$b" = MISMATCH ] && fail "reader $r ($opts): $(cat "$work/r$r")"
		total_bytes=$((total_bytes + b)) total_ops=$((total_ops + o))
		r=$((r + 1))
	done
	kill -0 "$mpid" 2>/dev/null || fail "daemon died under stress ($opts)"
	cp "$mnt/.stats.json" "$work/stats.json"
	unmount_it
done
[ $total_ops -gt 100 ] || fail "only $total_ops reads done"
echo "stress_mount_test: 8 readers x 2 mounts x ${secs} s: $total_bytes bytes verified in $total_ops reads"

# ---- phase 2: the bundle changes under a live mount ----
# read_all TAG: reads every model whole; counts exact reads and clean
# failures; any wrong byte (even before an error) fails the test.
read_all() {
	good=0 eio=0
	while read -r n; do
		if cat "$mnt/$n" > "$work/got" 2>/dev/null; then
			cmp -s "$work/got" "$work/src/$n" || fail "$1: $n: a read succeeded with WRONG BYTES"
			good=$((good + 1))
		else
			sz=$(wc -c < "$work/got")
			cmp -s -n "$sz" "$work/got" "$work/src/$n" ||
				fail "$1: $n: wrong bytes served before the error"
			eio=$((eio + 1))
		fi
	done < "$work/names"
	kill -0 "$mpid" 2>/dev/null || fail "$1: the daemon died"
	ls "$mnt" >/dev/null || fail "$1: the mount stopped answering"
	cat "$mnt/.stats" >/dev/null || fail "$1: .stats unreadable"
	echo "stress_mount_test: $1: $good models exact, $eio refused with an error"
}

# corrupt_block: one byte of the second block of the largest model flipped,
# as media corruption would: size and mtime stay (a bundle whose size or
# mtime changed under the mount is refused whole, like truncate below).
corrupt_block() {
	set -- $("$APB" list "$work/live.apbundle" | awk 'NR > 1 && $2 > 8192 { print $2, $3, $1 }' | sort -n | tail -n 1)
	victim=$3
	pos=$(($2 + 5000))
	b=$(od -An -tu1 -j "$pos" -N1 "$work/live.apbundle" | tr -d ' ')
	touch -r "$work/live.apbundle" "$work/stamp"
	printf "$(printf '\\%03o' $(((b + 1) % 256)))" |
		dd of="$work/live.apbundle" bs=1 seek="$pos" conv=notrunc 2>/dev/null
	touch -r "$work/stamp" "$work/live.apbundle"
	# the first block is still served exactly; the corrupt one is refused
	dd if="$mnt/$victim" bs=4096 count=1 2>/dev/null | cmp -s - "$work/src/$victim" -n 4096 ||
		fail "corrupt-block: the intact first block of $victim is not served exactly"
	dd if="$mnt/$victim" of=/dev/null bs=4096 skip=1 count=1 2>/dev/null &&
		fail "corrupt-block: the corrupted block of $victim was served"
}

size=$(wc -c < "$work/b.apbundle")
for change in corrupt-block truncate overwrite rename; do
	cp "$work/b.apbundle" "$work/live.apbundle"
	mount_it "max_memory=64K,page_size=4K,direct_io" "$work/live.apbundle"
	head -c 100000 "$mnt/$(head -n 1 "$work/names")" > /dev/null
	case $change in
	corrupt-block) corrupt_block ;;
	truncate) truncate -s $((size / 2)) "$work/live.apbundle" ;;
	overwrite) # random bytes over the second half of the file, in place
		head -c $((size / 2)) /dev/urandom |
			dd of="$work/live.apbundle" bs=64K seek=$((size / 2)) oflag=seek_bytes conv=notrunc 2>/dev/null ;;
	rename) # a different valid bundle renamed over the path
		mkdir -p "$work/other" && head -c 300000 /dev/urandom > "$work/other/m0" &&
		"$APB" create "$work/new.apbundle" "$work/other" >/dev/null &&
		mv "$work/new.apbundle" "$work/live.apbundle" ;;
	esac
	read_all "$change"
	if [ $change = corrupt-block ] && { [ $eio -ne 1 ] || [ $good -ne $((good + eio - 1)) ]; }; then
		fail "corrupt-block: $eio models refused, expected exactly 1 ($victim)"
	fi
	unmount_it
done

# ---- phase 3: EIO from pread inside the daemon ----
shim="${top_builddir:-.}/tests/.libs/libfaultpreload.so"
if [ ! -f "$shim" ]; then
	echo "stress_mount_test: $shim not built: daemon fault phase skipped"
	exit 0
fi
cp "$work/b.apbundle" "$work/live.apbundle"
set -- $("$APB" list "$work/live.apbundle" | awk 'NR > 1 && $2 > 8192 { print $2, $3, $1 }' | sort -n | tail -n 1)
victim=$3
touch "$work/faults-on"
# Only the daemon gets the shim.  ASan insists on coming first in the
# library list; the shim does not need that check.
saved_asan=${ASAN_OPTIONS-}
export APB_FAULT_INO="$(stat -c %i "$work/live.apbundle")" APB_FAULT_FLAG="$work/faults-on"
export APB_FAULT_RANGE="$(($2 + 4096)):$(($2 + 8192))" LD_PRELOAD="$shim"
export ASAN_OPTIONS="${saved_asan:+$saved_asan:}verify_asan_link_order=0"
mount_it "max_memory=64K,page_size=4K,direct_io,prefetch=0" "$work/live.apbundle"
unset LD_PRELOAD APB_FAULT_INO APB_FAULT_FLAG APB_FAULT_RANGE
if [ -n "$saved_asan" ]; then ASAN_OPTIONS=$saved_asan; else unset ASAN_OPTIONS; fi
dd if="$mnt/$victim" bs=4096 count=1 2>/dev/null | cmp -s - "$work/src/$victim" -n 4096 ||
	fail "daemon-eio: the first block of $victim is not served exactly"
dd if="$mnt/$victim" of=/dev/null bs=4096 skip=1 count=1 2>/dev/null &&
	fail "daemon-eio: a read of the failing block of $victim succeeded"
read_all daemon-eio
[ $eio -eq 1 ] || fail "daemon-eio: $eio models refused, expected exactly 1 ($victim)"
rm -f "$work/faults-on"
read_all daemon-eio-recovered
[ $eio -eq 0 ] || fail "daemon-eio: $eio models still refused after the faults stopped"
unmount_it
exit 0
