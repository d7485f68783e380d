#!/bin/bash
# Bad input to `fame up`: one clear error line each, exit status non-zero, and no QEMU left.
. "$(dirname "$0")/lib.sh"
fam="$state/fam"

expect_error() {        # expect_error WHAT PATTERN fame-args...
        local what=$1 pattern=$2
        shift 2
        run "$@"
        if [ "$rc" -eq 0 ]; then
                fail "$what: fame $* succeeded"
        elif [ "$(wc -l < "$err")" -ne 1 ]; then
                fail "$what: expected one error line, got: $(cat "$err")"
        elif ! grep -q -- "$pattern" "$err"; then
                fail "$what: '$(cat "$err")' does not mention '$pattern'"
        else
                ok "$what: $(cat "$err")"
        fi
        [ -z "$(qemu_pids)" ] || fail "$what: QEMU left running: $(qemu_pids)"
}

mkdir -p "$XDG_CONFIG_HOME/fame"
printf '[cluster]\nnodes = 2\nmemory = lots\n' > "$work/bad.conf"
expect_error "bad config value" "bad.conf:3:" up --config "$work/bad.conf"
printf '[cluster]\ncolour = blue\n' > "$work/bad2.conf"
expect_error "unknown config key" "bad2.conf:2:" up --config "$work/bad2.conf"
printf '[cluster]\nnodes = 3\n' > "$XDG_CONFIG_HOME/fame/$cluster.conf"
printf '[cluster]\nnodes = 300\n' > "$XDG_CONFIG_HOME/fame/$cluster.conf"
expect_error "default config file is read" "$cluster.conf:2:" up
rm "$XDG_CONFIG_HOME/fame/$cluster.conf"

expect_error "missing kernel" "/nonexistent/vmlinuz" up --set kernel=/nonexistent/vmlinuz
expect_error "FAM size not a power of two" "power of two" up --set fam_size=1000M
expect_error "FAM size too small" "too small" up --set fam_size=16M

mkdir -p "$state"
[ ! -e "$fam" ] && ok "failed 'fame up' runs created no FAM file" || fail "a failed 'fame up' left $fam behind"
truncate -s 100M "$fam"
expect_error "FAM file without a header" "no FAM header" up
"$FAME" fam create "$fam" --size 64M --book-size 2M --nodes 2 --force > /dev/null
expect_error "FAM made for fewer nodes" "made for 2 nodes, but nodes = 4; a FAM does not grow in place" up -n 4
expect_error "FAM smaller than --fam-size" "holds 64 MiB, and fam_size = 128M asks for more; .*'fame up --fam-size 128M' again" \
        up -n 2 --fam-size 128M
truncate -s 67108865 "$fam"
expect_error "FAM file not a power of two" "header says 64M" up -n 2
rm -f "$fam"

expect_error "bad node count" "nodes" up -n 0

# Errors found while nodes start: every QEMU and the Librarian this `fame up` started are
# stopped again, and the error names the node and what went wrong.
nothing_left() {        # nothing_left WHAT
        [ -z "$(qemu_pids)" ] && [ -z "$(librarian_pids)" ] && ok "$1: no QEMU and no Librarian left" \
                || fail "$1: left running: QEMU $(qemu_pids) Librarian $(librarian_pids)"
}
step "ready_timeout passes"
run up -n 2 --set ready_timeout=1
# each node fails twice (its one retry included), and with no node up, up fails as a whole
[ "$rc" -ne 0 ] && grep -Eq "^fame: node0[12] is down after 2 boots: not ready within 1 s: it did not join the FAM; its console's last lines:" "$err" \
        && grep -q "No node of cluster '$cluster' booted" "$err" \
        && ok "$(grep "is down after" "$err" | head -n 1)" || fail "up with ready_timeout=1: rc $rc: $(cat "$err")"
nothing_left "ready_timeout"

step "a QEMU that maps the FAM privately"
# a QEMU as if it ignored share=on: the FAM file is mapped copy-on-write, nodes would not see
# each other's stores
cat > "$work/qemu-private" << 'EOS'
#!/bin/bash
args=()
for a in "$@"; do args+=("${a//share=on/share=off}"); done
exec qemu-system-x86_64 "${args[@]}"
EOS
chmod 755 "$work/qemu-private"
run up -n 2 --set qemu="$work/qemu-private"
[ "$rc" -ne 0 ] && grep -q "^fame: node01: QEMU maps the FAM privately (share=off): nodes would not see each other's stores" "$err" \
        && ok "$(grep "privately" "$err")" || fail "up with a private FAM mapping: rc $rc: $(cat "$err")"
nothing_left "private FAM"
run exec node01 -- true
[ "$rc" -ne 0 ] && grep -q "never been started\|not running" "$err" && ok "exec before up: $(cat "$err")" || fail "exec before up: rc=$rc $(cat "$err")"
finish
