#!/bin/bash
# The coherence and crash checker (docs/check.md) on real nodes: `fame up --check`, FAM/E's own
# tools and correct programs report nothing, every seeded bug (tests/check/seeded.c) is found
# with its kind, nodes, shelf and offset, `fame kill --crash` and `fame down --crash` leave in
# FAM only what was written back, and a mixed cluster with an aarch64 node does the same.
. "$(dirname "$0")/lib.sh"
fam="$state/fam"
: "${FAME_CHECK_SEEDED:?}"
seeded_arm="${FAME_BUILD_ROOT}-aarch64/tests/node/check-seeded"

findings() { "$FAME" check report --json | jq -c '.findings'; }
nfindings() { "$FAME" check report --json | jq '.findings | length'; }
# has KIND A B SHELF OFFSET: a finding of that kind between those nodes in the 64-byte line at
# that shelf offset (a finding gives the offset of the access that found it)
has() {
        "$FAME" check report --json | jq -e --arg k "$1" --argjson a "$2" --argjson b "$3" --arg s "$4" --argjson o "$5" \
                '[.findings[] | select(.kind == $k and .a.node == $a and .b.node == $b and .shelf == $s and (.shelf_offset / 64 | floor) * 64 == $o)] | length > 0' > /dev/null
}
# only SHELF KIND...: every finding on SHELF is of one of the kinds
only() {
        local s=$1; shift
        "$FAME" check report --json | jq -e --arg s "$s" --args '[.findings[] | select(.shelf == $s) | .kind] - $ARGS.positional | length == 0' "$@" > /dev/null
}
e() { run exec "$@"; [ "$rc" -eq 0 ] || fail "exec $*: rc $rc: $(cat "$err")"; }

step "fame up -n 3 --check"
run up -n 3 --check
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up --check exited $rc"; finish; }
[ "$(grep -cE '^node0[1-3] .* ready ' "$out")" -eq 3 ] && ok "3 nodes ready" || fail "table does not show 3 ready nodes"
[ "$(pids_matching 'fame-check.so,node=' | wc -l)" -eq 3 ] && ok "every QEMU loads the checker" || fail "QEMUs with the plugin: $(pids_matching 'fame-check.so' | wc -l)"
run status --json
[ "$(jq -r '.check' "$out")" = coherence ] && ok "status --json: check coherence" || fail "status: $(cat "$out")"
[ -f "$state/check.log" ] && [ ! -s "$state/check.log" ] && ok "check.log starts empty" || fail "check.log: $(ls -l "$state/check.log" 2>&1)"

step "FAM/E's own tools report nothing"
e node01 -- fame shelf create /tools --size 16M
e node01 -- fame shelf fill /tools 7
sum=$(cat "$out")
e node02 -- fame shelf checksum /tools
[ "$(cat "$out")" = "$sum" ] && ok "node02 reads node01's fill" || fail "checksum $(cat "$out"), fill $sum"
e node03 -- fame shelf checksum /tools
e node02 -- fame shelf fill /tools 8
sum=$(cat "$out")
e node03 -- fame shelf checksum /tools
[ "$(cat "$out")" = "$sum" ] && ok "node03 reads node02's fill after caching node01's" || fail "checksum $(cat "$out"), fill $sum"
run shelf fill /tools 9
sum=$(tail -1 "$out")
e node01 -- fame shelf checksum /tools
[ "$(cat "$out")" = "$sum" ] && ok "node01 reads the host's fill" || fail "checksum $(cat "$out"), host fill $sum"
e node01 -- sh -c 'echo hello > /lfs/greeting; dd if=/dev/urandom of=/lfs/data bs=64k count=32 2>/dev/null; md5sum < /lfs/data'
sum=$(cat "$out")
e node02 -- sh -c 'cat /lfs/greeting; md5sum < /lfs/data'
[ "$(tr '\n' ' ' < "$out")" = "hello $sum " ] && ok "LFS write on node01, read on node02" || fail "read $(cat "$out")"
e node03 -- sh -c 'echo again > /lfs/greeting'
e node02 -- cat /lfs/greeting
[ "$(cat "$out")" = again ] && ok "LFS rewrite seen by a node that read before" || fail "read $(cat "$out")"
e --all -- fame node slots
e --all -- fame info
exact_fetch_add 2000 6000
run exec node01 -- rm /lfs/greeting /lfs/data
run shelf rm /tools
[ "$(nfindings)" = 0 ] && ok "no findings from fame's tools, LFS, slots and fabric atomics" || fail "findings: $(findings)"

