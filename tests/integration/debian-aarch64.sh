#!/bin/bash
# Debian arm64 nodes (docs/aarch64.md): the arm64 image built without binfmt_misc (debootstrap
# --foreign on the host, the first boot of one aarch64 node configures it; timed from scratch
# and cached), then a mixed Debian cluster (node01 aarch64, node02 x86_64): systemd, sshd with
# fame ssh, the node user with sudo, ssh from the arm64 node to the x86_64 one over the private
# segment, /lfs through the Librarian's port, and one program compiled inside each node with
# pkg-config --libs fame sharing a file of /lfs with fabric atomics, exactly; overlays kept
# across down/up, a node whose arch changed refused in one line, and --reset to two arm64 nodes.
. "$(dirname "$0")/lib.sh"

skip_without_debian_builds

step "fame image build --kind debian --set arch=aarch64"
t0=$(date +%s)
run image build --kind debian --set arch=aarch64
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "arm64 image build exited $rc"; finish; }
base=$(awk '$1 == "debian" {print $5}' "$out")
[ -f "$base" ] && ok "arm64 base image $base ($(( $(date +%s) - t0 )) s)" || { fail "no base image in: $(cat "$out")"; finish; }
base_sum=$(sha256sum "$base" | cut -d' ' -f1)
file -L "$(dirname "$base")/vmlinux" | grep -q "ARM64" && ok "its kernel is an arm64 Image" || fail "kernel: $(file -L "$(dirname "$base")/vmlinux")"
t0=$(date +%s)
run image build --kind debian --set arch=aarch64
grep -q "(cached)" "$out" && ok "second build uses the cache ($(( $(date +%s) - t0 )) s)" || fail "second build: $(cat "$out" "$err")"
run image build --kind debian --set node02.arch=aarch64
[ "$(grep -c '^debian ' "$out")" -eq 2 ] && ok "a mixed cluster has both Debian images" || fail "mixed image build: $(cat "$out" "$err")"

step "fame up: node01 aarch64, node02 x86_64"
run up -n 2 --kind debian --set node01.arch=aarch64 --set node02.arch=x86_64
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up exited $rc"; finish; }
[ "$(grep -cE '^node0[12] .* ready ' "$out")" -eq 2 ] && ok "2 Debian nodes ready" || fail "table does not show 2 ready nodes"
run status --json
grep -Eq '"arch": ?"aarch64"' "$out" && grep -Eq '"arch": ?"x86_64"' "$out" && ok "status --json: both architectures" || fail "status --json: $(cat "$out")"
qemu-img info -U "$state/nodes/node01/disk.qcow2" | grep -q "backing file: $base" && ok "node01's disk is an overlay of the arm64 base" \
        || fail "node01's overlay: $(qemu-img info -U "$state/nodes/node01/disk.qcow2" 2>&1)"

step "systemd, sshd, the node user"
run ssh node01 -- uname -m
[ "$(cat "$out")" = "aarch64" ] && ok "fame ssh node01 -- uname -m: aarch64" || fail "fame ssh node01: rc $rc: $(cat "$out" "$err")"
run ssh node01 -- systemctl is-active ssh fame-setup fame-node fame-lfs systemd-networkd
[ "$(grep -c '^active$' "$out")" -eq 5 ] && ok "systemd runs ssh, fame-setup, fame-node, fame-lfs, networkd" || fail "units: $(cat "$out" "$err")"
run ssh node01 -- id -un
[ "$(cat "$out")" = "fame" ] && ok "logged in as the node user" || fail "user: $(cat "$out" "$err")"
run ssh node01 -- sudo -n id -u
[ "$(cat "$out")" = "0" ] && ok "passwordless sudo" || fail "sudo: $(cat "$out" "$err")"
run ssh node01 -- ssh node02 uname -m
[ "$(cat "$out")" = "x86_64" ] && ok "node01 (aarch64): ssh node02 uname -m: x86_64" || fail "node-to-node ssh: rc $rc: $(cat "$out" "$err")"
run ssh node02 -- ssh node01 hostname
[ "$(cat "$out")" = "node01" ] && ok "node02 (x86_64): ssh node01 hostname: node01" || fail "ssh node01 from node02: rc $rc: $(cat "$out" "$err")"

