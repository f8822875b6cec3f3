#!/bin/sh
# demo.sh - the main job: build everything, make a sample bundle, mount it,
# read a model, print .stats, unmount (README's first command).
#
# On a fresh Debian 12 machine as root it installs the missing packages
# first.  Everything it makes lives under build/demo/; it leaves no mount
# and no process behind, even when interrupted.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/deps.sh" build

bdir="$top/build/default"
echo "== building in $bdir"
"$top/scripts/build.sh" "$bdir"
apb="$bdir/apbundle"
mnt_prog="$bdir/apbundle-mount"

work="$top/build/demo"
rm -rf "$work"
mkdir -p "$work/models/heads"
mnt="$work/mnt"
daemon=""
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	fi
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== making three sample models (deterministic pseudo-random weights)"
python3 - "$work/models" <<'PY'
import random, sys
root = sys.argv[1]
for name, size in (("encoder.bin", 3 << 20), ("decoder.bin", 2 << 20), ("heads/classifier.bin", 300_001)):
    rnd = random.Random(name)
    with open(f"{root}/{name}", "wb") as f:
        f.write(rnd.randbytes(size))
PY
printf '{"version": "1.2", "architecture": "transformer", "hyperparameters": {"layers": "6"}}\n' > "$work/encoder.json"

echo "== apbundle create"
"$apb" create "$work/models.apbundle" "$work/models" \
	--description "apbundle demo: three models" --metadata "encoder.bin=$work/encoder.json"
echo "== apbundle list"
"$apb" list "$work/models.apbundle"
echo "== apbundle info"
"$apb" info "$work/models.apbundle"
echo "== apbundle verify"
"$apb" verify "$work/models.apbundle"

echo "== apbundle-mount (max_memory=2M, smaller than the 5.3 MiB of models)"
mkdir -p "$mnt"
"$mnt_prog" -o max_memory=2M "$work/models.apbundle" "$mnt"
daemon=$(pgrep -n -f "apbundle-mount .*$mnt" || true)
ls -l "$mnt" "$mnt/heads"
echo "== reading encoder.bin through the mount"
if cmp "$mnt/encoder.bin" "$work/models/encoder.bin"; then
	echo "encoder.bin: $(wc -c < "$mnt/encoder.bin") bytes, identical to the source"
else
	echo "encoder.bin differs from its source" >&2; exit 1
fi
cat "$mnt/heads/classifier.bin" > /dev/null
echo "== cat $mnt/.stats"
cat "$mnt/.stats"
echo "== unmounting"
fusermount3 -u "$mnt"
daemon=""
echo "== demo done"
