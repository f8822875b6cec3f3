#!/bin/sh
# security_test.sh - hostile names, extraction outside -C DIR, mount exposure.
#
# 1. create refuses names with control characters, "..", ".", empty
#    components or a leading '/', and writes nothing;
# 2. bundles hand-crafted (header + JSON) with such names, or with NUL, are
#    refused at open by list, verify, extract and the mount (a crafted bundle
#    with a good name is accepted, so the refusals are about the name);
# 3. extract never writes outside -C DIR, even through symlinks already in
#    DIR (to a directory or to a file outside);
# 4. the mount exposes only the models (and their directories), .stats,
#    .stats.json and .metrics, is read-only (every kind of write fails, nothing changes,
#    no write permission bits), and with allow_other it runs with
#    default_permissions (/proc/self/mountinfo).  Part 4 is skipped (the
#    rest still runs) without a usable /dev/fuse.
set -u
APB=${APBUNDLE:-apbundle}
MOUNT=${APBUNDLE_MOUNT:-apbundle-mount}
command -v "$APB" >/dev/null 2>&1 || { echo "security_test: $APB not found" >&2; exit 99; }

work=$(mktemp -d "${TMPDIR:-/tmp}/apbsec.XXXXXX") || exit 99
mnt=
mpid=
cleanup() {
	if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	[ -n "$mpid" ] && { kill "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null; }
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fails=0
checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "security_test: FAIL: $*" >&2; }
expect_status() { # WANT DESC CMD...: runs CMD, wants exit status WANT
	want=$1 desc=$2; shift 2
	"$@" >"$work/out.txt" 2>&1
	st=$?
	if [ "$st" -eq "$want" ]; then ok; else bad "$desc: exit $st, wanted $want: $(head -c 300 "$work/out.txt")"; fi
}

# le32 N: N as 4 little-endian bytes.
le32() {
	printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) $((($1 >> 8) & 255)) \
		$((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"
}

# craft OUT JSON_NAME: a v1 bundle of one 1-byte model "x" named JSON_NAME
# (a JSON string literal, escapes allowed), alignment 1, real checksum.
craft() {
	json="{\"format\":\"apbundle\",\"version\":1,\"alignment\":1,\"model_count\":1,\"models\":[{\"name\":$2,\"offset\":0,\"size\":1,\"checksum\":\"$sum\"}]}"
	{ printf 'APBUNDLE'; le32 1; le32 ${#json}; printf '%s' "$json"; printf 'x'; } > "$1"
}

cd "$work" || exit 99
printf 'x' > x
printf 'secret' > victim

# ---- 1. create ----
for name in '../x' 'a/../b' './a' 'a/.' '/abs' 'a//b' 'a/' '' \
	"$(printf 'a\001b')" "$(printf 'tab\there')" "$(printf 'esc\033[31m')" "$(printf 'del\177')"; do
	rm -f c.apbundle
	expect_status 2 "create with name $(printf '%s' "$name" | od -c | head -n 1)" "$APB" create c.apbundle "$name=x"
	[ -e c.apbundle ] && bad "create wrote c.apbundle for a bad name"
done
mkdir -p cdir
printf 'y' > "cdir/$(printf 'nl\nname')"
expect_status 1 "create from a DIR holding a file named with a newline" "$APB" create c.apbundle cdir
[ -e c.apbundle ] && bad "create wrote c.apbundle from a DIR with a bad file name"
ls | grep -q '\.tmp\.' && bad "create left a temp file"

# ---- 2. open ----
"$APB" create -a 1 ref.apbundle "x=x" >/dev/null || { echo "security_test: create failed" >&2; exit 99; }
sum=$("$APB" list ref.apbundle | awk '$1 == "x" { print $4 }')
case $sum in xxh3:????????????????) ;; *) echo "security_test: no checksum from list" >&2; exit 99 ;; esac
craft good.apbundle '"good/name"'
expect_status 0 "crafted bundle with a good name: verify" "$APB" verify good.apbundle
for jname in '"../x"' '"a/../b"' '"."' '"a/./b"' '"/etc/passwd"' '"a//b"' '"a/"' '""' \
	'"a\u0000b"' '"a\u0001b"' '"a\nb"' '"\u001b[2J"' '"a\u007fb"' '".."'; do
	craft hostile.apbundle "$jname"
	for cmd in list verify extract; do
		rm -rf ex && mkdir ex
		if [ $cmd = extract ]; then
			expect_status 1 "$cmd of a bundle named $jname" "$APB" extract -C ex hostile.apbundle
			[ -z "$(ls -A ex)" ] || bad "extract of $jname wrote $(ls -A ex)"
		else
			expect_status 1 "$cmd of a bundle named $jname" "$APB" $cmd hostile.apbundle
		fi
		# the error message must not carry the raw control characters
		if LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177]')" out.txt; then
			bad "$cmd: error message for $jname contains raw control characters"
		fi
	done
done
[ "$(cat victim)" = secret ] || bad "victim file changed"

# ---- 3. extract through symlinks ----
mkdir -p src/sub outside ex2
printf 'payload-a' > src/sub/a
printf 'payload-b' > src/b
printf 'payload-c' > src/c
"$APB" create sym.apbundle src >/dev/null || { echo "security_test: create failed" >&2; exit 99; }
printf 'keep' > outside/b
ln -s "$work/outside" ex2/sub          # a directory symlink where a model's parent goes
ln -s "$work/outside/b" ex2/b          # a file symlink where a model goes
ln -s ../outside ex2/c                 # a relative one
"$APB" extract -C ex2 sym.apbundle >"$work/out.txt" 2>&1
st=$?
[ "$(ls -A outside)" = b ] || bad "extract wrote outside -C DIR: $(ls -A outside)"
[ "$(cat outside/b)" = keep ] || bad "extract wrote through the symlink ex2/b"
ok
if [ "$st" -eq 0 ]; then
	# success is allowed only if every model landed inside DIR as a plain file
	for m in sub/a b c; do
		[ -f "ex2/$m" ] && [ ! -L "ex2/$m" ] || bad "extract exit 0 but ex2/$m is not a regular file"
	done
	[ -L ex2/sub ] && bad "extract exit 0 but wrote sub/a through the symlink ex2/sub"
fi
ok

# ---- 4. the mount ----
# must_fail DESC CMD...: CMD must fail (a write attempt on the mount).
must_fail() {
	desc=$1; shift
	if "$@" >/dev/null 2>&1; then bad "mount: $desc succeeded"; else ok; fi
}

mount_checks() {
	mnt="$work/mnt"
	mkdir -p "$mnt"
	cp sym.apbundle pristine.apbundle
	"$MOUNT" -f -o allow_other,max_memory=1M sym.apbundle "$mnt" >"$work/mount.log" 2>&1 &
	mpid=$!
	t=0
	while ! mountpoint -q "$mnt"; do
		kill -0 "$mpid" 2>/dev/null || { bad "mount failed: $(cat "$work/mount.log")"; return; }
		t=$((t + 1)); [ $t -lt 1000 ] || { bad "mount not ready in 10 s"; return; }
		sleep 0.01
	done
	# exactly the models, their directories and the two stats files
	got=$(cd "$mnt" && find . -mindepth 1 | sort | tr '\n' ' ')
	want=$(printf '%s\n' ./.metrics ./.stats ./.stats.json ./b ./c ./sub ./sub/a | sort | tr '\n' ' ')
	[ "$got" = "$want" ] && ok || bad "mount exposes [$got], expected [$want]"
	# options: read-only, allow_other together with default_permissions
	line=$(awk -v m="$mnt" '$5 == m' /proc/self/mountinfo)
	opts=$(printf '%s' "$line" | awk '{ print $6 }')
	super=$(printf '%s' "$line" | sed 's/.* - //' | awk '{ print $3 }')
	case ",$super," in *,allow_other,*) ok ;; *) bad "allow_other not in mount options: $line" ;; esac
	case ",$super," in *,default_permissions,*) ok ;; *) bad "allow_other without default_permissions: $line" ;; esac
	case ",$opts," in *,ro,*) ok ;; *) bad "mount is not flagged read-only: $line" ;; esac
	# no write permission bits anywhere
	w=$(find "$mnt" -mindepth 1 -perm /222 | tr '\n' ' ')
	[ -z "$w" ] && ok || bad "writable modes on the mount: $w"
	# every kind of write fails and changes nothing
	must_fail "write into a model" sh -c "printf x >> '$mnt/b'"
	must_fail "truncate a model" truncate -s 0 "$mnt/b"
	must_fail "create a file" touch "$mnt/new"
	must_fail "create a file in a subdirectory" touch "$mnt/sub/new"
	must_fail "mkdir" mkdir "$mnt/d"
	must_fail "unlink" rm -f "$mnt/c"
	must_fail "rmdir" rmdir "$mnt/sub"
	must_fail "rename" mv "$mnt/b" "$mnt/b2"
	must_fail "hard link" ln "$mnt/b" "$mnt/b3"
	must_fail "symlink" ln -s b "$mnt/l"
	must_fail "chmod" chmod 666 "$mnt/b"
	must_fail "chown" chown 1:1 "$mnt/b"
	must_fail "utime" touch -d @0 "$mnt/b"
	must_fail "write to .stats" sh -c "printf x > '$mnt/.stats'"
	if command -v setfattr >/dev/null 2>&1; then
		must_fail "setxattr" setfattr -n user.x -v 1 "$mnt/b"
	fi
	if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1 && chmod 755 "$work"; then
		# another user can read (allow_other) but not write
		setpriv --reuid=65534 --regid=65534 --clear-groups cat "$mnt/sub/a" >"$work/other.out" 2>&1 &&
			[ "$(cat "$work/other.out")" = payload-a ] && ok || bad "user 65534 cannot read through allow_other"
		must_fail "write as user 65534" setpriv --reuid=65534 --regid=65534 --clear-groups \
			sh -c "printf x >> '$mnt/b'"
	fi
	[ "$(cat "$mnt/b")" = payload-b ] && ok || bad "model b changed"
	[ ! -e "$mnt/new" ] && [ ! -e "$mnt/b2" ] && ok || bad "a write left something on the mount"
	fusermount3 -u "$mnt" && ok || bad "fusermount3 -u failed"
	wait "$mpid"
	st=$?
	mpid=
	[ $st -eq 0 ] && ok || bad "daemon exited $st"
	cmp -s sym.apbundle pristine.apbundle && ok || bad "the bundle file changed under the mount"
}

if [ -r /dev/fuse ] && [ -w /dev/fuse ] && command -v "$MOUNT" >/dev/null 2>&1 && command -v fusermount3 >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ] && ! grep -qs '^[[:space:]]*user_allow_other' /etc/fuse.conf; then
		echo "security_test: allow_other needs root or user_allow_other: mount checks skipped"
	else
		mount_checks
	fi
else
	echo "security_test: no /dev/fuse or $MOUNT: mount checks skipped"
fi
[ $fails -eq 0 ] || exit 1
echo "security_test: $checks checks passed"
exit 0