step "/lfs on both, through the Librarian's port"
for n in 1 2; do
        for i in $(seq 60); do      # fame-lfs.service starts beside sshd; wait for its mount
                run ssh node0$n -- 'grep -c " /lfs fuse" /proc/mounts'
                [ "$(cat "$out")" = 1 ] && break
        done
        [ "$(cat "$out")" = 1 ] && ok "/lfs mounted on node0$n" || fail "/lfs not mounted on node0$n: $(cat "$out" "$err")"
done
run exec --all -- sh -c 'ls -l /proc/$(pidof fame-lfs)/fd | grep -c /dev/vport'
[ "$(grep -c '^node0[12]: 1$' "$out")" -eq 2 ] && ok "both fame-lfs use the virtio-serial port" || fail "fame-lfs's port: $(cat "$out" "$err")"
run ssh node01 -- 'echo "from $(uname -m)" > /lfs/arch-note'
run ssh node02 -- cat /lfs/arch-note
[ "$(cat "$out")" = "from aarch64" ] && ok "node02 reads what node01 wrote" || fail "/lfs/arch-note: rc $rc $(cat "$out" "$err")"

step "one program built inside each node with pkg-config --libs fame shares a file of /lfs"
cat > "$work/shared.c" <<'EOF'
/* shared FILE add N: N fabric fetch-adds of 1 on word 0 of FILE (made 1 MiB when new), mapped
 * (the preloaded libfame-mmap.so makes it FAM) and registered as libfam-atomic programs do;
 * then writes this machine's name at offset 4096.  shared FILE get: word 0, and that name. */
#include <fam_atomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(int argc, char **argv) {
        enum { LEN = 1 << 20 };
        if (argc < 3)
                return 2;
        int fd = open(argv[1], O_RDWR | O_CREAT, 0666);
        if (fd < 0 || ftruncate(fd, LEN) < 0) {
                perror(argv[1]);
                return 1;
        }
        char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED || fam_atomic_register_region(p, LEN, fd, 0) < 0) {
                perror("map");
                return 1;
        }
        int64_t *w = (int64_t *) p;
        if (strcmp(argv[2], "add") == 0 && argc == 4) {
                long n = atol(argv[3]);
                for (long i = 0; i < n; i++)
                        fam_atomic_64_fetch_add(w, 1);
                struct utsname u;
                uname(&u);
                snprintf(p + 4096, 64, "%.63s", u.machine);
        }
        printf("%lld %.64s\n", (long long) fam_atomic_64_read(w), p + 4096);
        return 0;
}
EOF
for n in 1 2; do
        "$FAME" ssh node0$n -- 'cat > shared.c' < "$work/shared.c"
        run ssh node0$n -- 'cc -O2 -Wall -Werror -o shared shared.c $(pkg-config --cflags --libs fame) && sudo -n cp shared /usr/local/bin/ && readelf -h shared | grep Machine:'
        [ "$rc" -eq 0 ] && ok "built on node0$n: $(tr -s ' ' < "$out")" || fail "build on node0$n: rc $rc: $(cat "$out" "$err")"
done
run exec node01 -- /usr/local/bin/shared /lfs/counter add 0
[ "$(cat "$out")" = "0 aarch64" ] && ok "node01 made /lfs/counter" || fail "first run: $(cat "$out" "$err")"
run exec --all -- /usr/local/bin/shared /lfs/counter add 200000
[ "$rc" -eq 0 ] || fail "exec --all: rc $rc $(cat "$err")"
run exec node02 -- /usr/local/bin/shared /lfs/counter get
total=$(awk '{print $1}' "$out")
[ "$total" = 400000 ] && ok "2 nodes x 200000 fetch-adds at once, aarch64 and x86_64: $total" || fail "counter $(cat "$out" "$err"), expected 400000"
run exec node01 -- /usr/local/bin/shared /lfs/counter get
[ "$(awk '{print $1}' "$out")" = 400000 ] && ok "node01 sees the same word" || fail "node01: $(cat "$out" "$err")"
run exec node01 -- rm /lfs/counter /lfs/arch-note

