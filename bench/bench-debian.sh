#!/bin/bash
# Benchmark (not a test) of Debian nodes: image build time from scratch (empty cache: every
# package downloaded) and cached, then rebuilt after a FAM/E change (packages cached, only the
# FAM/E layer new: what a developer waits for), the time from `fame up` to all ready for 2 and
# 4 Debian nodes, and the disk each node uses (its overlay after boot).
#   bench/bench-debian.sh [NODE COUNTS...]      (default: 2 4)
# Needs root (see docs/debian.md).  Uses its own cache and state directories.
set -u
FAME=${FAME:-$(dirname "$0")/../build/fame}
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(2 4)
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-XXXXXX")
export XDG_STATE_HOME="$work/state" XDG_CACHE_HOME="$work/cache" FAME_CLUSTER_NAME=bench-debian
trap '"$FAME" down > /dev/null 2>&1; rm -rf "$work"' EXIT

secs() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.1f", e - s }'; }

s=$(date +%s.%N)
"$FAME" image build --kind debian > "$work/build.out" 2>&1 || { echo "image build failed: $(tail -1 "$work/build.out")"; exit 1; }
e=$(date +%s.%N)
echo "image from scratch (download + mmdebstrap + ext4 + qcow2): $(secs "$s" "$e") s"
s=$(date +%s.%N)
"$FAME" image build --kind debian > /dev/null 2>&1
e=$(date +%s.%N)
echo "image cached:                                              $(secs "$s" "$e") s"
# The FAM/E layer only (packages and the Debian root cached): a new disk size is a new key.
s=$(date +%s.%N)
"$FAME" image build --kind debian --set disk_size=5G > /dev/null 2>&1
e=$(date +%s.%N)
echo "image after a FAM/E change (stage 2 only):                 $(secs "$s" "$e") s"
base=$(awk '$1 == "debian" {print $5}' "$work/build.out")
echo "base image: $(du -m --apparent-size "$base" | cut -f1) MiB ($(du -m "$base" | cut -f1) MiB on disk)"

printf '%-6s %18s %22s %24s\n' nodes "first up (s)" "disk/node after boot" "up again, disks kept (s)"
for n in "${counts[@]}"; do
        "$FAME" down > /dev/null 2>&1
        rm -rf "$XDG_STATE_HOME"
        s=$(date +%s.%N)
        if ! "$FAME" up -n "$n" --kind debian --set fam_size=1G > "$work/up.out" 2> "$work/up.err"; then
                echo "fame up -n $n failed: $(tail -1 "$work/up.err")"
                continue
        fi
        e=$(date +%s.%N)
        kib=0
        for d in "$XDG_STATE_HOME"/fame/bench-debian/nodes/*/disk.qcow2; do
                kib=$((kib + $(du -k "$d" | cut -f1)))
        done
        first=$(secs "$s" "$e")
        "$FAME" down > /dev/null 2>&1
        s=$(date +%s.%N)
        "$FAME" up -n "$n" --kind debian > /dev/null 2>&1 || echo "second fame up -n $n failed"
        e=$(date +%s.%N)
        printf '%-6s %18s %18s MiB %24s\n' "$n" "$first" "$((kib / n / 1024))" "$(secs "$s" "$e")"
done
