#!/usr/bin/env bash
# Builds lbcp with ASan/UBSan and runs every test through ctest.
# Installs what is missing first. Usage: ./tests/run.sh [ctest args...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. tests/deps.sh
lb_install_deps

build="${LBCP_TEST_BUILD:-$root/build-asan}"
# Agents run as root here and start apps as `nobody` (default_user), so every
# directory above the build's bin/ must be searchable by others. A checkout
# under a 0700 directory (mktemp -d) is not: then the build goes to a
# directory of its own under /var/tmp (one per checkout path), said here.
if [ -z "${LBCP_TEST_BUILD:-}" ] && [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 &&
    ! runuser -u nobody -- test -x "$root"; then
    build="/var/tmp/lbcp-build-$(printf '%s' "$root" | sha1sum | cut -c1-12)/build-asan"
    mkdir -p "$build"
    chmod 755 "$(dirname "$build")" "$build"
    echo "tests/run.sh: $root is not searchable by nobody (the agents' app user);" \
        "building in $build" >&2
fi
cmake -S . -B "$build" -DLBCP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"

# An LBCP_TEST_BUILD nobody cannot reach fails ~30 tests with "exec:
# Permission denied": say so now, with the fix, instead of after minutes.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 &&
    ! runuser -u nobody -- test -x "$build/bin/lb-echo"; then
    blocked=""
    d="$build/bin"
    while [ "$d" != "/" ]; do
        runuser -u nobody -- test -x "$d" || blocked="$d"
        d="$(dirname "$d")"
    done
    echo "tests/run.sh: user nobody (the agents' default app user) cannot reach $build/bin/lb-echo;" >&2
    echo "  not searchable by others: ${blocked:-$build/bin/lb-echo}" >&2
    echo "  fix: chmod o+x on that directory (and its parents), or check out elsewhere" >&2
    exit 2
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 300 "$@"
