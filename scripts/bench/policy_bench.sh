#!/bin/bash
# policy_bench.sh - hit ratios of every eviction policy against Belady's
# optimal bound on synthetic model-serving traces (issue 14).
#
# Usage: scripts/bench/policy_bench.sh [BUILD_DIR]
#        (BUILD_DIR holds the built apbundle; default build/default)
#
# Generates traces with policy_trace_gen.py (whole-model loads of 60 models
# with Zipf popularity at alpha 0.8, 1.0 and 1.2; partial loads: header + a
# range; whole loads polluted by a one-off scan of a model half the total
# size), replays each with `apbundle simulate --json` at budgets of 5, 10,
# 20 and 50% of the models' pages, and prints one table: hit ratio per
# policy, Belady's, the default's ratio to LRU and to Belady, and the
# default's worst shortfall against LRU.  Replays are deterministic, so
# these numbers hold on a busy machine too.
#
# Settings (environment): WORK (temp dir, removed at exit unless KEEP=1),
# REQUESTS (2000 per trace), SEED (1), BUDGETS ("5 10 20 50"), OUT_MD (also
# write the table as Markdown there).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/default}
apb=$build/apbundle
gen=$top/scripts/bench/policy_trace_gen.py
[ -x "$apb" ] || { echo "policy_bench.sh: $apb not built (scripts/build.sh $build)" >&2; exit 2; }
work=${WORK:-$(mktemp -d /tmp/policy-bench.XXXXXX)}
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
requests=${REQUESTS:-2000}
seed=${SEED:-1}
budgets=${BUDGETS:-5 10 20 50}

results=$work/results.jsonl
: > "$results"
run() { # NAME GEN-ARGS...
	local name=$1 total
	shift
	python3 "$gen" --requests "$requests" --seed "$seed" "$@" > "$work/$name.trace"
	total=$(sed -n 's/.*total_pages=\([0-9]*\).*/\1/p' "$work/$name.trace")
	for b in $budgets; do
		pages=$(( total * b / 100 ))
		printf '{"workload": "%s", "budget_pct": %d, "result": ' "$name" "$b" >> "$results"
		"$apb" simulate --json --pages "$pages" "$work/$name.trace" | tr -d '\n' >> "$results"
		printf '}\n' >> "$results"
	done
}

for a in 0.8 1.0 1.2; do
	run "whole-zipf$a" --kind whole --alpha "$a"
done
run partial-zipf1.0 --kind partial --alpha 1.0
run scan-zipf1.0 --kind scan --alpha 1.0

python3 - "$results" "${OUT_MD:-}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pols = list(rows[0]["result"]["policies"])
default = rows[0]["result"]["default"]
head = ["workload", "budget"] + pols + ["belady", "default/LRU", "default/Belady"]
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
worst = (0.0, "")
for r in rows:
    res = r["result"]; p = res["policies"]; b = res["belady"]; d = p[default]
    cells = [r["workload"], "%d%% (%d pages)" % (r["budget_pct"], res["capacity_pages"])]
    cells += ["%.1f" % (100 * p[k]) for k in pols] + ["%.1f" % (100 * b)]
    cells += ["%.2fx" % (d / p["lru"]) if p["lru"] else "-", "%.2f" % (d / b) if b else "-"]
    lines.append("| " + " | ".join(cells) + " |")
    short = 100 * (p["lru"] - d)
    if short > worst[0]:
        worst = (short, "%s at %d%%" % (r["workload"], r["budget_pct"]))
lines.append("")
lines.append("Hit ratios in percent of page lookups; default policy: %s." % default)
lines.append("Worst shortfall of the default against LRU: %s." %
             ("%.1f points (%s)" % worst if worst[0] > 0 else "none (never below LRU)"))
text = "\n".join(lines)
print(text)
if sys.argv[2]:
    open(sys.argv[2], "w").write(text + "\n")
PY
