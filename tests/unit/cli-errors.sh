#!/bin/bash
# Bad FAM files through the CLI: `fame fam info`, `fame fam dump` and `fame info` print exactly
# one error line, exit 1, and never modify the file; `fame fam create` refuses to replace them.
# The checker's verbs on a cluster that cannot use them (kill/down --crash, check report, up
# --check without its plugin) say so in one line, and status shows its column only with it.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-cli-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset FAME_PATH FAME_NODE
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$FAME" fam create "$tmp/good.fam" --size 64M --book-size 2M --nodes 2 > /dev/null || fail "create good.fam"

# Each bad file is made from a good one.
cp --sparse=always "$tmp/good.fam" "$tmp/truncated.fam"; truncate -s 32M "$tmp/truncated.fam"
cp --sparse=always "$tmp/good.fam" "$tmp/npot.fam"; truncate -s 67108865 "$tmp/npot.fam"
cp --sparse=always "$tmp/good.fam" "$tmp/corrupt.fam"; printf '\x07' | dd of="$tmp/corrupt.fam" bs=1 seek=72 conv=notrunc status=none
cp --sparse=always "$tmp/good.fam" "$tmp/version.fam"; printf '\x02' | dd of="$tmp/version.fam" bs=1 seek=8 conv=notrunc status=none
truncate -s 64M "$tmp/zero.fam"
: > "$tmp/empty.fam"
head -c 4096 /dev/urandom > "$tmp/random.fam"

declare -A want=(
        [truncated]="truncated"
        [npot]="header says"
        [corrupt]="checksum"
        [version]="version 2.0"
        [zero]="no FAM header"
        [empty]="is empty"
        [random]="not a FAM/E FAM"
)
for name in "${!want[@]}"; do
        f="$tmp/$name.fam"
        before=$(sha256sum < "$f")
        cmds=("fam info $f" "fam dump $f" "info --path $f")
        # An empty file holds nothing to lose: create may use it (checked below).
        [ "$name" = empty ] || cmds+=("fam create $f --size 64M --book-size 2M --nodes 2")
        for cmd in "${cmds[@]}"; do
                read -r -a args <<< "$cmd"
                "$FAME" "${args[@]}" > "$tmp/out" 2> "$tmp/err"
                rc=$?
                lines=$(wc -l < "$tmp/err")
                [ "$rc" -ne 0 ] || fail "$name: 'fame $cmd' succeeded"
                [ "$lines" -eq 1 ] || fail "$name: 'fame $cmd' printed $lines error lines: $(cat "$tmp/err")"
                [ -s "$tmp/out" ] && fail "$name: 'fame $cmd' printed to stdout"
                if [ "${args[1]}" != create ]; then
                        grep -q -- "${want[$name]}" "$tmp/err" || fail "$name: 'fame $cmd' said '$(cat "$tmp/err")', expected '${want[$name]}'"
                fi
                echo "ok: $name: fame ${cmd/$tmp\//}: $(cat "$tmp/err")"
        done
        [ "$(sha256sum < "$f")" = "$before" ] || fail "$name.fam was modified"
done

# An empty file may be turned into a FAM without --force.
"$FAME" fam create "$tmp/empty.fam" --size 64M --book-size 2M --nodes 2 > /dev/null || fail "create over an empty file"
"$FAME" fam info "$tmp/empty.fam" > /dev/null || fail "info after create over an empty file"

# --force replaces a bad file with a valid FAM.
"$FAME" fam create "$tmp/corrupt.fam" --size 64M --book-size 2M --nodes 2 --force > /dev/null || fail "create --force"
"$FAME" fam info "$tmp/corrupt.fam" > /dev/null || fail "info after --force"

# dump --force shows a corrupt file anyway, read-only.
before=$(sha256sum < "$tmp/version.fam")
"$FAME" fam dump "$tmp/version.fam" --force --length 16 | grep -q 'FAME-FAM' || fail "dump --force"
[ "$(sha256sum < "$tmp/version.fam")" = "$before" ] || fail "dump --force modified the file"

# A FIFO (or anything not a regular file) as the FAM: refused at once in one line, never waiting
# for a writer (issue 16 #17); timeout turns a hang into a failure.
mkfifo "$tmp/fifo.fam"
for cmd in "fam info" "fam dump" "fam dump --force" "librarian topology --fam" "info --path"; do
        read -r -a args <<< "$cmd"
        timeout 10 "$FAME" "${args[@]}" "$tmp/fifo.fam" > "$tmp/out" 2> "$tmp/err"
        rc=$?
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -q "is not a regular file\|is a FIFO, not a FAM file" "$tmp/err"; then
                echo "ok: fame $cmd FIFO: $(cat "$tmp/err")"
        else
                fail "fame $cmd on a FIFO: exit $rc (124: it hung), expected one line saying it is not a regular file: $(cat "$tmp/err")"
        fi
