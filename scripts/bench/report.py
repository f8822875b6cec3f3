#!/usr/bin/env python3
"""report.py - turn run.sh's raw samples into medians, ratios, targets and a chart.

Usage: report.py WORKDIR OUT_MD OUT_PNG

Reads WORKDIR/results.tsv (workload, peer, variant, run, value, flag; flag T =
hit the deadline, value is then an upper bound; S = skipped after a timeout;
F = failed; E = tool error), WORKDIR/machine.txt and WORKDIR/zipf.params.
Writes the section between "<!-- run.sh begin -->" and "<!-- run.sh end -->"
of OUT_MD (creating the file or the section, leaving everything else alone)
and OUT_PNG through gnuplot.
"""
import os
import statistics
import subprocess
import sys
from collections import defaultdict

BEGIN, END = "<!-- run.sh begin -->", "<!-- run.sh end -->"
PEERS = ["native", "nullfs", "squashfuse_ll", "archivemount", "fuse-zip", "apbundle"]
MIB = 1024 * 1024


def load(path):
    data = defaultdict(list)  # (workload, peer, variant) -> [(value|None, flag)]
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5:
                continue
            w, p, v, _run, val = parts[:5]
            flag = parts[5] if len(parts) > 5 else ""
            try:
                x = float(val)
            except ValueError:
                x = None
            data[(w, p, v)].append((x, flag))
    return data


class Cell:
    """Median of a sample list, with how it was obtained."""

    def __init__(self, samples):
        vals = [x for x, fl in samples if x is not None and fl == ""]
        self.timeout = [x for x, fl in samples if fl == "T" and x is not None]
        self.n = len(vals)
        self.failed = not vals and not self.timeout
        self.value = statistics.median(vals) if vals else None
        self.bound = max(self.timeout) if self.timeout else None

    def ok(self):
        return self.value is not None

    def fmt(self, digits=0):
        if self.value is not None:
            return f"{self.value:,.{digits}f}"
        if self.bound is not None:
            return f"< {self.bound:,.{digits}f} (timeout)"
        return "n/a"


def cell(data, w, p, v):
    return Cell(data.get((w, p, v), []))


def ratio(a, b):
    if not a.ok() or not b.ok() or b.value == 0:
        return "–"
    return f"{a.value / b.value:.2f}×"


def rss(data, w, p, v):
    c = cell(data, "rss_" + w, p, v)
    if not c.ok():
        return "–"
    return f"{c.value / 1024:.1f}"


def variants(data, w, p):
    return sorted({k[2] for k in data if k[0] == w and k[1] == p},
                  key=lambda s: (len(s), s))


def seq_table(data, out):
    out.append("| workload | read_ahead_kb | peer | median MB/s | × native | × squashfuse_ll | × nullfs | peak RSS MiB | runs |")
    out.append("|---|---|---|--:|--:|--:|--:|--:|--:|")
    names = {"cold": "1 cold sequential", "dwarm": "2 daemon-warm", "kwarm": "3 kernel-warm"}
    for w in ("cold", "dwarm", "kwarm"):
        nat_v = (variants(data, w, "native") or ["-"])[0]
        native = cell(data, w, "native", nat_v)
        for v in variants(data, w, "nullfs") or variants(data, w, "apbundle"):
            sq = cell(data, w, "squashfuse_ll", v)
            null = cell(data, w, "nullfs", v)
            for p in PEERS:
                pv = nat_v if p == "native" else v
                c = cell(data, w, p, pv)
                if (w, p, pv) not in data:
                    continue
                if p == "native" and v != variants(data, w, "nullfs")[0]:
                    continue
                ra = pv[3:] + " (disk)" if p == "native" else pv[2:]
                out.append(f"| {names[w]} | {ra} | {p} | {c.fmt()} | {ratio(c, native)} | "
                           f"{ratio(c, sq)} | {ratio(c, null)} | {rss(data, w, p, pv)} | {c.n} |")


