#!/bin/sh
# mount_test.sh - apbundle-mount end to end: bytes, tree, errors, xattrs,
# refusals of bad input, and the lifecycle (fusermount3 -u, SIGTERM, open
# files at unmount, daemon mode, mount -t through mount.fuse3).
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

SRC=$WORK/src
mkdir -p "$SRC"
rand_file "$SRC/top" 1572865          # 1.5 MiB + 1: many pages, short tail
rand_file "$SRC/abc" 300000
rand_file "$SRC/page" 4096
rand_file "$SRC/one" 1
: >"$SRC/empty"
rand_file "$SRC/deep" 70000
rand_file "$SRC/sib" 65536
rand_file "$SRC/odd" 123457
B=$WORK/models.apbundle
make_bundle "$B" -M top -M a/b/deep top="$SRC/top" abc="$SRC/abc" page="$SRC/page" \
	one="$SRC/one" empty="$SRC/empty" a/b/deep="$SRC/deep" a/b/sib="$SRC/sib" \
	a/odd="$SRC/odd"
PAIRS="top:top abc:abc page:page one:one empty:empty a/b/deep:deep a/b/sib:sib a/odd:odd"

M=$WORK/mnt
for mode in keep_cache direct_io; do
	opts="max_memory=1M,page_size=16K"
	[ "$mode" = direct_io ] && opts="$opts,direct_io"
	start_fg "$M" "$WORK/log.$mode" -o "$opts" "$B"

	# Every model, byte-exact: whole, random ranges, mmap.
	for p in $PAIRS; do
		name=${p%%:*} src=$SRC/${p#*:}
		$VERIFY whole "$src" "$M/$name" || fail "$mode: whole read of $name"
		$VERIFY random "$src" "$M/$name" 60 7 || fail "$mode: random reads of $name"
		$VERIFY mmap "$src" "$M/$name" private || fail "$mode: private mmap of $name"
		if [ "$mode" = keep_cache ]; then
			$VERIFY mmap "$src" "$M/$name" shared || fail "$mode: shared mmap of $name"
		fi
	done
	ok "$mode: every model byte-exact through read, random preads and mmap"
	if [ "$mode" = direct_io ]; then
		# libfuse 3.14 cannot offer shared mmap of a direct_io file.
		$VERIFY errno ENODEV mmap_shared "$M/top" || fail "direct_io: shared mmap"
		ok "direct_io: shared mmap refused, private mmap works"
	fi

	args=""
	for p in $PAIRS; do args="$args $SRC/${p#*:}=$M/${p%%:*}"; done
	# shellcheck disable=SC2086
	$VERIFY parallel 8 40 3 $args || fail "$mode: 8 parallel readers"
	ok "$mode: 8 parallel readers, every byte checked"
	stop_fg "$M"
	ok "$mode: fusermount3 -u unmounts, daemon exits 0"
done

# The tree: nested names, stable inode numbers, modes, sizes, blksize.
start_fg "$M" "$WORK/log.tree" -o page_size=16K "$B"
expect_eq "root listing" "$(ls -A "$M" | tr '\n' ' ')" ".metrics .stats .stats.json a abc empty one page top "
expect_eq "a/ listing" "$(ls -A "$M/a" | tr '\n' ' ')" "b odd "
expect_eq "a/b/ listing" "$(ls -A "$M/a/b" | tr '\n' ' ')" "deep sib "
expect_eq "root mode" "$(stat -c '%a %F %i' "$M")" "555 directory 1"
expect_eq "file stat" "$(stat -c '%a %F %s %o' "$M/a/b/deep")" "444 regular file 70000 16384"
expect_eq "dir stat" "$(stat -c '%a %F %h' "$M/a")" "555 directory 3"
expect_eq "mtime" "$(stat -c %Y "$M/top")" "$(stat -c %Y "$B")"
inodes1=$(ls -iR "$M" | sort | md5sum)
ok "nested names form directories with modes 0555/0444, st_blksize = page size"

# Writes and unknown names.
for op in write open_rw truncate setxattr removexattr unlink rename link chmod; do
	$VERIFY errno EROFS "$op" "$M/top" || fail "$op on a model"
done
for op in create mkdir symlink; do
	$VERIFY errno EROFS "$op" "$M/newname" || fail "$op in the root"
done
$VERIFY errno EROFS rmdir "$M/a/b" || fail "rmdir"
$VERIFY errno ENOENT stat "$M/nope" || fail "stat of an unknown name"
$VERIFY errno ENOENT open "$M/a/nope" || fail "open of an unknown nested name"
$VERIFY errno ENOTDIR stat "$M/top/x" || fail "a model used as a directory"
ok "writes, creates, renames, links, setattr, xattr changes give EROFS; unknown names ENOENT"

# Extended attributes.
attrs=$(getfattr --absolute-names -d "$M/top" 2>/dev/null | grep '^user' | sort | tr '\n' ' ')
case $attrs in
*'user.apbundle.architecture="transformer"'*'user.apbundle.checksum="xxh3:'*'user.apbundle.custom.owner="tests"'*'user.apbundle.hyperparameters.heads="8"'*'user.apbundle.hyperparameters.layers="6"'*'user.apbundle.offset="'*'user.apbundle.version="1.2"'*) ;;
*) fail "xattrs of top: $attrs" ;;
esac
off=$(getfattr --absolute-names --only-values -n user.apbundle.offset "$M/top")
cmp -s -i "$off:0" -n 1572865 "$B" "$SRC/top" || fail "user.apbundle.offset $off does not locate top in the bundle"
expect_eq "xattrs of a plain model" \
	"$(getfattr --absolute-names -d "$M/abc" 2>/dev/null | grep -c '^user')" 2
