#!/bin/bash
# CLI verbs on the host, no nodes: `fame version`, `fame config` (a file, FAME_CONFIG, --set,
# bad keys), `fame bench fam`, `fame shelf mkdir` and `fame shelf mv` against a fame-librarian
# this test starts on loopback, and `fame librarian bench`.  Every check compares exact output
# fields and exit statuses (0 ok, 1 failure, 2 usage); an error is exactly one line on stderr.
set -u
: "${FAME:?}" "${FAME_SOURCE_ROOT:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-verbs-XXXXXX")
pids=()
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
# stop PID: SIGTERM, up to 5 s to exit (polled: a child that exited stays a zombie until
# waited for), then SIGKILL; returns its exit status (137 when it had to be killed).
stop() {
        local state
        kill "$1" 2> /dev/null
        for _ in $(seq 100); do
                state=$(awk '{ print $3 }' "/proc/$1/stat" 2> /dev/null) || break
                [ "$state" = Z ] && break
                sleep 0.05
        done
        [ "$state" = Z ] || kill -KILL "$1" 2> /dev/null
        wait "$1" 2> /dev/null
}
cleanup() {
        local p
        for p in "${pids[@]}"; do stop "$p"; done
        if [ "$failures" -eq 0 ]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
}
trap cleanup EXIT
trap 'fail "interrupted"; exit 1' INT TERM HUP

# A private user: no configuration, state or cache of the caller's, no cluster, no node.
export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/cache" TMPDIR="$tmp"
unset FAME_CONFIG FAME_PATH FAME_NODE FAME_LIBRARIAN FAME_CLUSTER_NAME
mkdir -p "$HOME" "$XDG_CONFIG_HOME/fame"

