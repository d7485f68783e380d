#!/bin/bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a short time
# (FAME_FUZZ_SECONDS, default 10).  Skipped (77) only when clang is not installed or clang's
# libFuzzer runtime library is not there, both checked before anything is built; once they are,
# every build failure (compile or link) is a FAIL, whatever its log says.
set -u
: "${FAME_SOURCE_ROOT:?}" "${FAME_BUILD_ROOT:?}"
secs=${FAME_FUZZ_SECONDS:-10}
out="$FAME_BUILD_ROOT/fuzz"
mkdir -p "$out"
command -v clang > /dev/null || { echo "SKIP: clang not installed (scripts/install-deps)"; exit 77; }

# The libFuzzer runtime -fsanitize=fuzzer links: libclang_rt.fuzzer-ARCH.a in the resource
# directory's lib/linux (older layout), or libclang_rt.fuzzer.a in the per-target runtime
# directory (newer layout).  -print-file-name prints the bare name back when it finds nothing.
fuzzer_runtime() {
        local arch dir f
        arch=$(clang -print-target-triple 2> /dev/null) && arch=${arch%%-*} || arch=$(uname -m)
        for f in "$(clang -print-file-name="libclang_rt.fuzzer-$arch.a" 2> /dev/null)" \
                 "$(clang -print-file-name=libclang_rt.fuzzer.a 2> /dev/null)"; do
                [ "${f#/}" != "$f" ] && [ -f "$f" ] && { echo "$f"; return 0; }
        done
        dir=$(clang --print-runtime-dir 2> /dev/null) || return 1
        for f in "$dir/libclang_rt.fuzzer-$arch.a" "$dir/libclang_rt.fuzzer.a"; do
                [ -f "$f" ] && { echo "$f"; return 0; }
        done
        return 1
}
runtime=$(fuzzer_runtime) || {
        echo "SKIP: clang's libFuzzer runtime (libclang_rt.fuzzer) is not installed (package libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev)"
        exit 77
}
echo "libFuzzer runtime: $runtime"
read -r -a jsonc < <(pkg-config --cflags --libs json-c)
read -r -a sqlite < <(pkg-config --cflags --libs sqlite3)
src="$FAME_SOURCE_ROOT"
failures=0
# The sources each target needs besides its own file.
declare -A sources=(
        [fuzz-proto]="lib/proto.c"
        [fuzz-librarian]="lib/proto.c src/librarian/engine.c src/librarian/db.c src/topology/topology.c src/topology/topology-ini.c src/topology/topology-tmcf.c src/topology/topology-gen.c lib/format.c lib/log.c src/shared/util.c"
)
for t in fuzz-proto fuzz-librarian; do
        read -r -a extra <<< "${sources[$t]}"
        if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -std=gnu11 \
                -I"$src/lib" -I"$src/include/fame" -I"$src/src/shared" -I"$src/src/librarian" -I"$src/src/topology" -I"$FAME_BUILD_ROOT" \
                "$src/tests/fuzz/$t.c" "${extra[@]/#/$src/}" "${jsonc[@]}" "${sqlite[@]}" -lm -lpthread \
                -o "$out/$t" 2> "$out/$t.build.log"; then
                echo "FAIL: $t does not build:"; cat "$out/$t.build.log"; failures=$((failures + 1)); continue
        fi
        mkdir -p "$out/$t.corpus"
        # Seeds: the target's own corpus, if any; the Librarian's request streams are also the
        # wire format fuzz-proto decodes and encodes (nested objects, arrays, booleans, \u0000).
        seeds=()
        [ -d "$src/tests/fuzz/corpus-${t#fuzz-}" ] && seeds=("$src/tests/fuzz/corpus-${t#fuzz-}")
        [ "$t" = fuzz-proto ] && seeds+=("$src/tests/fuzz/corpus-librarian")
        if "$out/$t" -max_total_time="$secs" -print_final_stats=1 "$out/$t.corpus" "${seeds[@]}" > "$out/$t.log" 2>&1; then
                echo "ok: $t: $(grep -E '^stat::number_of_executed_units' "$out/$t.log" | awk '{print $2}') inputs in $secs s, no crash"
        else
                # what the target said just before the crash report, then the report's end
                echo "FAIL: $t found a crash:"; grep -m1 -B3 -E '^==[0-9]+== ?ERROR' "$out/$t.log"; echo "..."
                tail -30 "$out/$t.log"; failures=$((failures + 1))
        fi
done
exit $((failures > 0))
