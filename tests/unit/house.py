#!/usr/bin/env python3
"""The house's rules, checked (docs/ARCHITECTURE.md): no .c file under src/ or lib/ over 1,000
lines; no circle between rooms (folders), neither of #includes nor of symbols one room's object
files take from another's (FAME_BUILD_ROOT, or the second argument); no link out of the
repository in docs/, README.md or the sources.  Circles among the files of one room are listed as notes.  Prints each
breach; exit 1 if any.
Usage: tests/unit/house.py [SOURCE_ROOT [BUILD_ROOT]]"""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FAME_SOURCE_ROOT", ".")
MAX_LINES = 1000
failures = []

sources = []
for top in ("include", "lib", "src"):
    for d, _, files in os.walk(os.path.join(root, top)):
        for f in files:
            if f.endswith((".c", ".h")):
                sources.append(os.path.relpath(os.path.join(d, f), root))

for p in sources:
    if p.endswith(".c") and not p.startswith("include/"):
        with open(os.path.join(root, p), errors="replace") as fh:
            n = sum(1 for _ in fh)
        if n > MAX_LINES:
            failures.append(f"{p}: {n} lines (more than {MAX_LINES}): split it by concern")

headers = {}
for p in sources:
    if p.endswith(".h"):
        headers.setdefault(os.path.basename(p), []).append(p)

def resolve(src, name):
    cands = headers.get(os.path.basename(name), [])
    if not cands:
        return None     # generated (fame-config.h) or a system header
    same = [c for c in cands if os.path.dirname(c) == os.path.dirname(src)]
    return (same or cands)[0]

def room(p):
    return os.path.dirname(p)

def unit(p):
    return os.path.splitext(p)[0]

inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
room_edges, unit_edges, use_edges, why = {}, {}, {}, {}
for p in sources:
    with open(os.path.join(root, p), errors="replace") as fh:
        for line in fh:
            m = inc.match(line)
            if not m:
                continue
            h = resolve(p, m.group(1))
            if not h:
                continue
            if room(p) != room(h):
                room_edges.setdefault(room(p), set()).add(room(h))
                why.setdefault((room(p), room(h)), f"{p} includes {h}")
            elif unit(p) != unit(h):
                unit_edges.setdefault(unit(p), set()).add(unit(h))
                why.setdefault((unit(p), unit(h)), f"{p} includes {h}")

def cycles(edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in list(edges):
        if v not in index:
            visit(v)
    return out

# Which file uses which: from the object files of a build (FAME_BUILD_ROOT, or the second
# argument), a file uses another when it needs a symbol that the other defines.  This sees the
# circles that headers hide (a function declared in one room's header and defined in another).
build = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("FAME_BUILD_ROOT")
if build and os.path.isdir(build):
    import subprocess
    cfiles = [p for p in sources if p.endswith(".c")]
    def source_of(obj):
        name = obj[:-2]          # x.c.o -> x.c
        exact = [p for p in cfiles if p.replace("/", "_") == name]
        if exact:
            return exact[0]
        tail = [p for p in cfiles if p.replace("/", "_").endswith("_" + name)]
        return tail[0] if len(tail) == 1 else None
    objs = {}
    for d, dirs, files in os.walk(build):
        rel = os.path.relpath(d, build)
        if rel.startswith(("tests", "test-cache", "meson-", "fuzz")) or rel.count(os.sep) > 3:
            dirs[:] = []
            continue
        if d.endswith(".p"):
            for f in files:
                if f.endswith(".c.o"):
                    src = source_of(f)
                    if src and src not in objs:
                        objs[src] = os.path.join(d, f)
    defined, needed = {}, {}
    for src, obj in objs.items():
        out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            sym, t = parts[0], parts[1]
            if t == "U":
                needed.setdefault(src, set()).add(sym)
            elif t.isupper() and t not in "VW":
                defined.setdefault(sym, src)
    for src, syms in needed.items():
        for sym in syms:
            other = defined.get(sym)
            if not other or other == src:
                continue
            if room(src) != room(other):
                room_edges.setdefault(room(src), set()).add(room(other))
                why.setdefault((room(src), room(other)), f"{src} uses {sym} of {other}")
            else:
                use_edges.setdefault(unit(src), set()).add(unit(other))
                why.setdefault((unit(src), unit(other)), f"{src} uses {sym} of {other}")

for comp in cycles(room_edges):
    ties = [why[(a, b)] for a in comp for b in room_edges.get(a, ()) if b in comp]
    failures.append(f"a circle between rooms {', '.join(comp)}: " + "; ".join(sorted(ties)))
# Inside a room, files may use each other both ways (a table of functions such as the verb
# table or the backends does so by design): these are said, for a reader to judge, not failed.
inside = use_edges
for comp in cycles(inside):
    ties = [why[(a, b)] for a in comp for b in inside.get(a, ()) if b in comp]
    print(f"note: files of one room use each other in a circle: {', '.join(comp)}: " + "; ".join(sorted(ties)[:4]))

link = re.compile(r"\.\./shared/|/work/shared/")
prose = [os.path.join(root, "README.md")] + [os.path.join(root, p) for p in sources]
for d, _, files in os.walk(os.path.join(root, "docs")):
    prose += [os.path.join(d, f) for f in files]
for p in prose:
    if os.path.isfile(p):
        with open(p, errors="replace") as fh:
            for i, line in enumerate(fh, 1):
                if link.search(line):
                    failures.append(f"{os.path.relpath(p, root)}:{i}: links out of the repository: {line.strip()}")

for f in failures:
    print("FAIL:", f)
print(f"house: {len(sources)} source files, {len(failures)} breach(es)")
sys.exit(1 if failures else 0)
