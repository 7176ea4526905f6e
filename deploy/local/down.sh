#!/usr/bin/env bash
# Stops every process ./deploy/local/demo.sh started and removes its state.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="$here/state"
if [ ! -f "$state/pids" ]; then
    echo "no demo cluster is running"
    rm -rf "$state"
    exit 0
fi
# daemons first (agents stop their processes), etcd last
tac "$state/pids" | while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null && echo "killed $name ($pid)" || echo "stopped $name ($pid)"
    fi
done
# every app process goes with its agent (cgroup + guard); say so if one did not
root="$(cd "$here/../.." && pwd)"
appbin=$(cat "$state/appbin" 2>/dev/null || true)
left=$(pgrep -f -- "^$root/build/bin/lb-echo " || true)
if [ -n "$appbin" ]; then
    left="$left $(pgrep -f -- "^$appbin/lb-echo " || true)"
    left=$(echo $left)
    case "$appbin" in /tmp/lbcp-demo-apps.*) rm -rf "$appbin" ;; esac
fi
if [ -n "$left" ]; then
    echo "WARNING: app processes outlived their agents: $left (killing them)" >&2
    kill -KILL $left 2>/dev/null
fi
rm -rf "$state"
# the lbctl config demo.sh wrote (only if it is still the demo's)
cfg="${HOME}/.config/lbcp/lbctl.yaml"
if [ -f "$cfg" ] && head -1 "$cfg" | grep -qF "# written by lbcp deploy/local/demo.sh"; then
    rm -f "$cfg"
fi
echo "demo cluster stopped, state removed"
[ -z "$left" ]
