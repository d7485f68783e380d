#!/bin/bash
# The Librarian on real nodes: `fame up` starts it and every node reaches it as torms:9093;
# a shelf created on node01 shows the same books on node02 and the host, bytes written through
# node01's shelf mapping are read through node02's and node03's; a node cannot pose as
# another; the database survives down/up; `fame down` stops the Librarian.
. "$(dirname "$0")/lib.sh"

step "fame up -n 3 starts the Librarian"
run up -n 3
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up exited $rc"; finish; }
[ "$(librarian_pids | wc -w)" -eq 1 ] && ok "one fame-librarian running" || fail "fame-librarian processes: $(librarian_pids)"
run status
grep -Eq "^librarian: pid [0-9]+, 127\.0\.0\.1:[0-9]+ for the host, torms:9093 in the nodes" "$out" && ok "status shows the Librarian" \
        || fail "status: $(cat "$out")"
run status --json
grep -Eq '"port": ?[1-9]' "$out" && ok "status --json has the Librarian's port" || fail "status --json: $(cat "$out")"
topo="$state/librarian/topology.json"
[ -f "$topo" ] && [ "$(jq '[.racks[].enclosures[].nodes[]] | length' "$topo")" = 3 ] &&
        [ "$(jq -r '.interleaveGroups[2].mediaControllers[0]' "$topo")" = \
          /MachineVersion/1/Datacenter/pa1/Rack/1/Enclosure/1/EncNum/1/Node/3/MemoryBoard/1/MediaController/1 ] &&
        [ ! -e "$state/librarian/topology.ini" ] \
        && ok "topology.json (TMCF) generated from the FAM, The Machine's coordinates" || fail "topology: $(cat "$topo" 2>&1)"

