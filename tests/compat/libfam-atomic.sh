#!/bin/bash
# libfam-atomic's own test programs (tests/fam_atomic_example.c, fam_atomic_single_node_test.c,
# fam_atomic_multi_node_test.c) must compile unmodified against FAM/E's fam_atomic.h and link
# with libfame.  FAM/E does not ship libfam-atomic's sources: point FAME_LIBFAM_ATOMIC_SRC at
# a checkout of https://github.com/FabricAttachedMemory/libfam-atomic to run this test.
# (Running them needs /lfs, which the LFS issue provides inside nodes.)
#
# "Unmodified" is checked against the upstream files: each one's SHA-256 must be that of
# libfam-atomic 2.2 (tag 2.2-1, commit 0c94c55, also master, debian and upstream), so a copy
# edited to make it compile is refused.
set -u
: "${FAME_SOURCE_ROOT:?}" "${FAME_BUILD_ROOT:?}"
src=${FAME_LIBFAM_ATOMIC_SRC:-}
if [ -z "$src" ] || [ ! -f "$src/tests/fam_atomic_single_node_test.c" ]; then
        echo "SKIP: libfam-atomic sources not available; set FAME_LIBFAM_ATOMIC_SRC=DIR (a libfam-atomic checkout)"
        exit 77
fi
declare -A upstream=(
        [fam_atomic_example]=14a7c1b9b0f7c68115df7814305af4b49ea18eca01c7a41b5391c900a0112cd4
        [fam_atomic_single_node_test]=07d2790d149e835f51b5defdf61a9b3d1ea7ddc61b15b2052dc7c0fb51602792
        [fam_atomic_multi_node_test]=daf47e16dc8a35846ad5fb5a41e9b11230ee18bd367024c23af8ade3979ada16
)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-compat-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
lib="$FAME_BUILD_ROOT/lib/libfame.a"
[ -f "$lib" ] || { echo "FAIL: $lib is missing (the build makes it: default_library=both)"; exit 1; }
for t in fam_atomic_example fam_atomic_single_node_test fam_atomic_multi_node_test; do
        f="$src/tests/$t.c"
        [ -f "$f" ] || { fail "$f missing"; continue; }
        sha=$(sha256sum < "$f" | cut -d' ' -f1)
        [ "$sha" = "${upstream[$t]}" ] || fail "$t.c is not libfam-atomic 2.2's (sha256 $sha, expected ${upstream[$t]}); use an unmodified checkout"
        rm -f "$tmp/$t"
        if cc -o "$tmp/$t" "$f" -I"$FAME_SOURCE_ROOT/include/fame" "$lib" -pthread 2> "$tmp/$t.log"; then
                echo "ok: $t.c compiles and links with libfame"
        else
                cat "$tmp/$t.log"
                fail "$t.c does not compile or link against FAM/E"
                continue
        fi
        # the atomics must be libfame's, linked in from libfame.a (not a system libfam_atomic)
        nm "$tmp/$t" | grep -q ' T fam_atomic_64_fetch_add$' || fail "$t does not use libfame's atomics"
done
echo "$failures failure(s)"
exit $((failures > 0))
