#!/bin/sh
# shell_bench.sh - apbundle-shell: training throughput and suggest latency.
#
# usage: scripts/bench/shell_bench.sh [BUILD_DIR] [SIZES]
#   BUILD_DIR  where apbundle-shell was built (default: current directory)
#   SIZES      history lengths in lines (default "100000 1000000")
#
# For each size: a deterministic zsh history from tests/shell_histgen.sh,
# `train` timed (lines/s, wall clock), then `suggest` latency over 200
# prefixes sampled from that history (a whole command cut after a random
# number of tokens, or inside a token), each a separate process, as a key
# binding runs it: wall time from spawn to exit, --memory-limit 10 and 1.
# Warm: page cache warm (one untimed pass first).  Cold: before each of the
# first 40 queries `sync; echo 3 > /proc/sys/vm/drop_caches` (root only;
# skipped otherwise), so the bundle and the binary come from disk.
# Prints one table; needs python3.
set -eu
B=$(cd "${1:-.}" && pwd)
SIZES=${2:-"100000 1000000"}
S=$(cd "$(dirname "$0")/../.." && pwd)
SH=$B/apbundle-shell
[ -x "$SH" ] || { echo "shell_bench: $SH not built" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/apbshbench.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

for n in $SIZES; do
	"$S/tests/shell_histgen.sh" "$n" 7 zsh >"$T/h$n"
done

python3 - "$SH" "$T" $SIZES <<'EOF'
import os, random, statistics, subprocess, sys, time

sh, tmp, sizes = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3:]]
root = os.geteuid() == 0

def run(args):
    t = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000

def prefixes(hist, k, rng):
    cmds = [l.split(";", 1)[1].rstrip("\n") for l in open(hist) if ";" in l]
    out = []
    for c in rng.sample(cmds, k):
        toks = c.split()
        cut = rng.randrange(1, len(toks) + 1)
        p = " ".join(toks[:cut])
        if rng.random() < 0.5 and cut < len(toks):
            out.append(p + " ")                       # next token
        else:
            t = toks[cut - 1]
            out.append(" ".join(toks[:cut - 1] + [t[:max(1, len(t) // 2)]]))  # current token
    return out

def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")

print("%-9s %10s %12s %9s | %-6s %4s %9s %9s %9s %9s" % (
    "history", "model MB", "train lines/s", "train s", "limit", "n",
    "warm p50", "warm p99", "cold p50", "cold p99"))
for n in sizes:
    hist = os.path.join(tmp, "h%d" % n)
    model = os.path.join(tmp, "m%d.apbundle" % n)
    dt = run([sh, "train", "--history", hist, "-o", model])
    mb = os.path.getsize(model) / 2**20
    qs = prefixes(hist, 200, random.Random(n))
    for limit in ("10", "1"):
        base = [sh, "suggest", "-m", model, "--memory-limit", limit, "-n", "5", "--"]
        for q in qs:
            run(base + [q])
        warm = [run(base + [q]) for q in qs]
        cold = []
        if root:
            for q in qs[:40]:
                drop_caches()
                cold.append(run(base + [q]))
        c50 = "%9.2f" % pct(cold, 50) if cold else "%9s" % "-"
        c99 = "%9.2f" % pct(cold, 99) if cold else "%9s" % "-"
        print("%-9d %10.1f %12.0f %9.2f | %-6s %4d %9.2f %9.2f %s %s" % (
            n, mb, n / dt, dt, limit + "MiB", len(warm), pct(warm, 50), pct(warm, 99), c50, c99))
print("latency in ms per suggest process (spawn to exit); cold: %s" %
      ("40 queries, caches dropped before each" if root else "skipped (not root)"))
print("load average at the end: %.2f %.2f %.2f on %d CPUs" % (os.getloadavg() + (os.cpu_count(),)))
EOF
