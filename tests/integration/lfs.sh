#!/bin/bash
# /lfs on real nodes (diskless, TCG): fame-lfs mounts the Librarian's shelves in every node;
# plain shell tools and an ordinary mmap program (libfame-mmap.so preloaded) share the bytes
# across nodes; df, ls and fame shelf agree; a killed node's open files do not pin shelves.
. "$(dirname "$0")/lib.sh"
: "${FAME_LFS_MMAP:?}"

step "fame up -n 3: /lfs in every node"
run up -n 3
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up exited $rc"; finish; }
run exec --all -- sh -c 'grep " /lfs " /proc/mounts'
[ "$(grep -c "lfs /lfs fuse.fame" "$out")" -eq 3 ] && ok "/lfs mounted on 3 nodes" || fail "mounts: $(cat "$out" "$err")"

step "echo on node01, cat on node02"
run exec node01 -- sh -c 'echo hello > /lfs/greeting'
[ "$rc" -eq 0 ] || fail "echo > /lfs/greeting: $(cat "$err")"
run exec node02 -- cat /lfs/greeting
[ "$(cat "$out")" = "hello" ] && ok "node02 reads hello" || fail "cat on node02: $(cat "$out" "$err")"

step "write(2) on node01, mmap on node02; mmap store on node02, read(2) on node03"
run cp --all "$FAME_LFS_MMAP" /tmp/lfs-mmap
run exec node01 -- sh -c 'dd if=/dev/zero of=/lfs/data bs=1M count=12 2>/dev/null && printf "from-write" | dd of=/lfs/data bs=1 seek=9437184 conv=notrunc 2>/dev/null'
[ "$rc" -eq 0 ] || fail "dd on node01: $(cat "$err")"
run exec node02 -- /tmp/lfs-mmap read /lfs/data 9437184 10
[ "$(cat "$out")" = "from-write" ] && ok "node02's mapping shows node01's write(2)" || fail "mmap read on node02: $(cat "$out" "$err")"
run exec node02 -- /tmp/lfs-mmap write /lfs/data 10485760 from-mmap
[ "$rc" -eq 0 ] || fail "mmap write on node02: $(cat "$out" "$err")"
run exec node03 -- sh -c 'dd if=/lfs/data bs=1 skip=10485760 count=9 2>/dev/null'
[ "$(cat "$out")" = "from-mmap" ] && ok "node03's read(2) shows node02's store" || fail "read on node03: $(cat "$out" "$err")"
run shelf info /data
off=$(awk '$1 == "1" && $5 ~ /^0x/ {print $5}' "$out")
[ -n "$off" ] && [ "$(tail -c +$((off + 10485760 - 8388608 + 1)) "$state/fam" | head -c 9)" = "from-mmap" ] \
        && ok "the bytes are in the shelf's book in the FAM file ($off)" || fail "FAM file at book 1: $(cat "$out")"

step "caching: another node's changes within the bound (docs/lfs.md, \"Caching\": 1 s)"
# node02's kernel and fame-lfs keep the directory's listing, the entry and its attributes
run exec node02 -- sh -c 'mkdir -p /lfs/c && echo 1 > /lfs/c/f && ls -l /lfs/c > /dev/null && stat -c "%s %a" /lfs/c/f'
[ "$(cat "$out")" = "2 644" ] || fail "node02 caches /lfs/c/f: $(cat "$out" "$err")"
run exec node01 -- sh -c 'echo 12345678 > /lfs/c/f && chmod 600 /lfs/c/f && echo x > /lfs/c/g && mv /lfs/c/g /lfs/c/h'
# node02 looks until it sees all of it, for at most the bound; it says how long it took
seen='s=$(cat /proc/uptime); s=${s%% *}; i=0; while [ $i -lt 100 ]; do
        [ "$(stat -c "%s %a" /lfs/c/f 2>/dev/null)/$(ls /lfs/c | tr "\n" " ")" = "$1" ] && break
        i=$((i + 1)); usleep 10000; done
        e=$(cat /proc/uptime); echo "${e%% *} $s" | awk "{ printf \"%d\\n\", (\$1 - \$2) * 1000 }"
        [ "$(stat -c "%s %a" /lfs/c/f 2>/dev/null)/$(ls /lfs/c | tr "\n" " ")" = "$1" ]'
run exec node02 -- sh -c "$seen" seen "9 600/f h "
[ "$rc" -eq 0 ] && [ "$(cat "$out")" -le 1000 ] && ok "node02 sees node01's write, chmod, create and rename (after $(cat "$out") ms of looking)" \
        || fail "node02 after node01's changes: rc $rc $(cat "$out" "$err")"
