#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Generate fixture trees for the LMP management page (tests/web).

Writes files laid out like the API paths (DIR/api/v1/summary, DIR/api/v1/nodes,
DIR/api/v1/shelves, DIR/api/v1/fam/map, DIR/api/v1/check) plus copies of the page
assets, so a static file server rooted at DIR serves the page and its data just as the
C server would.  The generated trees are large (the big one is ~1 MB of JSON) and are
therefore never committed; tests generate them into a temp dir.

  make-fixtures.py small|large DIR [--generation N] [--add-shelf PATH] [--node-state NAME=STATE]
                  [--no-assets]

Every file is written to a temp name and renamed, so a page polling while the test
rewrites the tree never reads half a file.
"""
import argparse
import json
import os
import random
import shutil

BOOK = 8 << 20
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "lmp", "assets")
STATES = ["ready", "booting", "down", "stopped", "unknown"]
T0 = 1767225600.0


def node(nid, rack, enc, num, state, arch="x86_64", accel="tcg"):
    return {"node_id": nid, "name": "node%02d" % nid, "rack": rack, "enclosure": enc, "node": num,
            "coordinate": "/MachineVersion/1/Datacenter/pa1/Frame/A1/Rack/%d/Enclosure/%d/EncNum/%d/Node/%d"
                          % (rack, enc, enc, num),
            "state": state, "arch": arch, "accel": accel,
            "booted_at": T0 if state == "ready" else None,
            "heartbeat_age_s": 0.4 if state == "ready" else None,
            "interleave_groups": [nid - 1]}


def shelf(sid, path, nbooks, uid=0, gid=0, mode="0644", open_count=0):
    return {"id": sid, "path": path, "name": path.rsplit("/", 1)[-1], "uid": uid, "gid": gid,
            "mode": mode, "creator_node": 1, "size_bytes": nbooks * BOOK, "book_count": nbooks,
            "ctime": T0, "mtime": T0, "open_count": open_count, "is_dir": False}


def small():
    nodes = [node(1, 1, 1, 1, "ready")]
    shelves = [shelf(1, "/data/results", 3, uid=1000, gid=1000, open_count=1),
               shelf(2, "/<script>alert(1)</script>", 2, mode="0600"),
               shelf(3, "/<img src=x onerror=alert(1)>", 1)]
    cells = [-1] * 64
    cells[0:3] = [0, 0, 0]
    cells[5:7] = [1, 1]
    cells[9] = 2
    cells[20] = -2
    cells[63] = -3
    return nodes, shelves, [cells]


def large():
    rng = random.Random(42)   # deterministic: the same tree every run
    nodes = []
    for i in range(40):
        state = "ready" if i % 7 else STATES[(i // 7) % 5]
        nodes.append(node(i + 1, i // 10 + 1, 1, i % 10 + 1, state,
                          "aarch64" if i % 3 == 0 else "x86_64", "kvm" if i % 2 else "tcg"))
    groups = [[-1] * 3277 for _ in range(40)]
    shelves = []
    for s in range(300):
        n = rng.randint(20, 500)
        placed = 0
        start = rng.randrange(40)
        for k in range(n):    # interleave round-robin over a few groups, like the Librarian
            g = groups[(start + k % 4) % 40]
            for _ in range(8):
                b = rng.randrange(3277)
                if g[b] == -1:
                    g[b] = s
                    placed += 1
                    break
        shelves.append(shelf(s + 1, "/proj%02d/run-%03d.dat" % (s % 17, s), placed,
                             uid=1000 + s % 5, gid=100, open_count=s % 3))
    for g in groups:
        for _ in range(30):
            g[rng.randrange(3277)] = -2
    for b in range(3277):     # node05's module is offline: all its free books are too
        if groups[4][b] == -1:
            groups[4][b] = -3
    return nodes, shelves, groups


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["small", "large"])
    ap.add_argument("dir")
    ap.add_argument("--generation", type=int, default=1)
    ap.add_argument("--add-shelf", action="append", default=[])
    ap.add_argument("--node-state", action="append", default=[], metavar="NAME=STATE")
    ap.add_argument("--no-assets", action="store_true")
    a = ap.parse_args()
    nodes, shelves, groups = small() if a.kind == "small" else large()
    for ns in a.node_state:   # e.g. node01=down: a node changing state without a new generation
        name, state = ns.split("=", 1)
        for n in nodes:
            if n["name"] == name:
                n["state"] = state
    for p in a.add_shelf:     # a new one-book shelf in the first free cell found
        idx = len(shelves)
        shelves.append(shelf(1000 + idx, p, 1, uid=4242, gid=4242))
        for g in groups:
            if -1 in g:
                g[g.index(-1)] = idx
                break
    api = os.path.join(a.dir, "api", "v1")
    cells = [c for g in groups for c in g]
    total = len(cells)
    summary = {"cluster": "fixture-" + a.kind, "generation": a.generation, "time": T0,
               "fam": {"size_bytes": total * BOOK, "book_size": BOOK, "books_total": total,
                       "books_free": cells.count(-1), "books_allocated": sum(c >= 0 for c in cells),
                       "books_zombie": cells.count(-2), "books_offline": cells.count(-3)},
               "librarian": {"uptime_s": 12.5, "connections": len(nodes), "requests_total": 1234,
                             "requests_per_second": 3.5},
               "check": {"enabled": True, "findings": 2} if a.kind == "large" else {"enabled": False}}
    fam = {"book_size": BOOK,
           "shelves": [{"id": s["id"], "path": s["path"], "uid": s["uid"], "gid": s["gid"]} for s in shelves],
           "groups": [{"ig": i, "node_id": i + 1, "coordinate": nodes[i % len(nodes)]["coordinate"],
                       "first_offset": i * len(g) * BOOK, "books": len(g), "cells": g}
                      for i, g in enumerate(groups)]}
    # Write the data the summary announces first, the summary (with its generation) last.
    write(os.path.join(api, "nodes"), {"nodes": nodes})
    write(os.path.join(api, "shelves"), {"shelves": shelves})
    write(os.path.join(api, "fam", "map"), fam)
    write(os.path.join(api, "check"), {"enabled": False})
    write(os.path.join(api, "summary"), summary)
    if not a.no_assets:
        for f in ("index.html", "app.js", "app.css"):
            shutil.copy(os.path.join(ASSETS, f), os.path.join(a.dir, f))


if __name__ == "__main__":
    main()
