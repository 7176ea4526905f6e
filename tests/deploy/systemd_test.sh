#!/usr/bin/env bash
# Checks deploy/systemd/*.service with `systemd-analyze verify` (PID 1 need not
# be systemd) and that each keeps the hardening and lifecycle an operator
# expects. verify exits 0 on unknown keys and bad values (it only warns), so
# any output at all fails the test. ExecStart paths point at BIN_DIR, since
# verify checks that the commands exist.
# usage: systemd_test.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src=$1 bin=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed (package systemd)"; exit 1; }
tmp=$(mktemp -d /tmp/lbcp-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
for unit in "$src"/deploy/systemd/*.service; do
    name=$(basename "$unit")
    sed "s|/usr/bin/|$bin/|g" "$unit" >"$tmp/$name"
    out=$(systemd-analyze verify --man=no "$tmp/$name" 2>&1) || { echo "$name: verify failed"; fail=1; }
    if [ -n "$out" ]; then
        echo "$name: systemd-analyze verify says:"; echo "$out"; fail=1
    fi
    for want in 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'User=lbcp' 'Restart=on-failure' \
                'ExecReload=/bin/kill -HUP $MAINPID' 'CapabilityBoundingSet=$' \
                'ExecStartPre=/usr/bin/lb-[a-z]* --check-config '; do
        grep -q "^$want" "$unit" || { echo "$name: missing $want"; fail=1; }
    done
done
[ $fail -eq 0 ] && echo "units verified: $(ls "$src"/deploy/systemd/*.service | wc -l)"
exit $fail
