#!/usr/bin/python3
"""make_frame_seeds.py - writes the seeds of tests/fuzz/corpus/frame/.

Usage: tests/fuzz/make_frame_seeds.py CORPUS_DIR
Each seed is fuzz_frame's input: byte 0 = filter (0 none, 1 bytegroup2,
2 bytegroup4; bit 2 = codec none), bytes 1-2 = decoded length - 1 (LE),
then the stored block.  Frames are made by the zstd command (level 3, no
checksum) from float32/BF16 weights with a fixed seed, filtered as
codec.c does (byte planes; the tail kept as is), plus a raw block, a
truncated frame and a frame with a trailing byte.
"""
import os, struct, subprocess, sys
import numpy as np

out = os.path.join(sys.argv[1], "frame")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(12)

def planes(b, w):
    m = len(b) // w
    body = np.frombuffer(b[:m * w], dtype=np.uint8).reshape(m, w).T.tobytes()
    return body + b[m * w:]

def zstd(b):
    return subprocess.run(["zstd", "-3", "-q", "-c", "--no-check"], input=b,
                          stdout=subprocess.PIPE, check=True).stdout

def seed(name, fsel, n, stored):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([fsel]) + struct.pack("<H", n - 1) + stored)

f32 = rng.normal(0, 0.02, 1024).astype(np.float32).tobytes()
bf16 = (rng.normal(0, 0.02, 2050).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
seed("f32_bytegroup4", 2, len(f32), zstd(planes(f32, 4)))
seed("bf16_bytegroup2", 1, len(bf16), zstd(planes(bf16, 2)))
seed("f32_none", 0, len(f32), zstd(f32))
seed("odd_tail_bytegroup4", 2, 1001, zstd(planes(f32[:1001], 4)))
seed("zeros", 0, 65536, zstd(bytes(65536)))
seed("raw", 0, 64, bytes(range(64)))
fr = zstd(planes(f32, 4))
seed("truncated", 2, len(f32), fr[:len(fr) // 2])
seed("trailing", 2, len(f32), fr + b"\0")
seed("codec_none_raw", 4, 16, bytes(range(16)))
print("wrote", len(os.listdir(out)), "frame seeds")
