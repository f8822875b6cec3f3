#!/usr/bin/env python3
"""make_seeds.py - writes the hand-crafted seeds of tests/fuzz/corpus/.

Usage: tests/fuzz/make_seeds.py CORPUS_DIR
Writes into CORPUS_DIR/manifest and CORPUS_DIR/bundle: v1 headers with
small manifests (valid and each edge a validator must refuse: hostile
names, overlapping or out-of-file ranges, huge numbers, bad UTF-8, wrong
count, trailing junk) and aprender legacy-layout files.  Seeds made with
the builder (valid checksums) come from make_seeds.sh; this script needs
no xxh3, so its checksums are placeholders (the manifest parser does not
verify model bytes; the bundle target then reports a checksum error).
"""
import json, os, struct, sys

out = sys.argv[1]
Z = "xxh3:" + "0" * 16


def v1(manifest, data=b"", align=16, raw=None, pad=True):
    text = raw if raw is not None else json.dumps(manifest, separators=(",", ":")).encode()
    if pad:
        while (16 + len(text)) % align:
            text += b" "
    return b"APBUNDLE" + struct.pack("<II", 1, len(text)) + text + data


def model(name, off, size, **kw):
    m = {"name": name, "offset": off, "size": size, "checksum": Z}
    m.update(kw)
    return m


def top(models, **kw):
    t = {"format": "apbundle", "version": 1, "alignment": 16,
         "model_count": len(models), "models": models}
    t.update(kw)
    return t


def legacy(models, desc=b"legacy", created=0, data=b""):
    man = struct.pack("<IQI", 1, created, len(desc)) + desc + struct.pack("<I", len(models))
    for name, size, off in models:
        man += struct.pack("<I", len(name)) + name + struct.pack("<QQ", size, off)
    return b"APBUNDLE" + struct.pack("<IQ", 1, len(man)) + man + data


seeds = {
    "v1_empty": v1(top([])),
    "v1_one": v1(top([model("a", 0, 4)]), b"abcd"),
    "v1_two_nested": v1(top([model("d/x", 0, 3), model("d/y", 16, 2)]), b"xyz" + b"\0" * 13 + b"yy"),
    "v1_blocks": v1(top([model("m", 0, 1100, blocks={"size": 512, "checksums_offset": 1104})]),
                    b"m" * 1104 + b"\0" * 24),
    "v1_metadata": v1(top([model("m", 0, 1, metadata={"version": "1.2", "architecture": "mlp",
                                                         "hyperparameters": {"layers": "6"},
                                                         "custom": {"k": "v"}})],
                          description="desc", created_at=1700000000), b"z"),
    "v1_overlap": v1(top([model("a", 0, 8), model("b", 4, 8)], alignment=4), b"x" * 16, align=4),
    "v1_beyond_eof": v1(top([model("a", 0, 1 << 40)]), b"x"),
    "v1_u64max": v1(top([model("a", 18446744073709551615, 1)]), b"x"),
    "v1_dup": v1(top([model("a", 0, 1), model("a", 16, 1)]), b"x" * 17),
    "v1_dotdot": v1(top([model("../etc/passwd", 0, 1)]), b"x"),
    "v1_slash": v1(top([model("/abs", 0, 1)]), b"x"),
    "v1_empty_comp": v1(top([model("a//b", 0, 1)]), b"x"),
    "v1_ctrl": v1(top([model("a\nb", 0, 1)]), b"x"),
    "v1_nul": v1(None, b"x", raw=b'{"format":"apbundle","version":1,"alignment":16,"model_count":1,'
                 b'"models":[{"name":"a\\u0000b","offset":0,"size":1,"checksum":"' + Z.encode() + b'"}]}'),
    "v1_bad_utf8": v1(None, b"x", raw=b'{"format":"apbundle","version":1,"alignment":16,"model_count":1,'
                      b'"models":[{"name":"a\xc0\xafb","offset":0,"size":1,"checksum":"' + Z.encode() + b'"}]}'),
    "v1_count": v1(top([model("a", 0, 1)], model_count=2), b"x"),
    "v1_trailing": v1(None, b"", raw=b'{"format":"apbundle","version":1,"alignment":16,"model_count":0,'
                      b'"models":[]}  x'),
    "v1_version2": b"APBUNDLE" + struct.pack("<II", 2, 2) + b"{}",
    "v1_len_huge": b"APBUNDLE" + struct.pack("<II", 1, 0xffffffff) + b"{",
    "v1_negative": v1(top([model("a", -1, 1)]), b"x"),
    "v1_float": v1(top([model("a", 0.5, 1)]), b"x"),
    "v1_blocks_oob": v1(top([model("m", 0, 1100, blocks={"size": 512, "checksums_offset": 1 << 62})]),
                        b"m" * 1104),
    "legacy_two": legacy([(b"enc", 3, 0), (b"dec", 2, 3)], data=b"abcde"),
    "legacy_empty": legacy([]),
    "legacy_oob": legacy([(b"a", 1 << 63, 0)], data=b"x"),
    "legacy_dotdot": legacy([(b"..", 1, 0)], data=b"x"),
    "legacy_namelen": b"APBUNDLE" + struct.pack("<IQ", 1, 24) + struct.pack("<IQIII", 1, 0, 0, 1, 0xffffffff),
    "not_a_bundle": b"APBUNDLX" + b"\0" * 8,
    "short_header": b"APBUN",
}


def many(names):
    ms = [model(n, 16 * i, 1) for i, n in enumerate(names)]
    return v1(top(ms), b"".join(b"x" + b"\0" * 15 for _ in names))


# for the mount's tree and .stats renderers: collisions, shadowing, escaping
mount_seeds = {
    "m_file_dir_collision": many(["a", "a/b", "a/c/d"]),
    "m_shadow_stats": many([".stats", ".stats.json", "x"]),
    "m_json_escapes": many(['q"uote', "back\\slash", "\u00fc/\u540d\u524d", "tab\u2028sep"]),
    "m_deep": many(["a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g/i", "a/z"]),
    "m_long_component": many(["c" * 255 + "/" + "d" * 255]),
    "m_siblings": many(["d/%03d" % i for i in range(40)]),
}
for sub in ("manifest", "bundle", "mount"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
    batch = dict(seeds)
    if sub != "manifest":
        batch.update(mount_seeds)
    for name, data in batch.items():
        with open(os.path.join(out, sub, name), "wb") as f:
            f.write(data)
print(len(seeds), "seeds per target, plus", len(mount_seeds), "for the paged and mount targets")
