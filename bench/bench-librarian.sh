#!/bin/bash
# Benchmark (not a test): server CPU per request of FAM/E's Librarian beside HPE's original
# librarian.py, in the same run, on the same topology (docs/librarian.md, "Benchmark").  For
# each FAM size: a sparse FAM file, its topology, FAM/E's database (fame librarian init) and,
# with FAME_TM_LIBRARIAN_SRC, the original's (its own src/book_register.py); both servers run
# at once on loopback, and `fame librarian bench --lfs-unlink` drives each in turn (interleaved,
# every round runs every server), taking the median over the rounds.  Goals (issue 16): the
# original costs at least 20 times FAM/E per request at 1 GiB; FAM/E at 64 GiB within 20 % of
# FAM/E at 1 GiB.  Prints PASS/MISS for each, exits 0 whatever the figures.
#   bench/bench-librarian.sh [SIZES...]      (default: 1G 64G)
# FAME_TM_LIBRARIAN_SRC: a checkout of FabricAttachedMemory/tm-librarian (not shipped with FAM/E;
# FAM/E's figures alone without it).  FAME_BENCH_ROUNDS (3), FAME_BENCH_CLIENTS (8) and
# FAME_BENCH_SECONDS (3, per run) change the runs.  Builds nothing: uses build/ (FAME,
# FAME_LIBRARIAN_BIN).
set -u
FAME=${FAME:-$(dirname "$0")/../build/fame}
librarian=${FAME_LIBRARIAN_BIN:-$(dirname "$FAME")/fame-librarian}
rounds=${FAME_BENCH_ROUNDS:-3}
clients=${FAME_BENCH_CLIENTS:-8}
seconds=${FAME_BENCH_SECONDS:-3}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1G 64G)
for f in "$FAME" "$librarian"; do
        [ -x "$f" ] || { echo "$f: not built (meson setup build && ninja -C build)"; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/fame-bench-librarian-XXXXXX") || exit 1
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
        [ -n "$work" ] && [ -d "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The original, if it can run here
src=${FAME_TM_LIBRARIAN_SRC:-}
original=""
why_not="set FAME_TM_LIBRARIAN_SRC to a checkout of https://github.com/FabricAttachedMemory/tm-librarian for the comparison"
if [ -n "$src" ]; then
        if [ ! -f "$src/src/librarian.py" ] || [ ! -f "$src/src/book_register.py" ]; then
                why_not="FAME_TM_LIBRARIAN_SRC=$src has no src/librarian.py and src/book_register.py"
        elif ! command -v python3 > /dev/null; then
                why_not="python3 is not installed: the original cannot run"
        elif ! err=$(cd "$src/src" && python3 -c 'import backend_sqlite3, engine, socket_handling, book_register' 2>&1); then
                why_not="the original cannot run here: $(echo "$err" | tail -1)"
        else
                original=yes
        fi
fi

# librarian.py binds every address on a fixed --port; this launcher (FAM/E's, not the
# original's code) runs it unchanged with its listening socket on 127.0.0.1 and, for --port 0,
# writes the port it got to $FAME_BENCH_PORT_FILE once it listens.
cat > "$work/run-original.py" << 'EOF'
import os, runpy, socket, sys
src = sys.argv[1]
bind, listen = socket.socket.bind, socket.socket.listen
def loopback_bind(self, address):
    if isinstance(address, tuple) and address[0] in ('', '0.0.0.0'):
        address = ('127.0.0.1',) + tuple(address[1:])
    return bind(self, address)
def listen_and_tell(self, *args):
    listen(self, *args)
    port_file = os.environ['FAME_BENCH_PORT_FILE']
    with open(port_file + '.tmp', 'w') as f:
        f.write('%d\n' % self.getsockname()[1])
    os.rename(port_file + '.tmp', port_file)
socket.socket.bind, socket.socket.listen = loopback_bind, listen_and_tell
sys.path.insert(0, os.path.join(src, 'src'))
sys.argv = [os.path.join(src, 'src', 'librarian.py')] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
EOF

wait_port() {   # PORT_FILE PID LOG: prints the port once the server listens
        local deadline=$((SECONDS + 30))
        while [ ! -s "$1" ]; do
                if ! kill -0 "$2" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
                        echo "server did not start: $(tail -3 "$3")" >&2
                        return 1
                fi
                sleep 0.05      # waiting for another process to listen
        done
        cat "$1"
}

declare -A port pid cpu rate
servers=(fame)
[ -n "$original" ] && servers+=(orig)
for s in "${sizes[@]}"; do
        d="$work/$s"
        mkdir -p "$d"
        "$FAME" fam create "$d/fam" --size "$s" --nodes 4 > "$d/setup.log" 2>&1 &&
                "$FAME" librarian topology --fam "$d/fam" > "$d/topo.ini" 2>> "$d/setup.log" &&
                "$FAME" librarian init --db "$d/fame.db" --topology "$d/topo.ini" >> "$d/setup.log" 2>&1 ||
                { echo "$s: setup failed: $(tail -3 "$d/setup.log")"; exit 1; }
        "$librarian" serve --db "$d/fame.db" --fam "$d/fam" --port 0 --port-file "$d/fame.port" > "$d/fame.log" 2>&1 &
        pid[fame,$s]=$!
        pids+=($!)
        if [ -n "$original" ]; then
                python3 "$src/src/book_register.py" -d "$d/orig.db" "$d/topo.ini" > "$d/register.log" 2>&1 && [ -s "$d/orig.db" ] ||
                        { echo "$s: book_register.py failed: $(tail -3 "$d/register.log")"; exit 1; }
                FAME_BENCH_PORT_FILE="$d/orig.port" python3 "$work/run-original.py" "$src" --db_file "$d/orig.db" --port 0 \
                        > "$d/orig.log" 2>&1 &
                pid[orig,$s]=$!
                pids+=($!)
        fi
done
for s in "${sizes[@]}"; do
        port[fame,$s]=$(wait_port "$work/$s/fame.port" "${pid[fame,$s]}" "$work/$s/fame.log") || exit 1
        [ -n "$original" ] && { port[orig,$s]=$(wait_port "$work/$s/orig.port" "${pid[orig,$s]}" "$work/$s/orig.log") || exit 1; }
done

run() {         # SERVER SIZE: one bench run, appends to cpu[] and rate[]
        local d="$work/$2" out
        out="$d/bench.out"
        if [ "$1" = fame ]; then
                FAME_LIBRARIAN_SECRET_FILE="$d/fame.db.secrets/host.secret" "$FAME" librarian bench \
                        --address "127.0.0.1:${port[$1,$2]}" --server-pid "${pid[$1,$2]}" --lfs-unlink \
                        --clients "$clients" --seconds "$seconds" > "$out" 2>&1
        else    # the original's clients send no secret
                env -u FAME_LIBRARIAN_SECRET_FILE "$FAME" librarian bench \
                        --address "127.0.0.1:${port[$1,$2]}" --server-pid "${pid[$1,$2]}" --lfs-unlink \
                        --clients "$clients" --seconds "$seconds" > "$out" 2>&1
        fi
        local row
        row=$(awk -v n="$clients" '$1 == n && $NF == "us" { print $2, $(NF - 1) }' "$out")
        if [ -z "$row" ]; then
                echo "   $1 $2: bench failed: $(tail -2 "$out" | tr '\n' ' ')"
                return
        fi
        rate[$1,$2]+="${row% *} "
        cpu[$1,$2]+="${row#* } "
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== Librarian server CPU per request: $clients clients, lfs unlink cycle (6 requests), $seconds s per run, median of $rounds rounds"
[ -n "$original" ] || echo "   FAM/E alone: $why_not"
for r in $(seq "$rounds"); do
        order=("${servers[@]}")
        # alternate which server goes first in a round
        [ $((r % 2)) -eq 0 ] && [ ${#servers[@]} -eq 2 ] && order=(orig fame)
        for s in "${sizes[@]}"; do
                for v in "${order[@]}"; do run "$v" "$s"; done
        done
done

printf '%-6s %16s %16s %18s %14s %14s\n' FAM "FAM/E µs/req" "original µs/req" "original / FAM/E" "FAM/E cyc/s" "orig. cyc/s"
declare -A med
for s in "${sizes[@]}"; do
        for v in "${servers[@]}"; do
                med[cpu,$v,$s]=$(echo "${cpu[$v,$s]:-}" | median)
                med[rate,$v,$s]=$(echo "${rate[$v,$s]:-}" | median)
        done
        awk -v s="$s" -v f="${med[cpu,fame,$s]}" -v o="${med[cpu,orig,$s]:-}" -v fr="${med[rate,fame,$s]}" \
                -v orr="${med[rate,orig,$s]:-}" 'BEGIN {
                printf "%-6s %16s %16s %18s %14s %14s\n", s, f == "" ? "-" : sprintf("%.1f", f),
                        o == "" ? "-" : sprintf("%.1f", o), (f > 0 && o > 0) ? sprintf("%.1fx", o / f) : "-",
                        fr == "" ? "-" : sprintf("%.0f", fr), orr == "" ? "-" : sprintf("%.0f", orr) }'
done
echo "runs (µs/request, in order):"
for s in "${sizes[@]}"; do
        for v in "${servers[@]}"; do
                printf '   %-5s %-6s %s\n' "$v" "$s" "${cpu[$v,$s]:-failed}"
        done
        # the two servers of a round ran back to back, under about the same load
        [ -n "$original" ] && echo "${cpu[fame,$s]:-}|${cpu[orig,$s]:-}" | awk -F'|' -v s="$s" '{
                n = split($1, f, " "); m = split($2, o, " ")
                if (n == m && n > 0) { printf "   ratio %-6s", s; for (i = 1; i <= n; i++) printf " %.1fx", o[i] / f[i]; print " (original / FAM/E, round by round)" } }'
done

# Goals (issue 16)
f1=${med[cpu,fame,1G]:-} f64=${med[cpu,fame,64G]:-} o1=${med[cpu,orig,1G]:-}
if [ -z "$original" ]; then
        echo "goal: original / FAM/E >= 20 at 1 GiB: not measured ($why_not)"
elif [ -n "$f1" ] && [ -n "$o1" ]; then
        awk -v f="$f1" -v o="$o1" 'BEGIN { printf "goal: original / FAM/E >= 20 at 1 GiB: %.1fx, %s\n", o / f, (o / f >= 20) ? "PASS" : "MISS" }'
else
        echo "goal: original / FAM/E >= 20 at 1 GiB: not measured (no 1G run)"
fi
if [ -n "$f1" ] && [ -n "$f64" ]; then
        awk -v a="$f1" -v b="$f64" 'BEGIN { printf "goal: FAM/E 64 GiB <= 1.2 x 1 GiB: %.2fx, %s\n", b / a, (b <= 1.2 * a) ? "PASS" : "MISS" }'
else
        echo "goal: FAM/E 64 GiB <= 1.2 x 1 GiB: not measured (needs 1G and 64G runs)"
fi

# The floor under any Librarian here: a server that only answers (recv, send), and one that also
# writes 4 KiB per request and syncs once per round before replying, as FAM/E's durable commits
# do (bench/librarian-floor.c); what FAM/E's figure leaves above it is its own work.
if cc -O2 -std=c11 -D_GNU_SOURCE -pthread -o "$work/librarian-floor" "$(dirname "$0")/librarian-floor.c" 2> "$work/cc.log"; then
        plain=$("$work/librarian-floor" "$clients" "$seconds" "$work" | sed -n 's/.*server CPU \([0-9.]*\) us.*/\1/p')
        durable=$("$work/librarian-floor" --durable "$clients" "$seconds" "$work" | sed -n 's/.*server CPU \([0-9.]*\) us.*/\1/p')
        echo "floor, $clients clients: answering only ${plain:-?} µs/request; with a 4 KiB write per request and one fdatasync per round ${durable:-?} µs/request"
        [ -n "$f1" ] && [ -n "$durable" ] && awk -v f="$f1" -v d="$durable" -v o="${o1:-}" 'BEGIN {
                printf "   FAM/E at 1 GiB is %.1fx the durable floor", f / d
                if (o != "") printf "; 1/20 of the original (%.1f µs) is %s the durable floor", o / 20, (o / 20 < d) ? "below" : "above"
                print "" }'
else
        echo "floor: not measured (cc failed: $(head -1 "$work/cc.log"))"
fi
echo "(server CPU = user + system time of the server process from /proc/PID/stat; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
exit 0
