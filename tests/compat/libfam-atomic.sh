#!/bin/bash
# libfam-atomic's own test programs (tests/fam_atomic_example.c, fam_atomic_single_node_test.c,
# fam_atomic_multi_node_test.c) must compile unmodified against FAM/E's fam_atomic.h and link
# with libfame.  FAM/E does not ship libfam-atomic's sources: point FAME_LIBFAM_ATOMIC_SRC at
# a checkout of https://github.com/FabricAttachedMemory/libfam-atomic to run this test.
# (Running them needs /lfs, which the LFS issue provides inside nodes.)
set -u
src=${FAME_LIBFAM_ATOMIC_SRC:-}
if [ -z "$src" ] || [ ! -f "$src/tests/fam_atomic_single_node_test.c" ]; then
        echo "SKIP: libfam-atomic sources not available; set FAME_LIBFAM_ATOMIC_SRC=DIR (a libfam-atomic checkout)"
        exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-compat-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
lib=$(find "$FAME_BUILD_ROOT/lib" -name libfame.a | head -1)
for t in fam_atomic_example fam_atomic_single_node_test fam_atomic_multi_node_test; do
        [ -f "$src/tests/$t.c" ] || { echo "FAIL: $src/tests/$t.c missing"; failures=$((failures + 1)); continue; }
        sha=$(sha256sum < "$src/tests/$t.c")
        if cc -o "$tmp/$t" "$src/tests/$t.c" -I"$FAME_SOURCE_ROOT/include/fame" "$lib" -pthread 2> "$tmp/$t.log"; then
                echo "ok: $t.c compiles unmodified and links with libfame"
        else
                cat "$tmp/$t.log"
                echo "FAIL: $t.c"
                failures=$((failures + 1))
        fi
        [ "$(sha256sum < "$src/tests/$t.c")" = "$sha" ] || { echo "FAIL: $t.c changed"; failures=$((failures + 1)); }
        nm "$tmp/$t" 2>/dev/null | grep -q ' T fam_atomic_64_fetch_add' || { echo "FAIL: $t does not use libfame's atomics"; failures=$((failures + 1)); }
done
exit $((failures > 0))
