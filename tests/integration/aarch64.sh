#!/bin/bash
# A mixed cluster on one FAM: 2 aarch64 nodes (qemu-system-aarch64 -M virt, Debian's arm64
# kernel, FAM/E's cross-built node programs) and 1 x86_64 node.  Every node's slot is read by
# every node, one FAM (one uuid) seen through PCI by all, data written by one architecture read
# by the other (through /lfs and through fame_shelf_map), exact cross-architecture fetch_add,
# kill/start of an aarch64 node, and nothing left running after `fame down`.
. "$(dirname "$0")/lib.sh"
fam="$state/fam"

step "fame up -n 3 --arch aarch64 --set node03.arch=x86_64"
run up -n 3 --arch aarch64 --set node03.arch=x86_64
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up exited $rc"; finish; }
[ "$(grep -cE '^node0[1-3] .* ready ' "$out")" -eq 3 ] && ok "3 nodes ready" || fail "table does not show 3 ready nodes"
[ "$(qemu_pids | wc -l)" -eq 3 ] && ok "3 QEMU processes" || fail "QEMU processes: $(qemu_pids | wc -l)"

run exec --all -- uname -m
[ "$(tr '\n' ' ' < "$out")" = "node01: aarch64 node02: aarch64 node03: x86_64 " ] \
        && ok "architectures: $(tr '\n' ' ' < "$out")" || fail "uname -m: $(cat "$out" "$err")"

step "one FAM, every node's slot read by every node"
run exec --all -- fame info
[ "$(grep -E '^node0[1-3]: uuid' "$out" | awk '{print $3}' | sort -u | wc -l)" -eq 1 ] && ok "one FAM (one uuid) in all nodes" || fail "nodes see different FAMs: $(grep uuid "$out")"
[ "$(grep -cE '^node0[1-3]: source +pci ' "$out")" -eq 3 ] && ok "every node maps the ivshmem PCI device" || fail "sources: $(grep source "$out")"
grep -Eq '^node01: persist +dc cvac' "$out" && ok "aarch64 persists with dc cvac" || fail "node01 persist: $(grep persist "$out")"
run exec --all -- fame node slots
for n in 1 2 3; do for s in 1 2 3; do
        grep -Eq "^node0$n: node0$s +$s +up " "$out" || fail "node0$n does not see node0$s up in its slot"
done; done

step "data across architectures"
run exec node01 -- sh -c 'echo written-on-aarch64 > /lfs/from-arm'
run exec node03 -- cat /lfs/from-arm
[ "$(cat "$out")" = written-on-aarch64 ] && ok "x86_64 reads what aarch64 wrote (/lfs)" || fail "node03 read '$(cat "$out" "$err")'"
run exec node03 -- sh -c 'echo written-on-x86_64 > /lfs/from-x86'
run exec node02 -- cat /lfs/from-x86
[ "$(cat "$out")" = written-on-x86_64 ] && ok "aarch64 reads what x86_64 wrote (/lfs)" || fail "node02 read '$(cat "$out" "$err")'"
run exec node02 -- fame shelf create /mixed --size 16M
run exec node02 -- fame shelf fill /mixed 7
sum_arm=$(tail -1 "$out")
run exec node03 -- fame shelf checksum /mixed
sum_x86=$(tail -1 "$out")
[ -n "$sum_arm" ] && [ "$sum_arm" = "$sum_x86" ] && ok "16 MiB mapped and filled on aarch64, same checksum on x86_64 ($sum_x86)" \
        || fail "checksums: aarch64 '$sum_arm', x86_64 '$sum_x86' $(cat "$err")"

step "a program cross-built with -lfame runs in an aarch64 node as built"
printf '#include <fame.h>\n#include <stdio.h>\nint main(void) { struct fame *f; if (fame_open(NULL, 0, &f) < 0) return 1;\n  printf("%%u nodes\\n", fame_get_geometry(f)->node_count); return 0; }\n' > "$work/famenodes.c"
if aarch64-linux-gnu-gcc -o "$work/famenodes" "$work/famenodes.c" -I"$FAME_SOURCE_ROOT/include/fame" \
        -L"${FAME_BUILD_ROOT}-aarch64/lib" -lfame 2> "$work/cc.err"; then
        run cp "$work/famenodes" node01:/tmp/famenodes
        run exec node01 -- /tmp/famenodes
        [ "$rc" -eq 0 ] && [ "$(cat "$out")" = "3 nodes" ] && ok "libfame.so.0 and json-c are in aarch64 nodes" \
                || fail "-lfame program in node01: rc $rc: $(cat "$out" "$err")"
else
        fail "cannot cross-build a libfame program: $(cat "$work/cc.err")"
fi

step "exact fetch_add across architectures: 3 nodes x 200000"
exact_fetch_add 200000 600000

step "kill and start an aarch64 node"
run kill node02
[ "$rc" -eq 0 ] && [ "$(qemu_pids | wc -l)" -eq 2 ] && ok "node02 stopped, 2 QEMU left" || fail "kill node02: rc $rc $(cat "$err")"
run start node02
[ "$rc" -eq 0 ] && grep -q "node02 ready" "$out" && ok "$(cat "$out")" || fail "start node02: $(cat "$out" "$err")"
run exec node02 -- cat /lfs/from-x86
[ "$(cat "$out")" = written-on-x86_64 ] && ok "the restarted node02 sees the shelves" || fail "after start: $(cat "$out" "$err")"

step "fame down"
run down
[ "$rc" -eq 0 ] || fail "down: $(cat "$err")"
[ -z "$(qemu_pids)" ] && ok "no QEMU left" || fail "QEMU left: $(qemu_pids)"

finish