def fio_table(data, out):
    out.append("| jobs | peer | median IOPS | × native | × squashfuse_ll | × nullfs | peak RSS MiB | runs |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|")
    for w in ("fio1", "fio4"):
        native, sq, null = (cell(data, w, p, "-") for p in ("native", "squashfuse_ll", "nullfs"))
        for p in PEERS:
            if (w, p, "-") not in data:
                continue
            c = cell(data, w, p, "-")
            out.append(f"| {w[3:]} | {p} | {c.fmt()} | {ratio(c, native)} | {ratio(c, sq)} | "
                       f"{ratio(c, null)} | {rss(data, w, p, '-')} | {c.n} |")


def mount_counts(data):
    return sorted({int(k[0].split("_")[-1]) for k in data if k[0].startswith("mount_warm_")})


def mount_table(data, out):
    out.append("| models | peer | mount, cold cache (ms) | mount, warm cache (ms) | warm mount × squashfuse_ll (lower is better) | `ls -l` (ms) | `ls -l` × native (lower is better) | peak RSS MiB | runs |")
    out.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    for n in mount_counts(data):
        sqm = cell(data, f"mount_warm_{n}", "squashfuse_ll", "-")
        nls = cell(data, f"ls_{n}", "native", "-")
        out.append(f"| {n:,} | native | – | – | – | {nls.fmt(1)} | 1.00× | – | {nls.n} |")
        for p in PEERS[2:]:
            if (f"mount_warm_{n}", p, "-") not in data:
                continue
            mc = cell(data, f"mount_cold_{n}", p, "-")
            mw = cell(data, f"mount_warm_{n}", p, "-")
            ls = cell(data, f"ls_{n}", p, "-")
            out.append(f"| {n:,} | {p} | {mc.fmt(1)} | {mw.fmt(1)} | {ratio(mw, sqm)} | {ls.fmt(1)} | "
                       f"{ratio(ls, nls)} | {rss(data, f'mount_{n}', p, '-')} | {mw.n} |")


def zipf_table(data, out, params):
    out.append("| peer | wall (s) | wall × squashfuse_ll (lower is better) | hit rate | bytes loaded (.stats.json) | disk read (/proc/PID/io) | peak RSS MiB | runs |")
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|")
    sq = cell(data, "zipf_wall", "squashfuse_ll", "-")
    for p in ("native", "squashfuse_ll", "apbundle-lru", "apbundle-lfu"):
        if ("zipf_wall", p, "-") not in data:
            continue
        wall = cell(data, "zipf_wall", p, "-")
        hit = cell(data, "zipf_hit", p, "-")
        ld = cell(data, "zipf_loaded", p, "-")
        dk = cell(data, "zipf_disk", p, "-")
        hit_s = f"{hit.value:.3f}" if hit.ok() else "–"
        ld_s = f"{ld.value / MIB:,.1f} MiB" if ld.ok() else "–"
        dk_s = f"{dk.value / MIB:,.1f} MiB" if dk.ok() else "–"
        out.append(f"| {p} | {wall.fmt(2)} | {ratio(wall, sq)} | {hit_s} | {ld_s} | {dk_s} | "
                   f"{rss(data, 'zipf', p, '-')} | {wall.n} |")


def check(cond_vals):
    """cond_vals: list of (ratio or None, minimum). 'yes'/'NO'/'unknown'."""
    if any(r is None for r, _ in cond_vals):
        return "unknown"
    return "yes" if all(r >= m for r, m in cond_vals) else "**NO**"


def r_of(a, b):
    return a.value / b.value if a.ok() and b.ok() and b.value else None


def fmt_r(x):
    return "–" if x is None else f"{x:.2f}×"


