#!/bin/bash
# The cluster lifecycle on 4 real nodes (TCG): up, slots seen by every node, exact cross-node
# fetch_add, kill/start of one node, down + up keeping FAM byte for byte, `fame up` twice and
# exec on a stopped node refused, a node failing its boot once or twice ($FAME_FAULT_BOOT), no
# QEMU left behind.  Host files in nodes: --add, cp, cp --libs, key share (/share).
. "$(dirname "$0")/lib.sh"
fam="$state/fam"

step "fame up -n 4"
echo "hello from the host" > "$work/hello.txt"
mkdir -p "$work/share"
echo "shared by the host" > "$work/share/note.txt"
run up -n 4 --add "$work/hello.txt:/etc/hello.txt" --set share="$work/share"
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up exited $rc"; finish; }
[ "$(grep -cE '^node0[1-4] .* ready ' "$out")" -eq 4 ] && ok "4 nodes ready" || fail "table does not show 4 ready nodes"
[ "$(qemu_pids | wc -l)" -eq 4 ] && ok "4 QEMU processes" || fail "expected 4 QEMU processes, found $(qemu_pids | wc -l)"

run status --json
grep -Eq '"ready": ?4' "$out" && ok "status --json: 4 ready" || fail "status --json: $(cat "$out")"

step "(a) every node sees every node's slot"
run exec --all -- fame node slots
cat "$out"
for n in 1 2 3 4; do
        for s in 1 2 3 4; do
                grep -Eq "^node0$n: node0$s +$s +up " "$out" || fail "node0$n does not see node0$s up in its slot"
        done
done
run exec --all -- fame info
for n in 1 2 3 4; do grep -Eq "^node0$n: node +node0$n" "$out" || fail "node0$n: fame info does not say node0$n"; done
[ "$(grep -E '^node0[1-4]: uuid' "$out" | awk '{print $3}' | sort -u | wc -l)" -eq 1 ] && ok "one FAM (one uuid) in all nodes" || fail "nodes see different FAMs"
grep -Eq "^node01: source +pci" "$out" && ok "nodes map the ivshmem PCI device" || fail "fame info in a node does not use PCI: $(head -5 "$out")"
grep -Eq "^node03: coordinate +Rack/1/Enclosure/1/Node/3$" "$out" && grep -Eq "^node03: cluster +it-lifecycle \(4 nodes\)" "$out" \
        && ok "identity: cluster, node count and coordinate" || fail "node identity in fame info: $(grep -E '^node03: (cluster|coordinate)' "$out")"

step "the private segment: nodes reach each other by name"
run exec node01 -- ping -c 1 -W 5 node04
[ "$rc" -eq 0 ] && ok "node01 pings node04 (10.11.0.4) through the cluster's switch" || fail "ping node04: rc $rc: $(cat "$out" "$err")"
run exec node03 -- cat /etc/hosts
grep -Eq "^10\.11\.0\.2\s+node02$" "$out" && grep -Eq "^10\.0\.2\.100\s+torms$" "$out" && ok "/etc/hosts lists the nodes and torms" || fail "/etc/hosts: $(cat "$out")"
# no DNS: names come from /etc/hosts alone, and no lookup leaves the node for slirp's resolver
run exec node03 -- sh -c 'cat /etc/nsswitch.conf /etc/resolv.conf'
grep -q "^hosts: files$" "$out" && ! grep -q "^nameserver" "$out" && ok "no name server: hosts from files" || fail "DNS in a node: $(cat "$out")"

step "files into nodes: --add, cp, logs, console"
run exec node03 -- cat /etc/hello.txt
[ "$(cat "$out")" = "hello from the host" ] && ok "--add put a file into the image" || fail "--add: $(cat "$out" "$err")"
run exec node03 cat -n /etc/hello.txt
[ "$rc" -eq 0 ] && [ "$(cat "$out")" = "$(printf '     1\thello from the host')" ] && ok "exec without --: the command's own options go to it" \
        || fail "exec node03 cat -n: rc $rc: $(cat "$out" "$err")"
