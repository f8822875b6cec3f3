#!/bin/sh
# shell_test.sh - end-to-end test of apbundle-shell through a real bundle.
#
# Covers: --help and exit codes (usage 2, runtime 1 with a one-line error),
# training from bash/zsh/fish histories (given and auto-detected under
# $HOME), next-token and current-token suggestions, the stats layout, a
# corrupted model, and the memory bound: with --memory-limit 1, suggest on a
# model trained from a 500,000-line synthetic history must peak below
# 1 MiB + the fixed overhead, where the fixed overhead is the peak RSS of the
# same binary doing `suggest --help` (library linked, nothing opened;
# median of three runs).  A query whose scan fills the cache is checked
# against the fixed overhead of an open bundle instead (see below).  Peak
# RSS is VmHWM read from /proc/self/status at exit by tests/librsswrap.so
# (LD_PRELOAD).  In sanitizer builds the RSS bound is skipped (shadow memory
# makes it meaningless) and a 50,000-line history is used instead.
set -eu

B=${top_builddir:-$(pwd)}
S=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
SH=$B/apbundle-shell
WRAP=$B/tests/.libs/librsswrap.so
T=$(mktemp -d "${TMPDIR:-/tmp}/apbshell.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
check() { desc=$1; shift; "$@" || fail "$desc"; }
# expect_exit CODE CMD...: runs CMD, requires its exit status, keeps stderr in $T/err
expect_exit() {
	want=$1; shift
	set +e; "$@" >"$T/out" 2>"$T/err"; got=$?; set -e
	[ "$got" = "$want" ] || fail "'$*' exited $got, wanted $want: $(cat "$T/err")"
}

[ -x "$SH" ] || fail "$SH not built"

# ---- help and usage ----
for c in "" train suggest stats; do
	expect_exit 0 "$SH" $c --help
	grep -q '^usage: apbundle-shell' "$T/out" || fail "no usage text for '$c --help'"
done
expect_exit 2 "$SH"
expect_exit 2 "$SH" frobnicate
expect_exit 2 "$SH" train --ngram 1
expect_exit 2 "$SH" train --ngram x
expect_exit 2 "$SH" suggest
expect_exit 2 "$SH" suggest "git " -n 0
expect_exit 2 "$SH" suggest "git " --memory-limit 0
expect_exit 2 "$SH" stats --bogus
[ "$(wc -l <"$T/err")" -le 2 ] || fail "usage error is more than two lines"
# output that cannot be written is an error, --help and --version included
for a in --help "suggest --help" --version; do
	set +e; "$SH" $a >/dev/full 2>"$T/err"; got=$?; set -e
	[ "$got" = 1 ] || fail "'$a >/dev/full' exited $got"
	grep -q 'writing output' "$T/err" || fail "'$a >/dev/full' said: $(cat "$T/err")"
done

# ---- missing model: one line, exit 1 ----
expect_exit 1 "$SH" suggest "git " -m "$T/none.apbundle"
[ "$(wc -l <"$T/err")" = 1 ] || fail "missing model: not a one-line error"
grep -q "none.apbundle" "$T/err" || fail "missing model: error does not name the file"
expect_exit 1 env HOME="$T/emptyhome" "$SH" stats
expect_exit 1 env HOME="$T/emptyhome" "$SH" train
grep -q "no history found" "$T/err" || fail "train without history: $(cat "$T/err")"

# ---- train on a known bash history ----
cat >"$T/hist" <<'EOF'
#1700000000
git commit -m fix
#1700000001
git commit -m fix
git commit --amend
git push origin main
git status
git status
git status
gitk --all
git log -n 5
git diff -n 7
git diff -n 7
make -j2
make install
export GITHUB_TOKEN=abc
curl -H "Authorization: Bearer x" https://example.com
EOF
M=$T/m.apbundle
expect_exit 0 "$SH" train --history "$T/hist" -o "$M"
grep -q '(bash): 15 entries, 2 secret-looking' "$T/out" || fail "train summary: $(cat "$T/out")"
[ -s "$M" ] || fail "no model written"
ls -a "$T" | grep -q '^\.apbundle-shell\.' && fail "training left its work directory behind"

expect_exit 0 "$SH" suggest "git " -m "$M" -n 3
printf 'git commit\t0.300000\ngit status\t0.300000\ngit diff\t0.200000\n' | cmp -s - "$T/out" ||
	fail "suggest 'git ': $(cat "$T/out")"
expect_exit 0 "$SH" suggest "git " -m "$M" -n 100
grep -q gitk "$T/out" && fail "'git ' offered gitk"
expect_exit 0 "$SH" suggest "gi" -m "$M"
[ "$(cut -f1 "$T/out" | tr '\n' ' ')" = "git gitk " ] || fail "suggest 'gi': $(cat "$T/out")"
expect_exit 0 "$SH" suggest "git com" -m "$M"
[ "$(cut -f1 "$T/out")" = "git commit" ] || fail "suggest 'git com': $(cat "$T/out")"
expect_exit 0 "$SH" suggest "git log -n " -m "$M"
[ "$(head -1 "$T/out")" = "$(printf 'git log -n 5\t1.000000')" ] ||
	fail "suggest 'git log -n ' (full context): $(cat "$T/out")"
expect_exit 0 "$SH" suggest "export " -m "$M"
[ -s "$T/out" ] && fail "a secret reached the model"
expect_exit 0 "$SH" suggest "nothing-like-this " -m "$M"
[ -s "$T/out" ] && fail "unknown command got suggestions"

# ---- key bindings: the widget functions, run outside the line editor ----
export APBUNDLE_SHELL_MODEL="$M"
out=$(PATH="$B:$PATH" bash -c '. "$1" 2>/dev/null; READLINE_LINE="git X"; READLINE_POINT=4
	__apbundle_shell_complete 2>"$2"; printf "%s|%s" "$READLINE_LINE" "$READLINE_POINT"' \
	sh "$S/scripts/apbundle-shell.bash" "$T/listing")
[ "$out" = "git commit X|11" ] || fail "bash binding: '$out'"
grep -q '^  git status$' "$T/listing" || fail "bash binding did not list the others"
# a line starting with '-' is a PREFIX, not an option (issue 15 item 8: the
# bindings pass it after "--"; before, "--he" was taken for --help and the
# help text replaced the line)
out=$(PATH="$B:$PATH" bash -c '. "$1" 2>/dev/null; READLINE_LINE="--he x"; READLINE_POINT=4
	__apbundle_shell_complete 2>/dev/null; printf "%s|%s" "$READLINE_LINE" "$READLINE_POINT"' \
	sh "$S/scripts/apbundle-shell.bash")
[ "$out" = "--he x|4" ] || fail "bash binding with a leading '-': '$out'"
if command -v zsh >/dev/null; then
	out=$(PATH="$B:$PATH" zsh -fc 'zle() { return 0 }; bindkey() { :; }; source "$1"; LBUFFER="git com"; _apbundle_shell_complete
		print -r -- "$LBUFFER"' sh "$S/scripts/apbundle-shell.zsh")
	[ "$out" = "git commit " ] || fail "zsh binding: '$out'"
	out=$(PATH="$B:$PATH" zsh -fc 'zle() { return 0 }; bindkey() { :; }; source "$1"; LBUFFER="--he"; _apbundle_shell_complete
		print -r -- "$LBUFFER"' sh "$S/scripts/apbundle-shell.zsh")
	[ "$out" = "--he" ] || fail "zsh binding with a leading '-': '$out'"
else
	echo "zsh not installed: zsh binding not exercised"
fi
unset APBUNDLE_SHELL_MODEL

# ---- stats layout ----
expect_exit 0 "$SH" stats -m "$M" --memory-limit 2
awk -F': ' 'NR<=11 { print $1 }' "$T/out" >"$T/keys"
printf '%s\n' "N-gram size" "Total commands" "Vocabulary size" "Total segments" \
	"Loaded segments" "Memory limit" "Loaded bytes" "Page hits" "Page misses" \
	"Evictions" "Hit rate" | cmp -s - "$T/keys" || fail "stats layout: $(cat "$T/out")"
grep -qx 'N-gram size: 3' "$T/out" || fail "stats n"
grep -qx 'Total commands: 13' "$T/out" || fail "stats commands"
grep -qx 'Memory limit: 2 MiB' "$T/out" || fail "stats limit"
grep -qx 'Top commands:' "$T/out" || fail "stats top header"
[ "$(sed -n '13p' "$T/out" | tr -s ' ')" = " 3 git status" ] || fail "stats top 1: $(cat "$T/out")"
[ "$(sed -n '13,$p' "$T/out" | wc -l)" = 9 ] || fail "stats: not all 9 distinct commands"
misses=$(sed -n 's/^Page misses: //p' "$T/out")
[ "$misses" -gt 0 ] || fail "stats: no page misses counted"

# ---- formats and auto-detection under $HOME ----
mkdir -p "$T/home/.local/share/fish"
printf -- '- cmd: cargo build --release\n  when: 1700000000\n  paths:\n    - Cargo.toml\n- cmd: cargo build --release\n  when: 1700000001\n' \
	>"$T/home/.local/share/fish/fish_history"
expect_exit 0 env HOME="$T/home" "$SH" train
grep -q '(fish): 2 entries' "$T/out" || fail "fish auto-detect: $(cat "$T/out")"
expect_exit 0 env HOME="$T/home" "$SH" suggest "cargo build "
[ "$(cut -f1 "$T/out")" = "cargo build --release" ] || fail "fish model: $(cat "$T/out")"
printf ': 1700000000:0;docker compose \\\nup -d\n: 1700000001:0;docker ps\n' >"$T/home/.zsh_history"
expect_exit 0 env HOME="$T/home" "$SH" train --ngram 2
grep -q '(zsh): 2 entries' "$T/out" || fail "zsh auto-detect: $(cat "$T/out")"
expect_exit 0 env HOME="$T/home" "$SH" suggest "docker compose "
[ "$(cut -f1 "$T/out")" = "docker compose up" ] || fail "zsh multi-line: $(cat "$T/out")"

# ---- a corrupted model gives a one-line error, not a crash ----
cp "$M" "$T/bad.apbundle"
size=$(wc -c <"$M")
mlen=$(od -An -tu4 -j12 -N4 "$M" | tr -d ' ')
off=$(( (16 + mlen + 4095) / 4096 * 4096 + 100 ))
while [ $off -lt "$size" ]; do # damage every page of every model
	printf 'XXXXXXXX' | dd of="$T/bad.apbundle" bs=1 seek=$off conv=notrunc 2>/dev/null
	off=$((off + 4096))
done
expect_exit 1 "$SH" suggest "git " -m "$T/bad.apbundle"
[ "$(wc -l <"$T/err")" = 1 ] || fail "corrupted model: not a one-line error: $(cat "$T/err")"

# ---- big model: quality and the memory bound ----
sanitized=no
ldd "$SH" 2>/dev/null | grep -Eq 'lib(asan|tsan|ubsan)' && sanitized=yes
lines=500000
[ $sanitized = yes ] && lines=50000
"$S/tests/shell_histgen.sh" $lines 42 zsh >"$T/big.hist"
BIG=$T/big.apbundle
expect_exit 0 "$SH" train --history "$T/big.hist" -o "$BIG"
cat "$T/out"
expect_exit 0 "$SH" suggest "git " -m "$BIG" -n 8
for sub in status commit push; do
	grep -q "^git $sub	" "$T/out" || fail "big model: 'git ' lacks $sub: $(cat "$T/out")"
done
expect_exit 0 "$SH" suggest "git commit " -m "$BIG" -n 1
[ "$(cut -f1 "$T/out")" = "git commit -m" ] || fail "big model: 'git commit ': $(cat "$T/out")"

if [ $sanitized = yes ]; then
	echo "sanitizer build: RSS bound not checked"
	exit 0
fi
[ -f "$WRAP" ] || fail "$WRAP not built (make check builds it)"
msize=$(wc -c <"$BIG")
[ "$msize" -gt $((8 << 20)) ] || fail "big model only $msize bytes: the bound would prove nothing"
peak() { # peak RSS in KiB of one run
	rm -f "$T/rss"
	APB_RSS_OUT=$T/rss LD_PRELOAD=$WRAP "$@" >/dev/null 2>"$T/err" || fail "'$*': $(cat "$T/err")"
	cat "$T/rss"
}
median3() { # median peak RSS (KiB) of three runs of a command
	(peak "$@"; peak "$@"; peak "$@") | sort -n | sed -n 2p
}
# fixed overhead, as specified: the same binary doing --help-level work
base=$(median3 "$SH" suggest --help)
worst=0
for p in "git " "git commit -m " "tool12" "tool123 --option1 " "" "ls -la dir" \
	 "kubectl get pods -n " "cd ~/work/project1"; do
	r=$(peak "$SH" suggest "$p" -m "$BIG" --memory-limit 1 -n 10)
	[ "$r" -gt "$worst" ] && worst=$r
done
r=$(peak "$SH" stats -m "$BIG" --memory-limit 1)
[ "$r" -gt "$worst" ] && worst=$r
echo "model $msize bytes; peak RSS: suggest/stats --memory-limit 1: $worst KiB;" \
     "fixed overhead (suggest --help): $base KiB; bound $((base + 1024)) KiB"
[ "$worst" -lt $((base + 1024)) ] || fail "peak RSS $worst KiB >= $base + 1024 KiB"

# Worst case: a context with 100,000 continuations, whose scan fills the
# cache.  Its fixed overhead is that of an open bundle (manifest, library
# code, cache tables: a one-command model), plus the cache's descriptors
# for 256 pages and measurement noise (128 KiB allowance); the budget must
# govern: 4 MiB costs about 3 MiB more.
seq 1 100000 | sed 's/^/echo value/' >"$T/echo.hist"
expect_exit 0 "$SH" train --history "$T/echo.hist" -o "$T/echo.apbundle"
echo "ls -la" >"$T/tiny.hist"
expect_exit 0 "$SH" train --history "$T/tiny.hist" -o "$T/tiny.apbundle"
open=$(median3 "$SH" suggest "ls " -m "$T/tiny.apbundle" --memory-limit 1)
full1=$(median3 "$SH" suggest "echo " -m "$T/echo.apbundle" --memory-limit 1)
full4=$(median3 "$SH" suggest "echo " -m "$T/echo.apbundle" --memory-limit 4)
echo "cache-filling query: peak RSS $full1 KiB at 1 MiB, $full4 KiB at 4 MiB;" \
     "open-bundle overhead $open KiB; bound $((open + 1024 + 128)) KiB"
[ "$full1" -lt $((open + 1024 + 128)) ] || fail "cache-filling query: $full1 KiB"
[ "$full4" -gt $((full1 + 2048)) ] || fail "the cache did not fill: $full1 / $full4 KiB"
exit 0
