#!/bin/sh
# Builds the example against the INSTALLED library: cmake --install into a
# temporary prefix, then cc with pkg-config (PKG_CONFIG_PATH), then runs it.
# usage: install_test.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
set -eu
build=$1 src=$2 extra=${3:-}
prefix=$(mktemp -d /tmp/lbclient-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/lb/client.h"
libdir=$(dirname "$(find "$prefix" -name lbclient.pc | head -1)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig"
ls "$libdir"/liblbclient.so "$libdir"/liblbclient.a >/dev/null
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Wextra -Werror $extra "$src/pkg/client/example/example.c" \
   $(pkg-config --cflags --libs lbclient) -o "$prefix/lbclient-example"
out=$(LD_LIBRARY_PATH="$libdir" "$prefix/lbclient-example" --help)
echo "$out" | grep -q "usage: lbclient-example"
ldd "$prefix/lbclient-example" | grep -q "$libdir/liblbclient.so" ||
  ldd "$prefix/lbclient-example" | grep -q "liblbclient.so"
if [ -n "${LBCP_EXAMPLE_SLAVE:-}" ]; then
  LD_LIBRARY_PATH="$libdir" "$prefix/lbclient-example" --slave "$LBCP_EXAMPLE_SLAVE" --app echo
fi
echo "example built against $prefix and ran"