printf '#!/bin/sh\necho "script on $(hostname)"\n' > "$work/script.sh"
chmod 755 "$work/script.sh"
run cp --all "$work/script.sh" /tmp/script.sh
[ "$rc" -eq 0 ] || fail "cp --all: $(cat "$err")"
run exec --all -- /tmp/script.sh
for n in 1 2 3 4; do grep -q "^node0$n: script on node0$n" "$out" || fail "cp'd script on node0$n: $(cat "$out" "$err")"; done
run cp "$work/hello.txt" node02:/tmp/h
run exec node02 -- cat /tmp/h
[ "$(cat "$out")" = "hello from the host" ] && ok "cp to one node" || fail "cp to node02: $(cat "$out" "$err")"
run cp "$work/hello.txt" node09:/tmp/h
[ "$rc" -ne 0 ] && grep -q "no node09" "$err" && ok "cp to a node that does not exist: $(cat "$err")" || fail "cp node09: $(cat "$err")"
# a program linked with libfame (pkg-config --libs fame) runs after a plain cp: nodes carry
# libfame.so.0 and json-c
cat > "$work/famenodes.c" <<'C'
#include <fame.h>
#include <stdio.h>
int main(void) {
        struct fame *f;
        if (fame_open(NULL, 0, &f) < 0)
                return 1;
        printf("%u nodes\n", fame_get_geometry(f)->node_count);
        fame_close(f);
        return 0;
}
C
if cc -o "$work/famenodes" "$work/famenodes.c" -I"$FAME_SOURCE_ROOT/include/fame" -L"$FAME_BUILD_ROOT/lib" -lfame 2> "$work/cc.err"; then
        run cp "$work/famenodes" node02:/tmp/famenodes
        run exec node02 -- /tmp/famenodes
        [ "$rc" -eq 0 ] && [ "$(cat "$out")" = "4 nodes" ] && ok "a program linked with -lfame runs in a node as built" \
                || fail "-lfame program in node02: rc $rc: $(cat "$out" "$err")"
else
        fail "cannot build a libfame program: $(cat "$work/cc.err")"
fi
# key share: the host directory, read-only at /share in every node
run exec node01 -- cat /share/note.txt
[ "$rc" -eq 0 ] && [ "$(cat "$out")" = "shared by the host" ] && ok "share: node01 reads the host's file at /share" \
        || fail "share: cat /share/note.txt in node01: rc $rc: $(cat "$out" "$err")"
run exec node02 -- touch /share/x
[ "$rc" -ne 0 ] && [ ! -e "$work/share/x" ] && ok "share: /share is read-only" || fail "share: touch /share/x in node02 succeeded"
# cp --libs: a program linked with libsqlite3, which diskless nodes lack, runs after the copy;
# the node's own libc is not replaced
cat > "$work/sqlver.c" <<'C'
#include <sqlite3.h>
#include <stdio.h>
int main(void) {
        printf("sqlite %s\n", sqlite3_libversion());
        return 0;
}
C
if cc -o "$work/sqlver" "$work/sqlver.c" -lsqlite3 2> "$work/cc.err"; then
        run exec node03 -- ls /usr/lib/x86_64-linux-gnu/libsqlite3.so.0
        [ "$rc" -ne 0 ] || fail "cp --libs: node03 already has libsqlite3.so.0; the step proves nothing"
        run cp --libs "$work/sqlver" node03:/tmp/sqlver
        cat "$out" "$err"
        [ "$rc" -eq 0 ] && grep -q "^node03: .*libsqlite3.so.0 -> /usr/lib/x86_64-linux-gnu/libsqlite3.so.0$" "$out" \
                && ! grep -q "libc.so.6" "$out" && ok "cp --libs copied libsqlite3 and not libc" || fail "cp --libs: rc $rc: $(cat "$out" "$err")"
        run exec node03 -- /tmp/sqlver
        [ "$rc" -eq 0 ] && grep -q "^sqlite 3" "$out" && ok "a program needing libsqlite3 runs after cp --libs: $(cat "$out")" \
                || fail "sqlver in node03: rc $rc: $(cat "$out" "$err")"
        run cp --libs --json "$work/sqlver" node03:/tmp/sqlver
        [ "$rc" -eq 0 ] && grep -q '"copied": false' "$out" && ok "cp --libs again: the libraries are there (--json)" \
                || fail "cp --libs --json: rc $rc: $(cat "$out" "$err")"