getfattr -n user.apbundle.nope "$M/top" >/dev/null 2>&1 && fail "unknown xattr exists"
ok "xattrs: checksum, offset (verified against the bundle) and metadata, listed"

# .stats and .stats.json: present, parseable, exact key set.
grep -q "^bundle: *$B\$" "$M/.stats" || fail ".stats names the bundle"
for k in models eviction "page size" "max memory" "memory used" "cached pages" hits \
	misses evictions "hit rate" prefetches "bytes loaded"; do
	grep -q "^$k:" "$M/.stats" || fail ".stats lacks '$k'"
done
expect_eq ".stats.json keys" "$($VERIFY keys "$M/.stats.json")" \
	"bytes_decoded bytes_loaded decode_ns eviction evictions generation generations_open hit_rate hits max_memory memory_used misses models page_size prefetch_hits prefetch_wasted prefetches readahead_seeks readahead_shrinks readahead_window reload_failures reloads sequential_reads source"
expect_eq "models in .stats.json" "$(json_of "$M/.stats.json" models | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 8
expect_eq "size of a/b/deep" "$(model_of "$M/.stats.json" a/b/deep size)" 70000
ok ".stats text and .stats.json with the documented keys"
stop_fg "$M"

# Same tree, same inode numbers on a second mount.
start_fg "$M" "$WORK/log.tree2" "$B"
expect_eq "inode numbers across mounts" "$(ls -iR "$M" | sort | md5sum)" "$inodes1"
ok "inode numbers are stable across mounts"

# Unmount while files are open: a lazy unmount keeps the open file readable,
# and the daemon exits 0 when it is closed.
exec 3<"$M/top"
timeout 10 fusermount3 -u "$M" 2>/dev/null && fail "unmount of a busy mount succeeded"
timeout 10 fusermount3 -uz "$M" || fail "lazy unmount"
is_mounted "$M" && fail "still mounted after lazy unmount"
head -c 4096 <&3 | cmp -s -n 4096 - "$SRC/top" || fail "open file unreadable after lazy unmount"
exec 3<&-
wait_exit "$DAEMON_PID" || fail "daemon still running after the last file closed"
expect_eq "exit status after lazy unmount" "$EXIT_STATUS" 0
ok "unmount with open files: busy, lazy unmount serves them, exit 0 on last close"

# SIGTERM with a file open: unmounts and exits 0.
start_fg "$M" "$WORK/log.term" "$B"
exec 3<"$M/abc"
kill -TERM "$DAEMON_PID"
wait_exit "$DAEMON_PID" || fail "daemon ignored SIGTERM"
exec 3<&-
expect_eq "exit status after SIGTERM" "$EXIT_STATUS" 0
is_mounted "$M" && fail "still mounted after SIGTERM"
start_fg "$M" "$WORK/log.int" "$B"
kill -INT "$DAEMON_PID"
wait_exit "$DAEMON_PID" || fail "daemon ignored SIGINT"
expect_eq "exit status after SIGINT" "$EXIT_STATUS" 0
is_mounted "$M" && fail "still mounted after SIGINT"
ok "SIGTERM and SIGINT unmount and exit 0"

# Daemon mode: the command returns once the mount is there.
mkdir -p "$M"
"$MOUNT_BIN" -o max_memory=4M "$B" "$M" || fail "daemon mode mount"
MOUNTS="$MOUNTS $M"
is_mounted "$M" || fail "not mounted when the command returned"
pid=$(daemon_pid "$M")
[ -n "$pid" ] || fail "no daemon serving $M"
$VERIFY whole "$SRC/abc" "$M/abc" || fail "daemon mode read"
timeout 10 fusermount3 -u "$M" || fail "daemon mode unmount"
wait_gone "$pid" || fail "daemon $pid still running after unmount"
ok "without -f: returns with the mount usable"