def targets(data, out, maxmem):
    out.append("| target | measured (same run) | holds |")
    out.append("|---|---|---|")
    nat_v = (variants(data, "cold", "native") or ["-"])[0]
    for v in variants(data, "cold", "apbundle"):
        a = {w: cell(data, w, "apbundle", v) for w in ("cold", "dwarm", "kwarm")}
        sq = {w: cell(data, w, "squashfuse_ll", v) for w in ("cold", "dwarm")}
        nu = {w: cell(data, w, "nullfs", v) for w in ("dwarm", "kwarm")}
        nat = cell(data, "cold", "native", nat_v)
        ra = v[2:]
        x1, x2 = r_of(a["cold"], sq["cold"]), r_of(a["cold"], nat)
        out.append(f"| cold sequential ≥ 1.0× squashfuse_ll, ≥ 0.9× native (read_ahead_kb {ra}) | "
                   f"{fmt_r(x1)}, {fmt_r(x2)} | {check([(x1, 1.0), (x2, 0.9)])} |")
        x1, x2 = r_of(a["dwarm"], sq["dwarm"]), r_of(a["dwarm"], nu["dwarm"])
        out.append(f"| daemon-warm ≥ 1.5× squashfuse_ll, ≥ 0.9× nullfs (read_ahead_kb {ra}) | "
                   f"{fmt_r(x1)}, {fmt_r(x2)} | {check([(x1, 1.5), (x2, 0.9)])} |")
        x1 = r_of(a["kwarm"], nu["kwarm"])
        out.append(f"| kernel-warm ≥ 0.95× nullfs (read_ahead_kb {ra}) | {fmt_r(x1)} | {check([(x1, 0.95)])} |")
    for w in ("fio1", "fio4"):
        a, sq, nu = (cell(data, w, p, "-") for p in ("apbundle", "squashfuse_ll", "nullfs"))
        x1, x2 = r_of(a, sq), r_of(a, nu)
        out.append(f"| 4 KiB random O_DIRECT, {w[3:]} job(s): ≥ 2× squashfuse_ll, ≥ 0.7× nullfs | "
                   f"{a.fmt()} IOPS: {fmt_r(x1)}, {fmt_r(x2)} | {check([(x1, 2.0), (x2, 0.7)])} |")
    for n, limit in ((10000, 50.0), (100000, 500.0)):
        c = cell(data, f"mount_warm_{n}", "apbundle", "-")
        cc = cell(data, f"mount_cold_{n}", "apbundle", "-")
        if (f"mount_warm_{n}", "apbundle", "-") not in data:
            out.append(f"| mount ≤ {limit:.0f} ms at {n:,} models | not measured | unknown |")
            continue
        hold = "unknown" if not c.ok() else ("yes" if c.value <= limit else "**NO**")
        out.append(f"| mount ≤ {limit:.0f} ms at {n:,} models | warm cache {c.fmt(1)} ms "
                   f"(cold cache {cc.fmt(1)} ms) | {hold} |")
    worst = []
    for (w, p, v), s in data.items():
        if p.startswith("apbundle") and w.startswith("rss_"):
            budget = maxmem.get(w, maxmem.get("default"))
            for x, _ in s:
                if x is not None and budget:
                    worst.append((x * 1024 - budget, w, x, budget))
    if worst:
        over, w, x, budget = max(worst)
        hold = "yes" if over <= 24 * MIB else "**NO**"
        out.append(f"| daemon peak RSS ≤ max_memory + 24 MiB in every workload | worst: {w[4:]}, "
                   f"{x / 1024:.1f} MiB with max_memory {budget / MIB:.0f} MiB "
                   f"(max_memory {over / MIB:+.1f} MiB) | {hold} |")
    out.append("| library hit path ≥ 5 M lookups/s on one core | measured by scripts/bench/bench_cache "
               "(cache section) | see there |")


def chart(data, work, png):
    """Two panels: sequential MB/s per workload/readahead, and IOPS per job count."""
    rows = []
    for w in ("cold", "dwarm", "kwarm"):
        for v in variants(data, w, "nullfs") or variants(data, w, "apbundle"):
            nat_v = (variants(data, w, "native") or ["-"])[0]
            vals = []
            for p in PEERS:
                c = cell(data, w, p, nat_v if p == "native" else v)
                vals.append(c.value if c.ok() else (c.bound if c.bound else 0))
            rows.append((f"{w} ra{v[2:]}", vals))
    fio_rows = []
    for w in ("fio1", "fio4"):
        vals = [cell(data, w, p, "-").value or 0 for p in PEERS]
        fio_rows.append((f"{w[3:]} job" + ("s" if w == "fio4" else ""), vals))
    if not any(v for _, vals in rows + fio_rows for v in vals):
        return
    seq_dat, fio_dat = os.path.join(work, "chart-seq.dat"), os.path.join(work, "chart-fio.dat")
    for path, rr in ((seq_dat, rows), (fio_dat, fio_rows)):
        with open(path, "w") as f:
            f.write("label " + " ".join(PEERS) + "\n")
            for label, vals in rr:
                f.write(f'"{label}" ' + " ".join(f"{max(v, 0.1):.1f}" for v in vals) + "\n")
    script = f"""
set terminal pngcairo noenhanced size 1400,600 font ",10"
set output "{png}"
set multiplot layout 1,2 title "apbundle-mount and peers, medians (log scale; timeouts drawn at their upper bound)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [1:*]
set key top left font ",9"
set xtics rotate by -30 font ",9"
set grid ytics
set ylabel "MB/s"
set title "Sequential read of one model"
plot for [i=2:{len(PEERS) + 1}] "{seq_dat}" using i:xtic(1) title columnheader(i)
set ylabel "IOPS"
set title "4 KiB random reads, O_DIRECT"
plot for [i=2:{len(PEERS) + 1}] "{fio_dat}" using i:xtic(1) title columnheader(i)
unset multiplot
"""
    gp = os.path.join(work, "chart.gp")
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write("report.py: gnuplot failed, no chart:\n" + r.stderr)


