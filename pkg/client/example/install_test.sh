#!/bin/sh
# Builds the example against the INSTALLED library, both ways an application
# would: cmake --install into a temporary prefix, then cc with pkg-config,
# once against liblbclient.so and once against liblbclient.a
# (`pkg-config --static`: the archive plus its Libs.private), and runs both.
# With LBCP_EXAMPLE_SLAVE set (a slave's endpoint of a running cluster serving
# the app "echo") each binary also does a real sticky request through it.
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
ex="$src/pkg/client/example/example.c"

# shared: what `pkg-config --cflags --libs lbclient` says
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Wextra -Werror $extra "$ex" $(pkg-config --cflags --libs lbclient) \
   -o "$prefix/example-shared"
ldd "$prefix/example-shared" | grep -q "liblbclient.so" ||
    { echo "example-shared does not load liblbclient.so"; exit 1; }

# static: the archive in place of -llbclient, then its private dependencies
static_libs=$(pkg-config --static --libs lbclient |
              sed 's/-llbclient\b/-Wl,-Bstatic -llbclient -Wl,-Bdynamic/')
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Wextra -Werror $extra "$ex" $(pkg-config --cflags lbclient) $static_libs \
   -o "$prefix/example-static"
if ldd "$prefix/example-static" | grep -q "liblbclient"; then
    echo "example-static still needs liblbclient.so"; exit 1
fi
nm "$prefix/example-static" | grep -q " T lb_client_open" ||
    { echo "example-static does not contain lb_client_open"; exit 1; }

for kind in shared static; do
    bin="$prefix/example-$kind"
    LD_LIBRARY_PATH="$libdir" "$bin" --help | grep -q "usage: lbclient-example"
    LD_LIBRARY_PATH="$libdir" "$bin" --version | grep -q "liblbclient [0-9]"
    if [ -n "${LBCP_EXAMPLE_SLAVE:-}" ]; then
        out=$(LD_LIBRARY_PATH="$libdir" "$bin" --slave "$LBCP_EXAMPLE_SLAVE" --app echo \
              --client "install-$kind")
        echo "$out" | grep -q "answer: pid=" || { echo "example-$kind: no answer: $out"; exit 1; }
        echo "example-$kind served: $(echo "$out" | head -1)"
    fi
done
echo "example built against $prefix (shared and static) and ran"
