#!/usr/bin/env python3
"""policy_trace_gen.py - synthetic page-lookup traces for policy_bench.sh.

Writes a trace in the text format of `apbundle simulate` (see apbundle(1)):
`# page_size N`, one `# model NAME SIZE` per model, then NAME<TAB>PAGE per
lookup.  Deterministic for a given seed.

Workloads (--kind):
  whole    each request loads a whole model, models picked by Zipf(alpha)
  partial  each request reads the header (first 2 pages) and one range of
           10-30% of a Zipf-picked model
  scan     whole-model Zipf loads with a one-off scan, in the middle, of a
           model larger than the budget that is never read again
Model sizes are log-uniform between --min-pages and --max-pages pages.
"""
import argparse
import bisect
import itertools
import random
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=("whole", "partial", "scan"), default="whole")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--models", type=int, default=60)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--min-pages", type=int, default=16)
    ap.add_argument("--max-pages", type=int, default=256)
    ap.add_argument("--page-size", type=int, default=65536)
    ap.add_argument("--scan-pages", type=int, default=0,
                    help="pages of the scanned model (scan kind; default: total/2)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    lo, hi = a.min_pages, a.max_pages
    pages = [int(round(lo * (hi / lo) ** rng.random())) for _ in range(a.models)]
    total = sum(pages)
    names = ["model-%02d.safetensors" % i for i in range(a.models)]
    # popularity rank is independent of size
    order = list(range(a.models))
    rng.shuffle(order)
    cum = list(itertools.accumulate(1.0 / (r + 1) ** a.alpha for r in range(a.models)))

    out = sys.stdout
    w = out.write
    w("# page_size %d\n" % a.page_size)
    w("# synthetic: kind=%s alpha=%g models=%d requests=%d seed=%d total_pages=%d\n"
      % (a.kind, a.alpha, a.models, a.requests, a.seed, total))
    for n, p in zip(names, pages):
        # the last page of a model is short, as in real files
        w("# model %s %d\n" % (n, p * a.page_size - rng.randrange(a.page_size)))
    scan_pages = a.scan_pages or total // 2
    if a.kind == "scan":
        w("# model scan-once.bin %d\n" % (scan_pages * a.page_size))

    for req in range(a.requests):
        if a.kind == "scan" and req == a.requests // 2:
            w("".join("scan-once.bin\t%d\n" % p for p in range(scan_pages)))
        m = order[bisect.bisect_left(cum, rng.random() * cum[-1])]
        n, np_ = names[m], pages[m]
        if a.kind == "partial":
            first = min(2, np_)
            length = max(1, int(np_ * rng.uniform(0.1, 0.3)))
            start = rng.randrange(first, max(first + 1, np_ - length + 1))
            rng_pages = list(range(first)) + list(range(start, min(np_, start + length)))
        else:
            rng_pages = range(np_)
        w("".join("%s\t%d\n" % (n, p) for p in rng_pages))


if __name__ == "__main__":
    main()
