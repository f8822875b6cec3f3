#!/bin/sh
# mount_offline_test.sh - a remote mount with the server down, from its
# disk tier:
#  1. a mount with -o disk_cache=DIR reads some models; nginx stopped,
#     unmounted, remounted with the same tier: the log says it runs offline,
#     the models read before are byte-identical, models never read give EIO
#     within the timeout (-o timeout=2), unmount works with the server down;
#  2. a tier that saw every model serves every model offline;
#  3. the same offline for a compressed bundle (stored frames in the tier).
# The library commits the header and manifest it validated at open to the
# tier (format.c), so an offline open finds them there.
. "${top_srcdir:-$(dirname "$0")/..}/tests/mount_lib.sh"
. "$top_srcdir/tests/mount_remote_lib.sh"

start_fg "$M" "$WORK/log.all" -o disk_cache="$WORK/tier.all" "$URL"
read_every_model "over http"
stop_fg "$M"

# 1. A tier that saw some models; then offline.
start_fg "$M" "$WORK/log.some" -o disk_cache="$WORK/tier",timeout=2 "$URL"
for m in small big d/deep; do
	$VERIFY whole "$(src_of $m)" "$M/$m" || fail "model $m over http (second tier)"
done
stop_fg "$M"
http_nginx_stop "$NGX"
start_fg "$M" "$WORK/log.off" -o disk_cache="$WORK/tier",timeout=2 "$URL"
grep -q "offline: serving the version the disk tier saw last" "$WORK/log.off" ||
	fail "no offline line in the log: $(cat "$WORK/log.off")"
for m in small big d/deep; do
	$VERIFY whole "$(src_of $m)" "$M/$m" || fail "model $m offline from the tier"
done
read_eio "$M/cold" "$SRC/cold"
read_eio "$M/odd" "$SRC/odd"
grep -q "^offline: *yes\$" "$M/.stats" || fail ".stats offline: $(cat "$M/.stats")"
stop_fg "$M"
ok "offline: models read before byte-identical from the tier, others EIO, unmount with nginx down"

# 2. Offline with every model in the tier: all of them still readable.
start_fg "$M" "$WORK/log.alloff" -o disk_cache="$WORK/tier.all",timeout=2 "$URL"
read_every_model "offline (full tier)"
stop_fg "$M"
ok "offline with a full tier: every model byte-identical"

# 3. A compressed bundle: the tier keeps runs of stored frames (up to 1 MiB
# per range, source.h's apbi_commit_run) and an offline mount decodes them.
seq 1 400000 >"$WORK/seq.txt"
"$CLI" create --compress zstd "$WWW/c.apbundle" seq="$WORK/seq.txt" big="$SRC/big" \
	>/dev/null || fail "cannot build the compressed bundle"
http_nginx_start "$WWW" "$NGX" || fail "nginx did not restart"
CURL=http://127.0.0.1:$HTTP_PORT/c.apbundle
start_fg "$M" "$WORK/log.c" -o disk_cache="$WORK/tier.c",max_memory=4M "$CURL"
$VERIFY whole "$WORK/seq.txt" "$M/seq" || fail "compressed model seq over http"
$VERIFY whole "$SRC/big" "$M/big" || fail "compressed bundle's big over http"
stop_fg "$M"
http_nginx_stop "$NGX"
start_fg "$M" "$WORK/log.coff" -o disk_cache="$WORK/tier.c",max_memory=4M,timeout=2 "$CURL"
grep -q "offline: serving the version the disk tier saw last" "$WORK/log.coff" ||
	fail "compressed: no offline line in the log: $(cat "$WORK/log.coff")"
$VERIFY whole "$WORK/seq.txt" "$M/seq" || fail "compressed model seq offline"
$VERIFY whole "$SRC/big" "$M/big" || fail "compressed bundle's big offline"
grep -q "^offline: *yes\$" "$M/.stats" || fail ".stats offline: $(cat "$M/.stats")"
stop_fg "$M"
ok "a compressed bundle offline from its tier: every model byte-identical"