run exec node01 -- sh -c 'rm /lfs/c/h'
run exec node02 -- sh -c "$seen" seen "9 600/f "
[ "$rc" -eq 0 ] && [ "$(cat "$out")" -le 1000 ] && ok "node02 sees node01's rm (after $(cat "$out") ms of looking)" \
        || fail "node02 after node01's rm: rc $rc $(cat "$out" "$err")"
run exec node01 -- sh -c 'rm -r /lfs/c'

step "resizing a file another node has open"
run exec node02 -- sh -c 'sleep 600 < /lfs/data > /dev/null 2>&1 & echo $! > /tmp/holder.pid'
run exec node01 -- truncate -s 1M /lfs/data
[ "$rc" -ne 0 ] && grep -qi "too many open files" "$err" && ok "shrinking is refused while node02 has it open (EMFILE)" \
        || fail "shrink while open elsewhere: rc $rc $(cat "$out" "$err")"
run exec node01 -- truncate -s 14M /lfs/data
run exec node02 -- stat -c %s /lfs/data
[ "$(cat "$out")" = $((14 * 1024 * 1024)) ] && ok "growing works, and node02 sees the new size at once" || fail "grow: $(cat "$out" "$err")"
run exec node02 -- /tmp/lfs-mmap read /lfs/data 10485760 9
[ "$(cat "$out")" = "from-mmap" ] && ok "the data stays where it was" || fail "after growing: $(cat "$out" "$err")"
run exec node02 -- sh -c 'kill $(cat /tmp/holder.pid)'
for i in $(seq 50); do      # the kernel releases node02's file after the process is gone
        run exec node01 -- truncate -s 12M /lfs/data
        [ "$rc" -eq 0 ] && break
done
[ "$rc" -eq 0 ] && ok "shrinking works once node02 closed it" || fail "shrink after close: $(cat "$err")"

step "fsx-style random operations on node01 against a model"
run exec node01 -- /tmp/lfs-mmap fsx /lfs/fsx $RANDOM 300
grep -q "^fsx ok" "$out" && ok "$(cat "$out")" || fail "fsx: $(cat "$out" "$err")"

step "cross-node atomics on one /lfs word through ordinary mappings"
run exec --all -- /tmp/lfs-mmap add /lfs/data 4096 100000
run exec node01 -- /tmp/lfs-mmap add /lfs/data 4096 0
[ "$(tail -1 "$out")" = "300000" ] && ok "3 nodes x 100000 adds = 300000" || fail "atomic total: $(cat "$out" "$err")"

step "libfam-atomic's own tests, unmodified, on /lfs"
src=${FAME_LIBFAM_ATOMIC_SRC:-}
if [ -z "$src" ] || [ ! -f "$src/tests/fam_atomic_multi_node_test.c" ]; then
        skip_step "libfam-atomic's own tests: set FAME_LIBFAM_ATOMIC_SRC to a libfam-atomic checkout (FAM/E does not ship them)"
else
        lib="$FAME_BUILD_ROOT/lib"
        json=$(ldd "$lib/libfame.so.0" | awk '/libjson-c/ {print $3}')
        for t in single multi; do
                cc -O2 -o "$work/fam_atomic_${t}_node_test" "$src/tests/fam_atomic_${t}_node_test.c" -I"$FAME_SOURCE_ROOT/include/fame" \
                        -L"$lib" -lfame -pthread -Wl,--disable-new-dtags,-rpath,/tmp/famlib 2> "$work/cc.log" || fail "$t: $(cat "$work/cc.log")"
                run cp --all "$work/fam_atomic_${t}_node_test" "/tmp/fam_atomic_${t}_node_test"
        done
        run exec --all -- mkdir -p /tmp/famlib
        run cp --all "$(readlink -f "$lib/libfame.so.0")" /tmp/famlib/libfame.so.0
        run cp --all "$(readlink -f "$json")" "/tmp/famlib/$(basename "$json")"
        run exec node01 -- sh -c 'cd /tmp && ./fam_atomic_single_node_test'
        [ "$rc" -eq 0 ] && ok "fam_atomic_single_node_test passes on node01" || fail "single node test: rc $rc: $(tail -5 "$out" "$err")"
        # the multi-node test initialises its file when it does not exist: once on node01 alone,
        # then on the 3 nodes at once
        run exec node01 -- sh -c 'cd /tmp && ./fam_atomic_multi_node_test | tr "\r" "\n" | grep -E "^(Iterations|Test completed)"'
        first=$(awk '/^Iterations/ {print $3}' "$out")
        grep -q "^Test completed: $first, $first$" "$out" && ok "multi-node test alone on node01: $first iterations" \
                || fail "multi-node test on node01: $(cat "$out" "$err")"
        run exec --all -- sh -c 'cd /tmp && ./fam_atomic_multi_node_test | tr "\r" "\n" | grep -E "^(Iterations|Test completed)"'
        total=$((first + $(awk '/Iterations/ {s += $4} END {print s}' "$out")))
        printf '#define main fam_test_main\n#include "%s"\n#undef main\n#include <stddef.h>\nint main(void) { printf("%%zu\\n", offsetof(struct data, fetch_add_64)); return 0; }\n' \
                "$src/tests/fam_atomic_multi_node_test.c" > "$work/offset.c"
        cc -o "$work/offset" "$work/offset.c" -I"$FAME_SOURCE_ROOT/include/fame" -L"$lib" -lfame -pthread -Wl,-rpath,"$lib" 2> "$work/cc.log" \
                || fail "offset helper: $(cat "$work/cc.log")"
        run exec node02 -- /tmp/lfs-mmap add /lfs/fam_atomic_mult_node_test.data "$("$work/offset")" 0
        [ "$(cat "$out")" = "$total" ] && ok "3 nodes at once: the 64-bit counter is $total, every iteration of every node" \
                || fail "counter $(cat "$out"), iterations $total ($(cat "$err"))"
        run exec node01 -- rm /lfs/fam_atomic_mult_node_test.data