def read_kv(path):
    kv = {}
    if os.path.exists(path):
        for line in open(path):
            if ": " in line:
                k, v = line.rstrip("\n").split(": ", 1)
                kv[k] = v
    return kv


def section(work, data, png_rel):
    m = read_kv(os.path.join(work, "machine.txt"))
    zp = open(os.path.join(work, "zipf.params")).read().split() if os.path.exists(
        os.path.join(work, "zipf.params")) else None
    mm = read_kv(os.path.join(work, "maxmem.txt"))
    maxmem = {k: float(v) for k, v in mm.items()}
    runs = max([len(s) for k, s in data.items() if k[0] == "cold"] or [0])
    out = [BEGIN, "## Side by side: apbundle-mount against its peers (scripts/bench/run.sh)", ""]
    out.append(f"Generated by `scripts/bench/run.sh` (from {m.get('started', '?')} to "
               f"{m.get('finished', '?')}); medians of {runs} run(s) per cell. "
               "Do not edit by hand: rerun the script.")
    out.append("")
    start = m.get("started", "")
    hhmm = start[11:16] if len(start) >= 16 else ""
    load = m.get("load average at start", "")
    if "QUICK=1" in m.get("settings", "") or (hhmm and hhmm < "19:15") or \
            (load and float(load.split()[0]) > 0.5):
        out.append("> **Noisy numbers:** this run was a development run (QUICK mode), or ran while "
                   "other engineers were compiling and testing on the same 2 cores "
                   f"(load average at start {load}). Trust ratios more than absolute values.")
        out.append("")
    out.append("### Machine")
    out.append("")
    for k in ("cpu", "cores", "ram", "kernel", "free page reporting", "workdir", "libfuse", "peers", "apbundle",
              "load average at start", "settings"):
        if k in m:
            out.append(f"- {k}: {m[k]}")
    out.append("")
    out.append("### Method")
    out.append("")
    out.append("- Every peer serves the same bytes: one random model for workloads 1–4 "
               "(`model.bin`), the same small-model sets for workload 5, the same Zipf models for 7. "
               "squashfuse_ll reads an uncompressed image (`mksquashfs -noI -noD -noF -noX -no-xattrs`), "
               "archivemount an uncompressed tar, fuse-zip a stored zip (`zip -0`), nullfs holds the file "
               "in memory (the ceiling of any FUSE daemon here), native is the file on the same ext4.")
    out.append("- Peers run round-robin inside each run (the order rotates from run to run), each with "
               "a fresh mount for workloads 1–4: `sync; echo 3 > /proc/sys/vm/drop_caches`, read "
               "(1, cold); drop caches again, read (2, daemon-warm: only a daemon that keeps its own "
               "cache, as apbundle does with max_memory ≥ the model, or nullfs, is faster than cold "
               "here); read again without dropping (3, kernel-warm: three back-to-back reads, timed together); then fio (4). Reads are "
               "`dd bs=1M` to /dev/null, timed around the process. apbundle-mount runs with "
               "max_memory = model size + 64 MiB and its defaults otherwise; peers with their defaults "
               "(archivemount and fuse-zip are high-level FUSE daemons without kernel_cache, so their "
               "kernel-warm read goes back to the daemon).")
    if "virtio" in m.get("workdir", ""):
        out.append("- The work dir is on a virtual disk: `drop_caches` empties the guest's page cache "
                   "only, so a \"cold\" read may still come from the host's cache, for the native file "
                   "and for every image alike. Cold numbers here are upper bounds of a real disk's.")
    if m.get("free page reporting", "").startswith("on"):
        out.append("- The guest hands freed memory back to the host (free page reporting), so memory "
                   "that one peer frees and the next one touches first costs host page faults: "
                   "a daemon that fills a cache during the timed read (apbundle's paging cache, "
                   "fuse-zip) pays it there, one that caches nothing (squashfuse_ll) or filled its "
                   "memory before the read (nullfs) does not; the kernel's page cache pays it for "
                   "everyone. Cold reads vary the most from it (see the notes below).")
    out.append("- read_ahead_kb: every FUSE mount's bdi (`/sys/class/bdi/$(mountpoint -d MNT)`) is "
               "set to the value in the table, alike for nullfs, the peers and apbundle (apbundle-mount runs "
               "with `-o readahead=0` so that it keeps this value instead of setting its default 1024; "
               "the others keep the kernel's 128 unless told; 1024 is what apbundle-mount sets by "
               "itself when not told otherwise, as gcsfuse does; measured here for every peer alike). The native file "
               "uses its disk's own setting, shown as \"(disk)\".")
    out.append(f"- fio: `--rw=randread --bs=4k --direct=1 --ioengine=psync --time_based` for the "
               f"configured runtime, 1 and 4 jobs, on the mount of workloads 1–3 (so apbundle has the "
               "model resident in its paging cache). Native O_DIRECT reads go to the disk.")
    out.append("- Mount time: from fork() of the daemon (`-f`) until `MNT/model-000000.bin` answers "
               "stat (scripts/bench/mnttime.c, 0.1 ms polling), with the page cache dropped first (cold) "
               "and right after a previous mount (warm); then `ls -l MNT` with a warm mount. apbundle "
               "runs with its default max_memory (100 MiB) here.")
    out.append("- Peak RSS is VmHWM of the daemon, reset (`echo 5 > /proc/PID/clear_refs`) before each "
               "workload and read after it. A timed-out cell shows what was read before the deadline "
               "(an upper bound) and is not retried in later runs.")
    if zp:
        budget, total, nm, msz, nr, s = zp
        out.append(f"- Zipf workload: {nm} models of {int(msz) / MIB:.0f} MiB ({int(total) / MIB:.0f} MiB), "
                   f"{nr} whole-model reads drawn with Zipf s={s} (seeded, the same sequence for every "
                   f"peer), page cache dropped before each pass. apbundle: `-o direct_io,max_memory="
                   f"{int(budget) / MIB:.1f}M` (10% of the bundle), hit rate and bytes loaded from "
                   "`.stats.json`; disk read is the daemon's plus the reader's `read_bytes`. Peers have "
                   "no budget: the kernel page cache holds all of their data.")
    out.append("")
    out.append("### Sequential read of one model (workloads 1–3, 6)")
    out.append("")
    seq_table(data, out)
    out.append("")
    out.append("### 4 KiB random reads, O_DIRECT (workload 4, 6)")
    out.append("")
    fio_table(data, out)
    out.append("")
    if mount_counts(data):
        out.append("### Mount time and `ls -l` of every model (workload 5, 6)")
        out.append("")
        mount_table(data, out)
        out.append("")
    if any(k[0] == "zipf_wall" for k in data):
        out.append("### Multi-model Zipf workload (workload 7, 6)")
        out.append("")
        zipf_table(data, out, zp)
        out.append("")
    out.append("### Targets (issue 7), from this run")
    out.append("")
    targets(data, out, maxmem)
    out.append("")
    out.append(f"![throughput per workload and peer]({png_rel})")
    out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    work, md, png = argv[1:4]
    data = load(os.path.join(work, "results.tsv"))
    chart(data, work, os.path.abspath(png))
    png_rel = os.path.relpath(os.path.abspath(png), os.path.dirname(os.path.abspath(md)))
    sec = section(work, data, png_rel)
    old = open(md).read() if os.path.exists(md) else "# Benchmarks\n\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + sec + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + sec
    tmp = md + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
