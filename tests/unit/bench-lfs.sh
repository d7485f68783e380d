#!/bin/bash
# fame bench lfs: --at DIR --baseline DIR --quick --json on two temporary directories gives one
# JSON object of the documented shape (docs/lfs.md, "Measuring /lfs") and leaves both
# directories as it found them; bad input gives exactly one error line.  With "host" as its
# argument (suite daemon): the host mode, a private Librarian and fame-lfs, root and /dev/fuse.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-lfs-test-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export XDG_STATE_HOME="$tmp/state" FAME_CLUSTER_NAME=bench-lfs-test
unset FAME_CONFIG
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# The JSON's shape: at, baseline, figures (name, unit, value, baseline, ratio), goals (name,
# limit, value, pass), numbers as numbers.
check_json() {
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
assert isinstance(d["at"], str) and isinstance(d["baseline"], str), "at, baseline"
names = [f["name"] for f in d["figures"]]
for want in ("stat", "listdir (10 entries)", "create+close+unlink", "workload (8 procs)", "write(2)", "read(2)", "memcpy (RAM)"):
    assert want in names, "no figure " + want
for f in d["figures"]:
    assert set(f) == {"name", "unit", "value", "baseline", "ratio"}, f
    assert isinstance(f["unit"], str) and all(num(f[k]) for k in ("value", "baseline", "ratio")), f
    assert f["value"] > 0 and f["baseline"] > 0, f
assert len(d["goals"]) >= 5, "goals"
for g in d["goals"]:
    assert set(g) == {"name", "limit", "value", "pass"}, g
    assert num(g["limit"]) and num(g["value"]) and isinstance(g["pass"], bool), g
print(len(d["figures"]), "figures,", len(d["goals"]), "goals")
' "$1"
}

if [ "${1:-}" = host ]; then
        if [ "$(id -u)" != 0 ] || [ ! -w /dev/fuse ]; then
                echo "SKIP: the host mode needs root and /dev/fuse"
                exit 77
        fi
        export FAME_LIBRARIAN_BINARY="$FAME_LIBRARIAN_BIN" FAME_LFS_BINARY="$FAME_LFS_BIN" TMPDIR="$tmp"
        start=$SECONDS
        if "$FAME" bench lfs --quick --json > "$tmp/host.json" 2> "$tmp/err"; then
                shape=$(check_json "$tmp/host.json") && ok "host, $((SECONDS - start)) s: $shape" ||
                        fail "host: bad JSON: $shape: $(cat "$tmp/host.json")"
        else
                fail "host: $(cat "$tmp/err")"
        fi
        left=$(find "$tmp" -mindepth 1 -maxdepth 1 ! -name host.json ! -name err)
        [ -z "$left" ] && ok "host: its temporary directory is gone" || fail "host: left behind: $left"
        grep -q "$tmp" /proc/mounts && fail "host: still mounted: $(grep "$tmp" /proc/mounts)"
        [ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
        exit 0
fi

mkdir -p "$tmp/at" "$tmp/base"
if "$FAME" bench lfs --at "$tmp/at" --baseline "$tmp/base" --quick --json > "$tmp/json" 2> "$tmp/err"; then
        shape=$(check_json "$tmp/json") && ok "--at --baseline --json: $shape" || fail "bad JSON: $shape: $(cat "$tmp/json")"
else
        fail "--at --baseline: $(cat "$tmp/err")"
fi
[ -z "$(ls -A "$tmp/at")" ] && [ -z "$(ls -A "$tmp/base")" ] && ok "both directories are empty again" ||
        fail "left behind: $(ls -AR "$tmp/at" "$tmp/base")"

# The table: one row per figure, then the goals.
"$FAME" bench lfs --at "$tmp/at" --baseline "$tmp/base" --quick > "$tmp/out" 2> "$tmp/err" || fail "table: $(cat "$tmp/err")"
grep -q '^stat ' "$tmp/out" && grep -Eq '^  (PASS|MISS)  ' "$tmp/out" && ok "table" || fail "table: $(cat "$tmp/out")"

# Bad input: exit status, one line on stderr, nothing on stdout.
expect_error() {
        local want_rc=$1 want=$2
        shift 2
        "$FAME" bench lfs "$@" > "$tmp/out" 2> "$tmp/err"
        local rc=$? lines
        lines=$(wc -l < "$tmp/err")
        if [ "$rc" -ne "$want_rc" ] || [ "$lines" -ne 1 ] || [ -s "$tmp/out" ] || ! grep -q -- "$want" "$tmp/err"; then
                fail "'fame bench lfs $*': exit $rc, $lines error line(s): $(cat "$tmp/err") $(cat "$tmp/out")"
        else
                ok "fame bench lfs ${*//$tmp\//}: $(cat "$tmp/err")"
        fi
}
expect_error 1 "No such file or directory" --at "$tmp/missing" --baseline "$tmp/base" --quick
expect_error 1 "No such file or directory" --at "$tmp/at" --baseline "$tmp/missing" --quick
expect_error 1 "has never been started" --node node01 --quick
expect_error 2 "unknown option" --bogus
expect_error 2 "go together" --at "$tmp/at"
expect_error 2 "leave out --at" --node node01 --at "$tmp/at" --baseline "$tmp/base"
expect_error 2 "go with --node" --set memory=1G --at "$tmp/at" --baseline "$tmp/base"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all passed"
