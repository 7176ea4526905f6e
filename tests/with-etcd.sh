#!/usr/bin/env bash
# Runs a command with a throwaway single-node etcd on free loopback ports.
#
#   tests/with-etcd.sh CMD [ARG...]
#
# CMD sees:
#   LBCP_TEST_ETCD          http://127.0.0.1:PORT, the client URL
#   LBCP_TEST_ETCD_PID      etcd's pid at start (after a restart: cat "$LBCP_TEST_ETCD_DIR/etcd.pid")
#   LBCP_TEST_ETCD_RESTART  an executable (no arguments) that stops this etcd and starts it
#                           again on the same ports and data dir; it returns once etcd is
#                           healthy (exit 0) or prints etcd's log and fails
#   LBCP_TEST_ETCD_DIR      the temporary directory (etcd.log, etcd.pid, data/)
# The etcd is killed and the directory removed when the script exits, however
# CMD ends. The exit status is CMD's (1 when etcd cannot be started).
#
# Safe to run many at once (ctest -j): each picks its own ports and directory.
set -u

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
START_TIMEOUT_S=20

log() { echo "with-etcd: $*" >&2; }

# alive PID: running and not a zombie
alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Prints two loopback ports that were free a moment ago.
pick_ports() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
        return
    fi
    local p q
    while :; do
        p=$((20000 + RANDOM % 30000)); q=$((p + 1))
        if ! (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (echo >"/dev/tcp/127.0.0.1/$q") 2>/dev/null; then
            echo "$p $q"; return
        fi
    done
}

healthy() {
    local url="http://127.0.0.1:$1/health"
    if command -v curl >/dev/null 2>&1; then
        curl -sf --max-time 2 "$url" 2>/dev/null | grep -q '"health":"true"'
    else
        python3 -c 'import sys, urllib.request
sys.exit(0 if b"\"health\":\"true\"" in urllib.request.urlopen(sys.argv[1], timeout=2).read() else 1)' "$url" 2>/dev/null
    fi
}

# start_etcd DIR: launches etcd on DIR/ports with DIR/data; pid in DIR/etcd.pid.
start_etcd() {
    local dir=$1 p q
    read -r p q <"$dir/ports"
    (
        # ETCD_* variables are flags to etcd: keep the caller's out
        for v in $(compgen -e | grep '^ETCD_'); do unset "$v"; done
        exec etcd --name t1 --data-dir "$dir/data" \
            --listen-client-urls "http://127.0.0.1:$p" --advertise-client-urls "http://127.0.0.1:$p" \
            --listen-peer-urls "http://127.0.0.1:$q" --initial-advertise-peer-urls "http://127.0.0.1:$q" \
            --initial-cluster "t1=http://127.0.0.1:$q" --initial-cluster-state new \
            --initial-cluster-token "lbcp-test-$p" --unsafe-no-fsync
    ) </dev/null >>"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
}

# wait_healthy DIR: 0 once /health says true; 1 if etcd died or the timeout passed.
wait_healthy() {
    local dir=$1 p q pid deadline
    read -r p q <"$dir/ports"
    pid=$(cat "$dir/etcd.pid")
    deadline=$((SECONDS + START_TIMEOUT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        healthy "$p" && return 0
        alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# stop_etcd DIR: TERM, then KILL after 10 s; returns once it is gone.
stop_etcd() {
    local dir=$1 pid i
    [ -f "$dir/etcd.pid" ] || return 0
    pid=$(cat "$dir/etcd.pid")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
}

show_log() {
    log "etcd log ($1/etcd.log), last lines:"
    tail -n 30 "$1/etcd.log" >&2 2>/dev/null
}

if [ "${1:-}" = "--restart" ]; then
    dir=${2:?usage: with-etcd.sh --restart DIR}
    stop_etcd "$dir"
    echo "--- restart ---" >>"$dir/etcd.log"
    start_etcd "$dir"
    if ! wait_healthy "$dir"; then
        log "etcd did not come back after a restart"
        show_log "$dir"
        exit 1
    fi
    exit 0
fi

if [ $# -eq 0 ]; then
    echo "usage: $0 CMD [ARG...]" >&2
    exit 2
fi
if ! command -v etcd >/dev/null 2>&1; then
    log "etcd not found (Debian: apt-get install etcd-server)"
    exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/lbcp-etcd.XXXXXX") || exit 1
child=""
watchdog=""
cleanup() {
    local rc=$?
    trap - EXIT HUP INT TERM
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
    stop_etcd "$dir"
    [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
    rm -rf "$dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# If this script is killed outright (no trap runs), still stop CMD and etcd and tidy up.
(
    trap '' HUP INT
    tail --pid=$$ -f /dev/null 2>/dev/null || while kill -0 $$ 2>/dev/null; do sleep 1; done
    if [ -d "$dir" ]; then
        [ -s "$dir/child.pid" ] && kill -TERM "$(cat "$dir/child.pid")" 2>/dev/null
        stop_etcd "$dir"
        rm -rf "$dir"
    fi
) </dev/null >/dev/null 2>&1 &
watchdog=$!

started=0
for attempt in 1 2 3 4 5; do
    pick_ports >"$dir/ports" || break
    rm -rf "$dir/data"
    start_etcd "$dir"
    if wait_healthy "$dir"; then
        started=1
        break
    fi
    log "etcd did not start (attempt $attempt; a port may have been taken)"
    stop_etcd "$dir"
done
if [ "$started" != 1 ]; then
    show_log "$dir"
    exit 1
fi

read -r port _ <"$dir/ports"
printf '#!/bin/sh\nexec "%s" --restart "%s"\n' "$SELF" "$dir" >"$dir/restart"
chmod +x "$dir/restart"
export LBCP_TEST_ETCD="http://127.0.0.1:$port"
LBCP_TEST_ETCD_PID=$(cat "$dir/etcd.pid")
export LBCP_TEST_ETCD_PID
export LBCP_TEST_ETCD_RESTART="$dir/restart"
export LBCP_TEST_ETCD_DIR="$dir"

# In the background so a signal to this script is handled at once.
"$@" &
child=$!
echo "$child" >"$dir/child.pid"
wait "$child"
rc=$?
child=""
exit "$rc"
