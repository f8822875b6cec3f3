#!/bin/bash
# completion_test.sh - the bash completions of apbundle and apbundle-mount
# (scripts/completion/), sourced into bash with bash-completion's helpers
# and asked for COMPREPLY as a user's TAB would be, against the built
# programs (PATH has the build directory) and a real bundle.
# Skips (77) without bash-completion.
set -u
bc=/usr/share/bash-completion/bash_completion
[ -r "$bc" ] || { echo "SKIP: bash-completion not installed"; exit 77; }
src=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck disable=SC1090
. "$bc"
. "$src/scripts/completion/apbundle"
. "$src/scripts/completion/apbundle-mount"
# compopt works only inside a real completion; record what it is told.
compopt() { nospace="$*"; }

tmp=$(mktemp -d /tmp/packaging-comp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
printf a >a; printf bb >'b c'; mkdir dd
apbundle create t.apbundle enc=a 'b c=b c' dec=a >/dev/null || { echo "FAIL: create"; exit 1; }

fails=0
# comp LINE: run the completion of LINE (cursor at its end) into COMPREPLY.
comp() {
	local line=$1
	COMP_LINE=$line COMP_POINT=${#line}
	read -r -a COMP_WORDS <<<"$line"
	[[ $line == *' ' ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=() nospace=""
	case ${COMP_WORDS[0]} in
	apbundle) _apbundle ;;
	apbundle-mount) _apbundle_mount ;;
	esac
	got="${COMPREPLY[*]}"
}
# is LINE WANT: the replies are exactly WANT (space-separated, in order).
is() {
	comp "$1"
	if [[ $got == "$2" ]]; then echo "ok: '$1' -> $got"
	else echo "FAIL: '$1' -> [$got], want [$2]"; fails=$((fails + 1)); fi
}
# has LINE WORD...: the replies include each WORD and only words starting like cur.
has() {
	local line=$1 w; shift
	comp "$line"
	for w in "$@"; do
		case " $got " in *" $w "*) ;; *) echo "FAIL: '$line' -> [$got] lacks $w"; fails=$((fails + 1)); return ;; esac
	done
	echo "ok: '$line' -> $got"
}

has "apbundle " create list info verify extract cat load
has "apbundle l" list load
has "apbundle create --" --align --block-size --metadata --verbose
has "apbundle load -e " lru lfu
has "apbundle load --eviction " lru lfu
is "apbundle load -m " ""
is "apbundle extract -C " "dd"
is "apbundle cat t.apbundle " 'enc b\ c dec'
is "apbundle cat t.apbundle e" "enc"
is "apbundle cat t.apbundle enc " ""
is "apbundle extract -C dd t.apbundle b" 'b\ c'
is "apbundle load -q -m 1M t.apbundle d" "dec"
has "apbundle-mount -o " max_memory= eviction= direct_io allow_other uid= gid=
is "apbundle-mount -o max_m" "max_memory="
[[ $nospace == "-o nospace" ]] || { echo "FAIL: no nospace after max_memory="; fails=$((fails + 1)); }
has "apbundle-mount -o eviction=" lru lfu
is "apbundle-mount -o prefetch=" "0 1"
is "apbundle-mount -o direct_io,prefetch_" "direct_io,prefetch_count="
is "apbundle-mount t.apbundle " "dd"
has "apbundle-mount -" -o -f --help
echo "completion_test: $fails failure(s)"
[ "$fails" = 0 ]
