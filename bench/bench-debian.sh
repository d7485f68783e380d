#!/bin/bash
# Benchmark (not a test) of Debian nodes: image build time from scratch (empty cache: every
# package downloaded) and cached, then rebuilt after a FAM/E change (packages cached, only the
# FAM/E layer new: what a developer waits for), for the x86_64 and the arm64 image side by side;
# the time from `fame up` to all ready for 2 and 4 Debian nodes, and the disk each node uses
# (its overlay after boot).
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

# Both architectures' images, one after the other in this run: the arm64 one is configured by
# the first boot of an aarch64 node (docs/aarch64.md).
declare -A scratch cached layer
for arch in x86_64 aarch64; do
        s=$(date +%s.%N)
        "$FAME" image build --kind debian --set arch=$arch > "$work/build-$arch.out" 2>&1 ||
                { echo "image build ($arch) failed: $(tail -1 "$work/build-$arch.out")"; exit 1; }
        e=$(date +%s.%N)
        scratch[$arch]=$(secs "$s" "$e")
        s=$(date +%s.%N)
        "$FAME" image build --kind debian --set arch=$arch > /dev/null 2>&1
        e=$(date +%s.%N)
        cached[$arch]=$(secs "$s" "$e")
        # The FAM/E layer only (packages and the Debian root cached): a new disk size is a new key.
        s=$(date +%s.%N)
        "$FAME" image build --kind debian --set arch=$arch --set disk_size=5G > /dev/null 2>&1
        e=$(date +%s.%N)
        layer[$arch]=$(secs "$s" "$e")
done
printf '%-52s %9s %9s %8s\n' "Debian image" x86_64 aarch64 ratio
row() { awk -v t="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%-52s %8.1fs %8.1fs %7.1fx\n", t, a, b, b / a }'; }
row "from scratch (every package downloaded)" "${scratch[x86_64]}" "${scratch[aarch64]}"
row "cached" "${cached[x86_64]}" "${cached[aarch64]}"
row "after a FAM/E change (stage 2 only)" "${layer[x86_64]}" "${layer[aarch64]}"
base=$(awk '$1 == "debian" {print $5}' "$work/build-x86_64.out")
echo "x86_64 base image: $(du -m --apparent-size "$base" | cut -f1) MiB ($(du -m "$base" | cut -f1) MiB on disk)"
base=$(awk '$1 == "debian" {print $5}' "$work/build-aarch64.out")
echo "aarch64 base image: $(du -m --apparent-size "$base" | cut -f1) MiB ($(du -m "$base" | cut -f1) MiB on disk)"

printf '%-14s %18s %22s %24s\n' nodes "first up (s)" "disk/node after boot" "up again, disks kept (s)"
for n in "${counts[@]}" 2:aarch64; do
        arch=${n#*:}
        [ "$arch" = "$n" ] && arch=x86_64
        n=${n%%:*}
        "$FAME" down > /dev/null 2>&1
        rm -rf "$XDG_STATE_HOME"
        s=$(date +%s.%N)
        if ! "$FAME" up -n "$n" --kind debian --arch "$arch" --set fam_size=1G > "$work/up.out" 2> "$work/up.err"; then
                echo "fame up -n $n --arch $arch failed: $(tail -1 "$work/up.err")"
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
        "$FAME" up -n "$n" --kind debian --arch "$arch" > /dev/null 2>&1 || echo "second fame up -n $n failed"
        e=$(date +%s.%N)
        printf '%-14s %18s %18s MiB %24s\n' "$n $arch" "$first" "$((kib / n / 1024))" "$(secs "$s" "$e")"
done