step "correct programs report nothing"
run cp --all "$FAME_CHECK_SEEDED" /tmp/seeded
e node01 -- /tmp/seeded producer /lfs/ok-producer --correct
e node02 -- /tmp/seeded consumer /lfs/ok-producer --correct
grep -q "flag 1 message 'a message from the producer" "$out" && ok "consumer got the message" || fail "consumer: $(cat "$out")"
e node02 -- /tmp/seeded consumer /lfs/ok-invalidate --correct
e node01 -- /tmp/seeded producer /lfs/ok-invalidate --correct
e node02 -- /tmp/seeded consumer /lfs/ok-invalidate --correct
e node01 -- /tmp/seeded half /lfs/ok-line 0 --correct
e node02 -- /tmp/seeded half /lfs/ok-line 1 --correct
e node01 -- /tmp/seeded counter /lfs/ok-counter 100 --correct
e node02 -- /tmp/seeded counter /lfs/ok-counter 100 --correct
e node01 -- /tmp/seeded counter /lfs/ok-counter 100 --correct
[ "$(cat "$out")" = 300 ] && ok "counter 300" || fail "counter $(cat "$out")"
e node01 -- /tmp/seeded commit /lfs/ok-commit 1 --correct
e node01 -- /tmp/seeded commit /lfs/ok-commit 2 --correct
[ "$(nfindings)" = 0 ] && ok "the correct versions report nothing" || fail "findings: $(findings)"

step "seeded bugs are found"
e node01 -- /tmp/seeded producer /lfs/bug-writeback
e node02 -- /tmp/seeded consumer /lfs/bug-writeback --correct
has unflushed-read 1 2 /bug-writeback 64 && has unflushed-read 1 2 /bug-writeback 256 \
        && ok "producer without writeback: read of unflushed data, node01 → node02, /bug-writeback + 0x40 and + 0x100" \
        || fail "no unflushed-read at /bug-writeback: $(findings)"
e node02 -- /tmp/seeded consumer /lfs/bug-invalidate --correct
e node01 -- /tmp/seeded producer /lfs/bug-invalidate --correct
e node02 -- /tmp/seeded consumer /lfs/bug-invalidate
has stale-read 1 2 /bug-invalidate 256 && ok "consumer without invalidate: stale read, node01 → node02, /bug-invalidate + 0x100" \
        || fail "no stale-read at /bug-invalidate: $(findings)"
e node01 -- /tmp/seeded half /lfs/bug-line 0
e node02 -- /tmp/seeded half /lfs/bug-line 1
has conflicting-writes 1 2 /bug-line 512 && ok "two nodes writing one line: conflicting unflushed writes at /bug-line + 0x200" \
        || fail "no conflicting-writes at /bug-line: $(findings)"
e node01 -- /tmp/seeded counter /lfs/bug-counter 100
e node02 -- /tmp/seeded counter /lfs/bug-counter 100
e node01 -- /tmp/seeded counter /lfs/bug-counter 100
"$FAME" check report --json | jq -e '[.findings[] | select(.kind == "plain-atomic" and .b.node == 1 and .b.store == false and .shelf == "/bug-counter" and .shelf_offset == 768)] | length > 0' > /dev/null \
        && ok "plain read of an atomic counter: plain access to an atomic word, node01, /bug-counter + 0x300" \
        || fail "no plain-atomic at /bug-counter: $(findings)"
for s in /bug-writeback:unflushed-read /bug-invalidate:stale-read /bug-line:conflicting-writes /bug-counter:plain-atomic; do
        only "${s%%:*}" "${s#*:}" && ok "${s%%:*}: nothing but ${s#*:}" || fail "${s%%:*}: other findings: $(findings)"
