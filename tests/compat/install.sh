#!/bin/bash
# Installs FAM/E into a private root and builds programs against it the way users do:
# pkg-config fame / fam_atomic, shared and static.  Checks that libfame.so exports exactly the
# symbols of lib/libfame.sym, and that headers and man pages are installed.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

meson install -C "$FAME_BUILD_ROOT" --no-rebuild --destdir "$tmp/root" --quiet > "$tmp/install.log" 2>&1 \
        || { cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }
pcdir=$(dirname "$(find "$tmp/root" -name fame.pc | head -1)")
libdir=$(dirname "$(find "$tmp/root" -name 'libfame.so.0' | head -1)")
[ -f "$pcdir/fame.pc" ] && [ -f "$pcdir/fam_atomic.pc" ] || fail "pkg-config files not installed"
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root"

for h in fame.h fam_atomic.h; do
        [ -f "$(pkg-config --variable=includedir fame | sed "s|^|$tmp/root|; s|$tmp/root$tmp/root|$tmp/root|")/fame/$h" ] \
                || find "$tmp/root" -path "*/include/fame/$h" | grep -q . || fail "header $h not installed"
done
for m in fame fame-fam-create fame-fam-info fame-fam-dump fame-info fame-bench-fam fame-help; do
        f=$(find "$tmp/root" -name "$m.1" | head -1)
        [ -n "$f" ] && grep -q '^\.TH' "$f" || fail "man page $m.1 missing"
done

# Exported symbols == the symbol map.
grep -oE '^\s+(fame|fam)_[a-z0-9_]+;' "$FAME_SOURCE_ROOT/lib/libfame.sym" | tr -d ' \t;' | sort > "$tmp/want"
nm -D --defined-only "$libdir/libfame.so.0" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | grep -v '^FAME_' | sort > "$tmp/got"
diff -u "$tmp/want" "$tmp/got" > "$tmp/symdiff" || { cat "$tmp/symdiff"; fail "libfame.so exports differ from libfame.sym"; }

cat > "$tmp/prog.c" <<'C'
#define _GNU_SOURCE
#include <fam_atomic.h>
#include <fame.h>
#include <stdio.h>
#include <sys/mman.h>
int main(void) {
        int64_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (w == MAP_FAILED || fam_atomic_register_region(w, 4096, -1, 0) != 0)
                return 2;
        fam_atomic_64_write(w, 41);
        if (fam_atomic_64_fetch_add(w, 1) != 41 || fam_atomic_64_read(w) != 42)
                return 3;
        printf("libfame %s ok\n", fame_version());
        return 0;
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o "$tmp/prog-shared" "$tmp/prog.c" $(pkg-config --cflags --libs fam_atomic) || fail "build against pkg-config fam_atomic"
LD_LIBRARY_PATH="$libdir" "$tmp/prog-shared" || fail "shared program failed"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o "$tmp/prog-static" "$tmp/prog.c" $(pkg-config --cflags fame) "$libdir/libfame.a" -pthread || fail "static build"
"$tmp/prog-static" || fail "static program failed"

echo "$failures failure(s)"
exit $((failures > 0))
