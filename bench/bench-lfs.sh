#!/bin/bash
# /lfs figures (docs/lfs.md, "Measuring /lfs"): `fame bench lfs` on the host (its own Librarian
# and fame-lfs; root and /dev/fuse), then in node01 of a 1-node diskless cluster of its own
# (/lfs against the node's tmpfs).  bench/lfs-bench.c, built here as an ordinary dynamic program
# and copied into the node, adds stores and loads through mmap (libfame-mmap.so maps FAM).
set -eu
: "${FAME:=build/fame}"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-lfs-XXXXXX")
export FAME_CLUSTER_NAME=bench-lfs XDG_STATE_HOME="$work/state"
trap '"$FAME" down > /dev/null 2>&1; rm -rf "$work"' EXIT
echo "== /lfs on the host (fame-lfs, a private Librarian) against /dev/shm"
"$FAME" bench lfs
"$FAME" up -n 1 --set fam_size=1G --set memory=512M > /dev/null
echo "== /lfs in a diskless node (TCG) against its /tmp (tmpfs)"
"$FAME" bench lfs --node node01
cc -O2 -o "$work/lfs-bench" "$here/lfs-bench.c"
"$FAME" cp "$work/lfs-bench" node01:/tmp/lfs-bench
echo "== /lfs through mmap in the node, 64 MiB file, best of 3"
"$FAME" exec node01 -- /tmp/lfs-bench /lfs/bench 64 3
