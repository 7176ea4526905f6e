#!/bin/sh
# Layering: library code under pkg/ never reaches up into a command (cmd/) or
# a test tool (tests/): no include of their headers, no build rule naming them.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bad=$(grep -rnE '#include *"(\.\./)*(cmd|tests)/|#include *"(ctl_ops|lbctl|master|slave|agent|probe)\.h"' \
        "$root/pkg" --include='*.c' --include='*.h' || true)
bad="$bad$(grep -nE 'cmd/|tests/tools' "$root/cmake/client.cmake" || true)"
if [ -n "$bad" ]; then
    echo "pkg/ depends on cmd/ or tests/:"
    echo "$bad"
    exit 1
fi
echo "layering ok: pkg/ depends on nothing above it"
