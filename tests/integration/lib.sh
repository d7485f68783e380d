# Shared setup for integration tests (sourced).  Each test gets private state and config
# directories and its own cluster name; the node image cache is shared across tests in the
# build directory.  Every QEMU a test started is stopped at the end, whatever happens; logs
# are kept when the test fails.
set -u
: "${FAME:?}" "${FAME_BUILD_ROOT:?}"
tname=$(basename "$0" .sh)
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-it-XXXXXX")
export XDG_STATE_HOME="$work/state" XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$FAME_BUILD_ROOT/test-cache"
unset FAME_PATH FAME_NODE FAME_CONFIG FAME_CLUSTER_NAME
export FAME_CLUSTER_NAME="it-$tname"
cluster=$FAME_CLUSTER_NAME
state="$XDG_STATE_HOME/fame/$cluster"
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
step() { echo "== $*"; }
# A step that could not run here: scripts/run-tests lists it in its summary, counts it as a
# skip, and fails the run unless it is in tests/expected-tests's allowed skips.
skip_step() { echo "SKIP-STEP: $tname: $*"; }

# Processes whose command line holds PATTERN (a grep -E expression).
pids_matching() {
        local p
        for p in /proc/[0-9]*; do
                tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -Eq -- "$1" && echo "${p#/proc/}"
        done
}

# QEMU processes of this test's cluster: fame's own ("process=fame-CLUSTER-nodeNN") or libvirt's
# ("guest=fame-CLUSTER-nodeNN").
qemu_pids() { pids_matching "(process|guest)=fame-$cluster-node"; }

# The cluster's Librarian (its command line names the cluster's database).
librarian_pids() { pids_matching "fame-librarian serve --db $state/librarian/"; }

cleanup() {
        local pids
        "$FAME" down > /dev/null 2>&1
        pids="$(qemu_pids) $(librarian_pids)"
        if [ -n "${pids// /}" ]; then
                echo "cleanup: killing leftover processes $pids"
                kill -9 $pids 2>/dev/null
        fi
        if [ "$failures" -eq 0 ]; then
                rm -rf "$work"
        else
                echo "logs kept in $work"
                for f in "$state"/nodes/*/console.log; do
                        [ -f "$f" ] && { echo "--- $f (last 15 lines)"; tail -n 15 "$f"; }
                done
        fi
}
trap cleanup EXIT

# Debian images are built as root, or without root in mmdebstrap's user namespace, which needs
# an /etc/subuid entry: skips the whole test (77) otherwise.
skip_without_debian_builds() {
        if [ "$(id -u)" -ne 0 ] && ! grep -q "^$(id -un):" /etc/subuid 2>/dev/null; then
                echo "SKIP: without root, building Debian images needs an /etc/subuid entry for $(id -un) (see docs/debian.md)"
                trap - EXIT
                rm -rf "$work"
                exit 77
        fi
}

# run CMD...: runs fame with stdout/stderr in $out/$err and the status in $rc.
out="$work/out" err="$work/err"
run() {
        "$FAME" "$@" > "$out" 2> "$err"
        rc=$?
}

finish() {
        echo "$failures failure(s)"
        exit $((failures > 0))
}

# Little-endian u64 at OFFSET of the FAM file.
fam_u64() {
        local b
        read -r -a b < <("$FAME" fam dump "$1" --offset "$2" --length 8)
        echo $(( 0x${b[8]}${b[7]}${b[6]}${b[5]}${b[4]}${b[3]}${b[2]}${b[1]} ))
}

# exact_fetch_add N TOTAL: every node adds 1 to one FAM word N times, all at once; the word must
# grow by exactly TOTAL (a word of book 6 of the first interleave group, which tests leave free).
exact_fetch_add() {
        local word before total
        word=$(( $("$FAME" fam info "$fam" --json | awk -F': ' '/"books_offset"/ {gsub(",", "", $2); print $2; exit}') + 0x3000000 ))
        before=$(fam_u64 "$fam" "$word")
        run exec --all -- fame node fetch-add "$word" "$1"
        [ "$rc" -eq 0 ] || fail "fetch-add exited $rc: $(cat "$err")"
        total=$(( $(fam_u64 "$fam" "$word") - before ))
        [ "$total" -eq "$2" ] && ok "fetch_add total $total" || fail "fetch_add total $total, expected $2"
}