done
off=$("$FAME" check report --json | jq '[.findings[] | select(.shelf == "/bug-line")][0].fam_offset')
book=$("$FAME" shelf info /bug-line --json | jq '.books[0].fam_offset')
[ $((off / 64 * 64)) -eq $((book + 512)) ] && ok "FAM offset $off is in the line at the shelf's book + 0x200" || fail "FAM offset $off, book at $book"
run check report
grep -q "read of unflushed data" "$out" && grep -q "/bug-writeback + 0x40" "$out" && ok "the report in words" || fail "report: $(cat "$out")"
run check report --node 3
[ "$rc" -eq 0 ] && ! grep -q node02 "$out" && ok "report --node 3: nothing of node02" || fail "report --node 3: $(cat "$out")"
grep -q "read of unflushed data" "$state/check.log" && ok "findings stream to check.log" || fail "check.log: $(cat "$state/check.log")"
run status --json
[ "$(jq '[.nodes[] | .check_findings] | .[0] > 0 and .[1] > 0' "$out")" = true ] && ok "status counts findings per node" \
        || fail "status: $(jq -c '.nodes' "$out")"
# the management view (docs/lmp.md) shows the same findings
url=$(jq -r .librarian.lmp_url "$out")
curl -s "${url}api/v1/check" > "$work/check.json"
[ "$(jq '.enabled and (.findings | length) > 0' "$work/check.json")" = true ] &&
        [ "$(jq '.findings | length' "$work/check.json")" = "$(nfindings)" ] &&
        [ "$(curl -s "${url}api/v1/summary" | jq .check.findings)" = "$(nfindings)" ] &&
        ok "/api/v1/check and the summary show the $(nfindings) findings" || fail "/api/v1/check: $(cat "$work/check.json")"

step "a libpmem program, unmodified: its flushes are seen through libfame-pmem.so"
if [ -z "${FAME_CHECK_SEEDED_PMEM:-}" ]; then
        fail "FAME_CHECK_SEEDED_PMEM is not set: libpmem-dev is missing (scripts/install-deps installs it)"
else
        # diskless nodes carry no libpmem: the program's libraries go along with it
        run exec --all -- mkdir -p /tmp/pmemlib
        for lib in $(ldd "$FAME_CHECK_SEEDED_PMEM" | awk '$3 ~ /^\// && $1 !~ /^(libc\.so|ld-linux)/ {print $3}'); do
                run cp --all "$lib" "/tmp/pmemlib/$(basename "$lib")"
        done
        run cp --all "$FAME_CHECK_SEEDED_PMEM" /tmp/seeded-pmem
        pm() { e "$1" -- env LD_LIBRARY_PATH=/tmp/pmemlib /tmp/seeded-pmem "${@:2}"; }
        before=$(nfindings)
        pm node01 producer /lfs/pmem-ok --correct
        pm node02 consumer /lfs/pmem-ok --correct
        grep -q "flag 1" "$out" && ok "the libpmem consumer got the message" || fail "consumer: $(cat "$out")"
        [ "$(nfindings)" = "$before" ] && ok "pmem_persist is seen: no findings" || fail "findings: $(findings)"
        pm node01 producer /lfs/pmem-bug
        pm node02 consumer /lfs/pmem-bug --correct
        has unflushed-read 1 2 /pmem-bug 64 && ok "a libpmem producer without pmem_persist: read of unflushed data" \
                || fail "no unflushed-read at /pmem-bug: $(findings)"
fi

step "fame kill --crash: a node's power loss"
e node01 -- /tmp/seeded commit /lfs/bug-commit 1 --correct
e node01 -- /tmp/seeded commit /lfs/bug-commit 2
e node01 -- /tmp/seeded commit /lfs/ok-commit 3 --correct
run kill --crash node01
[ "$rc" -eq 0 ] && ok "kill --crash node01: $(cat "$out")" || fail "kill --crash: rc $rc $(cat "$err")"
e node02 -- /tmp/seeded recover /lfs/bug-commit
[ "$(cat "$out")" = 1 ] && ok "the unflushed commit record is lost: node02 finds record 1" || fail "recovered $(cat "$out"), expected 1"
e node02 -- /tmp/seeded recover /lfs/ok-commit
[ "$(cat "$out")" = 3 ] && ok "the written-back commit record survives: 3" || fail "recovered $(cat "$out"), expected 3"
run start node01
[ "$rc" -eq 0 ] && ok "node01 back" || fail "start node01: $(cat "$err")"

step "libfam-atomic's multi-node test, unmodified, reports nothing"
src=${FAME_LIBFAM_ATOMIC_SRC:-}
if [ -z "$src" ] || [ ! -f "$src/tests/fam_atomic_multi_node_test.c" ]; then
        skip_step "libfam-atomic's multi-node test under the checker: set FAME_LIBFAM_ATOMIC_SRC to a libfam-atomic checkout (FAM/E does not ship it)"