done

# The checker's verbs (fame up --check), with no node and no QEMU: a private user whose cluster
# has a plan (STATE/cluster.json) of two nodes that do not run.
export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/cache"
unset FAME_CONFIG FAME_CLUSTER_NAME FAME_CHECK_PLUGIN
state="$XDG_STATE_HOME/fame/default"
mkdir -p "$HOME" "$state"
plan() {        # plan CHECK: a cluster started with check = CHECK
        printf '{ "name": "default", "state_dir": "%s", "fam": "%s/fam", "fam_size": 67108864, "accel": "tcg",
  "qemu": "qemu-system-x86_64", "check": "%s", "nodes": [ { "id": 1 }, { "id": 2 } ] }\n' "$state" "$state" "$1" > "$state/cluster.json"
}
# expect RC PATTERN ARGS...: fame ARGS exits RC with one line on stderr matching PATTERN (grep -E)
# and nothing on stdout.
expect() {
        local want_rc=$1 pattern=$2
        shift 2
        "$FAME" "$@" > "$tmp/out" 2> "$tmp/err"
        local rc=$? lines
        lines=$(wc -l < "$tmp/err")
        if [ "$rc" -eq "$want_rc" ] && [ "$lines" -eq 1 ] && [ ! -s "$tmp/out" ] && grep -Eq -- "$pattern" "$tmp/err"; then
                echo "ok: fame $*: $(cat "$tmp/err")"
        else
                fail "fame $*: exit $rc (expected $want_rc), $lines error line(s), expected one matching '$pattern': $(cat "$tmp/err" "$tmp/out")"
        fi
}
plan off
# an empty cluster name is not the default cluster (issue 16 #18a)
expect 2 "^fame status: -c/--cluster '': the cluster name is empty; give a name, or leave the option out" status -c ""
expect 2 "^fame shelf ls: -c/--cluster '': the cluster name is empty" shelf ls --cluster=
# configuration errors show control bytes of what they echo as \xNN, never raw (issue 16 #18b)
esc=$(printf '\033')
printf '[cluster]\n%s[31mfoo = 1\n' "$esc" > "$tmp/esc.conf"
for args in "config --set nodes=3${esc}[2J" "config --set no${esc}[31mde=1" "config --config $tmp/esc.conf"; do
        read -r -a a <<< "$args"
        "$FAME" "${a[@]}" > /dev/null 2> "$tmp/err"
        rc=$?
        if [ "$rc" -ne 0 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qF '\x1b[' "$tmp/err" && ! grep -q "$esc" "$tmp/err"; then
                echo "ok: fame ${args//$esc/<ESC>}: $(cat "$tmp/err")"
        else
                fail "fame ${args//$esc/<ESC>}: exit $rc, expected one line with \\x1b and no raw escape: $(od -c "$tmp/err" | head -3)"
        fi
done
# down, kill and start of a cluster never started: one line, and no state directory made for it
for verb in down "kill node01" "start node01"; do
        read -r -a a <<< "$verb"
        expect 1 "^fame: Cluster 'never' has never been started \(no $XDG_STATE_HOME/fame/never/cluster.json\); start it with 'fame up'$" "${a[@]}" -c never
done
[ ! -e "$XDG_STATE_HOME/fame/never" ] && echo "ok: down/kill/start of a cluster never started made no state directory" \
        || fail "down/kill/start of a cluster never started left $(ls -la "$XDG_STATE_HOME/fame/never" 2>&1 | tr '\n' ' ')"
expect 2 "^fame: --crash needs a cluster started with --check \(fame up --check\): only the checker knows what was written back$" kill node02 --crash
expect 2 "^fame: --crash needs a cluster started with --check" down --crash
expect 1 "^fame: No checker state in $state: start the cluster with fame up --check$" check report
expect 1 "^fame: No checker state in $state: start the cluster with fame up --check$" check report --json
expect 2 "^fame check report: --node 'nodex' is not a node name \(node02, or 2\); see 'fame help check report'$" check report --node nodex
expect 2 "^fame: There is no 7: the cluster has 2 nodes \(node01\.\.node02\)$" check report --node 7
expect 2 "^fame check report: too many arguments" check report extra
# the plugin, looked for before anything is built or started
FAME_CHECK_PLUGIN="$tmp/none.so" expect 1 "^fame: check = coherence needs the checker's QEMU plugin, which is not at $tmp/none.so: build it with 'ninja -C build' or fix FAME_CHECK_PLUGIN$" \
        up --check --set nodes=2 --set fam_size=64M --set book_size=2M
[ ! -e "$state/fam" ] && [ ! -e "$XDG_CACHE_HOME/fame" ] && echo "ok: up --check without its plugin made no FAM and no image" \
        || fail "up --check without its plugin left $(ls "$state" "$XDG_CACHE_HOME" 2>&1 | tr '\n' ' ')"
# fame up --fam-size: the fam_size key, checked the same way; too small for the nodes says what fits
expect 2 "^fame: command line: fam_size = 3G: expected a power of two such as 512M, 1G or 2G$" up --fam-size 3G
expect 2 "^fame: fam_size = 1G: FAM size 1G is too small for 40 node\(s\) with 8M books \(metadata plus 4 books per node\); use fam_size = 2G or more \(fame up --fam-size 2G\), or leave fam_size unset$" \
        up -n 40 --fam-size 1G
expect 2 "^fame: command line: accel = kvm, but check = coherence: the checker runs in TCG: set accel = tcg or auto$" up --check --accel kvm
# a cluster with the checker: kill --crash of a node that does not run
plan coherence
expect 1 "^fame: node02 is not running$" kill node02 --crash
# status: a FINDINGS column (- while the findings cannot be read), "check" and per node
# "check_findings" in JSON; without the checker neither
"$FAME" status > "$tmp/out" 2> /dev/null
head -1 "$tmp/out" | grep -Eq '^NODE +PID +ARCH +ACCEL +STATE +JOINS +FINDINGS +CONSOLE$' && grep -Eq '^node02 .* stopped +0 +- ' "$tmp/out" \
        && echo "ok: status shows FINDINGS" || fail "status with the checker: $(cat "$tmp/out")"
grep -q "^checker: coherence" "$tmp/out" && echo "ok: status says the checker runs" || fail "status: no checker line: $(cat "$tmp/out")"
"$FAME" status --json > "$tmp/out" 2> /dev/null
grep -q '^  "check": "coherence",$' "$tmp/out" && [ "$(grep -c '"check_findings": ' "$tmp/out")" -eq 2 ] \
        && echo "ok: status --json has check and check_findings" || fail "status --json with the checker: $(cat "$tmp/out")"
plan off
"$FAME" status > "$tmp/out" 2> /dev/null
! grep -q FINDINGS "$tmp/out" && ! grep -q '^checker' "$tmp/out" && echo "ok: status without the checker has no FINDINGS" \
        || fail "status without the checker: $(cat "$tmp/out")"
"$FAME" status --json > "$tmp/out" 2> /dev/null
grep -q '^  "check": "off",$' "$tmp/out" && ! grep -q check_findings "$tmp/out" && echo "ok: status --json says check off" \
        || fail "status --json without the checker: $(cat "$tmp/out")"

# fame cp --libs: what is wrong with the program is said before any node is asked (the plan's
# two x86_64 nodes do not run).  An aarch64 program: a 64-byte ELF header with e_machine 183.
printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\002\000\267\000\001\000\000\000' > "$tmp/arm64.elf"
head -c 40 /dev/zero >> "$tmp/arm64.elf"
expect 1 "^fame: '$tmp/arm64.elf' is an aarch64 program, and node01 is an x86_64 node: build it for x86_64" cp --libs "$tmp/arm64.elf" node01:/usr/bin/x
expect 1 "^fame: Cannot read '$tmp/none': No such file or directory$" cp --libs "$tmp/none" node01:/usr/bin/x
expect 1 "^fame: '$tmp/esc.conf' is not a program \(no ELF header\): --libs copies ELF programs$" cp --libs "$tmp/esc.conf" node01:/usr/bin/x
expect 2 "^fame cp: --json goes with --libs" cp --json "$tmp/esc.conf" node01:/usr/bin/x
# a host program: its libraries are listed, then the node is found not running
expect 1 "^fame: node02 is not running; start it" cp --libs /bin/ls node02:/usr/bin/ls2

# fame librarian fsck: usage errors, and without --db the cluster's database (none here)
expect 2 "^fame: librarian fsck: unexpected argument 'extra'; see fame help librarian$" librarian fsck --db "$tmp/x.db" extra
expect 2 "unrecognized option '--bogus'$" librarian fsck --db "$tmp/x.db" --bogus
expect 2 "^fame: Cannot open the Librarian database '$tmp/x.db': No such file or directory$" librarian fsck --db "$tmp/x.db" --repair
expect 2 "^fame: Cannot open the Librarian database '$XDG_STATE_HOME/fame/other/librarian/librarian.db': No such file or directory$" \
        librarian fsck -c other --json
# serving beyond loopback without authentication: refused unless asked for by name
expect 2 "^fame: librarian serve: --bind 0.0.0.0 with --trust-clients: the Librarian then authenticates no caller, so anyone who reaches 0.0.0.0 could act as any node and uid; bind 127.0.0.1, drop --trust-clients, or add --insecure-remote on a network you trust; see fame help librarian$" \
        librarian serve --db "$tmp/x.db" --bind 0.0.0.0 --trust-clients
expect 2 "^fame: librarian serve: --bind 10.1.2.3 with --trust-clients: the Librarian then authenticates no caller" \
        librarian serve --db "$tmp/x.db" --bind 10.1.2.3 --trust-clients
expect 2 "^fame: librarian serve: --node-port 99=5: use NODE=PORT with NODE 1-80; see fame help librarian$" \
        librarian serve --db "$tmp/x.db" --node-port 99=5
expect 2 "^fame: librarian serve: --node-socket 2: use NODE=PATH; see fame help librarian$" \
        librarian serve --db "$tmp/x.db" --node-socket 2
expect 2 "^fame: librarian serve: --node-socket 2=: use NODE=PATH; see fame help librarian$" \
        librarian serve --db "$tmp/x.db" --node-socket 2=
expect 2 "^fame: librarian serve: --node-socket x=/tmp/s: use NODE=PATH with NODE 1-80; see fame help librarian$" \
        librarian serve --db "$tmp/x.db" --node-socket x=/tmp/s
expect 2 "^fame: librarian serve: --sync always: use \"second\" \\(the default: commits reach the disk within a second\\) or \"each-change\" \\(every change before its reply\\)" \
        librarian serve --db "$tmp/x.db" --sync always
expect 2 "^fame: librarian serve: --secrets and --trust-clients: choose one" \
        librarian serve --db "$tmp/x.db" --secrets "$tmp/s" --trust-clients
# the connection limits: one error line for a bad value, before anything is opened
expect 2 "^fame: librarian serve: --max-per-peer 0: use a number of connections from 1 to 1024; see fame help librarian$" \
        librarian serve --db "$tmp/x.db" --max-per-peer 0
expect 2 "^fame: librarian serve: --max-per-peer 2000: use a number of connections from 1 to 1024; " \
        librarian serve --db "$tmp/x.db" --max-per-peer 2000
expect 2 "^fame: librarian serve: --idle-timeout 0: use a number of seconds from 0.1 to 86400; see fame help librarian$" \
        librarian serve --db "$tmp/x.db" --idle-timeout 0
expect 2 "^fame: librarian serve: --idle-timeout 5s: use a number of seconds from 0.1 to 86400; " \
        librarian serve --db "$tmp/x.db" --idle-timeout 5s
expect 2 "^fame: librarian serve: --max-output 1K: use a size from 4K to 1G, e.g. 256K; see fame help librarian$" \
        librarian serve --db "$tmp/x.db" --max-output 1K
expect 2 "^fame: librarian serve: --max-output lots: use a size from 4K to 1G, e.g. 256K; " \
        librarian serve --db "$tmp/x.db" --max-output lots
expect 2 "^fame librarian: which one: serve, init, topology, bench or fsck\?" librarian

# libvirt and libxml2 are loaded only when used (src/shared/dl.h): fame links none of their ~50
# libraries, and a missing or wrong one is one line naming the Debian package
if LD_TRACE_LOADED_OBJECTS=1 "$FAME" > "$tmp/libs" 2>&1 && ! grep -Eq "libvirt|libxml2|libgnutls|libicu" "$tmp/libs"; then
        echo "ok: fame links $(wc -l < "$tmp/libs") libraries, none of libvirt's"
else
        fail "fame is linked against libvirt's libraries: $(grep -E 'libvirt|libxml2|libgnutls|libicu' "$tmp/libs" | tr -s ' \t\n' ' ')"
fi
mkdir -p "$tmp/nolibs" "$tmp/oldlibs"
FAME_DL_PATH=$tmp/nolibs expect 1 "^fame: Cannot load libxml2\.so\.2 \(.*\): install the Debian package libxml2 \(scripts/install-deps does\)$" \
        debug domain-xml --node 1
json=$(LD_TRACE_LOADED_OBJECTS=1 "$FAME" | awk '/libjson-c/ {print $3}')
cp "$json" "$tmp/oldlibs/libxml2.so.2"
FAME_DL_PATH=$tmp/oldlibs expect 1 "^fame: libxml2\.so\.2 has no xml[A-Za-z]+: it is older than FAM/E needs; upgrade the Debian package libxml2$" \
        debug domain-xml --node 1

echo "$failures failure(s)"
exit $((failures > 0))
