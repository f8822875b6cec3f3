#!/bin/sh
# shell_histgen.sh - deterministic synthetic shell history for tests and benchmarks.
#
# usage: shell_histgen.sh LINES [SEED] [bash|zsh|fish]   (history on stdout)
#
# The same arguments always give the same bytes (a Park-Miller generator in
# awk, exact in double arithmetic, so mawk and gawk agree).  The mix looks
# like a developer's history: git, cd/ls, make, editors, docker/kubectl,
# ssh, plus a long tail of ~20,000 distinct tools, with skewed (roughly
# Zipf) argument choices so that there are frequent and rare commands, a
# vocabulary that grows with the history, and ~0.5% secret-looking lines
# the trainer must drop.  LINES counts output lines (zsh: one line per
# entry; bash: every 8th entry is preceded by a "#<epoch>" line; fish: two
# lines per entry, "- cmd:" and "  when:").
set -eu
lines=${1:?usage: shell_histgen.sh LINES [SEED] [bash|zsh|fish]}
seed=${2:-42}
fmt=${3:-zsh}
exec awk -v lines="$lines" -v seed="$seed" -v fmt="$fmt" '
function rnd() { state = (state * 16807) % 2147483647; return state / 2147483647 }
function pick(n) { return int(rnd() * n) }
function skew(n,   r) { r = rnd(); return int(r * r * r * n) }
function cmd(   r, k) {
	r = pick(100)
	if (r < 30) {
		k = pick(8)
		if (k == 0) return "git status"
		if (k == 1) return "git commit -m \"fix issue " skew(3000) "\""
		if (k == 2) return "git push origin feature" skew(200)
		if (k == 3) return "git checkout -b topic" skew(500)
		if (k == 4) return "git log --oneline -n " (1 + skew(50))
		if (k == 5) return "git diff HEAD~" (1 + skew(10))
		if (k == 6) return "git add src/module" skew(400) ".c"
		return "git pull --rebase"
	}
	if (r < 42) return "cd ~/work/project" skew(300) "/src"
	if (r < 50) return "ls -la dir" skew(1000)
	if (r < 58) { k = pick(4); if (k == 0) return "make"; if (k == 1) return "make -j" (1 + pick(8)); if (k == 2) return "make test"; return "make install PREFIX=/opt/p" skew(50) }
	if (r < 66) return (pick(3) ? "vim" : "nano") " src/file" skew(5000) ".c"
	if (r < 72) return "docker run -it --rm image" skew(300) ":v" pick(20) " bash"
	if (r < 78) return "kubectl get pods -n namespace" skew(100) " -o wide"
	if (r < 81) return "ssh user" pick(10) "@host" skew(2000) ".example.com"
	if (r < 82) return "export API_KEY=" state
	if (r < 83) return "python3 -m venv .venv" skew(10)
	return "tool" skew(20000) " --option" skew(300) " arg" skew(100000)
}
BEGIN {
	state = seed % 2147483646 + 1
	epoch = 1700000000
	n = 0
	while (n < lines) {
		c = cmd()
		epoch += 1 + pick(120)
		if (fmt == "zsh") { print ": " epoch ":0;" c; n++ }
		else if (fmt == "fish") { print "- cmd: " c; n++; if (n < lines) { print "  when: " epoch; n++ } }
		else {
			if (pick(8) == 0 && n + 1 < lines) { print "#" epoch; n++ }
			print c; n++
		}
	}
}'