step "changes inside a node survive down and up; a node whose arch changed is refused"
run ssh node01 -- 'echo kept > ~/mine.txt'
run down
[ "$rc" -eq 0 ] && [ -z "$(qemu_pids)" ] && ok "down, no QEMU left" || fail "down: rc $rc $(cat "$err") $(qemu_pids)"
run up -n 2 --kind debian --set node01.arch=aarch64 --set node02.arch=x86_64
[ "$rc" -eq 0 ] || fail "second up: $(cat "$err")"
run ssh node01 -- cat mine.txt
[ "$(cat "$out")" = "kept" ] && ok "~/mine.txt kept on the arm64 node" || fail "after down/up: $(cat "$out" "$err")"
run down
run up -n 2 --kind debian --arch aarch64
[ "$rc" -ne 0 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "node02's disk was made from .*--reset" "$err" \
        && ok "node02 now aarch64 with an x86_64 disk: $(cat "$err")" || fail "arch change: rc $rc $(cat "$err")"
[ -z "$(qemu_pids)" ] || fail "QEMU left after the refused up: $(qemu_pids)"

step "fame up -n 2 --kind debian --arch aarch64 --reset"
run up -n 2 --kind debian --arch aarch64 --reset
[ "$rc" -eq 0 ] || fail "up --reset: $(cat "$err")"
run ssh node01 -- ssh node02 uname -m
[ "$(cat "$out")" = "aarch64" ] && ok "two arm64 Debian nodes, node01 reaches node02" || fail "after --reset: rc $rc $(cat "$out" "$err")"
run ssh node01 -- 'test -e mine.txt && echo kept || echo new'
[ "$(cat "$out")" = "new" ] && ok "--reset gave node01 a new disk" || fail "--reset: $(cat "$out" "$err")"

step "the cluster verbs on an arm64 Debian node: logs, console"
run logs node01
grep -q "fame-setup: node01 set up" "$out" && ok "logs show node01's console" || fail "logs node01 lacks fame-setup's line"
run console node01 < /dev/null
[ "$rc" -eq 0 ] && ok "console connects and leaves on end of input" || fail "console: rc=$rc $(cat "$err")"
run down

step "a failed first boot names the package and where its console and disk are"
# a QEMU that prints what a failing second stage prints (another package list: another tree)
cat > "$work/fake-qemu" <<'EOF'
#!/bin/sh
echo "I: Configuring required packages..."
echo "I: Configuring hello..."
echo "dpkg: error processing package hello (--configure):"
echo "FAME-FIRSTBOOT: failed hello"
EOF
printf '#!/bin/sh\necho "I: Installing core packages..."\necho "W: Failure trying to run: dpkg"\nexit 1\n' > "$work/dying-qemu"
chmod +x "$work/fake-qemu" "$work/dying-qemu"
script -qfec "$FAME image build --kind debian --set arch=aarch64 --set packages=hello --set qemu_aarch64=$work/fake-qemu" \
        "$work/typescript" > /dev/null 2>&1
rc=$?
tr -d '\r' < "$work/typescript" | grep "^fame:" > "$err"
[ "$rc" -ne 0 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "first boot failed hello (console: .*/firstboot-[0-9a-f]*\.failed/console\.log; its disk" "$err" \
        && ok "one line: $(cat "$err")" || fail "failed first boot: rc $rc: $(cat "$err")"
grep -q "first boot: Configuring hello... (2 of about" "$work/typescript" \
        && ok "progress on a terminal: $(grep -m1 'Configuring hello' "$work/typescript" | tr -d '\r')" \
        || fail "no progress line: $(tail -5 "$work/typescript")"
kept=$(sed -n 's/.*(console: \(.*\)\/console\.log.*/\1/p' "$err")
[ -n "$kept" ] && [ -s "$kept/console.log" ] && [ -f "$kept/root.raw" ] && ok "console and disk kept in $kept" || fail "nothing kept in '$kept'"
run image build --kind debian --set arch=aarch64 --set packages=hello --set qemu_aarch64="$work/dying-qemu"
[ "$rc" -ne 0 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "ended without a result (QEMU exit status 1; last message: Failure trying to run: dpkg)" "$err" \
        && ok "a QEMU that dies: $(cat "$err")" || fail "dying QEMU: rc $rc: $(cat "$err")"
ls -d "$XDG_CACHE_HOME"/fame/debian/.firstboot-* "$XDG_CACHE_HOME"/fame/debian/.rootfs-arm64-* 2> /dev/null \
        && fail "a temporary tree was left" || ok "nothing half-written"
[ -n "$kept" ] && rm -rf "$kept"
rm -rf "$XDG_CACHE_HOME"/fame/debian/arm64-unpacked-*

step "the base image was never written"
[ "$(sha256sum "$base" | cut -d' ' -f1)" = "$base_sum" ] && ok "base checksum unchanged" || fail "the arm64 base image changed"
finish
