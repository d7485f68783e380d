#!/bin/bash
# Benchmark (not a test): wall time from `fame up` to all nodes ready for 1, 4, 8 and 16 nodes,
# host RSS per node, and memcpy bandwidth into FAM inside a node vs into the node's RAM.
# Runs on a private cluster ("bench-up") with its own state directory.
#   bench/bench-up.sh [NODE COUNTS...]      (default: 1 4 16 40)
set -u
FAME=${FAME:-$(dirname "$0")/../build/fame}
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 4 16 40)
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-XXXXXX")
export XDG_STATE_HOME="$work/state" FAME_CLUSTER_NAME=bench-up
trap '"$FAME" down > /dev/null 2>&1; rm -rf "$work"' EXIT

# RSS counts the kernel and initramfs files QEMU maps, which all nodes share in the page
# cache; PSS divides shared pages among the processes that map them: the fair per-node cost.
printf '%-6s %10s %15s %15s\n' nodes "up (s)" "RSS/node (MiB)" "PSS/node (MiB)"
for n in "${counts[@]}"; do
        "$FAME" down > /dev/null 2>&1
        rm -rf "$XDG_STATE_HOME"
        start=$(date +%s.%N)
        if ! "$FAME" up -n "$n" > "$work/up.out" 2> "$work/up.err"; then
                echo "fame up -n $n failed: $(tail -1 "$work/up.err")"
                continue
        fi
        end=$(date +%s.%N)
        total=0 pss=0
        for pidfile in "$XDG_STATE_HOME"/fame/bench-up/nodes/*/qemu.pid; do
                pid=$(cat "$pidfile")
                total=$((total + $(awk '/^Rss:/ {print $2}' "/proc/$pid/smaps_rollup")))
                pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")))
        done
        awk -v n="$n" -v s="$start" -v e="$end" -v t="$total" -v p="$pss" \
                'BEGIN { printf "%-6s %10.2f %15.0f %15.0f\n", n, e - s, t / n / 1024, p / n / 1024 }'
        if [ "$n" -eq "${counts[0]}" ]; then
                "$FAME" exec node01 -- fame node memcpy-bench 16M > "$work/memcpy" 2>&1 && memcpy_line=$(cat "$work/memcpy")
        fi
done
echo "inside node01: ${memcpy_line:-memcpy benchmark failed}"
