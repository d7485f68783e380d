#!/bin/bash
# Benchmark (not a test): wall time from `fame up` to all nodes ready for 1, 4, 16 and 40 nodes,
# host RSS and PSS per node, `fame exec` on one node and on all of them (median of runs, beside
# `fame status --json`, the cost of starting fame itself), and memcpy bandwidth into FAM inside a
# node vs into the node's RAM.
# Runs on a private cluster ("bench-up") with its own state directory.
#   bench/bench-up.sh [NODE COUNTS...]      (default: 1 4 16 40)
set -u
FAME=${FAME:-$(dirname "$0")/../build/fame}
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 4 16 40)
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-XXXXXX")
export XDG_STATE_HOME="$work/state" FAME_CLUSTER_NAME=bench-up
exec_lines=()
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
        # `fame exec` wall time, median of runs: one node, all nodes, and fame's own start-up
        median_ms() {   # median_ms RUNS COMMAND...
                local runs=$1 t0 t1
                shift
                for _ in $(seq "$runs"); do
                        t0=$(date +%s%N)
                        "$@" > /dev/null 2>&1
                        t1=$(date +%s%N)
                        echo $(((t1 - t0) / 1000))
                done | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }'
        }
        exec_lines+=("$(printf '%-6s exec node01: %s ms, exec --all: %s ms, status --json: %s ms' "$n" \
                "$(median_ms 20 "$FAME" exec node01 -- true)" "$(median_ms 5 "$FAME" exec --all -- true)" \
                "$(median_ms 20 "$FAME" status --json)")")
        if [ "$n" -eq "${counts[0]}" ]; then
                "$FAME" exec node01 -- fame node memcpy-bench 16M > "$work/memcpy" 2>&1 && memcpy_line=$(cat "$work/memcpy")
        fi
done
printf '%s\n' "${exec_lines[@]}"
echo "inside node01: ${memcpy_line:-memcpy benchmark failed}"
