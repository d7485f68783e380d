#!/bin/bash
# The libvirt backend against a real libvirtd that this test starts in a sandbox of its own
# (libvirtd-sandbox.sh): 2 nodes up as libvirt domains, virsh sees them, one FAM shared both
# ways, exact cross-node fetch_add (multi-threaded TCG under libvirt), the Librarian and /lfs
# through the relays, kill/start/console/status, `fame down` leaves no domain and no QEMU,
# `fame libvirt export` XML that libvirt accepts, and clear errors for a stopped libvirtd and for
# libvirtd's default seccomp sandbox.
. "$(dirname "$0")/lib.sh"
fam="$state/fam"
sandbox="$(dirname "$0")/libvirtd-sandbox.sh"
lv="$work/lv"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: the test's libvirtd needs root (a private mount namespace)"; exit 77; }
command -v libvirtd > /dev/null && command -v virsh > /dev/null \
        || { fail "libvirtd or virsh missing: run scripts/install-deps"; finish; }

# The daemons first: cleanup removes the test's directory, and with it their pid files.
stop_sandbox() {
        "$FAME" down > /dev/null 2>&1
        "$sandbox" stop "$lv" 2> /dev/null      # already stopped when the test ran to its end
        cleanup
}
trap stop_sandbox EXIT

step "a libvirtd of the test's own"
uri=$("$sandbox" start "$lv") || { fail "libvirtd did not start: $(tail -5 "$lv/daemon.log")"; finish; }
ok "libvirtd at $uri"
export FAME_CONFIG="$work/fame.conf"
printf '[cluster]\nbackend = libvirt\nlibvirt_uri = %s\n' "$uri" > "$FAME_CONFIG"
vsh() { virsh -q -c "$uri" "$@"; }

step "fame up -n 2 --backend libvirt"
run up -n 2 --backend libvirt
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up exited $rc"; finish; }
[ "$(grep -cE '^node0[12] .* ready ' "$out")" -eq 2 ] && ok "2 nodes ready" || fail "table does not show 2 ready nodes"
doms=$(vsh list --name | sort | tr '\n' ' ')
[ "$doms" = "fame-$cluster-node01 fame-$cluster-node02 " ] && ok "virsh list: $doms" || fail "virsh list shows '$doms'"
[ -z "$(vsh list --name --persistent --all)" ] && ok "the domains are transient" || fail "persistent domains: $(vsh list --name --persistent --all)"
[ "$(qemu_pids | wc -l)" -eq 2 ] && ok "2 QEMU processes" || fail "QEMU processes: $(qemu_pids | wc -l)"
run status --json
grep -Eq '"backend": ?"libvirt"' "$out" && grep -Eq '"ready": ?2' "$out" && grep -q "\"domain\": \"fame-$cluster-node02\"" "$out" \
        && ok "status --json: libvirt, 2 ready, domain names" || fail "status --json: $(cat "$out")"

step "fame exec --all -- fame info: two nodes on one FAM"
run exec --all -- fame info
for n in 1 2; do grep -Eq "^node0$n: node +node0$n" "$out" || fail "node0$n: fame info does not say node0$n: $(cat "$out" "$err")"; done
[ "$(grep -E '^node0[12]: uuid' "$out" | awk '{print $3}' | sort -u | wc -l)" -eq 1 ] && ok "one FAM (one uuid) in both nodes" || fail "nodes see different FAMs"
grep -Eq "^node02: source +pci" "$out" && ok "nodes map the ivshmem PCI device" || fail "no PCI FAM: $(head -5 "$out")"
grep -Eq "^node01: cluster +$cluster \(2 nodes\)" "$out" && ok "identity through libvirt's fw_cfg" || fail "identity: $(grep cluster "$out")"
run exec --all -- fame node slots
for n in 1 2; do for s in 1 2; do
        grep -Eq "^node0$n: node0$s +$s +up " "$out" || fail "node0$n does not see node0$s up"
done; done

step "FAM both ways through /lfs (the Librarian through the relays)"
run exec node01 -- sh -c 'echo from-node01 > /lfs/a'
[ "$rc" -eq 0 ] || fail "write /lfs/a on node01: $(cat "$err")"
run exec node02 -- cat /lfs/a
[ "$(cat "$out")" = from-node01 ] && ok "node02 reads what node01 wrote" || fail "node02 read '$(cat "$out" "$err")'"
run exec node02 -- sh -c 'echo from-node02 > /lfs/b'
run exec node01 -- cat /lfs/b
[ "$(cat "$out")" = from-node02 ] && ok "node01 reads what node02 wrote" || fail "node01 read '$(cat "$out" "$err")'"
run exec --all -- sh -c 'ls -l /proc/$(pidof fame-lfs)/fd | grep -c /dev/vport'
[ "$(grep -c '^node0[12]: 1$' "$out")" -eq 2 ] && ok "both nodes' fame-lfs talk through the Librarian's virtio-serial port (the domain's <channel>)" \
        || fail "fame-lfs's port: $(cat "$out" "$err")"

