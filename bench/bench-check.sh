#!/bin/bash
# Benchmark (not a test): what the coherence checker costs (docs/check.md).  The same 3-node
# cluster without and with --check, in one run: bring-up to all nodes ready, memcpy into FAM
# inside a node (fame node memcpy-bench), and a fetch_add loop on one FAM word by 3 nodes at
# once (fame node fetch-add); then the ratios checked / plain.
#   bench/bench-check.sh [NODES [ADDS]]      (default: 3 nodes, 200000 adds per node)
set -u
FAME=${FAME:-$(dirname "$0")/../build/fame}
nodes=${1:-3}
adds=${2:-200000}
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-XXXXXX")
export XDG_STATE_HOME="$work/state" FAME_CLUSTER_NAME=bench-check
trap '"$FAME" down > /dev/null 2>&1; rm -rf "$work"' EXIT

now() { date +%s.%N; }
declare -A up memcpy adds_s
for mode in plain check; do
        "$FAME" down > /dev/null 2>&1
        rm -rf "$XDG_STATE_HOME"
        opt=()
        [ "$mode" = check ] && opt=(--check)
        start=$(now)
        if ! "$FAME" up -n "$nodes" "${opt[@]}" > "$work/up.out" 2> "$work/up.err"; then
                echo "fame up -n $nodes ${opt[*]} failed: $(tail -1 "$work/up.err")"
                exit 1
        fi
        up[$mode]=$(awk -v s="$start" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }')
        "$FAME" exec node01 -- fame node memcpy-bench 16M > "$work/memcpy" 2>&1
        memcpy[$mode]=$(sed -n 's/.*FAM \([0-9]*\) MB\/s.*/\1/p' "$work/memcpy")
        word=$(( $("$FAME" fam info "$XDG_STATE_HOME/fame/bench-check/fam" --json | awk -F': ' '/"books_offset"/ {gsub(",", "", $2); print $2; exit}') + 0x3000000 ))
        start=$(now)
        "$FAME" exec --all -- fame node fetch-add "$word" "$adds" > /dev/null 2>&1 || echo "fetch-add failed ($mode)"
        adds_s[$mode]=$(awk -v s="$start" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }')
        if [ "$mode" = check ]; then
                "$FAME" check report --json > "$work/report" 2>&1
                findings=$(jq '.findings | length' "$work/report" 2>/dev/null || echo "?")
        fi
done
printf '%-34s %10s %10s %8s\n' "$nodes nodes" plain check ratio
row() { awk -v n="$1" -v a="$2" -v b="$3" -v inv="$4" 'BEGIN { r = (a > 0 && b > 0) ? (inv ? a / b : b / a) : 0; printf "%-34s %10s %10s %7.1fx\n", n, a, b, r }'; }
row "bring-up to ready (s)" "${up[plain]}" "${up[check]}" 0
row "memcpy into FAM in node01 (MB/s)" "${memcpy[plain]:-0}" "${memcpy[check]:-0}" 1
row "fetch_add x$adds on $nodes nodes (s)" "${adds_s[plain]}" "${adds_s[check]}" 0
echo "(ratio: how many times slower with --check; goals: bring-up <= 3x, FAM-bound loops <= 10x)"
echo "findings in the checked run: $findings"
