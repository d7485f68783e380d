#!/bin/bash
# Benchmark (not a test): aarch64 nodes beside x86_64 nodes, in one run on this machine — wall
# time of `fame up -n N` to all nodes ready, and memcpy into FAM vs the node's RAM inside node01,
# for each architecture, with aarch64/x86_64 ratios.  Private clusters, own state directory.
#   bench/bench-arch.sh [NODES]      (default: 4)
set -u
FAME=${FAME:-$(dirname "$0")/../build/fame}
nodes=${1:-4}
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-XXXXXX")
export XDG_STATE_HOME="$work/state"
trap '"$FAME" down -c bench-x86_64 > /dev/null 2>&1; "$FAME" down -c bench-aarch64 > /dev/null 2>&1; rm -rf "$work"' EXIT

declare -A up ram fam
for arch in x86_64 aarch64; do
        c="bench-$arch"
        # the image first (a first run downloads the arm64 packages): not part of the boot time
        "$FAME" image build -c "$c" --kind diskless --set arch="$arch" > /dev/null || exit 1
        s=$(date +%s.%N)
        "$FAME" up -c "$c" -n "$nodes" --arch "$arch" > "$work/up" 2>&1 || { echo "fame up ($arch) failed: $(tail -1 "$work/up")"; exit 1; }
        e=$(date +%s.%N)
        up[$arch]=$(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }')
        line=$("$FAME" exec -c "$c" node01 -- fame node memcpy-bench 16M)
        ram[$arch]=$(echo "$line" | sed -n 's/.*node RAM \([0-9]*\) MB\/s.*/\1/p')
        fam[$arch]=$(echo "$line" | sed -n 's/.*FAM \([0-9]*\) MB\/s.*/\1/p')
        "$FAME" down -c "$c" > /dev/null 2>&1
done
printf '%-34s %10s %10s %8s\n' "$nodes diskless nodes, TCG" x86_64 aarch64 ratio
awk -v a="${up[x86_64]}" -v b="${up[aarch64]}" -v n="$nodes" 'BEGIN { printf "%-34s %9.2fs %9.2fs %7.2fx\n", "fame up -n " n " → all ready", a, b, b / a }'
awk -v a="${fam[x86_64]}" -v b="${fam[aarch64]}" 'BEGIN { printf "%-34s %10d %10d %7.2fx\n", "memcpy into FAM in node01 (MB/s)", a, b, b / a }'
awk -v a="${ram[x86_64]}" -v b="${ram[aarch64]}" 'BEGIN { printf "%-34s %10d %10d %7.2fx\n", "memcpy into RAM in node01 (MB/s)", a, b, b / a }'
