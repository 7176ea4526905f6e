#!/usr/bin/env bash
# Fails when a tracked C file differs from what clang-format (the root
# .clang-format) makes of it, and names the files.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "clang-format not installed"; exit 1; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find cmd pkg include tests -name '*.[ch]')
bad=0
for f in $files; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not clang-formatted: $f"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "every C file is clang-formatted ($(echo "$files" | wc -w) files)"
exit $bad
