#!/bin/bash
# Compatibility with HPE's tm-librarian (the Python original), using its own code:
#   1. book_register.py and `fame librarian init` make identical rows from the same topology
#      (FAM/E's generated INI and every configfiles/ example the original accepts);
#   2. FAM/E's Librarian serves a database made by book_register.py (upgraded in place);
#   3. the original's client classes (socket_handling.Client, cmdproto, TMShelf/TMBook) drive
#      FAM/E's Librarian as lfs_fuse does (tests/compat/tm-librarian-client.py);
#   4. the original's tm-lmp (lmp.py, through Flask's test client; needs python3-flask) and
#      `fame lmp serve` answer alike on one database made from FAM/E's TMCF topology
#      (tests/compat/tm-lmp-compare.py).
# Needs FAME_TM_LIBRARIAN_SRC = a checkout of FabricAttachedMemory/tm-librarian (FAM/E does not
# ship it) and python3; skipped otherwise.
set -u
: "${FAME:?}" "${FAME_SOURCE_ROOT:?}"
src=${FAME_TM_LIBRARIAN_SRC:-}
[ -n "$src" ] && [ -f "$src/src/book_register.py" ] || { echo "SKIP: set FAME_TM_LIBRARIAN_SRC to a checkout of FabricAttachedMemory/tm-librarian"; exit 77; }
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
command -v sqlite3 > /dev/null || { echo "SKIP: sqlite3 is not installed (scripts/install-deps)"; exit 77; }
librarian=${FAME_LIBRARIAN_BIN:-$(dirname "$FAME")/fame-librarian}
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-tmlib-XXXXXX")
pids=()
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; [ "$failures" -eq 0 ] && rm -rf "$work" || echo "kept $work"; }
trap cleanup EXIT

# rows of the tables book_register writes (times left out of shelves)
dump() {
        local t
        for t in globals FRDnodes SOCs FAModules books; do
                echo "== $t"; sqlite3 -list "$1" "SELECT * FROM $t ORDER BY 1, 2"
        done
        echo "== shelves"; sqlite3 -list "$1" "SELECT id, creator_id, size_bytes, book_count, name, mode, parent_id, link_count FROM shelves ORDER BY id"
}

same_rows() {   # NAME TOPOLOGY
        rm -f "$work/orig.db" "$work/ours.db"
        if ! python3 "$src/src/book_register.py" -d "$work/orig.db" "$2" > "$work/br.log" 2>&1 || [ ! -s "$work/orig.db" ]; then
                echo "   ($1: the original refuses it)"
                "$FAME" librarian init --db "$work/ours.db" --topology "$2" > /dev/null 2>&1 && fail "$1: refused by book_register.py, accepted by FAM/E"
                return
        fi
        "$FAME" librarian init --db "$work/ours.db" --topology "$2" > "$work/init.log" 2>&1 || { fail "$1: $(cat "$work/init.log")"; return; }
        if diff <(dump "$work/orig.db") <(dump "$work/ours.db") > "$work/diff" 2>&1; then ok "$1: identical rows"; else fail "$1: rows differ"; head -20 "$work/diff"; fi
}

serve() {       # DB [--fam FAM] [--trust-clients]: starts the Librarian, sets $port
        rm -f "$work/port"
        "$librarian" serve --db "$@" --port 0 --port-file "$work/port" > "$work/serve.log" 2>&1 &
        pids+=($!)
        for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done    # waiting for another process to listen
        port=$(cat "$work/port" 2>/dev/null)
        [ -n "$port" ] || fail "the Librarian did not start: $(cat "$work/serve.log")"
}

