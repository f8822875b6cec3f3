#!/bin/sh
# mount_wave1_test.sh - bundles written by wave 1 still read (issue 12's
# acceptance: version-2 readers read version 1).
#
# tests/data/wave1.apbundle was written by the wave-1 apbundle (commit
# 02028d3, the last before the block layer) with
#   apbundle create -a 64 -b 4096 -d "a wave-1 bundle" -m c=meta.json \
#       w1.apbundle a=src/a dir/b=src/dir/b empty=src/empty c=src/c
# from the files gen() below makes and meta.json =
#   {"version":"1.2","architecture":"mlp","hyperparameters":{"lr":"0.01"},"custom":{"origin":"wave 1"}}
# It is format version 1 with block tables that have a table_checksum but no
# index, and a manifest without manifest_checksum: the paths readers keep
# for old bundles (docs/FORMAT.md 2.4, 4.1, 4.2).  Checked: info, list
# --json, verify, extract, cat and a mount serve the same bytes and
# metadata, and a flipped byte in it is still caught and named.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

APB=$top_builddir/apbundle
W1=$top_srcdir/tests/data/wave1.apbundle
SRC=$WORK/src
python3 - "$SRC" <<'EOF' || fail "cannot generate the sources"
import hashlib, os, sys
def gen(name, n):
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha256(b"%s:%d" % (name.encode(), i)).digest()
        i += 1
    return out[:n]
for name, n in (("a", 20000), ("dir/b", 1), ("empty", 0), ("c", 5000)):
    p = os.path.join(sys.argv[1], name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(gen(name, n))
EOF
FILES="a dir/b empty c"

expect_eq "header version" "$(od -An -tu4 -j8 -N4 "$W1" | tr -d ' ')" 1
"$APB" info "$W1" >"$WORK/info" 2>&1 || { cat "$WORK/info" >&2; fail "info"; }
grep -q '^format version: *1$' "$WORK/info" && grep -q '^blocks: *8$' "$WORK/info" &&
	grep -q '^description: *"a wave-1 bundle"$' "$WORK/info" &&
	grep -q '^manifest: *unbound' "$WORK/info" || { cat "$WORK/info" >&2; fail "info"; }
"$APB" list --json "$W1" >"$WORK/list.json" || fail "list --json"
python3 - "$WORK/list.json" <<'EOF' || fail "list --json of the wave-1 bundle"
import json, sys
m = {x["name"]: x for x in json.load(open(sys.argv[1]))}
assert [(n, m[n]["size"], m[n]["codec"]) for n in sorted(m)] == \
    [("a", 20000, "none"), ("c", 5000, "none"), ("dir/b", 1, "none"), ("empty", 0, "none")], m
md = m["c"]["metadata"]
assert (md["version"], md["architecture"]) == ("1.2", "mlp"), md
assert md["hyperparameters"] == {"lr": "0.01"} and md["custom"] == {"origin": "wave 1"}, md
EOF
ok "info and list --json: version 1, 8 blocks, the models, sizes and metadata"

"$APB" verify "$W1" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "verify"; }
grep -q "OK: 4 models, 25001 bytes, 8 blocks verified" "$WORK/out" ||
	{ cat "$WORK/out" >&2; fail "verify summary"; }
ok "verify: exit 0, every block checked ($(cat "$WORK/out"))"

mkdir "$WORK/x"
"$APB" extract "$W1" -C "$WORK/x" 2>"$WORK/err" || { cat "$WORK/err" >&2; fail "extract"; }
diff -r "$SRC" "$WORK/x" >&2 || fail "extracted files differ"
for f in $FILES; do
	"$APB" cat "$W1" "$f" >"$WORK/cat.out" || fail "cat $f"
	cmp "$SRC/$f" "$WORK/cat.out" >&2 || fail "cat $f differs"
done
ok "extract and cat: byte-identical"

M=$WORK/mnt
for mode in keep_cache direct_io; do
	opts="max_memory=1M,page_size=4K"
	[ "$mode" = direct_io ] && opts="$opts,direct_io"
	start_fg "$M" "$WORK/log.$mode" -o "$opts" "$W1"
	for f in $FILES; do
		$VERIFY whole "$SRC/$f" "$M/$f" || fail "$mode: $f"
		$VERIFY random "$SRC/$f" "$M/$f" 40 9 || fail "$mode: random reads of $f"
	done
	expect_eq "$mode: architecture xattr of c" \
		"$(getfattr --absolute-names --only-values -n user.apbundle.architecture "$M/c")" mlp
	stop_fg "$M"
	ok "$mode: every model byte-identical through the mount"
done

# A flipped byte in block 3 of "a" (stored as is: version 1 has no codec).
# Its 4 KiB blocks are smaller than the mount's 64 KiB pages: the page that
# holds the bad block fails whole, and the good blocks in it (0-2 and 4, the
# short last one) must still be served (the fix in paged.c and ops.c).
BAD=$WORK/bad.apbundle
cp "$W1" "$BAD"
set -- $(python3 "$top_srcdir/tests/bundle_block.py" range "$BAD" a 3)
python3 "$top_srcdir/tests/bundle_block.py" flip "$BAD" $(($1 + 100)) || fail "flip"
"$APB" verify "$BAD" >/dev/null 2>"$WORK/err" && fail "verify of the corrupted wave-1 bundle passed"
named='model "a": block 3 (bytes 12288-16383)'
grep -qF "$named" "$WORK/err" || { cat "$WORK/err" >&2; fail "verify does not name block 3 of a"; }
for mode in direct_io keep_cache; do
	opts=page_size=64K
	[ "$mode" = direct_io ] && opts="$opts,direct_io"
	start_fg "$M" "$WORK/log.bad.$mode" -o "$opts" "$BAD"
	for r in 1 2; do
		$VERIFY pread_errno EIO "$M/a" 12288 4096 || fail "$mode: read $r of the bad block"
		$VERIFY pread_errno EIO "$M/a" 13000 10 || fail "$mode: read $r inside the bad block"
		for b in 0 1 2 4; do
			$VERIFY pread_ok "$SRC/a" "$M/a" $((b * 4096)) 4096 || fail "$mode: block $b, read $r"
		done
		$VERIFY pread_ok "$SRC/a" "$M/a" 100 12188 || fail "$mode: blocks 0-2 in one read"
		$VERIFY pread_ok "$SRC/a" "$M/a" 16384 3616 || fail "$mode: the block after the bad one"
	done
	[ "$mode" = keep_cache ] || $VERIFY pread_errno EIO "$M/a" 12188 200 ||
		fail "$mode: a read across the start of the bad block"
	$VERIFY whole "$SRC/c" "$M/c" || fail "$mode: model c beside the bad block"
	stop_fg "$M"
	expect_eq "$mode: log lines about bad blocks" "$(grep -c 'fails its checksum' "$WORK/log.bad.$mode")" 1
	grep -qF "$named fails its checksum" "$WORK/log.bad.$mode" ||
		{ cat "$WORK/log.bad.$mode" >&2; fail "$mode: the log does not say: $named"; }
	ok "$mode: a flipped byte in block 3 of a: EIO for it only, its page's good blocks served, one log line"
done
exit 0
