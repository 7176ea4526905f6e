#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (a build tree of their own) and runs
# each one for a bounded time, all at once, from its committed seed corpus.
#
#   tests/fuzz/run.sh [MINUTES] [--seconds S] [--build DIR] [TARGET...]
#
# MINUTES (default 1) or --seconds S: how long each target runs. The suite's
# ctest entry fuzz_smoke runs `--seconds 20`. --build DIR: the fuzz build tree
# (default build-fuzz). TARGETs default to every fuzz_* target.
# New inputs go to DIR/corpus/<target> (the committed tests/fuzz/corpus/ is
# only read); a crash leaves its input in DIR/artifacts/<target>/ and fails the
# run with exit 1, printing how to replay it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds=60
build="$root/build-fuzz"
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    [0-9]*) seconds=$(( $1 * 60 )); shift ;;
    *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_wire fuzz_etcd fuzz_registry fuzz_config fuzz_http fuzz_api fuzz_token)

# -O1 -g: fast enough to fuzz, readable stacks; never NDEBUG
mkdir -p "$build"
CC=clang cmake -S "$root" -B "$build" -DLBCP_FUZZ=ON -DCMAKE_BUILD_TYPE= \
    -DCMAKE_C_FLAGS="-O1 -g" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" --target lb-fuzzers -j2 >"$build/build.log" 2>&1 ||
    { tail -40 "$build/build.log"; exit 1; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
declare -A pids
for t in "${targets[@]}"; do
    bin="$build/fuzz/$t"
    [ -x "$bin" ] || { echo "fuzz: no target $t in $build/fuzz" >&2; exit 2; }
    work="$build/corpus/$t" art="$build/artifacts/$t"
    mkdir -p "$work" "$art"
    dict=()
    [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: a blow-up
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$art/" "${dict[@]}" "$work" "$here/corpus/$t" >"$build/$t.log" 2>&1 &
    pids[$t]=$!
done
failed=0
for t in "${targets[@]}"; do
    rc=0
    wait "${pids[$t]}" || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$t.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$build/$t.log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz: $t: ${runs:-?} runs in ${seconds}s, ${cov:-cov ?}, 0 crashes"
    else
        failed=1
        echo "fuzz: $t: FAILED (exit $rc) after ${runs:-?} runs; log $build/$t.log" >&2
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$build/$t.log" | head -20 >&2 || true
        for a in "$build/artifacts/$t"/*; do
            [ -e "$a" ] && echo "fuzz: replay with: $build/fuzz/$t $a" >&2
        done
    fi
done
exit $failed
