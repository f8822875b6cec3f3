#!/usr/bin/python3
"""compress_data.py - the data sets of compress_bench.sh, from fixed seeds.

Usage: scripts/bench/compress_data.py OUTDIR [SCALE]
Writes, under OUTDIR (SCALE divides every size; default 1):
  f32/weights.f32    256 MiB of float32 weights ~ N(0, 0.02), seed 1
  bf16/weights.bf16  256 MiB of BF16 weights ~ N(0, 0.02), seed 2: float32
                     values rounded to the nearest BF16 (ties to even), so
                     every value is one a BF16 tensor can hold
  mix/               64 MiB of small models, seed 3: 48 files of 256 KiB to
                     3 MiB, cycling float32, BF16 and float16 (N(0, 0.05))
The same seed gives the same bytes on any machine (numpy's PCG64).
"""
import os
import sys

import numpy as np

MiB = 1 << 20


def normal_f32(rng, n, sd):
    return rng.normal(0.0, sd, n).astype(np.float32)


def to_bf16(x):
    u = x.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16          # round to nearest, ties to even
    return u.astype(np.uint16)


def write_chunks(path, nbytes, make):
    """make(rng, n_bytes) returns a bytes-like chunk; written in 16 MiB pieces."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = nbytes
        while left:
            n = min(left, 16 * MiB)
            f.write(make(n))
            left -= n


def main():
    out = sys.argv[1]
    scale = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    r1 = np.random.default_rng(1)
    write_chunks(os.path.join(out, "f32", "weights.f32"), 256 * MiB // scale,
                 lambda n: normal_f32(r1, n // 4, 0.02).tobytes())
    r2 = np.random.default_rng(2)
    write_chunks(os.path.join(out, "bf16", "weights.bf16"), 256 * MiB // scale,
                 lambda n: to_bf16(normal_f32(r2, n // 2, 0.02)).tobytes())
    r3 = np.random.default_rng(3)
    sizes = [256 << 10, 512 << 10, 1 * MiB, 1536 << 10, 2 * MiB, 3 * MiB]
    total, k = 0, 0
    while total < 64 * MiB // scale:
        n = min(sizes[k % len(sizes)] // scale, 64 * MiB // scale - total)
        kind = ("f32", "bf16", "f16")[k % 3]
        x = normal_f32(r3, n // (4 if kind == "f32" else 2), 0.05)
        data = x if kind == "f32" else to_bf16(x) if kind == "bf16" else x.astype(np.float16)
        path = os.path.join(out, "mix", "layer%02d.%s" % (k, kind))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.tobytes())
        total += n
        k += 1


if __name__ == "__main__":
    main()