# Refusals: one line, non-zero exit, nothing mounted.
head -c 100000 /dev/urandom >"$WORK/garbage.apbundle"
printf 'APBUNDLE\001\000\000\000\377\377\000\000' >"$WORK/trunc.apbundle"
refuse() {
	what=$1
	shift
	"$MOUNT_BIN" "$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	[ $rc -ne 0 ] || fail "$what: exit 0"
	[ "$(wc -l <"$WORK/err")" -eq 1 ] || { cat "$WORK/err" >&2; fail "$what: not one line"; }
	[ -s "$WORK/out" ] && fail "$what: wrote to stdout"
	is_mounted "$M" && fail "$what: mounted"
	return 0
}
refuse "missing bundle" "$WORK/none.apbundle" "$M"
grep -q "none.apbundle" "$WORK/err" || fail "error does not name the missing bundle"
refuse "garbage bundle" "$WORK/garbage.apbundle" "$M"
refuse "truncated bundle" "$WORK/trunc.apbundle" "$M"
refuse "directory as bundle" "$WORK" "$M"
refuse "missing mountpoint" "$B" "$WORK/nodir"
refuse "no arguments"
refuse "bad max_memory" -o max_memory=lots "$B" "$M"
grep -q max_memory "$WORK/err" || fail "error does not name max_memory"
refuse "zero max_memory" -o max_memory=0 "$B" "$M"
refuse "bad page_size" -o page_size=1000 "$B" "$M"
refuse "bad eviction" -o eviction=fifo "$B" "$M"
refuse "bad prefetch" -o prefetch=maybe "$B" "$M"
refuse "bad prefetch_count" -o prefetch_count=-3 "$B" "$M"
refuse "unknown option" -o frobnicate "$B" "$M"
ok "bad bundles, options and mountpoints: one line, non-zero exit, nothing mounted"

# -h lists our options before libfuse's; -V prints the version.
"$MOUNT_BIN" -h >"$WORK/help" 2>&1 || fail "-h exit status"
ours=$(grep -n 'max_memory=SIZE' "$WORK/help" | head -1 | cut -d: -f1)
theirs=$(grep -n 'allow_other\|-o clone_fd' "$WORK/help" | head -1 | cut -d: -f1)
[ -n "$ours" ] && [ -n "$theirs" ] && [ "$ours" -lt "$theirs" ] || fail "-h order"
"$MOUNT_BIN" -V | grep -q "^apbundle-mount [0-9]" || fail "-V"
ok "-h (our options first, then libfuse's) and -V"

# fstab-style mounts through mount.fuse3.  mount(8) runs the helper with an
# empty environment, so `mount -t fuse.apbundle-mount` finds the program only
# in the default PATH (/usr/local/bin, /usr/bin ...) where `make install`
# puts it.  Without installing, run mount.fuse3 with exactly the arguments
# mount(8) gives it for that fstab line, with a PATH that has our build; and
# go through mount(8) itself with the helper's "PROGRAM#SOURCE" form.
MOUNT_FUSE=$(command -v mount.fuse3 || echo /sbin/mount.fuse3)
if [ -x "$MOUNT_FUSE" ]; then
	mkdir -p "$WORK/bin"
	ln -s "$MOUNT_BIN" "$WORK/bin/apbundle-mount"
	mkdir -p "$M"
	MOUNTS="$MOUNTS $M"
	PATH=$WORK/bin:$PATH timeout 20 "$MOUNT_FUSE" "$B" "$M" -o rw,nofail,max_memory=8M \
		-t fuse.apbundle-mount || fail "mount.fuse3 -t fuse.apbundle-mount"
	is_mounted "$M" || fail "mount.fuse3: not mounted"
	pid=$(daemon_pid "$M")
	[ -n "$pid" ] || fail "mount.fuse3: no daemon"
	grep -q " $M fuse.apbundle-mount ro," /proc/self/mounts || fail "mount.fuse3: rw mount is not read-only"
	grep -q "^max memory: *8388608 " "$M/.stats" || fail "mount.fuse3: max_memory not applied"
	$VERIFY whole "$SRC/deep" "$M/a/b/deep" || fail "mount.fuse3: read"
	timeout 10 umount "$M" || fail "umount"
	is_mounted "$M" && fail "still mounted after umount"
	wait_gone "$pid" || fail "mount.fuse3: daemon $pid still running after umount"
	ok "mount.fuse3 BUNDLE MNT -t fuse.apbundle-mount -o rw,nofail,max_memory=8M: read-only, options applied"

	timeout 20 mount -t fuse "$WORK/bin/apbundle-mount#$B" "$M" -o ro,max_memory=8M ||
		fail "mount -t fuse PROGRAM#BUNDLE"
	is_mounted "$M" || fail "mount(8): not mounted"
	pid=$(daemon_pid "$M")
	grep -q "^max memory: *8388608 " "$M/.stats" || fail "mount(8): max_memory not applied"
	$VERIFY whole "$SRC/top" "$M/top" || fail "mount(8): read"
	timeout 10 umount "$M" || fail "umount"
	wait_gone "$pid" || fail "mount(8): daemon $pid still running after umount"
	ok "mount(8) -t fuse PROGRAM#BUNDLE -o ro,max_memory=8M, umount"
fi
exit 0
