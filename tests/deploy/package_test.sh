#!/usr/bin/env bash
# Builds the .deb packages (CPack) from a Release build of its own, installs
# them with dpkg -i on this machine, checks what an operator and a developer
# get (every binary's --version, man pages, units, the lbcp account, bash
# completion, a pkg-config build of the example against liblbclient-dev, both
# shared and static), then purges them again (also on failure).
# usage: package_test.sh SOURCE_DIR [BUILD_DIR]   (BUILD_DIR default /tmp/lbcp-pkg-build)
# Needs root (dpkg -i); refuses to touch lbcp packages it did not install.
set -euo pipefail
src=$(cd "$1" && pwd)
build=${2:-/tmp/lbcp-pkg-build}
pkgs=(lbcp lbctl liblbclient0 liblbclient-dev)
# not root: exit 77, which ctest reports as skipped (SKIP_RETURN_CODE), not passed
[ "$(id -u)" -eq 0 ] || { echo "package_test.sh: needs root for dpkg -i: skipped"; exit 77; }
for p in "${pkgs[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        echo "package_test.sh: $p is already installed here; not touching it"; exit 1
    fi
done
exec 9>/tmp/lbcp-package-test.lock
flock 9 # one package test at a time on this machine

t0=$(date +%s)
echo "== configure + build (Release, no tests) in $build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DLBCP_BUILD_TESTS=OFF >"$build.log" 2>&1 || { tail -20 "$build.log"; exit 1; }
cmake --build "$build" -j2 >>"$build.log" 2>&1 || { tail -30 "$build.log"; exit 1; }
echo "== cpack"
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >>"$build.log" 2>&1) || { tail -30 "$build.log"; exit 1; }
ls -1 "$build"/*.deb
for p in "${pkgs[@]}"; do
    ls "$build/${p}_"*.deb >/dev/null || { echo "no package $p"; exit 1; }
done

cleanup() {
    dpkg --purge "${pkgs[@]}" >/dev/null 2>&1 || true
    rm -rf "$work"
}
work=$(mktemp -d /tmp/lbcp-pkg-test.XXXXXX)
trap cleanup EXIT
echo "== dpkg -i"
dpkg -i "$build"/lbcp_*.deb "$build"/lbctl_*.deb "$build"/liblbclient0_*.deb \
        "$build"/liblbclient-dev_*.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; exit 1; }

fail() { echo "FAIL: $*"; exit 1; }
echo "== installed"
for b in lb-master lb-slave lb-agent lb-echo lbctl; do
    out=$(/usr/bin/$b --version) || fail "$b --version"
    echo "$out" | grep -Eq "^$b [0-9]+\.[0-9]+\.[0-9]+" || fail "$b --version said: $out"
    echo "  $out"
done
for m in man8/lb-master.8.gz man8/lb-slave.8.gz man8/lb-agent.8.gz man1/lb-echo.1.gz man1/lbctl.1.gz; do
    [ -s "/usr/share/man/$m" ] || fail "no man page $m"
done
page=$(zcat /usr/share/man/man8/lb-master.8.gz)
echo "$page" | grep -q 'check\\-config' || fail "lb-master(8) lacks --check-config"
for u in lb-master lb-slave lb-agent; do
    [ -f "/lib/systemd/system/$u.service" ] || [ -f "/usr/lib/systemd/system/$u.service" ] ||
        fail "no unit $u.service"
done
getent passwd lbcp >/dev/null || fail "postinst did not create the lbcp account"
[ -f /usr/share/bash-completion/completions/lbctl ] || fail "no bash completion"
[ -f /usr/include/lb/client.h ] || fail "no header"
dpkg -L liblbclient0 | grep -q 'liblbclient.so.0' || fail "liblbclient0 lacks the soname"
dpkg -L liblbclient0 | grep -q 'liblbclient.so$' && fail "liblbclient0 ships the dev link"
dpkg -L liblbclient-dev | grep -q 'lbclient.pc' || fail "liblbclient-dev lacks lbclient.pc"
echo "  man pages, units, lbcp account, completion, header, pc: ok"
echo "  depends: $(dpkg-query -W -f='${Depends}' lbcp)"

echo "== the example against the installed liblbclient-dev (pkg-config)"
pkg-config --exists lbclient || fail "pkg-config does not find lbclient"
ex=$(dpkg -L liblbclient-dev | grep 'examples/example.c$' | head -1)
[ -n "$ex" ] || fail "liblbclient-dev lacks the example"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "$ex" $(pkg-config --cflags --libs lbclient) -o "$work/ex-shared"
static_libs=$(pkg-config --static --libs lbclient | sed 's/-llbclient\b/-Wl,-Bstatic -llbclient -Wl,-Bdynamic/')
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Wextra -Werror "$ex" $(pkg-config --cflags lbclient) $static_libs -o "$work/ex-static"
ldd "$work/ex-shared" | grep -Eq "liblbclient.so.0 => /(usr/)?lib/" || fail "ex-shared does not load the packaged .so"
ldd "$work/ex-static" | grep -q liblbclient && fail "ex-static still needs liblbclient.so"
"$work/ex-shared" --version | grep -q "liblbclient" || fail "ex-shared --version"
"$work/ex-static" --version | grep -q "liblbclient" || fail "ex-static --version"
echo "  built shared and static, both run"

echo "== purge"
cleanup
trap - EXIT
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && fail "$p still installed"
done
[ ! -e /usr/bin/lb-master ] || fail "/usr/bin/lb-master left behind"
echo "package test passed in $(( $(date +%s) - t0 )) s"
