#!/usr/bin/env bash
# Creates the etcd users and roles lbcp needs, each limited to its own keys,
# and enables etcd authentication. Uses etcdctl (Debian package etcd-client).
#
#   deploy/etcd-auth-setup.sh --endpoints URL --out DIR [--prefix /lb/]
#       [--cacert FILE --cert FILE --key FILE]      etcd TLS (client cert with an empty CN)
#       [--masters ID,..] [--slaves ID,..] [--agents ID,..] [--operators NAME,..]
#       [--root-password-file FILE]                 when auth is already enabled
#
# Users and roles (P = --prefix):
#   lbcp-master-<id>   read P*; write P/masters/<id>, P/leader, P/load/*, P/sessions/*, P/affinity/*
#   lbcp-slave-<id>    write P/slaves/<id>; read P/masters/* (discovery), P/leader (which master leads)
#   lbcp-agent-<id>    write P/servers/<id> only: a stolen agent credential cannot
#                      register another server (P/servers/evil is refused);
#                      read P/pools/* and P/overrides/<id> (warm pool sizes),
#                      P/masters/* (the masters' report MAC keys)
#   lbcp-operator-<n>  read P*; write P/overrides/*, P/groups/*, P/pools/*
#                      (lbctl drain, set-group, group set, pool)
#   root               everything else: defragment, user and role management
# Each user's password is random and written to DIR/<user>.password (mode 600);
# give a daemon its file as etcd_password_file. Safe to run again: existing
# users and roles are kept (their passwords too) and permissions re-granted.
set -euo pipefail

endpoints="" out="" prefix="/lb/" root_pw_file=""
masters="" slaves="" agents="" operators=""
tls=()
while [ $# -gt 0 ]; do
    case "$1" in
    --endpoints) endpoints="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --cacert|--cert|--key) tls+=("$1=$2"); shift 2 ;;
    --masters) masters="$2"; shift 2 ;;
    --slaves) slaves="$2"; shift 2 ;;
    --agents) agents="$2"; shift 2 ;;
    --operators) operators="$2"; shift 2 ;;
    --root-password-file) root_pw_file="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "etcd-auth-setup: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$endpoints" ] && [ -n "$out" ] || { echo "etcd-auth-setup: --endpoints and --out are required" >&2; exit 2; }
case "$prefix" in */) ;; *) prefix="$prefix/" ;; esac
command -v etcdctl >/dev/null || { echo "etcd-auth-setup: etcdctl not found (apt-get install etcd-client)" >&2; exit 1; }
mkdir -p "$out"
chmod 700 "$out"
umask 077

export ETCDCTL_API=3
ctl() { etcdctl --endpoints "$endpoints" "${tls[@]}" "${auth[@]}" "$@"; }
auth=()
new_password() { openssl rand -base64 24 | tr -d '/+=\n' | cut -c1-24; }

# root: the one user that may do everything (etcd requires it to enable auth)
if [ -n "$root_pw_file" ]; then
    auth=(--user "root:$(head -n1 "$root_pw_file")")
elif ! ctl user get root >/dev/null 2>&1; then
    pw=$(new_password)
    printf '%s\n' "$pw" >"$out/root.password"
    ctl user add root --new-user-password="$pw" >/dev/null 2>&1 || ctl user get root >/dev/null
    ctl user grant-role root root >/dev/null
fi

# user NAME ROLE: the user (with a fresh password file) unless it exists
user() {
    if ! ctl user get "$1" >/dev/null 2>&1; then
        local pw
        pw=$(new_password)
        printf '%s\n' "$pw" >"$out/$1.password"
        # etcdctl retries a call that timed out; its retry may then find the
        # user or role the first attempt made: what counts is that it exists
        ctl user add "$1" --new-user-password="$pw" >/dev/null 2>&1 || ctl user get "$1" >/dev/null
    fi
    ctl role get "$2" >/dev/null 2>&1 || ctl role add "$2" >/dev/null 2>&1 || ctl role get "$2" >/dev/null
    ctl user grant-role "$1" "$2" >/dev/null
    echo "user $1 (role $2)"
}
grant() { ctl role grant-permission "$@" >/dev/null; } # ROLE read|write|readwrite KEY [--prefix]

for id in ${masters//,/ }; do
    r="lbcp-master-$id"
    user "$r" "$r"
    grant "$r" read "$prefix" --prefix=true
    grant "$r" readwrite "${prefix}masters/$id"
    grant "$r" readwrite "${prefix}leader"
    for k in load sessions affinity; do grant "$r" readwrite "$prefix$k/" --prefix=true; done
done
for id in ${slaves//,/ }; do
    r="lbcp-slave-$id"
    user "$r" "$r"
    grant "$r" readwrite "${prefix}slaves/$id"
    grant "$r" read "${prefix}masters/" --prefix=true
    grant "$r" read "${prefix}leader" --prefix=true # a watch on one key is a range from it
done
for id in ${agents//,/ }; do
    r="lbcp-agent-$id"
    user "$r" "$r"
    grant "$r" readwrite "${prefix}servers/$id" # this key only: not servers/<another>
    grant "$r" read "${prefix}pools/" --prefix=true
    grant "$r" read "${prefix}overrides/$id" --prefix=true
    grant "$r" read "${prefix}masters/" --prefix=true # report MAC keys (report_kx_key)
done
for n in ${operators//,/ }; do
    r="lbcp-operator-$n"
    user "$r" "$r"
    grant "$r" read "$prefix" --prefix=true
    grant "$r" readwrite "${prefix}overrides/" --prefix=true
    grant "$r" readwrite "${prefix}groups/" --prefix=true
    grant "$r" readwrite "${prefix}pools/" --prefix=true
done

ctl auth enable >/dev/null 2>&1 || true # already enabled is fine
# check: without credentials etcd must now refuse to read
auth=()
if ctl get --keys-only "$prefix" >/dev/null 2>&1; then
    echo "etcd-auth-setup: etcd still answers without credentials: authentication is not on" >&2
    exit 1
fi
echo "etcd authentication enabled; passwords in $out/"
