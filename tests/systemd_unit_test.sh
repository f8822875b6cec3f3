#!/bin/sh
# systemd_unit_test.sh - the apbundle-mount@ unit, without a running systemd:
#  1. systemd-analyze verify accepts it with no warning;
#  2. its Exec lines run by hand as systemd would run them (%i/%f from
#     systemd-escape, Environment= then the EnvironmentFile, ${VAR} one
#     argument, $VAR split), ExecStart under the unit's capability bounding
#     set and no_new_privs (setpriv): mount, read, ExecReload after the
#     bundle was replaced (the new one served), SIGTERM, clean exit;
#  3. ExecStopPost removes the mount a SIGKILLed daemon leaves, and leaves
#     alone another bundle's mount on the same directory;
#  4. every system call of the daemon is in the unit's SystemCallFilter
#     (strace, systemd-analyze syscall-filter).
# Parts 2-4 need root and /dev/fuse (and strace for 4); skips (77) when
# nothing could run.
set -u
top_builddir=${top_builddir:-$(pwd)}
unit="$top_builddir/scripts/systemd/apbundle-mount@.service"
mount_bin="$top_builddir/apbundle-mount"
[ -f "$unit" ] || { echo "FAIL: $unit not built"; exit 1; }

tmp=$(mktemp -d /tmp/packaging-unit.XXXXXX)
mnt="$tmp/mnt"
cleanup() {
	for m in "$mnt" "$mnt" "$mnt"; do
		grep -q " $m fuse" /proc/self/mounts 2>/dev/null && umount -l "$m"
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
fails=0 ran=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# key KEY: the value of the unit's KEY= line (first one).
key() { sed -n "s/^$1=//p" "$unit" | head -n 1; }

# 1. systemd-analyze verify, on an instance whose ExecStart exists.
if command -v systemd-analyze >/dev/null; then
	ran=1
	inst="$tmp/apbundle-mount@mnt-models.service"
	sed "s|^ExecStart=[^ ]*/apbundle-mount |ExecStart=$mount_bin |" "$unit" >"$inst"
	if systemd-analyze verify --man=no "$inst" >"$tmp/verify.out" 2>&1 && [ ! -s "$tmp/verify.out" ]; then
		echo "ok: systemd-analyze verify"
	else
		cat "$tmp/verify.out"; fail "systemd-analyze verify"
	fi
else
	echo "systemd-analyze missing: verify not run"
fi

if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || ! command -v findmnt >/dev/null \
	|| ! command -v setpriv >/dev/null; then
	echo "SKIP: running the unit by hand needs root, /dev/fuse, findmnt and setpriv"
	[ "$ran" = 1 ] && [ "$fails" = 0 ] && exit 0
	[ "$ran" = 1 ] && exit 1
	exit 77
fi

# The instance the README and apbundle-mount(1) give for /mnt/models.
[ "$(systemd-escape --path /mnt/models)" = mnt-models ] || fail "systemd-escape --path /mnt/models"
# The instance and the configuration, as systemctl start apbundle-mount@INSTANCE would.
instance=$(systemd-escape --path "$mnt")
f=$(systemd-escape --unescape --path "$instance")
[ "$f" = "$mnt" ] || fail "%f of $instance is $f"
printf 'model-a bytes\n' >"$tmp/a"; head -c 300000 /dev/urandom >"$tmp/b"
apbundle create "$tmp/one.apbundle" a="$tmp/a" b="$tmp/b" >/dev/null || { echo "FAIL: create"; exit 1; }
apbundle create "$tmp/two.apbundle" a="$tmp/b" >/dev/null || { echo "FAIL: create"; exit 1; }
cat >"$tmp/conf" <<CONF
BUNDLE=$tmp/one.apbundle
OPTIONS="-o max_memory=1M -o direct_io"
CONF
# Environment= first, then the EnvironmentFile overrides it.
env_line=$(key Environment | sed "s|%f|$f|g")
eval "export $env_line"
set -a; . "$tmp/conf"; set +a

# shcmd LINE: an Exec line as sh would run it the way systemd does:
# no "-" prefix, ${VAR} quoted (one argument), $VAR left to split, the
# daemon from the build directory.
shcmd() {
	printf '%s\n' "$1" | sed -e 's/^-//' -e 's/\${\([A-Za-z_]*\)}/"$\1"/g' \
		-e "s|^[^ ]*/apbundle-mount |$mount_bin |"
}
start() {
	eval "$(shcmd "$(key ExecStartPre)")" || fail "ExecStartPre"
	# The capability bounding set and no_new_privs of the unit.
	caps=$(key CapabilityBoundingSet | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
	eval "exec setpriv --no-new-privs --bounding-set -all,$caps $(shcmd "$(key ExecStart)")" &
	MAINPID=$!; export MAINPID
	eval "timeout 20 $(shcmd "$(key ExecStartPost)")" || fail "ExecStartPost (ready) failed"
}
stop_post() { eval "$(shcmd "$(key ExecStopPost)")"; }

# 2. start, read, stop with SIGTERM.
ran=1
start
if findmnt -rn -o OPTIONS -M "$mnt" | grep -q allow_other; then echo "ok: mounted with allow_other"
else fail "not mounted, or without allow_other"; fi
cmp -s "$tmp/b" "$mnt/b" && cmp -s "$tmp/a" "$mnt/a" && echo "ok: models read back" || fail "model bytes differ"
grep -q '^CapBnd:	0000000000200000$' "/proc/$MAINPID/status" && echo "ok: daemon has only CAP_SYS_ADMIN" \
	|| fail "bounding set: $(grep CapBnd "/proc/$MAINPID/status")"
# ExecReload: the bundle replaced by a rename, then SIGHUP as systemctl reload sends it.
cp "$tmp/one.apbundle" "$tmp/one.saved"
cp "$tmp/two.apbundle" "$tmp/next" && mv "$tmp/next" "$tmp/one.apbundle"
eval "$(shcmd "$(key ExecReload)")" || fail "ExecReload"
i=0; until grep -q '^generation: *2$' "$mnt/.stats"; do
	i=$((i + 1)); [ $i -gt 100 ] && fail "no generation 2 after ExecReload"; sleep 0.1; done
cmp -s "$tmp/b" "$mnt/a" && [ ! -e "$mnt/b" ] && echo "ok: ExecReload serves the new bundle" \
	|| fail "ExecReload did not serve the new bundle"
mv "$tmp/one.saved" "$tmp/one.apbundle"
kill -TERM "$MAINPID"; wait "$MAINPID"; rc=$?
[ "$rc" = 0 ] && echo "ok: SIGTERM ends the daemon with 0" || fail "daemon exit $rc after SIGTERM"
findmnt -M "$mnt" >/dev/null && fail "mounted after SIGTERM"
stop_post || fail "ExecStopPost after a clean stop"

# 3. SIGKILL leaves a dead mount; ExecStopPost removes it, and only it.
start
kill -KILL "$MAINPID"; wait "$MAINPID" 2>/dev/null
findmnt -M "$mnt" >/dev/null || fail "no dead mount after SIGKILL (test premise)"
stop_post
findmnt -M "$mnt" >/dev/null && fail "ExecStopPost left the dead mount" || echo "ok: ExecStopPost removed the dead mount"
"$mount_bin" "$tmp/two.apbundle" "$mnt" || fail "mounting two.apbundle"
stop_post
findmnt -rn -S "$tmp/two.apbundle" -M "$mnt" >/dev/null && echo "ok: another bundle's mount left alone" \
	|| fail "ExecStopPost unmounted another bundle's mount"
umount "$mnt"

# 4. The daemon's system calls against the unit's SystemCallFilter.
if command -v strace >/dev/null; then
	# Groups name other groups: expand them all.
	todo=$(key SystemCallFilter) seen="" allowed=""
	while set -- $todo && [ $# -gt 0 ]; do
		g=$1; shift; todo="$*"
		case " $seen " in *" $g "*) continue ;; esac
		seen="$seen $g"
		out=$(systemd-analyze syscall-filter "$g") || fail "syscall-filter $g"
		todo="$todo $(printf '%s\n' "$out" | sed -n 's/^    \(@[a-z-]*\)$/\1/p' | tr '\n' ' ')"
		allowed="$allowed
$(printf '%s\n' "$out" | sed -n 's/^    \([a-z0-9_]*\)$/\1/p')"
	done
	eval "exec strace -f -qq -o \"\$tmp/strace\" $(shcmd "$(key ExecStart)")" &
	spid=$!
	i=0; until findmnt -M "$mnt" >/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
	cat "$mnt/a" "$mnt/b" "$mnt/.stats" >/dev/null || fail "reads under strace"
	umount "$mnt"; wait "$spid"
	used=$(sed -n -E 's/^[0-9]+ +(<\.\.\. )?([a-z0-9_]+)[( ].*/\2/p' "$tmp/strace" | sort -u)
	bad=""
	for s in $used; do
		printf '%s\n' "$allowed" | grep -qx "$s" || bad="$bad $s"
	done
	[ -z "$bad" ] && echo "ok: $(echo $used | wc -w) system calls, all in $(key SystemCallFilter)" \
		|| fail "system calls outside SystemCallFilter:$bad"
else
	echo "strace missing: SystemCallFilter not checked"
fi

echo "systemd_unit_test: $fails failure(s)"
[ "$fails" = 0 ]
