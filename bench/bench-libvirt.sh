#!/bin/bash
# Benchmark (not a test): the libvirt backend against the direct QEMU backend, side by side in
# one run on the same machine — wall time of `fame up -n N`, of `fame down`, and of one
# `fame exec node01 -- true` (guest agent round trip: fame's own socket vs
# virDomainQemuAgentCommand), with libvirt/direct ratios.  The libvirtd is a private one in a
# mount namespace (tests/integration/libvirtd-sandbox.sh), so this needs root.
#   bench/bench-libvirt.sh [NODES] [EXEC_ROUNDS]     (default: 4 nodes, 20 rounds)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
FAME=${FAME:-$root/build/fame}
nodes=${1:-4}
rounds=${2:-20}
[ "$(id -u)" -eq 0 ] || { echo "bench-libvirt: needs root (its libvirtd runs in a private mount namespace)"; exit 0; }
command -v libvirtd > /dev/null || { echo "bench-libvirt: libvirtd missing: run scripts/install-deps"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-XXXXXX")
sandbox="$root/tests/integration/libvirtd-sandbox.sh"
export XDG_STATE_HOME="$work/state"
trap '"$FAME" down -c bench-direct > /dev/null 2>&1; "$FAME" down -c bench-libvirt > /dev/null 2>&1; "$sandbox" stop "$work/lv"; rm -rf "$work"' EXIT
uri=$("$sandbox" start "$work/lv") || exit 1

now() { date +%s.%N; }
declare -A t
measure() {     # measure NAME BACKEND-ARGS...: up, exec rounds, down
        local name=$1 c="bench-$1" s e
        shift
        s=$(now)
        "$FAME" up -c "$c" -n "$nodes" "$@" > "$work/$name.up" 2>&1 || { echo "fame up ($name) failed: $(tail -1 "$work/$name.up")"; exit 1; }
        e=$(now); t[$name.up]=$(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }')
        s=$(now)
        for _ in $(seq "$rounds"); do "$FAME" exec -c "$c" node01 -- true || exit 1; done
        e=$(now); t[$name.exec]=$(awk -v s="$s" -v e="$e" -v n="$rounds" 'BEGIN { print (e - s) * 1000 / n }')
        s=$(now)
        "$FAME" down -c "$c" > /dev/null 2>&1
        e=$(now); t[$name.down]=$(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }')
}
measure direct --backend qemu
measure libvirt --backend libvirt --set libvirt_uri="$uri"

printf '%-28s %10s %10s %8s\n' "$nodes diskless nodes, TCG" direct libvirt ratio
row() { awk -v a="${t[direct.$1]}" -v b="${t[libvirt.$1]}" -v l="$2" -v u="$3" \
        'BEGIN { printf "%-28s %8.2f%-2s %8.2f%-2s %7.2fx\n", l, a, u, b, u, b / a }'; }
row up "fame up" s
row exec "fame exec node01 -- true" ms
row down "fame down" s
echo "(exec: mean of $rounds; ratio = libvirt / direct)"
