#!/usr/bin/env bash
# Runs a whole lbcp cluster on loopback: a real single-node etcd (client on
# http://127.0.0.1:12379), one master, slaves zone-a (tls+tcp://127.0.0.1:7201) and
# zone-b (tls+tcp://127.0.0.1:7202), agents agent-a1, agent-a2 (zone-a) and agent-b1
# (zone-b), each offering app `echo` (lb-echo). Then shows serve, redirect and
# stickiness, and leaves the cluster running. ./deploy/local/down.sh stops it.
# Every nng link is TLS, with certificates from a throwaway PKI made in
# state/tls by deploy/tls/mkpki.sh. The slaves require signed client tokens
# (require_tokens): an issuer key is made in state/tls and each demo client
# gets its token from `lbctl token issue` (LBCP_TOKEN).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="$here/state"
cd "$root"

. tests/deps.sh
lb_install_deps

if [ -f "$state/pids" ]; then
    echo "a demo cluster is already running (state in $state); stopping it first"
    "$here/down.sh"
fi

echo "== building (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
bin="$root/build/bin"
export PATH="$bin:$PATH"

mkdir -p "$state/logs"
: >"$state/pids"

# A root agent runs its apps as `nobody` (deploy/agent.example.yaml:
# default_user), who may not be able to reach build/bin (a checkout under
# /root): then the app binary goes to a directory nobody can read, first in
# PATH (agents resolve argv[0] there at start). down.sh removes it.
if [ "$(id -u)" = 0 ] && ! su -s /bin/sh nobody -c "test -x '$bin/lb-echo'" 2>/dev/null; then
    appbin=$(mktemp -d /tmp/lbcp-demo-apps.XXXXXX)
    cp "$bin/lb-echo" "$appbin/"
    chmod 755 "$appbin" "$appbin/lb-echo"
    echo "$appbin" >"$state/appbin"
    export PATH="$appbin:$PATH"
    echo "(apps run as nobody, from $appbin)"
fi

echo "== a throwaway PKI in $state/tls (one CA per role)"
"$root/deploy/tls/mkpki.sh" "$state/tls" 30 >/dev/null
# lbctl and lbclient-example act as the operator
export LBCP_TLS_CA="$state/tls/trust.pem" LBCP_TLS_CERT="$state/tls/operator.crt"
export LBCP_TLS_KEY="$state/tls/operator.key"

echo "== a client-token issuer key in $state/tls/issuer (slaves get issuer.pub)"
lbctl token keygen --out "$state/tls/issuer" --kid demo >/dev/null
# the slaves' configs plus the token keys (the shipped slave-*.yaml stay token-free
# for docker-compose and the packages)
for s in slave-a slave-b; do
    { cat "$here/$s.yaml"
      echo "require_tokens: true"
      echo "token_public_keys: [$state/tls/issuer.pub]"
      echo "state_dir: $state/$s"; } >"$state/$s.yaml"
done
token() { # client: a 1 h token for the demo's apps
    lbctl token issue --client "$1" --apps echo,warm --ttl 1h --key "$state/tls/issuer"
}

start() { # name command...
    local name=$1
    shift
    "$@" >>"$state/logs/$name.log" 2>&1 &
    echo "$! $name" >>"$state/pids"
}

