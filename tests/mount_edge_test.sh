#!/bin/sh
# mount_edge_test.sh - mountpoints that cannot work, a daemon that dies, and
# names the tree cannot show (issue 15 items 4 and 6, mount side).
#  1. a missing mountpoint, a regular file, a live and a dead FUSE mount are
#     refused with one line and exit status 3 (the man page's "mount
#     failed"); nothing is mounted or stacked;
#  2. when the daemon dies (SIGKILL), readers get ENOTCONN and mmap readers
#     SIGBUS (what the man page and README say), a new mount is refused with
#     the fusermount3 -u command, and after that command the mount works;
#     with -o auto_unmount the dead mount disappears by itself;
#  3. models hidden by a virtual file or by being a directory of another
#     model are named in the log with the reason and counted in .stats.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

SRC=$WORK/src
mkdir -p "$SRC"
rand_file "$SRC/big" 300000
B=$WORK/b.apbundle
make_bundle "$B" big="$SRC/big"
M=$WORK/mnt
mkdir -p "$M"
MOUNTS="$M"

# refused CASE MNT PATTERN: apbundle-mount B MNT exits 3 naming PATTERN.
refused() {
	"$MOUNT_BIN" "$B" "$2" 2>"$WORK/err" && fail "$1: mount succeeded"
	st=$?
	[ "$st" -eq 3 ] || fail "$1: exit status $st, expected 3 ($(cat "$WORK/err"))"
	[ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "$1: not one line: $(cat "$WORK/err")"
	grep -q "$3" "$WORK/err" || fail "$1: message '$(cat "$WORK/err")' lacks '$3'"
}

refused "missing mountpoint" "$WORK/nothere" "nothere': No such file or directory"
printf 'keep' >"$WORK/file"
MOUNTS="$MOUNTS $WORK/file"
refused "regular file" "$WORK/file" "is not a directory"
expect_eq "the file is untouched" "$(cat "$WORK/file")" keep
is_mounted "$WORK/file" && fail "something was mounted on the file"
ok "a missing mountpoint and a regular file: exit 3, one clear line"

start_fg "$M" "$WORK/log1" "$B"
refused "live mount" "$M" "is already mounted (fuse.apbundle-mount from $B); unmount it first: fusermount3 -u $M"
n=$(grep -c " $M .* fuse.apbundle-mount " /proc/self/mountinfo)
expect_eq "mounts at $M" "$n" 1
ok "a live mount: refused (no stacked mount), exit 3"

# The daemon dies under a reader holding a descriptor and a mapping.
cat >"$WORK/reader.py" <<'PYEOF'
import mmap, os, sys, time
path, ready, go = sys.argv[1:4]
fd = os.open(path, os.O_RDONLY)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
os.pread(fd, 100, 0)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
try:
    os.pread(fd, 100, 200000)
    print("pread:ok")
except OSError as e:
    print("pread:" + (os.strerror(e.errno) if e.errno else "?"))
pid = os.fork()
if pid == 0:
    m[250000]
    os._exit(0)
_, st = os.waitpid(pid, 0)
print("mmap:" + ("signal %d" % os.WTERMSIG(st) if os.WIFSIGNALED(st) else "ok"))
PYEOF
die_under_reader() {
	rm -f "$WORK/ready" "$WORK/go"
	python3 "$WORK/reader.py" "$M/big" "$WORK/ready" "$WORK/go" >"$WORK/reader.out" 2>&1 &
	rp=$!
	i=0
	while [ ! -e "$WORK/ready" ]; do
		i=$((i + 1)); [ $i -gt 300 ] && fail "reader not ready: $(cat "$WORK/reader.out")"
		sleep 0.05
	done
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null
	touch "$WORK/go"
	wait "$rp"
}
die_under_reader
grep -qx "pread:Transport endpoint is not connected" "$WORK/reader.out" ||
	fail "pread after the daemon died: $(cat "$WORK/reader.out")"
grep -qx "mmap:signal 7" "$WORK/reader.out" || fail "mmap after the daemon died: $(cat "$WORK/reader.out")"
$VERIFY errno ENOTCONN open "$M/big" || fail "open on a dead mount"
refused "dead mount" "$M" "is a dead FUSE mount (its daemon is gone); unmount it first: fusermount3 -u $M"
timeout 10 fusermount3 -u "$M" || fail "fusermount3 -u of the dead mount"
start_fg "$M" "$WORK/log2" "$B"
$VERIFY whole "$SRC/big" "$M/big" || fail "read after remount"
stop_fg "$M"
ok "daemon killed: ENOTCONN and SIGBUS for readers, remount refused until fusermount3 -u"

start_fg "$M" "$WORK/log3" -o auto_unmount "$B"
die_under_reader
grep -qx "pread:Transport endpoint is not connected" "$WORK/reader.out" ||
	fail "auto_unmount: pread after the daemon died: $(cat "$WORK/reader.out")"
i=0
while is_mounted "$M"; do
	# fusermount3's watcher unmounts once it sees the daemon's end of the
	# socket close; on a loaded 2-core machine that once took over 10 s.
	i=$((i + 1)); [ $i -gt 600 ] && fail "auto_unmount: still mounted 30 s after the daemon died" \
		"(fusermount3 processes: $(pgrep -a fusermount3 | tr '\n' ';'))"
	sleep 0.05
done
[ -e "$M/big" ] && fail "auto_unmount: the model is still visible"
ok "auto_unmount: the dead mount disappears by itself (open descriptors get ENOTCONN)"

# Names the tree cannot show, in a hand-made legacy bundle (the builder may
# refuse them): "a" is a model and a directory of "a/b"; ".stats" is taken.
python3 - "$WORK/names.apbundle" <<'PYEOF' || fail "cannot craft the bundle"
import struct, sys
models = [(b"a", b"A"), (b"a/b", b"B"), (b".stats", b"S"), (b"keep", b"K")]
man = struct.pack("<IQI", 1, 0, 0) + struct.pack("<I", len(models))
off = 0
for name, data in models:
    man += struct.pack("<I", len(name)) + name + struct.pack("<QQ", len(data), off)
    off += len(data)
with open(sys.argv[1], "wb") as f:
    f.write(b"APBUNDLE" + struct.pack("<IQ", 1, len(man)) + man + b"".join(d for _, d in models))
PYEOF
start_fg "$M" "$WORK/log4" "$WORK/names.apbundle"
expect_eq "keep" "$(cat "$M/keep")" K
expect_eq "a" "$(cat "$M/a")" A
grep -q '^bundle:' "$M/.stats" || fail ".stats is not the statistics"
expect_eq "hidden models in .stats" "$(awk '/^hidden models:/ { print $3 }' "$M/.stats")" 2
stop_fg "$M"
grep -q 'model "a/b" is not shown: a model has the name of one of its directories' "$WORK/log4" ||
	fail "log does not name a/b: $(cat "$WORK/log4")"
grep -q 'model ".stats" is not shown: a virtual file of the mount has this name' "$WORK/log4" ||
	fail "log does not name .stats: $(cat "$WORK/log4")"
ok "hidden names: each named in the log with its reason, counted in .stats"
exit 0
