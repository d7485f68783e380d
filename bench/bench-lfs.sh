#!/bin/bash
# /lfs bandwidth in a node (docs/lfs.md): bench/lfs-bench.c, built here as an ordinary dynamic
# program and copied into node01 of a 1-node diskless cluster of its own.
set -eu
: "${FAME:=build/fame}"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-lfs-XXXXXX")
export FAME_CLUSTER_NAME=bench-lfs XDG_STATE_HOME="$work/state"
trap '"$FAME" down > /dev/null 2>&1; rm -rf "$work"' EXIT
cc -O2 -o "$work/lfs-bench" "$here/lfs-bench.c"
"$FAME" up -n 1 --set fam_size=1G --set memory=512M > /dev/null
"$FAME" cp "$work/lfs-bench" node01:/tmp/lfs-bench
echo "== /lfs in a diskless node (TCG), 64 MiB file, best of 3"
"$FAME" exec node01 -- /tmp/lfs-bench /lfs/bench 64 3
