#!/bin/bash
# Debian nodes (kind=debian) end to end: the image (built once, cached across runs in the build
# directory), overlays and seeds small before first boot, 2 nodes up, fame ssh, node-to-node
# SSH over the private segment, the same FAM bytes in both nodes and the host, a FAM program
# built on node01 with pkg-config and run on node02, a host service reached at torms and
# nothing else of the host, changes inside a node kept across down/up, the base image never
# written, and clear errors for a missing tool and an unreachable mirror.
. "$(dirname "$0")/lib.sh"

skip_without_debian_builds

step "fame image build --kind debian"
t0=$(date +%s)
run image build --kind debian
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "image build exited $rc"; finish; }
base=$(awk '$1 == "debian" {print $5}' "$out")
[ -f "$base" ] && ok "base image $base ($(( $(date +%s) - t0 )) s)" || { fail "no base image in: $(cat "$out")"; finish; }
base_sum=$(sha256sum "$base" | cut -d' ' -f1)
run image build --kind debian
grep -q "(cached)" "$out" && ok "second build uses the cache" || fail "second build did not use the cache: $(cat "$out")"

step "errors: a missing tool, an unreachable mirror"
mkdir -p "$work/bin"
for t in cp mke2fs qemu-img; do ln -s "$(PATH=$PATH:/usr/sbin:/sbin command -v $t)" "$work/bin/$t"; done
# a new package list: stage 1 (mmdebstrap) would have to run
PATH="$work/bin" "$FAME" image build --kind debian --set packages=fame-test-nonexistent > "$out" 2> "$err"
rc=$?
[ "$rc" -ne 0 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "mmdebstrap not found: install it" "$err" \
        && ok "missing mmdebstrap: $(cat "$err")" || fail "missing mmdebstrap: rc $rc: $(cat "$err")"
run image build --kind debian --set mirror=http://127.0.0.1:9/debian --set packages=hello
[ "$rc" -ne 0 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "Debian mirror http://127.0.0.1:9/debian did not serve bookworm" "$err" \
        && ok "unreachable mirror: $(cat "$err")" || fail "unreachable mirror: rc $rc: $(cat "$err")"
ls "$XDG_CACHE_HOME"/fame/debian/.rootfs-* > /dev/null 2>&1 && fail "a failed build left a temporary rootfs behind" || ok "nothing half-written"

step "overlays and seeds before first boot are small"
# QEMU that cannot start: fame up makes the node disks and seeds, then fails with one line
run up -n 2 --kind debian --accel tcg --set qemu=false
[ "$rc" -ne 0 ] && grep -q "QEMU failed to start" "$err" && ok "fame up with a broken qemu fails: $(cat "$err")" || fail "qemu=false: rc $rc: $(cat "$err")"
for n in node01 node02; do
        sz=$(( $(stat -c %s "$state/nodes/$n/disk.qcow2") + $(stat -c %s "$state/nodes/$n/seed.tar") ))
        [ "$sz" -le $((5 * 1024 * 1024)) ] && ok "$n: overlay + seed = $sz bytes before first boot" || fail "$n: overlay + seed = $sz bytes (> 5 MiB)"
done
qemu-img info "$state/nodes/node01/disk.qcow2" | grep -q "backing file: $base" && ok "node01's disk is an overlay of the base" || fail "node01's overlay: $(qemu-img info "$state/nodes/node01/disk.qcow2")"

step "fame up -n 2 --kind debian (with a host service forwarded)"
"$FAME_TCP_SERVE" > "$work/port" &
serve_pid=$!
for i in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done   # waiting for another process to print its port
sport=$(head -1 "$work/port")
[ -n "$sport" ] || fail "tcp-serve did not start"
run up -n 2 --kind debian --set forward=7777:$sport
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up exited $rc"; kill $serve_pid; finish; }
[ "$(grep -cE '^node0[12] .* ready ' "$out")" -eq 2 ] && ok "2 Debian nodes ready" || fail "table does not show 2 ready nodes"
run status --json
grep -Eq '"ssh": ?true' "$out" && grep -Eq '"kind": ?"debian"' "$out" && ok "status --json: debian, sshd answers" || fail "status --json: $(cat "$out")"

step "fame ssh and node-to-node SSH over the private segment"
run ssh node02 -- hostname
[ "$(cat "$out")" = "node02" ] && ok "fame ssh node02 -- hostname: node02" || fail "fame ssh node02: rc $rc: $(cat "$out" "$err")"
run ssh node01 -- ssh node02 hostname
[ "$(cat "$out")" = "node02" ] && ok "node01: ssh node02 hostname: node02" || fail "node-to-node ssh: rc $rc: $(cat "$out" "$err")"
run ssh node01 -- ssh node02 true
[ "$rc" -eq 0 ] && ok "node01: ssh node02 true" || fail "ssh node02 true: rc $rc"
run ssh node01 -- ip -4 -br addr
grep -q "10.11.0.1/24" "$out" && ok "node01 on the private segment" || fail "node01 addresses: $(cat "$out")"
run ssh node01 -- sudo -n id -u
[ "$(cat "$out")" = "0" ] && ok "passwordless sudo" || fail "sudo: $(cat "$out" "$err")"

step "both nodes and the host see the same FAM bytes"
off=$((64 * 1024 * 1024))
run exec node01 -- fame node fill $off 1048576 7
sum1=$(awk '{print $NF}' "$out")
run ssh node02 -- fame node checksum $off 1048576
sum2=$(awk '{print $NF}' "$out")
sumh=$(FAME_PATH="$state/fam" "$FAME" node checksum $off 1048576 | awk '{print $NF}')
[ -n "$sum1" ] && [ "$sum1" = "$sum2" ] && [ "$sum1" = "$sumh" ] && ok "checksum $sum1 on node01, node02 (as the user) and the host" \
        || fail "checksums differ: node01 '$sum1' node02 '$sum2' host '$sumh' ($(cat "$err"))"

step "a FAM program built on node01 with pkg-config runs on node02"
cat > "$work/famprog.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <fame.h>
int main(int argc, char **argv) {
        struct fame *f;
        if (fame_open(NULL, 0, &f) < 0)
                return 1;
        char *p = fame_book(f, 0, 1);
        if (argc > 2 && strcmp(argv[1], "write") == 0) {
                snprintf(p, 64, "%s from node%02u", argv[2], (unsigned) fame_node_id(f));
                fame_persist(p, 64);
        }
        printf("%.64s\n", p);
        fame_close(f);
        return 0;
}
EOF
"$FAME" ssh node01 -- 'cat > famprog.c' < "$work/famprog.c"
word="w$RANDOM$RANDOM"
run ssh node01 -- 'cc -O2 -Wall -o famprog famprog.c $(pkg-config --cflags --libs fame) && ./famprog write '"$word"' && scp -q famprog node02:'
[ "$rc" -eq 0 ] && [ "$(cat "$out")" = "$word from node01" ] && ok "built and run on node01" || fail "build on node01: rc $rc: $(cat "$out" "$err")"
run ssh node02 -- ./famprog
[ "$(cat "$out")" = "$word from node01" ] && ok "node02 reads node01's bytes: $(cat "$out")" || fail "famprog on node02: rc $rc: $(cat "$out" "$err")"

step "shelves through the Librarian, with the node users' permissions"
run ssh node01 -- fame shelf create /deb --size 16M --mode 0600
[ "$rc" -eq 0 ] && grep -Eq "owner [1-9][0-9]*:[0-9]+ +created by node 1" "$out" && ok "the node user created /deb on node01" \
        || fail "shelf create as the user: rc $rc: $(cat "$out" "$err")"
run ssh node01 -- fame shelf fill /deb 5
sum=$(cat "$out")
run ssh node02 -- fame shelf checksum /deb
[ -n "$sum" ] && [ "$(cat "$out")" = "$sum" ] && ok "node02 reads it through its own mapping ($sum)" || fail "checksum on node02: $(cat "$out" "$err") != $sum"
run ssh node02 -- sudo -n -u nobody fame shelf resize /deb 32M
[ "$rc" -ne 0 ] && grep -q "Permission denied: resize" "$err" && ok "another uid may not resize it: $(tail -1 "$err")" \
        || fail "resize as nobody: rc $rc: $(cat "$out" "$err")"
run shelf rm /deb
[ "$rc" -eq 0 ] && ok "removed from the host (root)" || fail "rm /deb: $(cat "$err")"

step "/lfs in Debian nodes: files, and mmap in a program built on the node"
for n in 1 2; do
        for i in $(seq 60); do      # fame-lfs.service starts beside sshd; wait for its mount
                run ssh node0$n -- 'grep -c " /lfs fuse" /proc/mounts'
                [ "$(cat "$out")" = 1 ] && break
        done
        [ "$(cat "$out")" = 1 ] && ok "/lfs mounted on node0$n (fame-lfs.service)" \
                || fail "/lfs not mounted on node0$n: $(cat "$out" "$err")"
done
run ssh node01 -- 'echo "from $(id -un) on node01" > /lfs/note'
run ssh node02 -- cat /lfs/note
grep -q "on node01" "$out" && ok "node02 reads the user's /lfs/note: $(cat "$out")" || fail "/lfs/note: rc $rc $(cat "$out" "$err")"
run exec --all -- sh -c 'ls -l /proc/$(pidof fame-lfs)/fd | grep -c /dev/vport'
[ "$(grep -c '^node0[12]: 1$' "$out")" -eq 2 ] && ok "fame-lfs.service talks to the Librarian through the node's virtio-serial port" \
        || fail "fame-lfs's port in Debian nodes: $(cat "$out" "$err")"
"$FAME" ssh node01 -- 'cat > lfs-mmap.c' < "$FAME_SOURCE_ROOT/tests/integration/lfs-mmap.c"
run ssh node01 -- 'cc -O2 -o lfs-mmap lfs-mmap.c && ./lfs-mmap write /lfs/mm 9437184 mapped-on-node01 && scp -q lfs-mmap node02:'
[ "$rc" -eq 0 ] || fail "build/run lfs-mmap on node01: $(cat "$out" "$err")"
run ssh node02 -- ./lfs-mmap read /lfs/mm 9437184 16
[ "$(cat "$out")" = "mapped-on-node01" ] && ok "an ordinary program's mmap on node02 sees node01's store" || fail "mmap on node02: $(cat "$out" "$err")"
run ssh node01 -- 'echo secret > /lfs/private && chmod 600 /lfs/private'
run ssh node02 -- sudo -n -u nobody cat /lfs/private
[ "$rc" -ne 0 ] && grep -q "Permission denied" "$err" && ok "another uid on node02 may not read the user's 0600 file" \
        || fail "cat as nobody: rc $rc $(cat "$out" "$err")"
run ssh node02 -- cat /lfs/private
[ "$(cat "$out")" = "secret" ] && ok "the same user on node02 may" || fail "cat as the user on node02: $(cat "$out" "$err")"
run ssh node02 -- rm /lfs/mm /lfs/note /lfs/private
[ "$rc" -eq 0 ] || fail "rm: $(cat "$err")"

step "the network reaches forwarded host services only"
run ssh node01 -- 'exec 3<>/dev/tcp/torms/7777 && head -1 <&3'
[ "$(cat "$out")" = "hello from torms" ] && ok "torms:7777 reaches the host's 127.0.0.1:$sport" || fail "torms:7777: rc $rc: $(cat "$out" "$err")"
run ssh node01 -- "timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/$sport' && echo open || echo closed"
[ "$(cat "$out")" = "closed" ] && ok "the host's loopback is not reachable otherwise" || fail "10.0.2.2:$sport: $(cat "$out" "$err")"
kill $serve_pid 2>/dev/null

step "the cluster verbs: cp, logs, console, kill, start"
printf '#!/bin/sh\necho "script on $(hostname) as $(id -un)"\n' > "$work/script.sh"
chmod 755 "$work/script.sh"
run cp "$work/script.sh" node02:/usr/local/bin/hello-fame
[ "$rc" -eq 0 ] || fail "cp: $(cat "$err")"
run ssh node02 -- hello-fame
[ "$(cat "$out")" = "script on node02 as fame" ] && ok "cp, then run over ssh: $(cat "$out")" || fail "cp + ssh: $(cat "$out" "$err")"
run logs node01
grep -q "fame-setup: node01 set up" "$out" && ok "logs show the node's console" || fail "logs node01 lacks fame-setup's line"
run console node01 < /dev/null
[ "$rc" -eq 0 ] && ok "console connects and leaves on end of input" || fail "console: rc=$rc $(cat "$err")"
run kill node02
[ "$rc" -eq 0 ] && ok "kill node02" || fail "kill: $(cat "$err")"
run ssh node02 -- true
[ "$rc" -ne 0 ] && grep -q "node02 is not running" "$err" && ok "ssh to a stopped node: $(cat "$err")" || fail "ssh to a stopped node: rc $rc $(cat "$err")"
run start node02
[ "$rc" -eq 0 ] && ok "start node02: $(cat "$out")" || fail "start: $(cat "$err")"
run ssh node01 -- ssh node02 cat /etc/machine-id
[ "$rc" -eq 0 ] && [ "$(cat "$out")" = "$(cut -c1-32 "$state/nodes/node02/machine-id")" ] && ok "node02 back, same machine-id" || fail "after start: rc $rc $(cat "$out" "$err")"
run ssh node01 -- cat /etc/machine-id
[ "$(cat "$out")" != "$(cut -c1-32 "$state/nodes/node02/machine-id")" ] && ok "machine-ids differ between nodes" || fail "node01 and node02 share a machine-id"

step "changes inside a node survive down and up"
run ssh node01 -- 'echo kept > ~/mine.txt'
run down
[ "$rc" -eq 0 ] && ok "down" || fail "down: $(cat "$err")"
[ -z "$(qemu_pids)" ] && ok "no QEMU left" || fail "QEMU left after down: $(qemu_pids)"
[ ! -e "$state/switch.pid" ] && ok "switch stopped" || fail "switch still recorded after down"
run up -n 2 --kind debian
[ "$rc" -eq 0 ] || fail "second up: $(cat "$err")"
run ssh node01 -- cat mine.txt
[ "$(cat "$out")" = "kept" ] && ok "~/mine.txt kept" || fail "after down/up: $(cat "$out" "$err")"
run down

for n in node01 node02; do echo "disk used by $n: $(du -k "$state/nodes/$n/disk.qcow2" | cut -f1) KiB"; done

step "fame up --reset gives new disks"
before=$(stat -c %s "$state/nodes/node01/disk.qcow2")
run up -n 2 --kind debian --reset --accel tcg --set qemu=false
after=$(stat -c %s "$state/nodes/node01/disk.qcow2")
[ "$after" -lt "$before" ] && [ "$after" -le $((1024 * 1024)) ] && ok "node01's disk replaced ($before -> $after bytes)" || fail "--reset: disk $before -> $after bytes"

step "the base image was never written"
[ "$(sha256sum "$base" | cut -d' ' -f1)" = "$base_sum" ] && ok "base checksum unchanged" || fail "the base image changed"
finish
