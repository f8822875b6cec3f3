#!/bin/sh
# deps.sh - install, with apt-get, the Debian 12 packages apbundle needs that are missing.
#
# Usage: scripts/deps.sh [build|test|bench]   (default: build)
# Installs nothing when everything is present; needs root otherwise.
set -eu

pkgs="build-essential autoconf automake libtool pkg-config libfuse3-dev fuse3 \
libjson-c-dev check libxxhash-dev libzstd-dev libcurl4-openssl-dev python3"
case "${1:-build}" in
build) ;;
test) pkgs="$pkgs valgrind clang libclang-rt-14-dev attr debhelper dpkg-dev lintian \
bash-completion strace nginx-light python3-numpy" ;;
bench) pkgs="$pkgs valgrind clang attr fio hyperfine squashfuse squashfs-tools \
archivemount fuse-zip gnuplot-nox zip linux-perf zstd python3-numpy nginx-light httpfs2 rclone curl" ;;
*) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in *" installed") ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
