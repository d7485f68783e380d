#!/bin/bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a short time
# (FAME_FUZZ_SECONDS, default 10).  Skipped (77) when clang or its libFuzzer runtime is missing.
set -u
: "${FAME_SOURCE_ROOT:?}" "${FAME_BUILD_ROOT:?}"
secs=${FAME_FUZZ_SECONDS:-10}
out="$FAME_BUILD_ROOT/fuzz"
mkdir -p "$out"
command -v clang > /dev/null || { echo "SKIP: clang not installed (scripts/install-deps)"; exit 77; }
read -r -a jsonc < <(pkg-config --cflags --libs json-c)
read -r -a sqlite < <(pkg-config --cflags --libs sqlite3)
src="$FAME_SOURCE_ROOT"
failures=0
# The sources each target needs besides its own file.
declare -A sources=(
        [fuzz-proto]="lib/proto.c"
        [fuzz-librarian]="lib/proto.c src/librarian/engine.c src/librarian/db.c src/librarian/topology.c lib/format.c lib/log.c src/shared/util.c"
)
for t in fuzz-proto fuzz-librarian; do
        read -r -a extra <<< "${sources[$t]}"
        if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -std=gnu11 \
                -I"$src/lib" -I"$src/include/fame" -I"$src/src/shared" -I"$src/src/librarian" -I"$FAME_BUILD_ROOT" \
                "$src/tests/fuzz/$t.c" "${extra[@]/#/$src/}" "${jsonc[@]}" "${sqlite[@]}" -lm -lpthread \
                -o "$out/$t" 2> "$out/$t.build.log"; then
                if grep -q "libclang_rt.fuzzer\|cannot find" "$out/$t.build.log"; then
                        echo "SKIP: clang's libFuzzer runtime is missing (package libclang-rt-14-dev)"
                        exit 77
                fi
                echo "FAIL: $t does not build:"; cat "$out/$t.build.log"; failures=$((failures + 1)); continue
        fi
        mkdir -p "$out/$t.corpus"
        seeds=()
        [ -d "$src/tests/fuzz/corpus-${t#fuzz-}" ] && seeds=("$src/tests/fuzz/corpus-${t#fuzz-}")
        if "$out/$t" -max_total_time="$secs" -print_final_stats=1 "$out/$t.corpus" "${seeds[@]}" > "$out/$t.log" 2>&1; then
                echo "ok: $t: $(grep -E '^stat::number_of_executed_units' "$out/$t.log" | awk '{print $2}') inputs in $secs s, no crash"
        else
                echo "FAIL: $t found a crash:"; tail -30 "$out/$t.log"; failures=$((failures + 1))
        fi
done
exit $((failures > 0))