step "exact cross-node fetch_add: 2 nodes x 300000"
exact_fetch_add 300000 600000

step "kill, start, console, logs"
run kill node02
[ "$rc" -eq 0 ] || fail "kill node02: $(cat "$err")"
[ "$(vsh list --name | tr -d '\n')" = "fame-$cluster-node01" ] && ok "after kill: only node01's domain" || fail "after kill: $(vsh list --name)"
run exec node02 -- true
[ "$rc" -ne 0 ] && grep -q "node02 is not running" "$err" && ok "exec on a killed node: $(cat "$err")" || fail "exec node02: rc $rc $(cat "$err")"
run start node02
[ "$rc" -eq 0 ] && grep -q "node02 ready" "$out" && ok "start node02: $(cat "$out")" || fail "start node02: $(cat "$out" "$err")"
run exec node02 -- cat /lfs/a
[ "$(cat "$out")" = from-node01 ] && ok "the restarted node02 sees the shelf" || fail "after start: $(cat "$out" "$err")"
run console node01 < /dev/null
[ "$rc" -eq 0 ] && grep -q "Connected to node01's console" "$err" && ok "console through virDomainOpenConsole" || fail "console: rc $rc $(cat "$err")"
run logs node01
grep -q "fame-node: ready node01" "$out" && ok "logs: libvirt's console log is the node's console.log" || fail "logs: $(tail -3 "$out")"

step "fame down leaves no domain and no QEMU"
run down
[ "$rc" -eq 0 ] || fail "down: $(cat "$err")"
[ -z "$(vsh list --all --name)" ] && ok "no domain defined or running" || fail "domains left: $(vsh list --all --name)"
[ -z "$(qemu_pids)" ] && ok "no QEMU left" || fail "QEMU left: $(qemu_pids)"
[ -z "$(librarian_pids)" ] && ok "no Librarian left" || fail "Librarian left"

step "a mixed cluster through libvirt: node02 is aarch64"
run up -n 2 --set node02.arch=aarch64
[ "$rc" -eq 0 ] || fail "fame up with an aarch64 node: $(cat "$out" "$err")"
run exec --all -- uname -m
[ "$(tr '\n' ' ' < "$out")" = "node01: x86_64 node02: aarch64 " ] && ok "domains of both architectures" || fail "uname -m: $(cat "$out" "$err")"
exact_fetch_add 200000 400000
run down
[ "$rc" -eq 0 ] && [ -z "$(vsh list --all --name)" ] && [ -z "$(qemu_pids)" ] && ok "down: nothing left" || fail "down: $(cat "$err") $(vsh list --all --name)"

step "fame libvirt export: XML libvirt accepts"
run libvirt export "$work/xml"
[ "$rc" -eq 0 ] && [ -f "$work/xml/node01.xml" ] && [ -f "$work/xml/node02.xml" ] && ok "export wrote node01.xml, node02.xml" || fail "export: $(cat "$out" "$err")"
if vsh define "$work/xml/node01.xml" > /dev/null 2> "$work/define.err"; then
        ok "virsh define accepts the exported XML"
        run up -n 2
        [ "$rc" -ne 0 ] && grep -q "virsh -c .* undefine fame-$cluster-node01" "$err" && ok "up refuses a defined namesake: $(cat "$err")" || fail "up with a defined domain: rc $rc $(cat "$err")"
        [ -z "$(vsh list --name)" ] && ok "nothing left running after the refusal" || fail "running: $(vsh list --name)"
        vsh undefine "fame-$cluster-node01" > /dev/null
else
        fail "virsh define: $(cat "$work/define.err")"
fi

step "a running namesake of another cluster: refused, and what this up started is stopped"
# the exported node02 runs as a transient domain; a cluster of the same name kept in another
# state directory tries to start its own node02
if vsh create "$work/xml/node02.xml" > /dev/null 2> "$work/create.err"; then
        run up -n 2 --set state_dir="$work/elsewhere"
        [ "$rc" -ne 0 ] && grep -q "node02: libvirt domain fame-$cluster-node02 is already running and is not this cluster's; stop it with 'fame kill node02' or 'virsh destroy'" "$err" \
                && ok "$(grep "already running" "$err")" || fail "up with a running namesake: rc $rc $(cat "$err")"
        [ "$(vsh list --name | tr -d '\n')" = "fame-$cluster-node02" ] && ok "node01 was stopped again; the namesake runs on" \
                || fail "running after the refusal: $(vsh list --name)"
        [ -z "$(pids_matching "fame-librarian serve --db $work/elsewhere/")" ] && ok "no Librarian left" \
                || fail "Librarian left: $(pids_matching "fame-librarian serve --db $work/elsewhere/")"
        vsh destroy "fame-$cluster-node02" > /dev/null
