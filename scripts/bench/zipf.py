#!/usr/bin/env python3
"""zipf.py - deterministic Zipf-popular access sequences, and a whole-file reader.

  zipf.py seq NAMES_FILE COUNT S SEED   print COUNT names, Zipf(S) popular
  zipf.py read DIR SEQ_FILE             read each named file whole, in order;
                                        print "SECONDS BYTES READ_BYTES_OF_SELF"

The popularity rank of a name is a seeded permutation of the name list, so
popularity does not follow name order, and a sequence depends only on its
arguments (the same seed gives every peer the same sequence).
"""
import os
import random
import sys
import time


def seq(names_file, count, s, seed):
    names = [l.strip() for l in open(names_file) if l.strip()]
    rng = random.Random(seed)
    ranked = names[:]
    rng.shuffle(ranked)
    weights = [1.0 / (r + 1) ** s for r in range(len(ranked))]
    for name in rng.choices(ranked, weights=weights, k=count):
        print(name)


def self_read_bytes():
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    return 0


def read(directory, seq_file):
    names = [l.strip() for l in open(seq_file) if l.strip()]
    total = 0
    t0 = time.monotonic()
    for name in names:
        with open(os.path.join(directory, name), "rb", buffering=0) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                total += len(b)
    print("%.6f %d %d" % (time.monotonic() - t0, total, self_read_bytes()))


def main(argv):
    if len(argv) == 6 and argv[1] == "seq":
        seq(argv[2], int(argv[3]), float(argv[4]), int(argv[5]))
    elif len(argv) == 4 and argv[1] == "read":
        read(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
