#!/bin/bash
# The management view (docs/lmp.md) of a real cluster, in a real browser: `fame up` prints its
# address and `fame status` (--json too) shows it; headless Chromium (tests/web/cdp.py) shows
# every node and every shelf that `fame shelf ls` lists, a shelf made with `fame shelf create`
# appears without a reload, a shelf named like markup is text; the API answers over HTTP with
# JSON 404s; `fame down` stops it.  The screenshot is kept in meson-logs/.
. "$(dirname "$0")/lib.sh"
web="$FAME_SOURCE_ROOT/tests/web"
py=/usr/bin/python3
shots="$FAME_BUILD_ROOT/meson-logs"
[ -x /usr/bin/chromium ] && $py -c 'import websocket' 2> /dev/null ||
        { fail "chromium and python3-websocket are needed: scripts/install-deps installs them"; finish; }

step "fame up -n 2: the page's address"
run up -n 2
cat "$out" "$err"
[ "$rc" -eq 0 ] || { fail "fame up exited $rc"; finish; }
url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$out")
[ -n "$url" ] && ok "up prints $url" || fail "fame up prints no address"
run status --json
[ "$(jq -r .librarian.lmp_url "$out")" = "$url" ] && ok "status --json: librarian.lmp_url" || fail "status --json: $(cat "$out")"
run status
grep -q "the Machine and its FAM: $url" "$out" && ok "status prints it" || fail "status: $(cat "$out")"

step "shelves to show, one named like markup"
for s in /web-a /web-b '/<script>alert(1)<'; do
        run shelf create "$s" --size 16M
        [ "$rc" -eq 0 ] || fail "shelf create $s: $(cat "$err")"
done

step "the API over HTTP"
code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
[ "$(code "${url}api/v1/nodes")" = 200 ] && [ "$(jq -r '[.nodes[] | .state] | join(",")' "$work/body")" = "ready,ready" ] &&
        ok "/api/v1/nodes: both ready" || fail "/api/v1/nodes: $(cat "$work/body")"
[ "$(code "${url}api/v1/shelves/web-a")" = 200 ] && [ "$(jq '.books | length' "$work/body")" = 2 ] &&
        ok "/api/v1/shelves/web-a: 2 books" || fail "/api/v1/shelves/web-a: $(cat "$work/body")"
[ "$(code "${url}api/v1/shelves/nope")" = 404 ] && jq -e .error "$work/body" > /dev/null &&
        ok "unknown shelf: 404 with JSON" || fail "unknown shelf: $(cat "$work/body")"
[ "$(code "${url}nope")" = 404 ] && jq -e .error "$work/body" > /dev/null && ok "bad path: 404 with JSON" || fail "bad path"
[ "$(code -H 'Accept: application/json;version=1.0' "${url}lmp/global/")" = 200 ] &&
        [ "$(jq .memory.allocated "$work/body")" = $((6 * 8388608)) ] && ok "tm-lmp /lmp/global/: the 6 books of 3 shelves allocated" ||
        fail "/lmp/global/: $(cat "$work/body")"
[ "$(code -X POST "${url}api/v1/summary")" = 405 ] && ok "POST: 405" || fail "POST"
# coordinates in The Machine's form: node 2's memory, and the whole machine's open shelves
node2=MachineVersion/1/Datacenter/pa1/Rack/1/Enclosure/1/EncNum/1/Node/2
[ "$(code "${url}api/v1/nodes")" = 200 ] && [ "$(jq -r '.nodes[1].coordinate' "$work/body")" = "/$node2" ] &&
        ok "/api/v1/nodes: /$node2" || fail "coordinates: $(cat "$work/body")"
[ "$(code -H 'Accept: application/json;version=1.0' "${url}lmp/allocated/$node2/")" = 200 ] &&
        [ "$(jq '.memory.total > 0 and .memory.total < '"$(jq .memory.total <<< "$(curl -s -H 'Accept: application/json;version=1.0' "${url}lmp/global/")")" "$work/body")" = true ] &&
        ok "/lmp/allocated/ of node 2: its share of the FAM" || fail "/lmp/allocated/$node2/: $(cat "$work/body")"
[ "$(code -H 'Accept: application/json;version=1.0' "${url}lmp/active/$node2/SocBoard/1/Soc/1")" = 200 ] &&
        jq -e '.active | has("shelves")' "$work/body" > /dev/null && ok "/lmp/active/ of node 2's SOC" || fail "/lmp/active: $(cat "$work/body")"

step "the page in Chromium"
run shelf ls --json
shelves=$(jq -c '[.[] | "/" + .name]' "$out")
[ "$(jq length <<< "$shelves")" -eq 4 ] || fail "fame shelf ls --json: $(cat "$out")"
echo "fame shelf ls: $shelves"
# every shelf fame shelf ls lists has its row; every node its box, in its state
every_shelf="(function(w){const have=[...document.querySelectorAll('#shelves [data-shelf-path]')].map(e=>e.getAttribute('data-shelf-path').replace(/\/\$/,''));return w.every(p=>have.includes(p.replace(/\/\$/,'')))})($shelves)"
nodes_ready="['node01','node02'].every(n=>{const e=document.querySelector('#machine [data-node-name=\"'+n+'\"]');return e&&e.getAttribute('data-state')==='ready'})"
markup_is_text="document.querySelector('#shelves').textContent.includes('<script>alert(1)<') && document.querySelectorAll('script').length === [...document.querySelectorAll('script[src]')].length"
live="!!document.querySelector('#shelves [data-shelf-path=\"/web-live\"]')"
$py "$web/cdp.py" "$url" --timeout 30 \
        --wait "$nodes_ready" --wait "$every_shelf" --wait "$markup_is_text" \
        --eval "document.body.dataset.generation" \
        --run "$FAME shelf create /web-live --size 8M" \
        --wait "$live" \
        --screenshot "$shots/web-page.png" > "$work/cdp.out" 2> "$work/cdp.err"
rc=$?
cat "$work/cdp.out" "$work/cdp.err"
if [ "$rc" -eq 0 ]; then
        ok "every node ready and every shelf of fame shelf ls shown; markup as text; /web-live appeared without a reload"
        ok "screenshot: $shots/web-page.png"
else
        fail "the page: $(cat "$work/cdp.err")"
fi

step "fame lmp serve of the running cluster's database: one line saying where the view is"
run lmp serve --db "$state/librarian/librarian.db" --port 0
[ "$rc" -eq 1 ] && [ "$(wc -l < "$err")" -eq 1 ] && grep -q "in use by another Librarian.*'fame status' shows its address" "$err" &&
        ok "$(cat "$err")" || fail "lmp serve of a served database: rc $rc: $(cat "$err")"

step "fame down stops it"
run down
code "$url" > /dev/null
[ "$(code "${url}api/v1/summary")" = 000 ] && ok "nothing answers at $url" || fail "still answering after down"
finish
