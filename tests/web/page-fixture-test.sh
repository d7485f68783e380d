#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Check the LMP management page in headless Chromium (through cdp.py).
#
#   page-fixture-test.sh [URL]
#
# With a URL: check the page a running server (fame lmp serve) shows, against that server's
# own /api/v1 answers.  Without: generate fixture trees (small: 1 node and hostile shelf
# names; large: 40 nodes, 128 Ki books, 300 shelves), serve each from 127.0.0.1 on a free
# port with Python's http.server (plus the server's Content-Security-Policy header, so an
# inline script or style would be caught) and check those, then rewrite the small tree
# while the page is open and wait for the live update.
# Prints ok:/FAIL: lines; exits non-zero on any failure.  Screenshots go to
# $FAME_TEST_LOG_DIR (or /tmp).
set -u
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3            # Debian's python: it has python3-websocket
cdp="$py $here/cdp.py"
logdir=${FAME_TEST_LOG_DIR:-${FAME_BUILD_ROOT:+$FAME_BUILD_ROOT/meson-logs}}
logdir=${logdir:-/tmp}
mkdir -p "$logdir"
work=$(mktemp -d /tmp/fame-page-test.XXXXXX)
failed=0
server_pid=

cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failed=1; }

# serve DIR: start a static server on a free port (the kernel picks it: port 0) and set
# $base once it answers.  No fixed sleeps: poll for the port file, then for an answer.
serve() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -f "$work/port"
    $py - "$1" "$work/port" <<'PY' >"$work/server.log" 2>&1 &
import functools, http.server, os, sys
class H(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        # As the C server does: the page must work with no inline script/style.
        self.send_header("Content-Security-Policy", "default-src 'self'")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()
    def guess_type(self, path):
        return "application/json" if "/api/" in path else super().guess_type(path)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
PY
    server_pid=$!
    i=0
    while [ ! -s "$work/port" ]; do
        i=$((i + 1)); [ $i -gt 200 ] && { fail "fixture server did not start"; cat "$work/server.log"; exit 1; }
        kill -0 "$server_pid" 2>/dev/null || { fail "fixture server died"; cat "$work/server.log"; exit 1; }
        sleep 0.05
    done
    base="http://127.0.0.1:$(cat "$work/port")/"
    i=0
    until $py -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "${base}api/v1/summary" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { fail "fixture server does not answer at $base"; exit 1; }
        sleep 0.05
    done
}

# JS run in the page: compare the DOM with what the API says.  Returns a list of problems.
check_js='(async () => {
  const get = async (p) => (await fetch("api/v1/" + p, { cache: "no-store" })).json();
  const [nodes, shelves] = [(await get("nodes")).nodes, (await get("shelves")).shelves];
  const bad = [];
  for (const n of nodes) {
    const e = [...document.querySelectorAll("#machine [data-node-name]")].find((x) => x.dataset.nodeName === n.name);
    if (!e) bad.push("node " + n.name + " missing from #machine");
    else if (e.dataset.state !== n.state) bad.push("node " + n.name + " state " + e.dataset.state + " != " + n.state);
  }
  const rows = [...document.querySelectorAll("#shelves tbody tr")];
  for (const s of shelves) {
    const r = rows.find((x) => x.dataset.shelfPath === s.path);
    if (!r) bad.push("shelf " + s.path + " missing from #shelves");
    else if (!r.textContent.includes(s.path)) bad.push("shelf " + s.path + " not shown as text");
  }
  if (rows.length !== shelves.length) bad.push(rows.length + " shelf rows for " + shelves.length + " shelves");
  // Hostile names must be text: no element may have been made from them.
  if (document.querySelectorAll("script").length !== 1) bad.push("unexpected <script> elements");
  if (document.querySelectorAll("img").length !== 0) bad.push("unexpected <img> elements");
  if (document.querySelectorAll("#fam-map canvas").length === 0) bad.push("no FAM map canvas");
  if (!/updated \d\d:\d\d:\d\d/.test(document.querySelector("#updated").textContent)) bad.push("no #updated time");
  if (!document.querySelector("#error").hidden) bad.push("error banner shown");
  return bad;
})()'