else
        before=$(nfindings)
        cc -O2 -o "$work/multi" "$src/tests/fam_atomic_multi_node_test.c" -I"$FAME_SOURCE_ROOT/include/fame" \
                "$FAME_BUILD_ROOT/lib/libfame.a" -pthread 2> "$work/cc.log" || fail "cc: $(cat "$work/cc.log")"
        run cp --all "$work/multi" /tmp/multi
        e --all -- sh -c 'cd /tmp && ./multi | tr "\r" "\n" | grep -E "^Test completed"'
        [ "$(grep -c 'Test completed' "$out")" -eq 3 ] && ok "the test completed on 3 nodes" || fail "multi: $(cat "$out")"
        [ "$(nfindings)" = "$before" ] && ok "no findings from libfam-atomic's multi-node test" || fail "findings: $(findings)"
fi

step "fame down --crash: the whole Machine loses power"
e node02 -- /tmp/seeded commit /lfs/down-commit 5 --correct
e node02 -- /tmp/seeded commit /lfs/down-commit 6
book=$("$FAME" shelf info /down-commit --json | jq '.books[0].fam_offset')
run down --crash
[ "$rc" -eq 0 ] && ok "down --crash" || fail "down --crash: $(cat "$err")"
[ "$(fam_u64 "$fam" $((book + 0x408)))" = 5 ] && ok "the FAM file holds the written-back record 5" \
        || fail "record $(fam_u64 "$fam" $((book + 0x408)))"
[ -z "$(qemu_pids)" ] && ok "no QEMU left" || fail "QEMUs left: $(qemu_pids)"

step "a mixed cluster: an aarch64 node under the checker"
if [ ! -x "$seeded_arm" ]; then
        fail "$seeded_arm is missing (make build sets up the aarch64 cross build)"
else
        run up -n 2 --check --set node02.arch=aarch64
        [ "$rc" -eq 0 ] && ok "node01 x86_64, node02 aarch64 up" || { fail "up: $(cat "$err")"; finish; }
        [ "$(nfindings)" = 0 ] && ok "fame up --check starts with no findings" || fail "findings after up: $(findings)"
        run cp "$FAME_CHECK_SEEDED" node01:/tmp/seeded
        run cp "$seeded_arm" node02:/tmp/seeded
        e node02 -- /tmp/seeded producer /lfs/arm-ok --correct
        e node01 -- /tmp/seeded consumer /lfs/arm-ok --correct
        e node01 -- /tmp/seeded counter /lfs/arm-ctr 50 --correct
        e node02 -- /tmp/seeded counter /lfs/arm-ctr 50 --correct
        [ "$(cat "$out")" = 100 ] && ok "counter 100 across architectures" || fail "counter $(cat "$out")"
        [ "$(nfindings)" = 0 ] && ok "correct programs across architectures report nothing" || fail "findings: $(findings)"
        e node02 -- /tmp/seeded producer /lfs/arm-bug
        e node01 -- /tmp/seeded consumer /lfs/arm-bug --correct
        has unflushed-read 2 1 /arm-bug 64 && ok "aarch64 producer without dc cvac: read of unflushed data, node02 → node01" \
                || fail "no unflushed-read at /arm-bug: $(findings)"
        e node01 -- /tmp/seeded consumer /lfs/arm-stale --correct
        e node02 -- /tmp/seeded consumer /lfs/arm-stale --correct
        e node01 -- /tmp/seeded producer /lfs/arm-stale --correct
        e node02 -- /tmp/seeded consumer /lfs/arm-stale
        has stale-read 1 2 /arm-stale 256 && ok "aarch64 consumer without dc civac: stale read, node01 → node02" \
                || fail "no stale-read at /arm-stale: $(findings)"
        e node02 -- /tmp/seeded commit /lfs/arm-commit 1 --correct
        e node02 -- /tmp/seeded commit /lfs/arm-commit 2
        run kill --crash node02
        e node01 -- /tmp/seeded recover /lfs/arm-commit
        [ "$(cat "$out")" = 1 ] && ok "aarch64 node's power loss: record 1" || fail "recovered $(cat "$out")"
        run down
fi
finish