echo "== 1. book_register.py and fame librarian init"
"$FAME" fam create "$work/fam" --size 1G --nodes 4 > /dev/null
"$FAME" librarian topology --fam "$work/fam" > "$work/fame.ini"
same_rows "FAM/E's generated topology" "$work/fame.ini"
"$FAME" fam create "$work/fam8" --size 2G --nodes 8 --nodes-per-enclosure 4 > /dev/null
"$FAME" librarian topology --fam "$work/fam8" > "$work/fame8.ini"
same_rows "FAM/E's long form (4 nodes per enclosure)" "$work/fame8.ini"
for f in "$src"/configfiles/*.ini "$src"/configfiles/*.json; do
        same_rows "configfiles/$(basename "$f")" "$f"
done

echo "== 2. a database made by book_register.py, served by FAM/E"
python3 "$src/src/book_register.py" -d "$work/orig.db" "$work/fame.ini" > /dev/null 2>&1
serve "$work/orig.db" --fam "$work/fam" --trust-clients
python3 "$FAME_SOURCE_ROOT/tests/compat/tm-librarian-client.py" "$src" "$port" 3 $((8 << 20)) > "$work/client.log" 2>&1 \
        && ok "the original client against FAM/E serving the original's database ($(grep -c '^ok' "$work/client.log") checks)" \
        || { fail "client against the original's database:"; grep -v '^ok' "$work/client.log"; }

echo "== 3. FAM/E's own database"
"$FAME" librarian init --db "$work/ours.db" --topology "$work/fame.ini" --force > /dev/null
# who may say what (docs/librarian.md): the original's clients send no secret, so a Librarian
# that asks for one (the default) refuses them, and --trust-clients lets them in
serve "$work/ours.db" --fam "$work/fam"
python3 "$FAME_SOURCE_ROOT/tests/compat/tm-librarian-client.py" "$src" "$port" 2 $((8 << 20)) > "$work/client.log" 2>&1
rc=$?
[ "$rc" -eq 3 ] && grep -q "^refused: errno 13: get_fs_stats: not authenticated" "$work/client.log" \
        && ok "without --trust-clients the original client is refused: $(grep '^refused' "$work/client.log" | cut -c1-60)..." \
        || { fail "the original client without --trust-clients: exit $rc"; cat "$work/client.log"; }
kill "${pids[-1]}" 2> /dev/null; wait "${pids[-1]}" 2> /dev/null
serve "$work/ours.db" --fam "$work/fam" --trust-clients
python3 "$FAME_SOURCE_ROOT/tests/compat/tm-librarian-client.py" "$src" "$port" 2 $((8 << 20)) > "$work/client.log" 2>&1 \
        && ok "the original client against FAM/E ($(grep -c '^ok' "$work/client.log") checks)" \
        || { fail "client:"; grep -v '^ok' "$work/client.log"; }
echo "== 4. tm-lmp: the original's lmp.py and fame lmp serve, one database"
kill "${pids[@]}" 2> /dev/null; wait 2> /dev/null; pids=()
# FAM/E's TMCF topology (fame up's): book_register.py makes the same rows from it
"$FAME" librarian topology --fam "$work/fam" --tmcf > "$work/fame.json"
same_rows "FAM/E's TMCF topology" "$work/fame.json"
if ! python3 -c 'import flask' 2> /dev/null; then
        echo "SKIP-STEP: tm-librarian-compat: tm-lmp's lmp.py needs Flask (apt-get install python3-flask)"
else
        python3 "$src/src/book_register.py" -d "$work/lmp.db" "$work/fame.json" > /dev/null 2>&1
        serve "$work/lmp.db" --fam "$work/fam" --trust-clients
        for s in lmp-a:16M lmp-b:8M; do
                FAME_LIBRARIAN=127.0.0.1:$port "$FAME" shelf create "/${s%%:*}" --size "${s#*:}" > /dev/null 2>&1 || fail "shelf create ${s%%:*}"
        done
        kill "${pids[@]}" 2> /dev/null; wait 2> /dev/null; pids=()
        rm -f "$work/lmp-port"
        "$FAME" lmp serve --db "$work/lmp.db" --fam "$work/fam" --port 0 --port-file "$work/lmp-port" > "$work/lmp.log" 2>&1 &
        pids+=($!)
        for _ in $(seq 100); do [ -s "$work/lmp-port" ] && break; sleep 0.05; done    # waiting for another process to listen
        node2=$(jq -r '.interleaveGroups[1].mediaControllers[0]' "$work/fame.json" | sed 's|^/||; s|/MemoryBoard/.*||')
        python3 "$FAME_SOURCE_ROOT/tests/compat/tm-lmp-compare.py" "$src" "$work/lmp.db" "http://127.0.0.1:$(cat "$work/lmp-port")/" "$node2" \
                > "$work/lmp-compare.log" 2>&1 && ok "lmp.py and fame lmp serve: $(grep -c '^ok' "$work/lmp-compare.log") answers alike" \
                || { fail "lmp.py and fame lmp serve differ:"; grep -v '^ok' "$work/lmp-compare.log"; }
fi
echo "$failures failure(s)"
exit $((failures > 0))
