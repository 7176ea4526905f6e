#!/usr/bin/env bash
# Builds lbcp with ASan/UBSan and runs every test through ctest.
# Installs what is missing first. Usage: ./tests/run.sh [ctest args...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. tests/deps.sh
lb_install_deps

build="${LBCP_TEST_BUILD:-$root/build-asan}"
cmake -S . -B "$build" -DLBCP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 300 "$@"