fi

step "fame-lfs's requests take the node's virtio-serial port, also after the Librarian restarts"
through_port='p=$(pidof fame-lfs); ls -l /proc/$p/fd | grep -q /dev/vport && echo port'
run exec node01 -- sh -c "$through_port"
[ "$(cat "$out")" = port ] && ok "node01's fame-lfs has the port open" || fail "node01's fame-lfs: $(cat "$out" "$err")"
lpid=$(librarian_pids)
tr '\0' '\n' < "/proc/$lpid/cmdline" > "$work/librarian-argv"
mapfile -t largv < "$work/librarian-argv"
pfile=$(sed -n 's/^--port-file=//p' "$work/librarian-argv")
# a handle node02 holds across the restart (fame-lfs reclaims it through the port)
run exec node02 -- sh -c 'sleep 600 < /lfs/data > /dev/null 2>&1 & echo $! > /tmp/holder.pid'
kill -9 "$lpid"
while kill -0 "$lpid" 2> /dev/null; do sleep 0.1; done   # (reaped by init: fame up daemonised it)
rm -f "$pfile"
setsid "${largv[@]}" >> "$state/librarian/log" 2>&1 < /dev/null &
echo $! > "$state/librarian/pid"
for i in $(seq 100); do [ -s "$pfile" ] && break; sleep 0.1; done
[ -s "$pfile" ] || fail "the Librarian did not start again: $(tail -5 "$state/librarian/log")"
run exec node01 -- cat /lfs/greeting
[ "$(cat "$out")" = hello ] && ok "node01 reads /lfs after the restart" || fail "cat after the restart: rc $rc $(cat "$out" "$err")"
run exec node01 -- sh -c "$through_port"
[ "$(cat "$out")" = port ] && ok "still through the port" || fail "node01's fame-lfs after the restart: $(cat "$out" "$err")"
run exec node01 -- truncate -s 1M /lfs/data
[ "$rc" -ne 0 ] && grep -qi "too many open files" "$err" && ok "node02's handle survived the restart: shrinking is refused" \
        || fail "shrink after the restart: rc $rc $(cat "$out" "$err")"
run exec node02 -- sh -c 'kill $(cat /tmp/holder.pid)'

step "df, ls -l and fame shelf agree"
run exec node03 -- ls -l /lfs
grep -Eq "^-rw-r--r-- +1 +root +root +12582912 .* data$" "$out" && ok "ls -l: data 12582912 bytes" || fail "ls -l: $(cat "$out")"
run shelf ls
grep -Eq " 12 MiB +2  data$" "$out" && ok "fame shelf ls: 12 MiB, 2 books" || fail "shelf ls: $(cat "$out")"
run exec node01 -- df -k /lfs
used=$(awk 'NR == 2 {print $3}' "$out")
[ "$used" = $((3 * 8192)) ] && ok "df: 3 books used (greeting, 2 of data)" || fail "df: $(cat "$out")"

step "a node killed with a file open does not keep its shelf"
run exec node02 -- sh -c 'sleep 600 < /lfs/greeting > /dev/null 2>&1 &'
run exec node01 -- rm /lfs/greeting
run kill node02
gone=
for i in $(seq 100); do     # the Librarian notices the node's connection closing
        run exec node01 -- rm -f /lfs/greeting
        run exec node01 -- ls /lfs
        grep -q greeting "$out" || { gone=1; break; }
done
[ -n "$gone" ] && ok "greeting removed once node02 was gone" || fail "greeting still there: $(cat "$out" "$err")"
run down
finish
