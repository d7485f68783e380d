#!/bin/bash
# fame image prune on a made-up cache: the images no cluster's plan names go (with the kernels
# only they linked, a Debian image's build log, every stage-1 tree but the newest), the rest
# stays (images in use, shared kernels still linked, package downloads, builds in progress);
# --dry-run removes nothing; --json lists what went.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-prune-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset FAME_CONFIG FAME_CLUSTER_NAME
export XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/cache" XDG_CONFIG_HOME="$tmp/config"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

c="$tmp/cache/fame"
mkdir -p "$c/images" "$c/debian/debs" "$tmp/state/fame/c1" "$tmp/state/fame/c2"
head -c 100000 /dev/urandom > "$c/images/vmlinux-k1"
head -c 100000 /dev/urandom > "$c/images/vmlinux-k2"
for i in aaaa bbbb cccc; do
        mkdir "$c/images/$i"
        head -c 50000 /dev/urandom > "$c/images/$i/initramfs.cpio"
done
ln "$c/images/vmlinux-k1" "$c/images/aaaa/vmlinux"
ln "$c/images/vmlinux-k1" "$c/images/bbbb/vmlinux"
ln "$c/images/vmlinux-k2" "$c/images/cccc/vmlinux"
for i in debian-dd debian-ee; do
        mkdir "$c/images/$i"
        head -c 200000 /dev/urandom > "$c/images/$i/base.qcow2"
        echo log > "$c/images/$i.log"
done
mkdir "$c/images/.tmp-123" "$c/debian/rootfs-old" "$c/debian/rootfs-new"
echo log > "$c/debian/rootfs-old.log"
echo deb > "$c/debian/debs/x.deb"
touch -d '2 days ago' "$c/debian/rootfs-old"
# arm64: its own newest tree is kept, older than the x86_64 one; a failed first boot goes
mkdir -p "$c/debian/rootfs-arm64-old/root" "$c/debian/rootfs-arm64-new/root" "$c/debian/firstboot-ff.failed" \
        "$c/debian/arm64-unpacked-ff/root" "$c/debian/debs-arm64"
echo deb > "$c/debian/debs-arm64/y.deb"
truncate -s 1G "$c/debian/firstboot-ff.failed/root.raw"
touch -d '3 days ago' "$c/debian/rootfs-arm64-old"
touch -d '1 day ago' "$c/debian/rootfs-arm64-new"
printf '{"name": "c1", "kernel": "%s", "initrd": "%s"}\n' "$c/images/aaaa/vmlinux" "$c/images/aaaa/initramfs.cpio" \
        > "$tmp/state/fame/c1/cluster.json"
printf '{"name": "c2", "image_dir": "%s", "base": "%s"}\n' "$c/images/debian-ee" "$c/images/debian-ee/base.qcow2" \
        > "$tmp/state/fame/c2/cluster.json"

gone=(images/bbbb images/cccc images/vmlinux-k2 images/debian-dd images/debian-dd.log debian/rootfs-old debian/rootfs-old.log
      debian/rootfs-arm64-old debian/firstboot-ff.failed debian/arm64-unpacked-ff)
kept=(images/aaaa images/vmlinux-k1 images/debian-ee images/debian-ee.log images/.tmp-123 debian/rootfs-new debian/debs/x.deb
      debian/rootfs-arm64-new debian/debs-arm64/y.deb)

"$FAME" image prune --dry-run > "$tmp/out" 2>&1 || fail "prune --dry-run: $(cat "$tmp/out")"
for p in "${gone[@]}"; do grep -q "^would remove .* $c/$p$" "$tmp/out" || fail "--dry-run does not list $p: $(cat "$tmp/out")"; done
for p in "${gone[@]}" "${kept[@]}"; do [ -e "$c/$p" ] || fail "--dry-run removed $p"; done
grep -q "^would free " "$tmp/out" && ok "--dry-run lists $(grep -c '^would remove' "$tmp/out") entries and removes nothing"

"$FAME" image prune --json > "$tmp/json" 2>&1 || fail "prune --json: $(cat "$tmp/json")"
[ "$(jq '.removed | length' "$tmp/json")" = "${#gone[@]}" ] && [ "$(jq '.bytes > 300000' "$tmp/json")" = true ] \
        && ok "--json: $(jq -c '[.removed[].what] | unique' "$tmp/json"), $(jq .bytes "$tmp/json") bytes" || fail "--json: $(cat "$tmp/json")"
for p in "${gone[@]}"; do [ ! -e "$c/$p" ] || fail "$p is still there"; done
for p in "${kept[@]}"; do [ -e "$c/$p" ] || fail "$p was removed"; done
[ "$(stat -c %h "$c/images/vmlinux-k1")" = 2 ] && ok "the images in use, their kernel, downloads and builds in progress stay" \
        || fail "vmlinux-k1 links: $(stat -c %h "$c/images/vmlinux-k1")"

"$FAME" image prune > "$tmp/out" 2>&1 && grep -q "^freed 0 B in $c$" "$tmp/out" && ok "a second prune finds nothing" \
        || fail "second prune: $(cat "$tmp/out")"
"$FAME" image prune extra > "$tmp/out" 2>&1
[ $? -eq 2 ] && [ "$(wc -l < "$tmp/out")" -eq 1 ] && ok "an argument: $(cat "$tmp/out")" || fail "prune extra: $(cat "$tmp/out")"

echo "$failures failure(s)"
exit $((failures > 0))
