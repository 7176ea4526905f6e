#!/usr/bin/env bash
# The Docker deployment end to end, where a Docker engine can run: builds the
# images (deploy/Dockerfile; the base from tests/deploy/base_image.sh when no
# registry answers), starts deploy/docker-compose.yml, and from THE HOST checks
#   1. a request served by the client's zone slave,
#   2. a redirect to the other zone's slave, confirmed there,
#   3. sticky: the same client gets the same process,
#   4. a host client (lbclient-example, liblbclient) talking to its process
#      through the published slave relay,
#   5. leader failover: `docker kill` of the leader master; the standby leads
#      and new clients are served,
# then removes the stack. Starts dockerd itself when none runs; prints
# "skipped: no docker" and exits 0 only where no engine can run. Slow (image
# builds): not in ctest (deploy_compose_static is the quick check there).
# usage: compose_test.sh [BIN_DIR]   (host lbctl and lbclient-example; default build*/bin)
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-}
for b in "$bin" "$src/build-asan/bin" "$src/build-dev/bin" "$src/build/bin"; do
    [ -n "$b" ] && [ -x "$b/lbctl" ] && [ -x "$b/lbclient-example" ] && { bin=$(cd "$b" && pwd); break; }
done
[ -x "$bin/lbctl" ] || { echo "compose_test.sh: no built lbctl (give BIN_DIR)"; exit 1; }
# debootstrap builds the base image when no registry answers (tests/deploy/base_image.sh);
# a fresh machine lacks it, as it lacks the test suite's packages
. "$src/tests/deps.sh"
lb_install_deps debootstrap
project=lbcptest
compose=(docker-compose -p "$project" -f "$src/deploy/docker-compose.yml")
t_start=$(date +%s)
say() { echo "[$(( $(date +%s) - t_start ))s] $*"; }

# --- a Docker engine -----------------------------------------------------------------
started_dockerd=""
if ! docker info >/dev/null 2>&1; then
    if command -v dockerd >/dev/null && [ "$(id -u)" -eq 0 ]; then
        say "no Docker engine running: starting dockerd"
        dockerd >/tmp/lbcp-compose-dockerd.log 2>&1 &
        started_dockerd=$!
        for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    if ! docker info >/dev/null 2>&1; then
        [ -n "$started_dockerd" ] && kill "$started_dockerd" 2>/dev/null
        echo "skipped: no docker (no engine runs here and dockerd could not start one)"
        exit 0
    fi
fi
command -v docker-compose >/dev/null || { echo "compose_test.sh: docker-compose not installed"; exit 1; }

cleanup() {
    say "removing the stack"
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1
    rm -f "$cfg"
    if [ -n "$started_dockerd" ]; then
        kill "$started_dockerd" 2>/dev/null
        wait "$started_dockerd" 2>/dev/null
    fi
}
cfg=$(mktemp /tmp/lbcp-compose-lbctl.XXXXXX.yaml)
trap cleanup EXIT

# --- images ---------------------------------------------------------------------------
if docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    export LBCP_BASE=debian:bookworm-slim
else
    say "no registry: building a bookworm-slim equivalent with debootstrap"
    "$src/tests/deploy/base_image.sh" lbcp/bookworm-slim:local || exit 1
    export LBCP_BASE=lbcp/bookworm-slim:local
fi
LBCP_GIT_DESCRIBE=$(git -C "$src" describe --always --tags 2>/dev/null || true)
export LBCP_GIT_DESCRIBE
say "building images (base $LBCP_BASE)"
"${compose[@]}" build >/tmp/lbcp-compose-build.log 2>&1 || { tail -30 /tmp/lbcp-compose-build.log; exit 1; }
say "image lbcp:latest: $(docker image inspect -f '{{.Size}}' lbcp:latest) bytes, user $(docker image inspect -f '{{.Config.User}}' lbcp:latest)"
docker run --rm lbcp:latest lb-master --version

# --- the stack --------------------------------------------------------------------------
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1
say "docker-compose up"
"${compose[@]}" up -d >/tmp/lbcp-compose-up.log 2>&1 || { cat /tmp/lbcp-compose-up.log; exit 1; }
services="etcd1 etcd2 etcd3 master-1 master-2 slave-a slave-b agent-a1 agent-a2 agent-b1"
health() { docker inspect -f '{{.State.Health.Status}}' "$("${compose[@]}" ps -q "$1")" 2>/dev/null; }
for _ in $(seq 120); do
    n=0
    for s in $services; do [ "$(health "$s")" = healthy ] && n=$((n + 1)); done
    [ $n -eq 10 ] && break
    sleep 1
