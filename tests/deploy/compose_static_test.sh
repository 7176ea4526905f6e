#!/usr/bin/env bash
# Quick checks of the Docker deployment that need no Docker engine (the full
# run is tests/deploy/compose_test.sh): docker-compose parses and validates the
# file (`config -q`), every port is published on 127.0.0.1 only, every daemon
# has http_listen (the HEALTHCHECK needs it), depends_on waits for health, and
# every daemon config under deploy/compose/ passes --check-config.
# usage: compose_static_test.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src=$(cd "$1" && pwd) bin=$(cd "$2" && pwd)
compose=$src/deploy/docker-compose.yml
fail=0
if command -v docker-compose >/dev/null; then
    docker-compose -f "$compose" config -q || { echo "docker-compose config failed"; fail=1; }
else
    echo "docker-compose not installed: config check skipped"
fi
bad_ports=$(grep -E '^\s*ports:' "$compose" | grep -vE '^\s*ports: \["127\.0\.0\.1:[0-9]+:[0-9]+"(, "127\.0\.0\.1:[0-9]+:[0-9]+")*\]$' || true)
[ -z "$bad_ports" ] || { echo "ports not bound to 127.0.0.1: $bad_ports"; fail=1; }
grep -q 'condition: service_healthy' "$compose" || { echo "depends_on without health"; fail=1; }
grep -q '^HEALTHCHECK' "$src/deploy/Dockerfile" || { echo "no HEALTHCHECK"; fail=1; }
grep -q '^USER lbcp' "$src/deploy/Dockerfile" || { echo "image runs as root"; fail=1; }
grep -q 'LBCP_BUILD_TESTS=OFF' "$src/deploy/Dockerfile" || { echo "image build needs test tools"; fail=1; }
[ -f "$src/.dockerignore" ] || { echo "no .dockerignore"; fail=1; }
tmp=$(mktemp -d /tmp/lbcp-compose-cfg.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for f in "$src"/deploy/compose/*.yaml; do
    name=$(basename "$f" .yaml)
    case $name in
        master-*) daemon=lb-master ;;
        slave-*) daemon=lb-slave ;;
        agent-*) daemon=lb-agent ;;
        *) continue ;;
    esac
    grep -q '^http_listen: 0.0.0.0:9100' "$f" || { echo "$name: no http_listen 0.0.0.0:9100"; fail=1; }
    # the image's lb-echo path is not this machine's
    sed "s|/usr/local/bin/lb-echo|$bin/lb-echo|" "$f" >"$tmp/$name.yaml"
    "$bin/$daemon" --check-config "$tmp/$name.yaml" >/dev/null || fail=1
done
[ $fail -eq 0 ] && echo "compose stack: static checks passed"
exit $fail
