#!/bin/sh
# mount_compress_test.sh - issue 12's acceptance as a new user tries it:
# `apbundle create --compress zstd m.apbundle DIR`, then `verify`, `list
# --json`, `extract`, `cat` and a mount all give byte-identical models, and
# numpy's np.load(mmap_mode='r') of a compressed .npy through the mount
# matches the source array.
#
# The directory holds a float32 .npy and a BF16-like uint16 .npy (several
# 64 KiB blocks, sizes not a multiple of the block size, so the last block
# is short), random bytes (blocks stored raw), zeros, a small text file, an
# empty file and a subdirectory.  The test first checks that the float
# models really were compressed with the byte-plane filter auto picks, so
# it cannot pass on an uncompressed bundle.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

APB=$top_builddir/apbundle
numpy_python

SRC=$WORK/src
mkdir -p "$SRC/sub"
$NPY - "$SRC" <<'EOF' || fail "cannot generate the models"
import sys
import numpy as np
d = sys.argv[1]
r = np.random.default_rng(12)
# 308,128 bytes: four full blocks and a short one
np.save(d + "/w.f32.npy", (r.standard_normal((1000, 77)) * 0.02).astype(np.float32))
# BF16: the high half of float32 weights, 246,914 + 128 bytes
f = (r.standard_normal(123457) * 0.02).astype(np.float32)
np.save(d + "/sub/w.bf16.npy", (f.view(np.uint32) >> 16).astype(np.uint16))
open(d + "/rand.bin", "wb").write(r.bytes(150001))
open(d + "/sub/zeros.bin", "wb").write(bytes(200000))
open(d + "/small.txt", "wb").write(b"a small text model\n" * 20)
open(d + "/empty", "wb").close()
EOF
B=$WORK/m.apbundle
( cd "$WORK" && "$APB" create --compress zstd m.apbundle src ) >/dev/null 2>"$WORK/err" ||
	{ cat "$WORK/err" >&2; fail "apbundle create --compress zstd m.apbundle DIR"; }
ok "create --compress zstd m.apbundle DIR"

# list --json: every file is a model of the same size; the float models are
# zstd with the filter auto picks and smaller than they were, the random one
# is stored raw (not smaller), the empty one uncompressed.
"$APB" list --json "$B" >"$WORK/list.json" || fail "list --json"
$NPY - "$WORK/list.json" "$SRC" <<'EOF' || fail "list --json does not describe the models"
import json, os, sys
models = {m["name"]: m for m in json.load(open(sys.argv[1]))}
src = sys.argv[2]
files = {}
for dirpath, _, names in os.walk(src):
    for n in names:
        p = os.path.join(dirpath, n)
        files[os.path.relpath(p, src)] = os.path.getsize(p)
assert sorted(models) == sorted(files), (sorted(models), sorted(files))
for name, size in files.items():
    assert models[name]["size"] == size, (name, models[name]["size"], size)
def want(name, codec, filt, smaller):
    m = models[name]
    assert (m["codec"], m["filter"]) == (codec, filt), (name, m["codec"], m["filter"])
    assert (m["stored_size"] < m["size"]) == smaller, (name, m["stored_size"], m["size"])
want("w.f32.npy", "zstd", "bytegroup4", True)
want("sub/w.bf16.npy", "zstd", "bytegroup2", True)
want("sub/zeros.bin", "zstd", "none", True)
want("rand.bin", "zstd", "none", False)
want("empty", "none", "none", False)
EOF
ok "list --json: every file a model of its size; float models zstd with byte planes, smaller"

"$APB" verify "$B" >"$WORK/verify.out" 2>"$WORK/err" ||
	{ cat "$WORK/err" >&2; fail "verify of the compressed bundle"; }
grep -q "OK" "$WORK/verify.out" || { cat "$WORK/verify.out" >&2; fail "verify printed no OK"; }
ok "verify: exit 0"