done
for s in $services; do echo "  $s: $(health "$s")"; done
[ $n -eq 10 ] || { "${compose[@]}" logs --tail 20; echo "FAIL: not every service became healthy"; exit 1; }
say "every service healthy"

printf 'etcd: http://127.0.0.1:22379\nslave: tcp://127.0.0.1:27201\ncall_timeout: 15s\n' >"$cfg"
export LBCP_CONFIG=$cfg
ctl() { "$bin/lbctl" "$@"; }
fails=0
check() { if [ "$1" = ok ]; then echo "PASS: $2"; else echo "FAIL: $2"; fails=$((fails + 1)); fi; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

for _ in $(seq 60); do
    [ "$(ctl servers -o json 2>/dev/null | grep -o '"UP"' | wc -l)" -eq 3 ] && break; sleep 1
done
ctl servers

# 1. served at the zone's own slave
out=$(ctl request --app echo --client alice --location zone-a -o json)
echo "$out"
[ "$(echo "$out" | jget '["action"]')" = SERVE ] && [ "$(echo "$out" | jget '["slave"]')" = slave-a ] &&
    [ "$(echo "$out" | jget '["redirected"]')" = False ]
check $([ $? -eq 0 ] && echo ok) "request: alice (zone-a) served by slave-a"
pid1=$(echo "$out" | jget '["pid"]')

# 2. redirect + confirm
out=$(ctl request --app echo --client bob --location zone-b -o json)
echo "$out"
[ "$(echo "$out" | jget '["redirected"]')" = True ] && [ "$(echo "$out" | jget '["slave"]')" = slave-b ] &&
    [ "$(echo "$out" | jget '["confirmed"]')" = True ] &&
    [ "$(echo "$out" | jget '["hops"][1]')" = tcp://127.0.0.1:27202 ]
check $([ $? -eq 0 ] && echo ok) "redirect: bob (zone-b) sent from slave-a to slave-b (127.0.0.1:27202), confirmed"

# 3. sticky
out=$(ctl request --app echo --client alice --location zone-a -o json)
[ "$(echo "$out" | jget '["pid"]')" = "$pid1" ]
check $([ $? -eq 0 ] && echo ok) "sticky: alice again gets pid $pid1"

# 4. a client on the host, through the published relay
out=$(LD_LIBRARY_PATH="$bin/../lib" "$bin/lbclient-example" --slave tcp://127.0.0.1:27201 \
      --app echo --client host-carol --location zone-a 2>&1)
echo "$out"
echo "$out" | grep -q "^answer: pid=.* echo=hello"
check $([ $? -eq 0 ] && echo ok) "host client: liblbclient served through the slave relay 127.0.0.1:27211"

# 5. leader failover by docker kill
leader=$(ctl status -o json | jget '["leader"]')
say "leader is $leader; docker kill"
docker kill "$("${compose[@]}" ps -q "$leader")" >/dev/null
t0=$(date +%s)
new=""
for _ in $(seq 60); do
    new=$(ctl status -o json 2>/dev/null | jget '["leader"]' 2>/dev/null)
    [ -n "$new" ] && [ "$new" != "$leader" ] && [ "$new" != None ] && break
    sleep 0.5
done
say "new leader: $new after $(( $(date +%s) - t0 )) s"
out=$(ctl request --app echo --client dave --location zone-a -o json)
echo "$out"
[ -n "$new" ] && [ "$new" != "$leader" ] && [ "$(echo "$out" | jget '["action"]')" = SERVE ]
check $([ $? -eq 0 ] && echo ok) "failover: $leader killed, $new leads, dave served"
out=$(ctl explain --app echo --client erin --location zone-b -o json)
[ "$(echo "$out" | jget '["server"]')" = agent-b1 ]
check $([ $? -eq 0 ] && echo ok) "explain from the host reaches the new leader (advertised 127.0.0.1 endpoint)"

say "compose test: $((5 + 1 - fails)) passed, $fails failed"
[ $fails -eq 0 ]
