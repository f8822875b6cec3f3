# mount_remote_lib.sh - sourced by mount_remote_test.sh and
# mount_offline_test.sh (after mount_lib.sh): two bundles with the same model
# names (x.apbundle served, new.apbundle its replacement), nginx serving
# $WWW on 127.0.0.1:18500-18999 (URL), the EXIT trap stopping nginx before
# mount_lib's cleanup, read_every_model, read_eio.  Skips (77) without nginx.
. "$top_srcdir/tests/http_lib.sh"

CLI=$top_builddir/apbundle
http_mount_setup

SRC=$WORK/src
NEW=$WORK/new
mkdir -p "$SRC" "$NEW"
MODELS="small big odd d/deep cold"
rand_file "$SRC/small" 5000
rand_file "$SRC/big" 3145728
rand_file "$SRC/odd" 1048677
rand_file "$SRC/deep" 300000
rand_file "$SRC/cold" 2097152
make_bundle "$WWW/x.apbundle" small="$SRC/small" big="$SRC/big" odd="$SRC/odd" \
	d/deep="$SRC/deep" cold="$SRC/cold"
# The replacement: the same names, other bytes, another size (so another ETag).
for m in small big odd deep cold; do rand_file "$NEW/$m" "$(stat -c %s "$SRC/$m")"; done
rand_file "$NEW/extra" 4096
make_bundle "$WORK/new.apbundle" small="$NEW/small" big="$NEW/big" odd="$NEW/odd" \
	d/deep="$NEW/deep" cold="$NEW/cold" extra="$NEW/extra"

HTTP_PORT_LO=18500 HTTP_PORT_SPAN=500
http_nginx_start "$WWW" "$NGX" || fail "nginx did not start"
URL=http://127.0.0.1:$HTTP_PORT/x.apbundle
M=$WORK/mnt

# src_of NAME: the source file of model NAME.
src_of() { echo "$SRC/${1##*/}"; }

# read_every_model WHAT: every model under $M equals its source.
read_every_model() {
	for m in $MODELS; do
		$VERIFY whole "$(src_of $m)" "$M/$m" || fail "model $m $1"
	done
}

# read_eio PATH: reading PATH fails with EIO within 10 s; what was read
# before the error (in $WORK/partial) is a prefix of the old version.
read_eio() {
	t0=$(date +%s)
	if timeout 20 cat "$1" >"$WORK/partial" 2>"$WORK/err"; then
		fail "$1 read in full, expected EIO"
	fi
	t=$(($(date +%s) - t0))
	grep -q "Input/output error" "$WORK/err" || fail "$1: expected EIO, got: $(cat "$WORK/err")"
	[ "$t" -le 10 ] || fail "$1: EIO after $t s (timeout=2)"
	n=$(stat -c %s "$WORK/partial")
	[ "$n" -eq 0 ] || cmp -s -n "$n" "$WORK/partial" "$2" ||
		fail "$1: the $n bytes read before EIO are not the old version's"
}