mkdir "$WORK/out"
"$APB" extract "$B" -C "$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "extract"; }
diff -r "$SRC" "$WORK/out" >&2 || fail "extracted tree differs from the source"
ok "extract: the same tree, byte-identical"

# FILES: the models, relative to SRC
FILES=$(cd "$SRC" && find . -type f | sed 's|^\./||' | sort)
for f in $FILES; do
	"$APB" cat "$B" "$f" >"$WORK/cat.out" 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "cat $f"; }
	cmp "$SRC/$f" "$WORK/cat.out" >&2 || fail "cat $f differs"
done
ok "cat: every model byte-identical"

M=$WORK/mnt
for mode in keep_cache direct_io; do
	opts=max_memory=1M
	[ "$mode" = direct_io ] && opts="$opts,direct_io"
	start_fg "$M" "$WORK/log.$mode" -o "$opts" "$B"
	got=$(cd "$M" && find . -path './.*' -prune -o -type f -print | sed 's|^\./||' | sort)
	expect_eq "$mode: files in the mount" "$got" "$FILES"
	for f in $FILES; do
		cmp "$SRC/$f" "$M/$f" >&2 || fail "$mode: read() of $f differs"
		$VERIFY random "$SRC/$f" "$M/$f" 40 5 || fail "$mode: random reads of $f"
	done
	ok "$mode: every model byte-identical through read() and random preads (max_memory=1M)"
	if [ "$mode" = keep_cache ]; then
		$NPY - "$SRC" "$M" <<'EOF' || fail "numpy through the mount"
import sys
import numpy as np
src, mnt = sys.argv[1], sys.argv[2]
for name, dtype, shape in (("w.f32.npy", np.float32, (1000, 77)),
                           ("sub/w.bf16.npy", np.uint16, (123457,))):
    a = np.load(mnt + "/" + name, mmap_mode="r")
    b = np.load(src + "/" + name)
    assert isinstance(a, np.memmap), (name, type(a))
    assert a.dtype == dtype and a.shape == shape, (name, a.dtype, a.shape)
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), name + ": values differ"
    # last elements first: the short last block, then a jump back into the middle
    assert a.reshape(-1)[-7:].tobytes() == b.reshape(-1)[-7:].tobytes(), name
    mid = a.size // 2
    assert a.reshape(-1)[mid:mid + 5000].tobytes() == b.reshape(-1)[mid:mid + 5000].tobytes()
    with open(mnt + "/" + name, "rb") as f:
        assert f.read() == open(src + "/" + name, "rb").read(), name + ": read() differs"
EOF
		ok "numpy: np.load(mmap_mode='r') of the float32 and BF16 .npy files equals the source arrays"
		$VERIFY mmap "$SRC/w.f32.npy" "$M/w.f32.npy" shared || fail "shared mmap of w.f32.npy"
	fi
	# Everything was read once and fits in the budget: the daemon read each
	# stored byte (plus the block tables, 16 bytes per block, and their 8-byte
	# indexes: about 2 KiB here) and decoded every compressed model once.
	cp "$M/.stats.json" "$WORK/stats.json"
	stop_fg "$M"
	$NPY - "$WORK/stats.json" "$WORK/list.json" <<'EOF' || fail "$mode: .stats.json bytes"
import json, sys
s = json.load(open(sys.argv[1]))
models = json.load(open(sys.argv[2]))
stored = sum(m["stored_size"] for m in models)
size = sum(m["size"] for m in models if m["codec"] == "zstd")
read, dec = s["source"]["bytes_read"], s["bytes_decoded"]
print("# stored %d, size %d, source bytes_read %d, bytes_decoded %d" % (stored, size, read, dec))
assert stored <= read <= stored + 8192, "read %d for %d stored bytes" % (read, stored)
assert dec == size, "decoded %d bytes, not the %d of the compressed models" % (dec, size)
EOF
done
exit 0
