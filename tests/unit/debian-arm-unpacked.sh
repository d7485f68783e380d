#!/bin/bash
# The host side of an arm64 Debian image (fame debug arm-unpack, docs/aarch64.md):
# without a mirror, one error line naming debootstrap's message and the log.  As root, the
# real tree from the mirror apt uses: the second stage, the
# packages a node needs as .debs, no arm64 program run (dpkg's status empty), and a second call
# that reuses it.  Without root the same in mmdebstrap's user namespace (skipped, 77, without
# an /etc/subuid entry).
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-debarm-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
FAME=${FAME:-$(dirname "$0")/../../build/fame}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

if [ "$(id -u)" != 0 ] && ! grep -q "^$(id -un):" /etc/subuid 2>/dev/null; then
        echo "SKIP: without root, debootstrap runs in mmdebstrap's user namespace, which needs an /etc/subuid entry for $(id -un)"
        exit 77
fi

# debootstrap itself may be fetched with apt-get download: both need the Debian mirror, which
# the Debian node tests use too

# an unreachable mirror: one line, the Release file named, the log named
out=$("$FAME" debug arm-unpack "$tmp/c" bookworm http://127.0.0.1:9/debian 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "unreachable mirror: exit 0"
[ "$(printf '%s\n' "$out" | grep -c '^fame:')" = 1 ] || fail "unreachable mirror: not one error line: $out"
[[ $out == *"Release"*"log: $tmp/c/debian/arm64-unpacked-"*".log"* ]] && ok "unreachable mirror: $out" || fail "unreachable mirror: $out"
ls "$tmp/c/debian" | grep -q '^\.arm64-unpacked' && fail "a temporary tree was left behind"

start=$(date +%s)
tree=$("$FAME" debug arm-unpack "$tmp/c") || fail "debootstrap --foreign failed"
echo "host side from scratch: $(( $(date +%s) - start )) s, $(du -sh "$tree" | cut -f1)"
[ -x "$tree/debootstrap/debootstrap" ] && ok "second stage in the tree" || fail "no /debootstrap/debootstrap"
for p in systemd openssh-server gcc pkg-config qemu-guest-agent linux-image-6 initramfs-tools libjson-c5; do
        compgen -G "$tree/var/cache/apt/archives/${p}*.deb" >/dev/null ||
                fail "no .deb of $p"
done
[ -s "$tree/var/lib/dpkg/status" ] && fail "dpkg's status is not empty: something was configured"
file -L "$tree/bin/dash" 2>/dev/null | grep -q aarch64 && ok "an arm64 dash unpacked" || fail "no arm64 dash"
start=$(date +%s)
again=$("$FAME" debug arm-unpack "$tmp/c") && [ "$again" = "$tree" ] && [ $(( $(date +%s) - start )) -le 5 ] &&
        ok "reused" || fail "second call: $again"
[ $failures = 0 ] && echo "PASS" || exit 1
