#!/bin/bash
# fame node setup (the Debian nodes' boot-time setup) on a scratch root: first boot writes the
# identity, keys and account files; later boots rewrite only what the cluster decides and keep
# the node's own changes; a bad seed is one error line.
set -u
: "${FAME:?}"
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-setup-XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

seed="$work/seed" root="$work/root"
mkdir -p "$seed/network" "$root/etc/ssh"
printf 'FAME_NODE_NAME=node03\nFAME_NODE_ID=3\nFAME_USER=alice\nFAME_UID=1000\nFAME_CLUSTER=t\n' > "$seed/node.env"
printf '0123456789abcdef0123456789abcdef\n' > "$seed/machine-id"
printf '# BEGIN FAM/E (cluster t)\n10.0.2.100\ttorms\n10.11.0.3\tnode03\n# END FAM/E\n' > "$seed/hosts"
echo "node03,10.11.0.3 ssh-ed25519 AAAA" > "$seed/ssh_known_hosts"
for f in authorized_keys id_ed25519 id_ed25519.pub ssh_host_ed25519_key ssh_host_ed25519_key.pub; do echo "$f" > "$seed/$f"; done
echo "[Match]" > "$seed/network/10-fame-user.network"
tar -C "$seed" --owner=0 --group=0 -cf "$work/seed.tar" node.env machine-id hosts ssh_known_hosts authorized_keys id_ed25519 \
        id_ed25519.pub ssh_host_ed25519_key ssh_host_ed25519_key.pub network/ network/10-fame-user.network
printf '127.0.0.1 localhost\n127.0.1.1 debian\n' > "$root/etc/hosts"
printf 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n' > "$root/etc/passwd"
printf 'root:x:0:\nfam:x:998:\n' > "$root/etc/group"
echo old > "$root/etc/ssh/ssh_host_rsa_key"

"$FAME" node setup --root "$root" --seed "$work/seed.tar" > "$work/out" 2> "$work/err"
rc=$?
[ "$rc" -eq 0 ] && grep -q "node03 set up for the first time (user alice)" "$work/out" && ok "first boot" || fail "first boot: rc $rc: $(cat "$work/out" "$work/err")"
[ "$(cat "$root/etc/hostname")" = node03 ] && ok "hostname" || fail "hostname"
[ "$(cat "$root/etc/machine-id")" = 0123456789abcdef0123456789abcdef ] && ok "machine-id" || fail "machine-id"
[ ! -e "$root/etc/ssh/ssh_host_rsa_key" ] && [ "$(cat "$root/etc/ssh/ssh_host_ed25519_key")" = ssh_host_ed25519_key ] && \
        [ "$(stat -c %a "$root/etc/ssh/ssh_host_ed25519_key")" = 600 ] && ok "host key replaced, mode 600" || fail "host keys: $(ls -l "$root/etc/ssh")"
[ "$(cat "$root/home/alice/.ssh/authorized_keys")" = authorized_keys ] && ok "authorized_keys in the user's home" || fail "authorized_keys"
grep -q "^alice ALL=(ALL) NOPASSWD:ALL$" "$root/etc/sudoers.d/fame-user" && [ "$(stat -c %a "$root/etc/sudoers.d/fame-user")" = 440 ] \
        && ok "sudo rule" || fail "sudoers"
grep -q "would run: useradd" "$work/out" && fail "useradd for an existing user" || ok "existing user kept"
[ -f "$root/run/systemd/network/10-fame-user.network" ] && ok "network configuration" || fail "network"
grep -q "^127.0.1.1" "$root/etc/hosts" && fail "127.0.1.1 kept" || ok "127.0.1.1 line removed"

# the user changes things; the next boot keeps them and rewrites only the FAM/E block
echo "10.9.9.9 mine" >> "$root/etc/hosts"
echo "changed" > "$root/home/alice/.ssh/authorized_keys"
"$FAME" node setup --root "$root" --seed "$work/seed.tar" > "$work/out" 2> "$work/err"
[ $? -eq 0 ] && grep -q "node03 set up (user alice)" "$work/out" && ok "second boot" || fail "second boot: $(cat "$work/out" "$work/err")"
[ "$(grep -c '^# BEGIN FAM/E' "$root/etc/hosts")" -eq 1 ] && grep -q "^10.9.9.9 mine$" "$root/etc/hosts" && ok "/etc/hosts: one FAM/E block, user line kept" \
        || fail "/etc/hosts: $(cat "$root/etc/hosts")"
[ "$(cat "$root/home/alice/.ssh/authorized_keys")" = changed ] && ok "user's change kept" || fail "authorized_keys overwritten"
grep -q "for the first time" "$work/out" && fail "first-boot work repeated" || ok "first-boot work not repeated"

# bad seeds: one line each
"$FAME" node setup --root "$root" --seed /etc/hostname > "$work/out" 2> "$work/err"
[ $? -ne 0 ] && [ "$(wc -l < "$work/err")" -eq 1 ] && grep -q "is not a FAM/E seed" "$work/err" && ok "not a seed: $(cat "$work/err")" || fail "not a seed: $(cat "$work/err")"
"$FAME" node setup --root "$root" --seed "$work/nonexistent" > "$work/out" 2> "$work/err"
[ $? -ne 0 ] && grep -q "Cannot read the seed" "$work/err" && ok "missing seed file" || fail "missing seed: $(cat "$work/err")"
echo "$failures failure(s)"
exit $((failures > 0))
