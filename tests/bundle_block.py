#!/usr/bin/env python3
"""bundle_block.py - where a block of a model is stored in a bundle file.

Used by the compression tests (tests/mount_compress_*.sh) to corrupt exactly
one stored block.  Reads the header, the JSON manifest and the model's block
table the way docs/FORMAT.md describes them (sections 1, 2, 4 and 10.3),
independently of the library, so a test does not trust the code it tests.

  range BUNDLE MODEL K   prints "FILE_OFFSET STORED_LENGTH FIRST LAST CODEC":
                         block K's stored bytes in the file, and the decoded
                         byte range FIRST-LAST (inclusive) it serves
  flip BUNDLE POS        XORs the byte at file offset POS with 0x5A
"""
import json
import struct
import sys


def block_range(path, name, k):
    with open(path, "rb") as f:
        head = f.read(16)
        if head[:8] != b"APBUNDLE":
            sys.exit("not a bundle: " + path)
        mlen = struct.unpack_from("<I", head, 12)[0]
        man = json.loads(f.read(mlen))
        start = 16 + mlen
        model = [m for m in man["models"] if m["name"] == name]
        if len(model) != 1:
            sys.exit("no model %r in %s" % (name, path))
        m = model[0]
        bs = m["blocks"]["size"]
        n = (m["size"] + bs - 1) // bs
        if not 0 <= k < n:
            sys.exit("model %r has %d blocks, not block %d" % (name, n, k))
        first = k * bs
        last = min(m["size"], first + bs) - 1
        codec = m.get("codec", "none")
        if codec == "none":
            return start + m["offset"] + first, last - first + 1, first, last, codec
        f.seek(start + m["blocks"]["checksums_offset"])
        table = f.read(16 * n)
        offs = [struct.unpack_from("<Q", table, 16 * i + 8)[0] for i in range(n)]
        end = offs[k + 1] if k + 1 < n else m["stored_size"]
        return start + m["offset"] + offs[k], end - offs[k], first, last, codec


def flip(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        if len(b) != 1:
            sys.exit("offset %d is past the end of %s" % (pos, path))
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x5A]))


def main(argv):
    if len(argv) == 5 and argv[1] == "range":
        print(*block_range(argv[2], argv[3], int(argv[4])))
    elif len(argv) == 4 and argv[1] == "flip":
        flip(argv[2], int(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
