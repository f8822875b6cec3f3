#!/bin/sh
# mount_remote_test.sh - apbundle-mount serving a bundle from a URL, end to
# end: a real nginx on loopback (tests/http_lib.sh), a real FUSE mount.
#  1. every model reads byte-identical through `apbundle-mount URL MNT -o
#     disk_cache=DIR`; .stats shows network bytes and requests, .stats.json
#     and .metrics the same source counters;
#  2. the object replaced on the server (another bundle renamed over the
#     served path) under a live mount: a not-yet-read model gives EIO and
#     never bytes of the new version; unmount works with the server down;
#  3. `apbundle list URL` and `apbundle verify URL`;
#  1b. a sequential read goes out in few, large requests.
# The offline cases: mount_offline_test.sh.
# Skips (77) without /dev/fuse or nginx.  The EXIT trap unmounts, stops
# nginx and removes the work dir even when a check fails.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"

. "$top_srcdir/tests/mount_remote_lib.sh"

# 1. Every model byte-identical; the source counters in the generated files.
start_fg "$M" "$WORK/log.all" -o disk_cache="$WORK/tier.all" "$URL"
read_every_model "over http"
# kind: "tier" when the http source is wrapped by the disk tier
grep -Eq "^source: *(http|tier)\$" "$M/.stats" || fail ".stats source: $(cat "$M/.stats")"
net=$(awk -F': *' '$1 == "network bytes" { print $2 + 0 }' "$M/.stats")
req=$(awk -F': *' '$1 == "network requests" { print $2 + 0 }' "$M/.stats")
[ "${net:-0}" -ge 6596829 ] || fail ".stats network bytes '$net' < the models' size"
[ "${req:-0}" -ge 1 ] || fail ".stats network requests '$req'"
grep -q "^tier stored: *[1-9]" "$M/.stats" || fail ".stats tier stored: $(cat "$M/.stats")"
grep -q "^offline: *no\$" "$M/.stats" || fail ".stats offline"
expect_eq "source kind" "$($VERIFY json "$M/.stats.json" source | python3 -c \
	'import json,sys; s=json.load(sys.stdin); print(s["kind"] in ("http", "tier"), s["net_requests"] > 0, s["offline"])')" \
	"True True False"
grep -q '^apbundle_net_requests_total [1-9]' "$M/.metrics" || fail ".metrics net requests"
grep -q '^apbundle_net_request_duration_seconds_bucket{le="+Inf"} [1-9]' "$M/.metrics" ||
	fail ".metrics latency histogram"
grep -q "^bundle: *$URL\$" "$M/.stats" || fail ".stats bundle line"
stop_fg "$M"

ok "every model byte-identical over http ($net network bytes, $req requests)"

# header_file: a bad one is refused without quoting it; a good one is sent
# and appears nowhere (log, .stats, the file system's name).
printf 'no colon SECRET-4711\n' >"$WORK/hdr.bad"
"$MOUNT_BIN" -o header_file="$WORK/hdr.bad" "$URL" "$M" 2>"$WORK/err.hdr" &&
	fail "a header_file without a header was accepted"
grep -q "invalid header_file '$WORK/hdr.bad'" "$WORK/err.hdr" || fail "header error: $(cat "$WORK/err.hdr")"
grep -q SECRET "$WORK/err.hdr" && fail "the header error quotes the file"
printf 'Authorization: Bearer SECRET-4711\r\n' >"$WORK/hdr"
start_fg "$M" "$WORK/log.hdr" -o header_file="$WORK/hdr",timeout=5,connect_timeout=1,retries=2 \
	"http://user:pw@127.0.0.1:$HTTP_PORT/x.apbundle?sig=SECRET-4711"
$VERIFY whole "$SRC/small" "$M/small" || fail "small with header_file"
grep -q SECRET "$M/.stats" "$WORK/log.hdr" /proc/self/mounts && fail "a secret is shown"
grep -q "^bundle: *$URL\$" "$M/.stats" || fail "credentials/query not cut: $(head -1 "$M/.stats")"
stop_fg "$M"
ok "header_file and URL credentials: used, never shown"

# The README's remote quick start, run as written but for the URL, the
# paths and the model name (a test cannot use port 8080 or /mnt).
sed -n '/^Remote bundles$/,/^Shell completion/p' "$top_srcdir/README" | grep '^    ' |
	sed -e "s|http://127.0.0.1:8080/models.apbundle|$URL|" -e "s|/var/cache/apbundle|$WORK/tier.readme|" \
	    -e "s|/mnt/models|$M|g" -e "s|/encoder|/big|" -e 's|^    ||' >"$WORK/readme.sh"
[ "$(wc -l <"$WORK/readme.sh")" -eq 4 ] || fail "README remote block: $(cat "$WORK/readme.sh")"
MOUNTS="$MOUNTS $M"
(set -e; . "$WORK/readme.sh") >"$WORK/readme.out" 2>&1 || fail "README commands: $(cat "$WORK/readme.out")"
grep -q "^network requests: *[1-9]" "$WORK/readme.out" || fail "README .stats: $(cat "$WORK/readme.out")"
is_mounted "$M" && fail "README's fusermount3 -u left the mount"
ok "README remote quick start"

# 3. The command line tool on a URL (nginx still serves the first bundle).
timeout 60 "$CLI" list "$URL" >"$WORK/list" 2>&1 || fail "apbundle list URL: $(cat "$WORK/list")"
grep -q "^cold " "$WORK/list" || fail "apbundle list URL: $(cat "$WORK/list")"
timeout 60 "$CLI" verify "$URL" >"$WORK/verify" 2>&1 ||
	fail "apbundle verify URL: $(cat "$WORK/verify")"
grep -q "OK: 5 models" "$WORK/verify" || fail "apbundle verify URL: $(cat "$WORK/verify")"
ok "apbundle list URL and apbundle verify URL"

# 1b. A sequential read goes out in few large requests: a 16 MiB model read
# with cat at the defaults takes at most 2.5 requests per MiB (loads of up to
# 4 MiB for a remote source; 1 MiB loads made about 4.2 per MiB).
rand_file "$WORK/seq.bin" 16777216
make_bundle "$WWW/seq.apbundle" seq="$WORK/seq.bin"
start_fg "$M" "$WORK/log.seq" "http://127.0.0.1:$HTTP_PORT/seq.apbundle"
$VERIFY whole "$WORK/seq.bin" "$M/seq" || fail "seq over http"
req=$(awk -F': *' '$1 == "network requests" { print $2 + 0 }' "$M/.stats")
[ "${req:-999}" -le 44 ] || fail "16 MiB read sequentially took $req requests (> 44)"
stop_fg "$M"
ok "a 16 MiB sequential read in $req requests"

# 2. The object replaced under a live mount.
start_fg "$M" "$WORK/log.repl" -o disk_cache="$WORK/tier.repl",timeout=2 "$URL"
$VERIFY whole "$SRC/small" "$M/small" || fail "small before the replacement"
cp "$WORK/new.apbundle" "$WWW/.x.tmp" && mv "$WWW/.x.tmp" "$WWW/x.apbundle" ||
	fail "cannot replace the object"
read_eio "$M/cold" "$SRC/cold"
read_eio "$M/big" "$SRC/big"
is_mounted "$M" || fail "mount gone after the replacement"
http_nginx_stop "$NGX"
stop_fg "$M"
ok "object replaced under a live mount: EIO, never bytes of the new version"