else
        fail "virsh create: $(cat "$work/create.err")"
fi

step "libvirt cannot start a domain: its message, nothing left"
# a QEMU that answers libvirt's capability probe but exits when asked to run a node
cat > "$work/qemu-refuses" << 'EOS'
#!/bin/bash
case " $* " in *" guest=fame-"* | *"guest=fame-"*) echo "qemu-refuses: this QEMU runs no nodes" >&2; exit 1 ;; esac
exec qemu-system-x86_64 "$@"
EOS
chmod 755 "$work/qemu-refuses"
run up -n 2 --set qemu="$work/qemu-refuses"
[ "$rc" -ne 0 ] && grep -q "node01: libvirt could not start domain fame-$cluster-node01: " "$err" \
        && ok "$(grep "could not start" "$err")" || fail "up with a QEMU that refuses: rc $rc $(cat "$err")"
[ -z "$(vsh list --all --name)" ] && [ -z "$(qemu_pids)" ] && [ -z "$(librarian_pids)" ] && ok "nothing left behind" \
        || fail "left behind: $(vsh list --all --name) $(qemu_pids) $(librarian_pids)"

step "the coherence checker through libvirt (docs/check.md)"
run up -n 2 --check
[ "$rc" -eq 0 ] && ok "up --check through libvirt" || fail "up --check: $(cat "$out" "$err")"
[ "$(pids_matching 'fame-check.so,node=' | wc -l)" -eq 2 ] && ok "libvirt's QEMUs load the checker" || fail "QEMUs with the plugin: $(pids_matching 'fame-check.so' | wc -l)"
run cp --all "$FAME_CHECK_SEEDED" /tmp/seeded
run exec node01 -- /tmp/seeded producer /lfs/lv-bug
run exec node02 -- /tmp/seeded consumer /lfs/lv-bug --correct
"$FAME" check report --json | jq -e '[.findings[] | select(.kind == "unflushed-read" and .a.node == 1 and .b.node == 2 and .shelf == "/lv-bug")] | length > 0' > /dev/null \
        && ok "a missing writeback found in libvirt domains" || fail "report: $("$FAME" check report 2>&1)"
run exec node01 -- /tmp/seeded commit /lfs/lv-commit 1 --correct
run exec node01 -- /tmp/seeded commit /lfs/lv-commit 2
run kill --crash node01
[ "$rc" -eq 0 ] && ok "kill --crash of a libvirt domain" || fail "kill --crash: $(cat "$err")"
run exec node02 -- /tmp/seeded recover /lfs/lv-commit
[ "$(cat "$out")" = 1 ] && ok "its unwritten commit record is lost" || fail "recovered $(cat "$out" "$err")"
run down
[ "$rc" -eq 0 ] && [ -z "$(vsh list --all --name)" ] && [ -z "$(qemu_pids)" ] && ok "down: nothing left" || fail "down: $(cat "$err") $(vsh list --all --name)"

step "a stopped libvirtd: one clear line"
"$sandbox" stop "$lv" || fail "the sandbox's daemons do not stop"
run status
[ "$rc" -ne 0 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "Cannot connect to libvirt at .*start libvirtd" "$err" \
        && ok "status: $(cat "$err")" || fail "status without libvirtd: rc $rc $(cat "$err")"
run up
[ "$rc" -ne 0 ] && grep -q "Cannot connect to libvirt" "$err" && ok "up refuses too" || fail "up without libvirtd: rc $rc $(cat "$err")"
# fame loads libvirt when the backend is first used (src/shared/dl.h); without it, one line
mkdir -p "$work/nolibs"
FAME_DL_PATH=$work/nolibs run status
[ "$rc" -ne 0 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "^fame: Cannot load libvirt\.so\.0 (.*): install the Debian package libvirt0" "$err" \
        && ok "without libvirt0: $(cat "$err")" || fail "status without libvirt.so.0: rc $rc $(cat "$err")"

step "libvirtd's default seccomp sandbox: said before any node starts"
sed -i '/^seccomp_sandbox/d' "$lv/etc/qemu.conf"
uri=$("$sandbox" start "$lv") || { fail "libvirtd did not restart"; finish; }
run up -n 2
[ "$rc" -ne 0 ] && grep -q "spawn=deny.*seccomp_sandbox = 0" "$err" && ok "$(cat "$err")" || fail "up under spawn=deny: rc $rc $(cat "$err")"
[ -z "$(vsh list --all --name)" ] && [ -z "$(qemu_pids)" ] && [ -z "$(librarian_pids)" ] \
        && ok "nothing left behind" || fail "left behind: $(vsh list --all --name) $(qemu_pids) $(librarian_pids)"

step "the test's libvirtd stops"
"$sandbox" stop "$lv" && ok "libvirtd and virtlogd stopped" || fail "the sandbox's daemons do not stop"

finish