else
        fail "cannot build a program with -lsqlite3 (libsqlite3-dev): $(cat "$work/cc.err")"
fi
run logs node01
grep -q "fame-node: ready node01" "$out" && ok "logs show the node's console" || fail "logs node01 lacks the ready line"
run console node01 < /dev/null
[ "$rc" -eq 0 ] && ok "console connects and leaves on end of input" || fail "console: rc=$rc $(cat "$err")"

step "(b) 4 nodes x 200000 fetch_add on one FAM word"
word=$(( $("$FAME" fam info "$fam" --json | awk -F': ' '/"books_offset"/ {gsub(",", "", $2); print $2; exit}') ))
run exec --all -- fame node fetch-add "$word" 200000
[ "$rc" -eq 0 ] || fail "fetch-add exited $rc: $(cat "$err")"
total=$(fam_u64 "$fam" "$word")
[ "$total" -eq 800000 ] && ok "fetch_add total $total" || fail "fetch_add total $total, expected 800000"

step "fame logs --follow: keeps printing while the node runs, ends when it stops"
"$FAME" logs --follow node02 > "$work/follow" 2> "$work/follow.err" &
follow=$!
run exec node02 -- sh -c 'echo "follow-marker-$((6 * 7))" > /dev/console'
seen=0
for _ in $(seq 200); do         # polling the file that logs --follow writes
        grep -q "follow-marker-42" "$work/follow" && { seen=1; break; }
        sleep 0.05
done
[ "$seen" = 1 ] && ok "a console line written after logs --follow started is printed" \
        || fail "logs --follow did not print the new console line: $(tail -3 "$work/follow") $(cat "$work/follow.err")"

step "(c) kill node02; the others keep running; start it again"
run kill node02
for _ in $(seq 100); do         # polling: logs --follow notices the node is gone
        kill -0 "$follow" 2> /dev/null || break
        sleep 0.05
done
if kill -0 "$follow" 2> /dev/null; then
        fail "logs --follow still running 5 s after node02 was killed"
        kill "$follow"
else
        wait "$follow" && ok "logs --follow ended when node02 stopped" || fail "logs --follow exited $?: $(cat "$work/follow.err")"