wait_until() { # seconds description command...
    local secs=$1 what=$2
    shift 2
    for _ in $(seq $((secs * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $what; logs in $state/logs" >&2
    exit 1
}

echo "== starting etcd on http://127.0.0.1:12379"
start etcd etcd --name demo --data-dir "$state/etcd" \
    --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \
    --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
    --initial-cluster demo=http://127.0.0.1:12380 --initial-cluster-state new \
    --initial-cluster-token lbcp-demo \
    --auto-compaction-mode=periodic --auto-compaction-retention=5m
wait_until 30 "etcd" curl -sf http://127.0.0.1:12379/health

export LBCP_ETCD=http://127.0.0.1:12379
echo "== starting master, slaves and agents"
start master-1 lb-master --config "$here/master.yaml"
wait_until 15 "master leadership" sh -c "lbctl stats --addr tls+tcp://127.0.0.1:7101 >/dev/null"
start slave-a lb-slave --config "$state/slave-a.yaml"
start slave-b lb-slave --config "$state/slave-b.yaml"
for a in agent-a1 agent-a2 agent-b1; do
    start "$a" lb-agent --config "$here/$a.yaml"
done
wait_until 20 "three agents in etcd" sh -c "[ \$(lbctl servers -o json | grep -o '\"id\"' | wc -l) -eq 3 ]"
wait_until 20 "load reports at the master" sh -c \
    "lbctl --addr tls+tcp://127.0.0.1:7101 stats | awk '/load_reports_total.from=.agent/ {exit !(\$2 >= 3)}'"

show() {
    echo
    echo "\$ $*"
    "$@"
}

echo
echo "== a client without a token is refused at the slave (nothing launched)"
show lbctl --slave tls+tcp://127.0.0.1:7201 request --app echo --client mallory --location zone-a || true
echo
echo "== a zone-a client asks the zone-a slave: served there"
show env LBCP_TOKEN="$(token alice)" lbctl --slave tls+tcp://127.0.0.1:7201 request --app echo --client alice --location zone-a
echo
echo "== a zone-b client asks the zone-a slave: redirected to the zone-b slave, served there"
show env LBCP_TOKEN="$(token bob)" lbctl --slave tls+tcp://127.0.0.1:7201 request --app echo --client bob --location zone-b
echo
echo "== alice asks again: sticky, same server and same pid"
export LBCP_TOKEN="$(token alice)"
show lbctl --slave tls+tcp://127.0.0.1:7201 request --app echo --client alice --location zone-a
echo
echo "== talking to alice's process"
out=$(lbctl --slave tls+tcp://127.0.0.1:7201 request --app echo --client alice --location zone-a -o json)
port=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["port"])')
echo "(sending \"hello\" to 127.0.0.1:$port)"
python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"hello\n")
print(s.recv(4096).decode().strip())
PY
echo
echo "== a first-time client of the pooled app 'warm' gets a process that was already running"
before=$(pgrep -d ' ' -f -- '--session warm' || true)
echo "(warm pool processes before the request: $before)"
out=$(LBCP_TOKEN="$(token erin)" lbctl --slave tls+tcp://127.0.0.1:7201 request --app warm --client erin --location zone-a -o json)
pid=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
case " $before " in
*" $pid "*) echo "erin is served by pid $pid, which existed before her request (a pool hit)" ;;
*) echo "erin is served by pid $pid, started for her (the pool was empty: a miss)" ;;
esac
sleep 1.2 # one report interval, so the table shows the sessions
echo
echo "== a sticky connection (liblbclient) survives the kill of its process"
show env LBCP_TLS_CERT="$state/tls/client.crt" LBCP_TLS_KEY="$state/tls/client.key" \
    LBCP_TOKEN="$(token dave)" lbclient-example --slave tls+tcp://127.0.0.1:7201 --app echo --client dave --location zone-a --kill-process
echo
echo "== the servers"
show lbctl servers

# lbctl's config file, so a fresh shell on this host needs no flags or
# LBCP_ETCD. Written only when absent or written by an earlier demo (the first
# line says so); down.sh removes it again on the same condition.
lbctl_cfg="${HOME}/.config/lbcp/lbctl.yaml"
lbctl_mark="# written by lbcp deploy/local/demo.sh"
if [ ! -e "$lbctl_cfg" ] || head -1 "$lbctl_cfg" | grep -qF "$lbctl_mark"; then
    mkdir -p "$(dirname "$lbctl_cfg")"
    cat >"$lbctl_cfg" <<CFG
$lbctl_mark (removed by down.sh)
etcd: http://127.0.0.1:12379
slave: tls+tcp://127.0.0.1:7201
tls: {ca: $state/tls/trust.pem, cert: $state/tls/operator.crt, key: $state/tls/operator.key}
CFG
    lbctl_note="lbctl config: $lbctl_cfg (etcd, default slave, operator TLS; no flags needed)"
else
    lbctl_note="lbctl config: $lbctl_cfg exists and is not the demo's; left alone (use LBCP_ETCD)"
fi

cat <<TXT

The cluster is running:
  etcd      http://127.0.0.1:12379      (export LBCP_ETCD=http://127.0.0.1:12379)
  master    tls+tcp://127.0.0.1:7101 (slaves), operators tls+tcp://127.0.0.1:7103 (lbctl release)
  slaves    zone-a tls+tcp://127.0.0.1:7201, zone-b tls+tcp://127.0.0.1:7202
  agents    agent-a1, agent-a2 (zone-a), agent-b1 (zone-b)
  metrics   http://127.0.0.1:9101/metrics (master), :9201/:9202 (slaves), :9301-9303 (agents);
            /healthz on the same ports
  logs      $state/logs/
  binaries  $bin/ (lbctl, lb-master, ...; bash completion: source deploy/bash-completion/lbctl)
  $lbctl_note
  TLS       $state/tls/ (lbctl's config above names the operator's certificate; without
            it: export LBCP_TLS_CA=$state/tls/trust.pem LBCP_TLS_CERT=$state/tls/operator.crt
            LBCP_TLS_KEY=$state/tls/operator.key)
  tokens    slaves require them; issuer key $state/tls/issuer:
            export LBCP_TOKEN=\$($bin/lbctl token issue --client carol --apps echo --ttl 1h --key $state/tls/issuer)
Try:
  $bin/lbctl request --app echo --client carol --location zone-b
  $bin/lbctl explain --app echo --client carol --location zone-b
  $bin/lbctl servers
  $bin/lbctl --addr tls+tcp://127.0.0.1:7101 stats
  $bin/lbctl status
  $bin/lbctl top
Stop it with ./deploy/local/down.sh
TXT