# check NAME URL [extra cdp.py args]: the whole DOM check plus a screenshot.
check() {
    name=$1 url=$2; shift 2
    out=$($cdp "$url" --timeout 30 --wait 'document.body.dataset.generation' \
        --eval "$check_js" --eval 'document.body.dataset.drawMs + " " + document.body.dataset.firstDrawAt' \
        --screenshot "$logdir/page-$name.png" "$@" 2>"$work/cdp.err")
    rc=$?
    problems=$(echo "$out" | sed -n 1p)
    if [ $rc -ne 0 ]; then
        fail "$name: cdp.py: $(cat "$work/cdp.err")"
    elif [ "$problems" != "[]" ]; then
        fail "$name: $problems"
    else
        set -- $(echo "$out" | sed -n 2p | tr -d '"')
        ok "$name: every node and shelf shown, hostile names as text, no page error (draw ${1} ms, first draw ${2} ms after navigation; screenshot $logdir/page-$name.png)"
    fi
}

if [ $# -ge 1 ]; then
    check server "$1"
    exit $failed
fi

small="$work/small" large="$work/large"
$py "$here/make-fixtures.py" small "$small" || exit 1
$py "$here/make-fixtures.py" large "$large" || exit 1

serve "$small"
check small "$base"
js_hostile='[...document.querySelectorAll("#shelves tbody tr")].some((r) => r.dataset.shelfPath === "/<script>alert(1)</script>" && r.textContent.includes("<script>alert(1)</script>"))'
out=$($cdp "$base" --timeout 20 --wait 'document.body.dataset.generation' --eval "$js_hostile" 2>&1)
[ "$out" = true ] && ok "small: '<script>alert(1)</script>' is a literal shelf name" || fail "small: hostile name: $out"

# Hover hit-testing and the spec's book arithmetic: small-fixture book 5 of IG 0 belongs to
# the <script> shelf; LZA = 5 << 33, FAM offset = 5 * 8 MiB.  Then a click on a shelf row
# selects it (and highlights its books).
js_hover='(() => {
  const cv = document.querySelector("#fam-map canvas"), r = cv.getBoundingClientRect();
  const cell = r.width / cv.width;
  cv.dispatchEvent(new MouseEvent("mousemove", { clientX: r.left + 5.5 * cell, clientY: r.top + cell / 2, bubbles: true }));
  const row = document.querySelector("#shelves tbody tr[data-shelf-path=\"/data/results\"]");
  row.click();
  return [document.querySelector("#fam-info").textContent, row.classList.contains("selected"), document.body.dataset.selected];
})()'
out=$($cdp "$base" --timeout 20 --wait 'document.body.dataset.generation' --eval "$js_hover" 2>&1)
case $out in
    *'IG 0 book 5: /<script>alert(1)</script>  owner 0:0\nLZA 0xa00000000  FAM offset 0x2800000", true, "/data/results"]')
        ok "small: hover shows shelf, owner, LZA 0xa00000000 and offset 0x2800000; row click selects the shelf" ;;
    *) fail "small: hover/click: $out" ;;
esac

# Live update: with the page open, rewrite the tree (generation 2 + /live-added) and wait for
# the row; then stop answering and check the banner, then answer again and check it clears.
out=$($cdp "$base" --timeout 20 --wait 'document.body.dataset.generation === "1"' \
    --run "$py '$here/make-fixtures.py' small '$small' --no-assets --generation 2 --add-shelf /live-added" \
    --wait 'document.querySelector("#shelves tr[data-shelf-path=\"/live-added\"]") && document.body.dataset.generation === "2"' \
    --run "$py '$here/make-fixtures.py' small '$small' --no-assets --generation 2 --add-shelf /live-added --node-state node01=down" \
    --wait 'document.querySelector("#machine [data-node-name=\"node01\"]").dataset.state === "down"' \
    --run "mv '$small/api' '$small/api.off'" \
    --wait '!document.querySelector("#error").hidden && document.querySelector("#error").textContent.includes("server unreachable")' \
    --run "mv '$small/api.off' '$small/api'" \
    --wait 'document.querySelector("#error").hidden' \
    --eval 'document.body.dataset.generation' 2>&1)
[ "$out" = '"2"' ] && ok "small: live update drew generation 2 with /live-added, then node01 going down; error banner shown and cleared" \
    || fail "small: live update: $out"

serve "$large"
check large "$base"
out=$($cdp "$base" --timeout 30 --wait 'document.body.dataset.generation' \
    --eval '[document.querySelectorAll("#machine .rack").length, document.querySelectorAll("#fam-map .group").length, [...document.querySelectorAll("#fam-map .group-counts tr")].reduce((a, r) => a + Number(r.dataset.count), 0)]' 2>&1)
[ "$out" = '[4, 40, 131080]' ] && ok "large: 4 racks, 40 groups, 131080 books counted in the DOM summaries" \
    || fail "large: racks/groups/books: $out"
exit $failed
