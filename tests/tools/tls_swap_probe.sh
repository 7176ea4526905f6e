#!/bin/sh
# Runs lb-tls-swap-probe (tests/tools/tls_swap_probe.c) with two throwaway
# self-signed certificates and checks the behaviour README "Security model"
# documents for Debian's nng 1.5.2: a started listener given a new TLS config
# fails every later handshake (so certificate rotation needs a restart), a
# fresh listener with that config works, and a started dialer takes a new
# config at its next dial. If nng changes, this fails: update the README.
# usage: tls_swap_probe.sh BIN_DIR
set -eu
bin=$1
tmp=$(mktemp -d /tmp/lbcp-tlsprobe-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for n in A B; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/$n.key" -out "$tmp/$n.crt" \
        -days 2 -subj "/CN=srv" -addext "subjectAltName=DNS:srv" 2>/dev/null
    cat "$tmp/$n.crt" "$tmp/$n.key" >"$tmp/$n.pem"
done
out=$("$bin/lb-tls-swap-probe" "$tmp")
echo "$out"
want="RESULT before=ok listener_swap_rv=0 after_swap_new=fail after_swap_old=fail fresh_listener_new=ok dialer_swap_rv=0 dialer_after_swap=ok"
[ "$out" = "$want" ] || { echo "expected: $want"; exit 1; }