step "a shelf created on node01 is the same on node02 and on the host"
run exec node01 -- fame shelf create /demo --size 64M
cat "$out" "$err"
[ "$rc" -eq 0 ] && grep -q "created by node 1" "$out" && ok "node01 created /demo" || fail "create on node01: rc=$rc $(cat "$err")"
books1=$(grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+  0x' "$out")
[ "$(echo "$books1" | wc -l)" -eq 8 ] && ok "64M = 8 books" || fail "books: $books1"
run exec node02 -- fame shelf info /demo
books2=$(grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+  0x' "$out")
[ -n "$books1" ] && [ "$books1" = "$books2" ] && ok "node02 sees the same books and FAM offsets" || fail "node02: $(cat "$out" "$err")"
run shelf info /demo
books3=$(grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+  0x' "$out")
[ "$books1" = "$books3" ] && ok "the host sees the same books" || fail "host: $(cat "$out" "$err")"
run exec node03 -- fame shelf ls
grep -Eq "^-rw-r--r-- +1 +64 MiB +8  demo$" "$out" && ok "ls on node03" || fail "ls: $(cat "$out" "$err")"

step "bytes written through node01's mapping are read through node02's and node03's"
run exec node01 -- fame shelf fill /demo 42
sum=$(cat "$out")
[ "$rc" -eq 0 ] && [ -n "$sum" ] || fail "fill: $(cat "$err")"
run exec node02 -- fame shelf checksum /demo
[ "$(cat "$out")" = "$sum" ] && ok "node02 reads node01's bytes ($sum)" || fail "node02: $(cat "$out" "$err") != $sum"
run exec node03 -- fame shelf checksum /demo
[ "$(cat "$out")" = "$sum" ] && ok "node03 reads node01's bytes" || fail "node03: $(cat "$out" "$err")"
run shelf checksum /demo
[ "$(cat "$out")" = "$sum" ] && ok "the host reads them in the FAM file" || fail "host: $(cat "$out" "$err")"

step "a node's connection carries only its own node id"
run exec node02 -- fame shelf info /demo --node 3
[ "$rc" -ne 0 ] && grep -q "belongs to node 2" "$err" && ok "node02 posing as node 3 refused: $(tail -1 "$err")" \
        || fail "node02 as node 3: rc=$rc $(cat "$out" "$err")"

step "who may say what: root speaks for its node with the node's secret, other users through fame-lfs's relay"
run exec node02 -- sh -c 'stat -c %a /sys/firmware/qemu_fw_cfg/by_name/opt/org.fame/secret/raw; stat -c %a /run/fame/librarian.sock'
[ "$(cat "$out" | tr '\n' ' ')" = "400 666 " ] && ok "the node's secret is root's only (fw_cfg 400); the relay socket is 666" \
        || fail "secret/relay modes: rc=$rc $(cat "$out" "$err")"
[ "$(stat -c %a "$state/librarian/secrets")" = 700 ] && ok "STATE/librarian/secrets is 700" \
        || fail "secrets dir: $(ls -ld "$state/librarian/secrets")"
run cp --all "$FAME_LFS_MMAP" /tmp/lfs-mmap
run exec node02 -- /tmp/lfs-mmap as 1000 fame shelf create /by-user --size 8M
[ "$rc" -eq 0 ] && ok "uid 1000 on node02 creates /by-user through the relay" || fail "create as uid 1000: rc=$rc $(cat "$out" "$err")"
run shelf info /by-user --json
grep -Eq '"uid": ?1000' "$out" && ok "/by-user belongs to uid 1000" || fail "owner of /by-user: $(cat "$out" "$err")"
run exec node02 -- /tmp/lfs-mmap as 1000 fame shelf rm /demo
[ "$rc" -ne 0 ] && grep -q "Permission denied\|EACCES\|permission" "$err" && ok "uid 1000 cannot remove root's /demo: $(tail -1 "$err")" \
        || fail "uid 1000 removing /demo: rc=$rc $(cat "$out" "$err")"
run exec node02 -- /tmp/lfs-mmap as 1000 env FAME_LIBRARIAN=10.0.2.100:9093 FAME_LIBRARIAN_SECRET_FILE= fame shelf ls
[ "$rc" -ne 0 ] && grep -q "not authenticated" "$err" && ok "uid 1000 straight to the port (10.0.2.100:9093) is refused: $(tail -1 "$err")" \
        || fail "uid 1000 on torms:9093: rc=$rc $(cat "$out" "$err")"
run exec node02 -- sh -c 'mv /run/fame/librarian.sock /run/fame/hidden.sock && /tmp/lfs-mmap as 1000 fame shelf ls; rc=$?; mv /run/fame/hidden.sock /run/fame/librarian.sock; exit $rc'
[ "$rc" -ne 0 ] && grep -q "not authenticated.*fame-lfs's relay /run/fame/librarian.sock is not there: is /lfs mounted" "$err" \
        && ok "without the relay, uid 1000 is told why it is refused" || fail "uid 1000 without the relay: rc=$rc $(cat "$out" "$err")"
run exec node02 -- /tmp/lfs-mmap as 1000 fame shelf rm /by-user
[ "$rc" -eq 0 ] && ok "uid 1000 removes its own shelf" || fail "rm /by-user as uid 1000: rc=$rc $(cat "$err")"

step "errors come back as one line"
run exec node02 -- fame shelf create /demo
[ "$rc" -ne 0 ] && grep -q "already exists" "$err" && ok "EEXIST: $(tail -1 "$err")" || fail "create twice: $(cat "$err")"
run exec node02 -- fame shelf resize /demo 100G
[ "$rc" -ne 0 ] && grep -q "out of space" "$err" && ok "ENOSPC: $(tail -1 "$err")" || fail "resize 100G: $(cat "$err")"

step "the database survives down/up; down stops the Librarian"
run down
[ "$rc" -eq 0 ] || fail "down: $(cat "$err")"
[ -z "$(librarian_pids)" ] && ok "no fame-librarian after down" || fail "Librarian left: $(librarian_pids)"
run up -n 3
[ "$rc" -eq 0 ] || fail "up again: $(cat "$err")"
run exec node03 -- fame shelf checksum /demo
[ "$(cat "$out")" = "$sum" ] && ok "/demo and its bytes are back after down/up" || fail "after up: $(cat "$out" "$err")"
run exec node01 -- fame shelf rm /demo
[ "$rc" -eq 0 ] && ok "rm /demo" || fail "rm: $(cat "$err")"
run shelf ls
grep -q demo "$out" && fail "demo still listed" || ok "gone"
run down
[ -z "$(librarian_pids)" ] || fail "Librarian left after the last down"
finish
