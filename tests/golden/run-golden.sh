#!/bin/bash
# Golden-file test: runs every tests/golden/SUITE/CASE.cmd and compares what fame printed
# (stdout, stderr, exit status) with CASE.out.  Each line of a .cmd is one fame invocation,
# its arguments separated by spaces; @TMP@ stands for a private directory.  Set
# FAME_REGENERATE=1 to rewrite the .out files that differ, then review the diff: a run that
# rewrote a file still fails, so a regeneration never passes for a check.
set -u
suite=${1:?suite}
dir="$FAME_SOURCE_ROOT/tests/golden/$suite"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-golden-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export SOURCE_DATE_EPOCH=1767225600 TZ=UTC HOME="$tmp/home"
unset FAME_PATH FAME_NODE FAME_CLUSTER FAME_PCI_DEVICE FAME_CONFIG FAME_CLUSTER_NAME XDG_STATE_HOME XDG_CACHE_HOME XDG_CONFIG_HOME
mkdir -p "$HOME"

failed=0 n=0
for cmd in "$dir"/*.cmd; do
        name=$(basename "$cmd" .cmd)
        out="$tmp/$name.out"
        : > "$out"
        while IFS= read -r line || [ -n "$line" ]; do
                [ -z "$line" ] && continue
                case "$line" in \#*) continue ;; esac
                line2=${line//@TMP@/$tmp}
                read -r -a args <<< "${line2//@SRC@/$dir}"
                echo "\$ fame ${line}" >> "$out"
                "$FAME" "${args[@]}" > "$tmp/stdout" 2> "$tmp/stderr"
                rc=$?
                sed "s|$tmp|@TMP@|g; s|$dir|@SRC@|g" "$tmp/stdout" >> "$out"
                sed "s|$tmp|@TMP@|g; s|$dir|@SRC@|g; s|^|stderr: |" "$tmp/stderr" >> "$out"
                echo "exit $rc" >> "$out"
        done < "$cmd"
        n=$((n + 1))
        if [ "${FAME_REGENERATE:-}" = 1 ] && ! cmp -s "$out" "$dir/$name.out"; then
                cp "$out" "$dir/$name.out"
                echo "FAIL: regenerated $suite/$name.out: it differed; review git diff, then run again"
                failed=$((failed + 1))
        elif ! diff -u "$dir/$name.out" "$out"; then
                echo "FAIL: $suite/$name differs from its golden file (FAME_REGENERATE=1 rewrites it)"
                failed=$((failed + 1))
        else
                echo "ok: $suite/$name"
        fi
done
[ "$n" -gt 0 ] || { echo "no cases in $dir"; exit 1; }
exit $((failed > 0))
