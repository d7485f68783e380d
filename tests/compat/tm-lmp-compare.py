#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""tm-lmp compatibility: the original's lmp.py (run in-process through Flask's test client, no
network) and FAM/E's management view (fame lmp serve, over HTTP on 127.0.0.1) answer the same
requests on the same database; the differences FAM/E makes on purpose (docs/lmp.md) are undone
before comparing.

  tm-lmp-compare.py TM_LIBRARIAN_SRC DB OUR_BASE_URL COORD_PREFIX
"""
import json
import os
import sys
import urllib.error
import urllib.request

src, db, base, node2 = sys.argv[1:5]
ACCEPT = "application/json;version=1.0"
failures = 0


def original():
    """The original app, unmodified; its __main__ block would set db_file from -d."""
    sys.path.insert(0, os.path.join(src, "src"))
    import lmp                          # noqa: E402  (it chdirs to its own directory)
    lmp.mainapp.db_file = os.path.abspath(db)
    return lmp.mainapp.test_client()


def ours(path, accept=ACCEPT):
    req = urllib.request.Request(base.rstrip("/") + path, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def undo_our_choices(path, o):
    """FAM/E's deliberate differences, turned back into the original's answers."""
    if path.startswith("/lmp/shelf/") and isinstance(o, dict):
        if path == "/lmp/shelf/":
            o["owner"] = o["group"] = 42
            for e in o.get("entries", []):
                e["owner"] = e["group"] = 42
                e["type"] = "file"
        elif "owner" in o:
            o["owner"] = o["group"] = 42
    if path.startswith("/lmp/books/") and isinstance(o, dict):
        bs = o.get("book_size", 0)
        for b in o.get("books", []):
            if "offset" in b:
                b["offset"] += bs       # the original multiplies the 1-based seq_num
    return o


def main():
    global failures
    client = original()
    dc = node2.split("/Rack/")[0]
    paths = ["/lmp/", "/lmp/global/", "/lmp/nodes/", "/lmp/interleaveGroups/", "/lmp/shelf/",
             "/lmp/shelf/lmp-a", "/lmp/shelf/nope", "/lmp/books/", "/lmp/books/all", "/lmp/books/0",
             "/lmp/books/1", "/lmp/books/99", "/lmp/allocated/" + dc, "/lmp/allocated/" + node2 + "/",
             "/lmp/active/" + dc, "/lmp/active/" + node2 + "/SocBoard/1/Soc/1", "/lmp/active/x/Node/1"]
    for p in paths:
        r = client.get(p, headers={"Accept": ACCEPT})
        theirs = (r.status_code, r.get_json(silent=True))
        mine = ours(p)
        mine = (mine[0], undo_our_choices(p, mine[1]))
        if theirs == mine:
            print("ok: %s: %d, same JSON" % (p, mine[0]))
        else:
            failures += 1
            print("FAIL: %s:\n  original %s\n  FAM/E    %s" % (p, json.dumps(theirs, sort_keys=True)[:600],
                                                           json.dumps(mine, sort_keys=True)[:600]))
    # the version check and a view's path without its slash
    for accept, want in (("application/json", 418), ("application/json;version=2.0", 418)):
        r = client.get("/lmp/global/", headers={"Accept": accept})
        status, body = ours("/lmp/global/", accept)
        if r.status_code == status == want and r.get_json(silent=True) == body:
            print("ok: Accept %s: %d %s" % (accept, want, body))
        else:
            failures += 1
            print("FAIL: Accept %s: original %d %s, FAM/E %d %s" % (accept, r.status_code, r.get_data()[:200], status, body))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