run() { "$FAME" "$@" > "$tmp/out" 2> "$tmp/err"; rc=$?; }
# error WANT_RC PATTERN WHAT: the last run exited WANT_RC, printed nothing on stdout and exactly
# one line on stderr, which matches PATTERN (grep -E).
error() {
        local lines
        lines=$(wc -l < "$tmp/err")
        if [ "$rc" -eq "$1" ] && [ "$lines" -eq 1 ] && [ ! -s "$tmp/out" ] && grep -Eq -- "$2" "$tmp/err"; then
                ok "$3: $(cat "$tmp/err")"
        else
                fail "$3: exit $rc (expected $1), $lines error line(s), expected one matching '$2': $(cat "$tmp/err" "$tmp/out")"
        fi
}
# success WHAT: the last run exited 0 and printed nothing on stderr.
success() {
        [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && return 0
        fail "$1: exit $rc: $(cat "$tmp/err" "$tmp/out")"
        return 1
}

echo "== fame version"
want=$(sed -n -E "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'([^']+)'.*/\1/p" "$FAME_SOURCE_ROOT/meson.build" | head -1)
major=$(awk '$1 == "#define" && $2 == "FAME_FORMAT_MAJOR" { print $3 }' "$FAME_SOURCE_ROOT/include/fame/fame.h")
minor=$(awk '$1 == "#define" && $2 == "FAME_FORMAT_MINOR" { print $3 }' "$FAME_SOURCE_ROOT/include/fame/fame.h")
if [[ "$want" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] && [ -n "$major" ] && [ -n "$minor" ]; then
        printf 'fame %s\nlibfame %s\nFAM format %s.%s\n' "$want" "$want" "$major" "$minor" > "$tmp/version.want"
        for args in "version" "--version" "-V"; do
                run $args
                if success "fame $args" && cmp -s "$tmp/out" "$tmp/version.want"; then
                        ok "fame $args: $(paste -sd, "$tmp/out") (meson.build: $want)"
                else
                        fail "fame $args printed '$(cat "$tmp/out")', expected '$(cat "$tmp/version.want")'"
                fi
        done
        run version --json
        printf '{\n  "fame": "%s",\n  "libfame": "%s",\n  "fam_format": "%s.%s"\n}\n' "$want" "$want" "$major" "$minor" > "$tmp/version.json"
        success "fame version --json" && cmp -s "$tmp/out" "$tmp/version.json" && ok "fame version --json" \
                || fail "fame version --json printed '$(cat "$tmp/out")'"
        run version extra
        error 2 "too many arguments" "fame version with an argument"
        run version --bogus
        error 2 "unknown option '--bogus'" "fame version with an unknown option"
else
        fail "cannot read the project version from meson.build ('$want') or the format version from fame.h ('$major.$minor')"
fi

echo "== fame config"
# cfg KEY: "VALUE|ORIGIN" of KEY in the text output of the last run
cfg() { awk -v k="$1" '$1 == k && $2 == "=" { o = $0; sub(/^[^#]*# /, "", o); print $3 "|" o }' "$tmp/out"; }
expect_cfg() {  # KEY VALUE ORIGIN
        local got
        got=$(cfg "$1")
        [ "$got" = "$2|$3" ] && ok "config: $1 = $2 ($3)" || fail "config: $1 is '$got', expected '$2|$3'"
}
conf="$XDG_CONFIG_HOME/fame/lab.conf"
printf '[cluster]\nnodes = 6\nfam_size = 2G\nmemory = 512M\n\n[node02]\ncpus = 3\n' > "$conf"
run config -c lab --set accel=tcg --set book_size=16M
if success "config -c lab"; then
        [ "$(head -1 "$tmp/out")" = "# cluster lab" ] && ok "config: '# cluster lab' first" || fail "config: first line '$(head -1 "$tmp/out")'"
        expect_cfg nodes 6 "$conf:2"
        expect_cfg fam_size 2G "$conf:3"
        expect_cfg memory 512M "$conf:4"
        expect_cfg node02.cpus 3 "$conf:7"
        expect_cfg accel tcg "command line"
        expect_cfg book_size 16M "command line"
        expect_cfg kind diskless default
        expect_cfg state_dir "$XDG_STATE_HOME/fame/lab" default
        expect_cfg fam "$XDG_STATE_HOME/fame/lab/fam" default
        [ -z "$(cfg node01.cpus)" ] && ok "config: no line for node01, which sets nothing" || fail "config: node01.cpus listed: $(cfg node01.cpus)"
fi
# the command line wins over the file
run config -c lab --set nodes=3
success "config --set nodes=3" && expect_cfg nodes 3 "command line"
# JSON: the same values, sizes in bytes
run config -c lab --set accel=tcg --json
if success "config --json"; then
        grep -A3 -E '^    "nodes": \{$' "$tmp/out" | tr -d ' \n' > "$tmp/nodes.json"
        [ "$(cat "$tmp/nodes.json")" = "\"nodes\":{\"value\":6,\"origin\":\"$conf:2\"}," ] && ok "config --json: nodes 6 from the file" \
                || fail "config --json: nodes: $(cat "$tmp/nodes.json")"
        grep -A2 -E '^    "fam_size": \{$' "$tmp/out" | grep -q '"value": 2147483648,' && ok "config --json: fam_size in bytes" \
                || fail "config --json: fam_size: $(grep -A2 fam_size "$tmp/out")"
        grep -A2 -E '^    "accel": \{$' "$tmp/out" | grep -q '"origin": "command line"' && ok "config --json: accel from the command line" \
                || fail "config --json: accel: $(grep -A2 '"accel"' "$tmp/out")"
        [ "$(grep -c '"name": "node0[1-6]"' "$tmp/out")" -eq 6 ] && ! grep -q '"name": "node07"' "$tmp/out" \
                && ok "config --json: 6 nodes" || fail "config --json: nodes: $(grep '"name"' "$tmp/out" | tr -d '\n')"
        grep -A3 '"name": "node02"' "$tmp/out" | grep -q '"cpus": 3,' && ok "config --json: node02 has 3 cpus" \
                || fail "config --json: node02: $(grep -A3 '"name": "node02"' "$tmp/out")"
fi
# FAME_CONFIG names the only file read (not lab.conf); its relative paths are from its directory
printf '[cluster]\nkind = debian\nstate_dir = here\n' > "$tmp/explicit.conf"
FAME_CONFIG="$tmp/explicit.conf" run config -c lab
if success "FAME_CONFIG"; then
        expect_cfg kind debian "$tmp/explicit.conf:2"
        expect_cfg state_dir "$tmp/here" "$tmp/explicit.conf:3"
        expect_cfg fam "$tmp/here/fam" default
        expect_cfg nodes 4 default
fi
# bad keys and values: one line, exit 2, nothing of the file applied
run config --set nodez=3
error 2 "^fame: command line: unknown key 'nodez'; did you mean 'nodes'\?$" "config --set nodez=3"
printf '[cluster]\nnodes = 2\nnodez = 7\n' > "$tmp/bad.conf"
FAME_CONFIG="$tmp/bad.conf" run config
error 2 "^fame: $tmp/bad.conf:3: unknown key 'nodez' in \[cluster\]; did you mean 'nodes'\?$" "config file with nodez"
run config --set accel=hvf
error 2 "^fame: command line: accel = hvf: expected auto, kvm or tcg$" "config --set accel=hvf"
FAME_CONFIG="$tmp/missing.conf" run config
error 1 "^fame: Failed to open config file '$tmp/missing.conf': No such file or directory$" "FAME_CONFIG names a missing file"

echo "== fame bench fam"
mkdir -p "$tmp/bench"
run bench fam --dir "$tmp/bench" --size 1M --rounds 3 --ops 20000
num='[1-9][0-9]*'
if [ "$rc" -eq 0 ]; then
        awk -v n="^$num$" -v r='^[0-9]+\.[0-9][0-9]$' '
                NR == 1 { ok = ($0 == "memcpy 1 MiB (median of 3)") }
                NR == 2 { ok = ($1 == "malloc'\''d" && $2 == "memory" && $3 ~ n && $4 == "MB/s" && NF == 4) }
                NR == 3 { ok = ($1 == "FAM" && $2 == "mapping" && $3 ~ n && $4 == "MB/s" && $5 == "ratio" && $6 ~ r && NF == 6) }
                NR == 4 { ok = ($0 == "fetch_add on one 64-bit word, 20000 ops per process") }
                NR == 5 { ok = ($1 == "procs" && $2 == "FAM" && $3 == "ops/s" && $4 == "baseline" && $5 == "ops/s" && $6 == "ratio") }
                NR >= 6 && NR <= 8 { ok = ($1 == (NR == 6 ? 1 : NR == 7 ? 2 : 4) && $2 ~ n && $3 ~ n && $4 ~ r && NF == 4) }
                { if (!ok) { print "line " NR ": " $0; bad = 1 } }
                END { if (NR != 8) { print NR " lines, expected 8"; bad = 1 } exit bad }' "$tmp/out" > "$tmp/bad-lines" \
                && ok "bench fam: memcpy MB/s and fetch_add ops/s of 1, 2, 4 processes, all positive numbers" \
                || fail "bench fam: $(cat "$tmp/bad-lines")"
        [ -z "$(ls -A "$tmp/bench")" ] && ok "bench fam: its temporary FAM is gone" || fail "bench fam left $(ls -A "$tmp/bench")"
else
        fail "bench fam: exit $rc: $(cat "$tmp/err" "$tmp/out")"
fi
run bench fam --dir "$tmp/bench" --size 1M --rounds 2 --ops 1000 --json
if success "bench fam --json"; then
        [ "$(head -c1 "$tmp/out")" = "{" ] && grep -q '"bytes": 1048576,' "$tmp/out" && grep -q '"rounds": 2,' "$tmp/out" \
                && grep -Eq '"fam_MBps": [0-9.e+]+,' "$tmp/out" && grep -Eq '"persist": "[a-z]+"' "$tmp/out" \
                && [ "$(grep -Ec '"procs": [124],' "$tmp/out")" -eq 3 ] && [ "$(grep -Ec '"fam_ops_per_s": [1-9][0-9.e+]*,' "$tmp/out")" -eq 3 ] \
                && ok "bench fam --json: bytes, rounds, MB/s, 3 fetch_add rows" || fail "bench fam --json: $(cat "$tmp/out")"
fi
run bench fam --dir "$tmp/bench/none" --size 1M --rounds 1 --ops 10
error 1 "^fame: Failed to create a temporary directory in '$tmp/bench/none': No such file or directory; give an existing, writable directory with --dir$" "bench fam: its FAM goes in --dir"
# not a name others can guess: a file planted at the old name (the pid, which exec keeps) is
# neither used nor in the way (issue 16 #18c)
bash -c 'echo planted > "$0/fame-bench-$$.fam"; exec "$1" bench fam --dir "$0" --size 1M --rounds 1 --ops 10' \
        "$tmp/bench" "$FAME" > "$tmp/out" 2> "$tmp/err"
rc=$?
planted=$(ls "$tmp/bench")
[ "$rc" -eq 0 ] && [ "$(cat "$tmp/bench"/fame-bench-*.fam)" = planted ] && [ "$(echo "$planted" | wc -l)" -eq 1 ] \
        && ok "bench fam: a private temporary directory, a planted fame-bench-PID.fam untouched" \
        || fail "bench fam with a planted fame-bench-PID.fam: exit $rc, left '$planted': $(cat "$tmp/err")"
rm -f "$tmp/bench"/fame-bench-*.fam
run bench fam --size 1K
error 2 "^fame bench fam: --size '1K' is not a size from 4K to 4G; see 'fame help bench fam'$" "bench fam --size 1K"
run bench fam --rounds 0
error 2 "^fame bench fam: --rounds '0' is not a number from 1 to 1000" "bench fam --rounds 0"

echo "== fame shelf mkdir, mv (a Librarian on loopback)"
lib_pid=
port=
if "$FAME" fam create "$tmp/fam" --size 256M --book-size 8M --nodes 2 > "$tmp/setup.log" 2>&1 &&
   "$FAME" librarian topology --fam "$tmp/fam" > "$tmp/topology.ini" 2>> "$tmp/setup.log" &&
   "$FAME" librarian init --db "$tmp/librarian.db" --topology "$tmp/topology.ini" >> "$tmp/setup.log" 2>&1; then
        "$FAME" librarian serve --db "$tmp/librarian.db" --fam "$tmp/fam" --port 0 --port-file "$tmp/port" > "$tmp/librarian.log" 2>&1 &
        lib_pid=$!
        pids+=("$lib_pid")
        # poll, bounded (10 s): the Librarian writes its port file once it listens
        for _ in $(seq 200); do
                [ -s "$tmp/port" ] && break
                kill -0 "$lib_pid" 2> /dev/null || break
                sleep 0.05
        done
        port=$(cat "$tmp/port" 2> /dev/null)
fi
if [[ "$port" =~ ^[1-9][0-9]*$ ]]; then
        ok "the Librarian listens on 127.0.0.1:$port"
        export FAME_LIBRARIAN="127.0.0.1:$port"
        # who may say what: without the secret a caller is refused; the secrets are the owner's only
        run shelf ls
        [ "$rc" -eq 1 ] && grep -q "^fame: /: list_shelves: not authenticated: this port wants its secret first" "$tmp/err" \
                && ok "shelf ls without the secret is refused" || fail "shelf ls without the secret: exit $rc: $(cat "$tmp/err")"
        [ "$(stat -c %a "$tmp/librarian.db.secrets")" = 700 ] && [ "$(stat -c %a "$tmp/librarian.db.secrets/host.secret")" = 600 ] \
                && grep -Eqx '[0-9a-f]{64}' "$tmp/librarian.db.secrets/host.secret" \
                && ok "serve made DB.secrets/host.secret, 0600 in a 0700 directory" \
                || fail "the secrets: $(ls -la "$tmp/librarian.db.secrets" 2>&1)"
        FAME_LIBRARIAN_SECRET_FILE="$tmp/nowhere.secret" run shelf ls
        [ "$rc" -eq 1 ] && grep -q "Cannot read the Librarian's secret $tmp/nowhere.secret (FAME_LIBRARIAN_SECRET_FILE): No such file" "$tmp/err" \
                && ok "a missing secret file is named" || fail "a missing secret file: exit $rc: $(cat "$tmp/err")"
        export FAME_LIBRARIAN_SECRET_FILE="$tmp/librarian.db.secrets/host.secret"
        # the cluster's FAM, so that shelf info gives FAM offsets
        printf '[cluster]\nfam = %s\n' "$tmp/fam" > "$tmp/shelf.conf"
        export FAME_CONFIG="$tmp/shelf.conf"

        # mkdir, once by --address
        FAME_LIBRARIAN='' run shelf mkdir /proj --address "127.0.0.1:$port"
        if success "shelf mkdir /proj --address"; then
                [ ! -s "$tmp/out" ] && ok "shelf mkdir /proj (--address)" || fail "shelf mkdir printed $(cat "$tmp/out")"
        fi
        run shelf ls
        grep -Eq '^drwxrwxrwx +1 +0 B +0  proj$' "$tmp/out" && ok "shelf ls: proj is a directory made by node 1" \
                || fail "shelf ls: $(cat "$tmp/out" "$tmp/err")"
        run shelf ls --json
        grep -A1 '"name": "proj",' "$tmp/out" | grep -q '"mode": 16895,' && ok "shelf ls --json: proj has mode 040777" \
                || fail "shelf ls --json: $(grep -A1 proj "$tmp/out")"
        run shelf ls /proj
        if success "shelf ls /proj"; then
                [ "$(wc -l < "$tmp/out")" -eq 1 ] && grep -q '^MODE ' "$tmp/out" && ok "shelf ls /proj: an empty directory" \
                        || fail "shelf ls /proj: $(cat "$tmp/out")"
        fi
        run shelf create /proj/data --size 16M
        success "shelf create /proj/data"
        run shelf ls /proj
        grep -Eq '^-rw-r--r-- +1 +16 MiB +2  data$' "$tmp/out" && [ "$(wc -l < "$tmp/out")" -eq 2 ] \
                && ok "shelf ls /proj: holds data, 2 books" || fail "shelf ls /proj: $(cat "$tmp/out" "$tmp/err")"
        # the short options the help shows: -s, -m, -p
        run shelf create /proj/short -s 8M -m 600 -p LZAascending
        success "shelf create /proj/short -s 8M -m 600 -p LZAascending"
        run shelf ls /proj
        grep -Eq '^-rw------- +1 +8 MiB +1  short$' "$tmp/out" && ok "shelf create's short options: size, mode" \
                || fail "shelf create -s -m: $(cat "$tmp/out" "$tmp/err")"
        run shelf info /proj/short
        grep -q "LZAascending" "$tmp/out" && ok "shelf create -p: the policy" || fail "shelf create -p: $(cat "$tmp/out" "$tmp/err")"
        run shelf rm /proj/short
        success "shelf rm /proj/short"
        run shelf mkdir /proj
        error 1 "^fame: /proj: already exists$" "shelf mkdir of an existing name"
        run shelf mkdir /nowhere/sub
        error 1 '^fame: /nowhere/sub: .*"nowhere"' "shelf mkdir in a missing directory"
        run shelf mkdir
        error 2 "^fame shelf mkdir: missing argument" "shelf mkdir without a path"

        # mv: the same shelf (id, size, books, FAM offsets) under the new name only
        # books FILE: the shelf's identity in shelf info --json: its id, size, and every book
        books() { grep -E '^ *"(id|size_bytes|book_count|intlv_group|book_num|fam_offset)":' "$1" | tr -d ' ,'; }
        run shelf info /proj/data --json
        books "$tmp/out" > "$tmp/before"
        [ "$(grep -c '^"fam_offset":[1-9]' "$tmp/before")" -eq 2 ] && ok "shelf info --json: 2 books with FAM offsets" \
                || fail "shelf info /proj/data --json: $(cat "$tmp/out" "$tmp/err")"
        run shelf mv /proj/data /proj/renamed
        if success "shelf mv /proj/data /proj/renamed"; then
                [ ! -s "$tmp/out" ] && ok "shelf mv /proj/data /proj/renamed" || fail "shelf mv printed $(cat "$tmp/out")"
        fi
        run shelf ls /proj
        grep -Eq '  renamed$' "$tmp/out" && ! grep -Eq '  data$' "$tmp/out" && ok "shelf ls /proj: renamed, no data" \
                || fail "shelf ls /proj after mv: $(cat "$tmp/out")"
        run shelf info /proj/renamed --json
        books "$tmp/out" > "$tmp/after"
        grep -q '"path": "/proj/renamed",' "$tmp/out" && grep -q '"name": "renamed",' "$tmp/out" && cmp -s "$tmp/before" "$tmp/after" \
                && ok "shelf info /proj/renamed: the same id, size and books" \
                || fail "shelf info after mv: $(diff "$tmp/before" "$tmp/after"; cat "$tmp/err")"
        run shelf info /proj/data
        error 1 "^fame: /proj/data: no such shelf data$" "shelf info of the old name"
        # into another directory
        run shelf mkdir /archive
        run shelf mv /proj/renamed /archive/kept
        success "shelf mv /proj/renamed /archive/kept"
        run shelf info /archive/kept --json
        books "$tmp/out" > "$tmp/after"
        cmp -s "$tmp/before" "$tmp/after" && ok "shelf mv into /archive: the same shelf" || fail "shelf info /archive/kept: $(cat "$tmp/out" "$tmp/err")"
        run shelf ls /proj
        [ "$rc" -eq 0 ] && [ "$(wc -l < "$tmp/out")" -eq 1 ] && ok "shelf ls /proj: empty again" || fail "shelf ls /proj: exit $rc: $(cat "$tmp/out" "$tmp/err")"
        # onto an existing name: refused, both shelves as they were
        run shelf create /other
        run shelf mv /other /archive/kept
        error 1 "^fame: /other: Duplicate path .*/archive/kept" "shelf mv onto an existing name"
        run shelf info /archive/kept --json
        books "$tmp/out" > "$tmp/after"
        cmp -s "$tmp/before" "$tmp/after" && ok "the existing shelf is unchanged" || fail "/archive/kept changed: $(cat "$tmp/out" "$tmp/err")"
        run shelf info /other
        if success "shelf info /other"; then
                grep -q '^shelf     /other (id ' "$tmp/out" && ok "/other is still there" || fail "shelf info /other: $(cat "$tmp/out")"
        fi
        # of a missing shelf: refused, nothing made
        run shelf mv /ghost /ghost2
        error 1 "^fame: /ghost: no such shelf ghost$" "shelf mv of a missing shelf"
        run shelf info /ghost2
        error 1 "^fame: /ghost2: no such shelf ghost2$" "no /ghost2 made"
        run shelf mv /other
        error 2 "^fame shelf mv: missing argument" "shelf mv without a new path"

        echo "== fame librarian bench"
        # cycles/s and requests/s (4 requests a cycle, each rounded: within 2 of 4 x cycles/s)
        rows() {        # CPU CLIENTS...: the table of the last run has these rows, with positive figures, and
                        # the server's CPU per request (CPU=1: a figure in us, 0: "-")
                local cpu=$1; shift
                awk -v want="$*" -v cpu="$cpu" '
                        NR == 2 { hdr = ($1 == "clients" && $2 == "cycles/s" && $3 == "requests/s" && $4 == "vs" && $5 == "1" && $6 == "server" && $7 == "CPU/request") }
                        NR > 2 { got = got (got == "" ? "" : " ") $1
                                 d = $3 - 4 * $2
                                 c = cpu ? (NF == 6 && $5 ~ /^[0-9]+\.[0-9]$/ && $5 > 0 && $6 == "us") : (NF == 5 && $5 == "-")
                                 if (!($2 ~ /^[1-9][0-9]*$/ && d >= -2 && d <= 2 && $4 ~ /^[0-9]+\.[0-9][0-9]x$/ && c)) bad = bad " [" $0 "]" }
                        NR == 3 && $4 != "1.00x" { bad = bad " [first row not 1.00x]" }
                        END { if (!hdr) print "no header"; if (got != want) print "rows for " got ", expected " want; if (bad != "") print "bad rows:" bad
                              exit !(hdr && got == want && bad == "") }' "$tmp/out"
        }
        # with its own Librarian, in $TMPDIR
        mkdir -p "$tmp/lb"
        TMPDIR="$tmp/lb" run librarian bench --clients 1 --seconds 0.3
        if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && head -1 "$tmp/out" | grep -Eq '^Librarian benchmark against 127\.0\.0\.1:[0-9]+ \(its own server, 4-node FAM of 1 GiB\): .*0\.3 s per row$' \
                && rows 1 1 > "$tmp/why"; then
                ok "librarian bench (own server): $(tail -1 "$tmp/out")"
        else
                fail "librarian bench (own server): exit $rc: $(cat "$tmp/why" "$tmp/out" "$tmp/err" 2> /dev/null)"
        fi
        [ -z "$(ls -A "$tmp/lb")" ] && ok "librarian bench: its temporary Librarian is gone" || fail "librarian bench left $(ls -A "$tmp/lb")"
        # against the Librarian of this test; it destroys every shelf it made
        run librarian bench --address "127.0.0.1:$port" --clients 1,2 --seconds 0.3 --node 2
        if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && head -1 "$tmp/out" | grep -q "^Librarian benchmark against 127.0.0.1:$port: " \
                && rows 0 1 2 > "$tmp/why"; then
                ok "librarian bench --address: $(tail -2 "$tmp/out" | paste -sd';')"
        else
                fail "librarian bench --address: exit $rc: $(cat "$tmp/why" "$tmp/out" "$tmp/err" 2> /dev/null)"
        fi
        # the server's CPU per request, of another server: --server-pid
        run librarian bench --address "127.0.0.1:$port" --server-pid "$lib_pid" --clients 1 --seconds 0.3 --node 2
        [ "$rc" -eq 0 ] && rows 1 1 > "$tmp/why" && ok "librarian bench --server-pid: $(tail -1 "$tmp/out")" \
                || fail "librarian bench --server-pid: exit $rc: $(cat "$tmp/why" "$tmp/out" "$tmp/err" 2> /dev/null)"
        TMPDIR="$tmp/lb" run librarian bench --clients 1 --seconds 0.2 --fam-size 8G
        [ "$rc" -eq 0 ] && head -1 "$tmp/out" | grep -q "4-node FAM of 8 GiB" && rows 1 1 > "$tmp/why" \
                && ok "librarian bench --fam-size 8G: $(tail -1 "$tmp/out")" || fail "librarian bench --fam-size 8G: exit $rc: $(cat "$tmp/why" "$tmp/out" "$tmp/err" 2> /dev/null)"
        run librarian bench --fam-size 1M
        error 2 "^fame: librarian bench: --fam-size 1M: use a size of at least 64M" "librarian bench --fam-size 1M"
        run shelf ls
        if success "shelf ls after the benchmark"; then
                ! grep -q 'bench-' "$tmp/out" && ok "librarian bench left no shelves" || fail "after librarian bench: $(cat "$tmp/out")"
        fi
        run librarian bench --clients 0 --seconds 0.1
        [ "$rc" -eq 2 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -q "^fame: librarian bench: --clients 0: use numbers 1-256 separated by commas$" "$tmp/err" \
                && ok "librarian bench --clients 0: $(cat "$tmp/err")" || fail "librarian bench --clients 0: exit $rc: $(cat "$tmp/err")"
        run librarian bench --seconds 0
        error 2 "^fame: librarian bench: --seconds 0: use a number of seconds" "librarian bench --seconds 0"
        run librarian bench --node 81 --address "127.0.0.1:$port"
        error 2 "^fame: librarian bench: --node 81: use a node id 1-80" "librarian bench --node 81"
        run librarian bench --bogus
        error 2 "unrecognized option '--bogus'" "librarian bench --bogus"
        run librarian bench extra
        error 2 "^fame: librarian bench: unexpected argument 'extra'$" "librarian bench extra"

        # the Librarian stops cleanly
        stop "$lib_pid"
        st=$?
        pids=()
        [ "$st" -eq 0 ] && ok "the Librarian stopped on SIGTERM" || fail "the Librarian exited with $st: $(cat "$tmp/librarian.log")"
else
        fail "the Librarian did not start: $(cat "$tmp/setup.log" "$tmp/librarian.log" 2> /dev/null)"
fi

echo "== fame shelf ls and info: replies over 4 MiB (issue 14)"
# A sparse FAM of 128 GiB (8 nodes of 8188 books of 2 MiB), a Librarian without it, and shelves
# written into its database in one transaction, as create_shelf and resize_shelf would leave
# them: a directory of 24,000 shelves (a reply of about 5 MiB) and a shelf of 60,000 books.
# Its limits are small (--max-per-peer, --idle-timeout, --max-output): a reply far over
# --max-output still goes out whole, and a third connection from loopback is refused.
big=$tmp/big
mkdir -p "$big"
big_pid=
big_port=
uid=$(id -u) gid=$(id -g)
if "$FAME" fam create "$big/fam" --size 128G --book-size 2M --nodes 8 > "$big/setup.log" 2>&1 &&
   "$FAME" librarian topology --fam "$big/fam" > "$big/topology.ini" 2>> "$big/setup.log" &&
   "$FAME" librarian init --db "$big/librarian.db" --topology "$big/topology.ini" >> "$big/setup.log" 2>&1 &&
   sqlite3 "$big/librarian.db" >> "$big/setup.log" 2>&1 <<SQL
BEGIN;
INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id, link_count, uid, gid)
  VALUES (1, 0, 0, 1700000000, 1700000000, 'large', $((8#40755)), 2, 2, $uid, $gid);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 24000)
  INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id, link_count, uid, gid)
  SELECT 1, 0, 0, 1700000000, 1700000000, printf('shelf-%06d', i), $((8#100644)),
         (SELECT id FROM shelves WHERE parent_id = 2 AND name = 'large'), 1, $uid, $gid FROM n;
INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id, link_count, uid, gid)
  VALUES (1, 60000 * 2097152, 60000, 1700000000, 1700000000, 'many-books', $((8#100644)), 2, 1, $uid, $gid);
UPDATE books SET allocated = 1 WHERE id IN (SELECT id FROM books ORDER BY id LIMIT 60000);
INSERT INTO books_on_shelves
  SELECT (SELECT id FROM shelves WHERE parent_id = 2 AND name = 'many-books'), id, ROW_NUMBER() OVER (ORDER BY id)
  FROM books WHERE allocated = 1 ORDER BY id;
COMMIT;
SQL
then
        "$FAME" librarian serve --db "$big/librarian.db" --port 0 --port-file "$big/port" \
                --max-per-peer 2 --idle-timeout 5 --max-output 64K > "$big/librarian.log" 2>&1 &
        big_pid=$!
        pids+=("$big_pid")
        for _ in $(seq 200); do
                [ -s "$big/port" ] && break
                kill -0 "$big_pid" 2> /dev/null || break
                sleep 0.05
        done
        big_port=$(cat "$big/port" 2> /dev/null)
fi
if [[ "$big_port" =~ ^[1-9][0-9]*$ ]]; then
        printf '[cluster]\nfam = %s\n' "$big/fam" > "$big/shelf.conf"
        FAME_CONFIG="$big/shelf.conf" FAME_LIBRARIAN="127.0.0.1:$big_port" FAME_LIBRARIAN_SECRET_FILE="$big/librarian.db.secrets/host.secret" run shelf ls /large
        if success "shelf ls /large"; then
                [ "$(wc -l < "$tmp/out")" -eq 24001 ] && tail -1 "$tmp/out" | grep -Eq '^-rw-r--r-- +1 +0 B +0  shelf-024000$' \
                        && ok "shelf ls /large: 24,000 shelves" || fail "shelf ls /large: $(wc -l < "$tmp/out") lines, last $(tail -1 "$tmp/out")"
        fi
        FAME_CONFIG="$big/shelf.conf" FAME_LIBRARIAN="127.0.0.1:$big_port" FAME_LIBRARIAN_SECRET_FILE="$big/librarian.db.secrets/host.secret" run shelf info /many-books --json
        if success "shelf info /many-books --json"; then
                n=$(grep -c '"book_num":' "$tmp/out")
                [ "$n" -eq 60000 ] && ok "shelf info /many-books: 60,000 books" || fail "shelf info /many-books: $n books"
        fi
        # --max-per-peer 2: two connections held open, the third is told why it is refused
        exec {c1}<> "/dev/tcp/127.0.0.1/$big_port" {c2}<> "/dev/tcp/127.0.0.1/$big_port"
        FAME_CONFIG="$big/shelf.conf" FAME_LIBRARIAN="127.0.0.1:$big_port" FAME_LIBRARIAN_SECRET_FILE="$big/librarian.db.secrets/host.secret" run shelf ls /
        error 1 "Librarian full \(2 connections from 127\.0\.0\.1 to port $big_port\)" "--max-per-peer 2: a third connection"
        exec {c1}>&- {c2}>&-
        stop "$big_pid"
        pids=()
else
        fail "the Librarian of 128 GiB did not start: $(cat "$big/setup.log" "$big/librarian.log" 2> /dev/null)"
fi

echo "$failures failure(s)"
exit $((failures > 0))
