#!/bin/bash
# Bad FAM files through the CLI: `fame fam info`, `fame fam dump` and `fame info` print exactly
# one error line, exit 1, and never modify the file; `fame fam create` refuses to replace them.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fame-cli-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset FAME_PATH FAME_NODE
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$FAME" fam create "$tmp/good.fam" --size 64M --book-size 2M --nodes 2 > /dev/null || fail "create good.fam"

# Each bad file is made from a good one.
cp --sparse=always "$tmp/good.fam" "$tmp/truncated.fam"; truncate -s 32M "$tmp/truncated.fam"
cp --sparse=always "$tmp/good.fam" "$tmp/npot.fam"; truncate -s 67108865 "$tmp/npot.fam"
cp --sparse=always "$tmp/good.fam" "$tmp/corrupt.fam"; printf '\x07' | dd of="$tmp/corrupt.fam" bs=1 seek=72 conv=notrunc status=none
cp --sparse=always "$tmp/good.fam" "$tmp/version.fam"; printf '\x02' | dd of="$tmp/version.fam" bs=1 seek=8 conv=notrunc status=none
truncate -s 64M "$tmp/zero.fam"
: > "$tmp/empty.fam"
head -c 4096 /dev/urandom > "$tmp/random.fam"

declare -A want=(
        [truncated]="truncated"
        [npot]="header says"
        [corrupt]="checksum"
        [version]="version 2.0"
        [zero]="no FAM header"
        [empty]="is empty"
        [random]="not a FAM/E FAM"
)
for name in "${!want[@]}"; do
        f="$tmp/$name.fam"
        before=$(sha256sum < "$f")
        cmds=("fam info $f" "fam dump $f" "info --path $f")
        # An empty file holds nothing to lose: create may use it (checked below).
        [ "$name" = empty ] || cmds+=("fam create $f --size 64M --book-size 2M --nodes 2")
        for cmd in "${cmds[@]}"; do
                read -r -a args <<< "$cmd"
                "$FAME" "${args[@]}" > "$tmp/out" 2> "$tmp/err"
                rc=$?
                lines=$(wc -l < "$tmp/err")
                [ "$rc" -ne 0 ] || fail "$name: 'fame $cmd' succeeded"
                [ "$lines" -eq 1 ] || fail "$name: 'fame $cmd' printed $lines error lines: $(cat "$tmp/err")"
                [ -s "$tmp/out" ] && fail "$name: 'fame $cmd' printed to stdout"
                if [ "${args[1]}" != create ]; then
                        grep -q -- "${want[$name]}" "$tmp/err" || fail "$name: 'fame $cmd' said '$(cat "$tmp/err")', expected '${want[$name]}'"
                fi
                echo "ok: $name: fame ${cmd/$tmp\//}: $(cat "$tmp/err")"
        done
        [ "$(sha256sum < "$f")" = "$before" ] || fail "$name.fam was modified"
done

# An empty file may be turned into a FAM without --force.
"$FAME" fam create "$tmp/empty.fam" --size 64M --book-size 2M --nodes 2 > /dev/null || fail "create over an empty file"
"$FAME" fam info "$tmp/empty.fam" > /dev/null || fail "info after create over an empty file"

# --force replaces a bad file with a valid FAM.
"$FAME" fam create "$tmp/corrupt.fam" --size 64M --book-size 2M --nodes 2 --force > /dev/null || fail "create --force"
"$FAME" fam info "$tmp/corrupt.fam" > /dev/null || fail "info after --force"

# dump --force shows a corrupt file anyway, read-only.
before=$(sha256sum < "$tmp/version.fam")
"$FAME" fam dump "$tmp/version.fam" --force --length 16 | grep -q 'FAME-FAM' || fail "dump --force"
[ "$(sha256sum < "$tmp/version.fam")" = "$before" ] || fail "dump --force modified the file"

echo "$failures failure(s)"
exit $((failures > 0))
