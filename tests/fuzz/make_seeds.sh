#!/bin/sh
# make_seeds.sh - writes the builder-made seeds of tests/fuzz/corpus/.
#
# Usage: tests/fuzz/make_seeds.sh CORPUS_DIR [APBUNDLE]
# Small valid bundles made by `apbundle create` (real checksums, block
# tables, nested names, metadata, description), with 16-byte alignment and
# 512-byte blocks so they stay a few KiB: the fuzzers mutate from inputs
# that pass every structural check.  Written into CORPUS_DIR/bundle,
# CORPUS_DIR/manifest and CORPUS_DIR/mount.
set -eu
out=${1:?usage: make_seeds.sh CORPUS_DIR [APBUNDLE]}
APB=${2:-apbundle}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/bundle" "$out/manifest" "$out/mount" "$tmp/d/sub"

printf 'tiny' > "$tmp/d/a"
head -c 1300 /dev/urandom > "$tmp/d/sub/b"
: > "$tmp/d/sub/empty"
head -c 2049 /dev/urandom > "$tmp/d/multi"
printf '{"version":"1.0","architecture":"mlp","hyperparameters":{"layers":"2"},"custom":{"k":"v"}}' > "$tmp/md.json"

mk() { name=$1; shift; "$APB" create -a 16 -b 512 "$tmp/$name" "$@" >/dev/null 2>&1; \
	for t in bundle manifest mount; do cp "$tmp/$name" "$out/$t/built_$name"; done; }
mk dir "$tmp/d"
mk one "x=$tmp/d/a"
mk meta -d "a description" -m "m=$tmp/md.json" "m=$tmp/d/a" "n/o=$tmp/d/sub/b"
mk multi "big=$tmp/d/multi" "small=$tmp/d/a" "zero=$tmp/d/sub/empty"
mk align1 -a 1 "a=$tmp/d/a" "b=$tmp/d/sub/b"
# version 2: compressed models (16-byte tables; a raw block, frames, an empty model)
yes apbundle | head -c 3000 > "$tmp/d/text"
mk zstd --compress zstd --filter none "t=$tmp/d/text" "r=$tmp/d/multi" "e=$tmp/d/sub/empty"
mk zstdplanes --compress zstd:1 --filter bytegroup4 "t=$tmp/d/text" "tiny=$tmp/d/a"
echo "wrote $(ls "$out/bundle" | grep -c '^built_') builder seeds per target"