fi
[ "$rc" -eq 0 ] || fail "kill node02: $(cat "$err")"
[ "$(qemu_pids | wc -l)" -eq 3 ] && ok "3 QEMU left" || fail "after kill: $(qemu_pids | wc -l) QEMU"
run exec node02 -- true
[ "$rc" -eq 1 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "node02 is not running" "$err" && ok "exec on a stopped node: $(cat "$err")" \
        || fail "exec on a stopped node: rc=$rc $(cat "$err")"
run exec node01 -- fame node slots
grep -Eq "^node02 +2 +down " "$out" && ok "node01 sees node02 down" || fail "node01 does not see node02 down: $(cat "$out")"
run exec --all -- true
[ "$rc" -ne 0 ] && ok "exec --all reports the stopped node" || fail "exec --all with a stopped node succeeded"
run start node02
[ "$rc" -eq 0 ] || fail "start node02: $(cat "$err")"
run exec node02 -- fame node slots
grep -Eq "^node02 +2 +up +2 " "$out" && ok "node02 rejoined (2 joins)" || fail "node02 slot after restart: $(cat "$out")"
run exec node02 -- fame node fetch-add "$word" 1
[ "$(cat "$out")" = 800001 ] && ok "node02 sees the data (800001)" || fail "node02 read $(cat "$out")"

step "fame node memcpy-bench in a node (it overwrites the start of node01's first book)"
run exec node01 -- fame node memcpy-bench 4M
[ "$rc" -eq 0 ] && grep -Eq "^memcpy 4 MiB: node RAM [1-9][0-9]* MB/s, FAM [1-9][0-9]* MB/s, ratio [0-9]+\.[0-9]{2}$" "$out" \
        && ok "$(cat "$out")" || fail "memcpy-bench: rc $rc: $(cat "$out" "$err")"
run exec node01 -- fame node memcpy-bench 1k
[ "$rc" -ne 0 ] && grep -q "SIZE '1k' is not a size of at least 4K" "$err" && ok "memcpy-bench 1k refused" \
        || fail "memcpy-bench 1k: rc $rc: $(cat "$out" "$err")"

step "(e) fame up twice"
run up
[ "$rc" -ne 0 ] && grep -q "already up" "$err" && [ "$(wc -l < "$err")" -eq 1 ] && ok "second up refused: $(cat "$err")" || fail "second up: rc=$rc $(cat "$err")"
[ "$(qemu_pids | wc -l)" -eq 4 ] || fail "second up changed the QEMU count"

step "(d) down + up keeps FAM byte for byte"
data=$((word + 8 * 1024 * 1024))
run exec node01 -- fame node fill "$data" 1M 7
sum=$(cat "$out")
[ "$rc" -eq 0 ] && [ -n "$sum" ] && ok "node01 filled 1 MiB: $sum" || fail "node fill: rc $rc: $(cat "$out" "$err")"
run down
[ "$rc" -eq 0 ] || fail "down: $(cat "$err")"
[ -z "$(qemu_pids)" ] && ok "no QEMU after down" || fail "QEMU left after down: $(qemu_pids)"
book_area=$word      # node01 owns the first book of the book area
h1=$(tail -c +$((book_area + 1)) "$fam" | sha256sum)
[ "$(FAME_PATH="$fam" FAME_NODE= "$FAME" node checksum "$data" 1M)" = "$sum" ] && ok "host reads what node01 wrote" || fail "host checksum differs"
run up
[ "$rc" -eq 0 ] || fail "second up: $(cat "$err")"
run exec node03 -- fame node checksum "$data" 1M
[ "$(cat "$out")" = "$sum" ] && ok "node03 reads node01's data after down/up" || fail "node03 checksum $(cat "$out") != $sum"
run down
h2=$(tail -c +$((book_area + 1)) "$fam" | sha256sum)
[ "$h1" = "$h2" ] && ok "book area byte for byte identical across down/up" || fail "book area changed across down/up"
[ -z "$(qemu_pids)" ] || fail "QEMU left after the last down"

step "(f) a node that fails its first boot is started again; the cluster comes up"
FAME_FAULT_BOOT=node02 run up -n 2
[ "$rc" -eq 0 ] && grep -q "^fame: warning: node02 failed to boot: QEMU exited while booting" "$err" \
        && grep -q "Kernel panic - not syncing" "$err" && grep -q "starting node02 again" "$err" \
        && [ "$(grep -cE '^node0[12] .* ready ' "$out")" -eq 2 ] \
        && ok "node02 failed once, with its panic line, and is ready after its second boot" \
        || fail "up with node02 failing once: rc $rc: $(cat "$out" "$err")"
run down

step "(g) a node that fails twice stays down; the others stay up; fame start brings it back"
FAME_FAULT_BOOT=node02:2 run up -n 2
[ "$rc" -eq 1 ] && grep -q "^fame: node02 is down after 2 boots: QEMU exited while booting" "$err" \
        && grep -q "fame start node02" "$err" && grep -qE '^node01 .* ready ' "$out" && grep -qE '^node02 .* down ' "$out" \
        && grep -q "1 of 2 nodes ready" "$out" && [ "$(qemu_pids | wc -l)" -eq 1 ] \
        && ok "up exits 1 with node02 down and node01 ready" || fail "up with node02 failing twice: rc $rc: $(cat "$out" "$err")"
run up --json -n 2
[ "$rc" -ne 0 ] && grep -q "already up" "$err" || fail "up while partly up: rc $rc: $(cat "$err")"
run start node02
[ "$rc" -eq 0 ] && [ "$(qemu_pids | wc -l)" -eq 2 ] && ok "fame start node02: $(cat "$out")" || fail "start node02: rc $rc: $(cat "$out" "$err")"
run exec node02 -- hostname
[ "$(cat "$out")" = node02 ] && ok "node02 answers" || fail "exec node02: $(cat "$out" "$err")"
run down
[ -z "$(qemu_pids)" ] || fail "QEMU left after the last down"
finish
