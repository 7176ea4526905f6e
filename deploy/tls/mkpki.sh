#!/usr/bin/env bash
# mkpki.sh DIR [DAYS] — makes the certificates an lbcp cluster runs with
# (README "Security model"): one CA per role, one certificate per role, and
# the CA bundles each listener trusts. For a real deployment run it on an
# offline machine, keep DIR/ca-*.key there, and copy to each host only its
# role's certificate and key plus trust.pem and its listener bundle; or issue
# per-host certificates from the same CAs (any name in the CA, but the
# subjectAltName must be DNS:<role>.lbcp, which peers check when they dial).
#
#   ca-<role>.crt/.key    master, slave, agent, operator, client CAs
#   <role>.crt/.key       a certificate of that role (SAN DNS:<role>.lbcp)
#   trust.pem             every role CA: what a dialer verifies servers against
#   peers-master.pem      who may call the master's RPC: slaves and operators
#   peers-report.pem      who may publish load reports: agents and slaves
#   peers-agent.pem       who may call an agent: masters and operators
#   peers-slave.pem       who may call a slave: clients and operators
#   peers-operator.pem    who may call the master's operator_listen: operators only
set -euo pipefail
dir=${1:?usage: mkpki.sh DIR [DAYS]}
days=${2:-365}
mkdir -p "$dir"
cd "$dir"
umask 077
roles="master slave agent operator client"
for r in $roles; do
    [ -f "ca-$r.crt" ] && continue
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "ca-$r.key" -out "ca-$r.crt" -days "$days" -subj "/CN=lbcp $r CA" 2>/dev/null
done
for r in $roles; do
    [ -f "$r.crt" ] && continue
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$r.key" -out "$r.csr" -subj "/CN=$r.lbcp" 2>/dev/null
    printf 'subjectAltName=DNS:%s.lbcp\nextendedKeyUsage=serverAuth,clientAuth\n' "$r" >"$r.ext"
    openssl x509 -req -in "$r.csr" -CA "ca-$r.crt" -CAkey "ca-$r.key" -CAcreateserial \
        -out "$r.crt" -days "$days" -extfile "$r.ext" 2>/dev/null
    rm -f "$r.csr" "$r.ext"
done
bundle() { # out roles...
    local out=$1
    shift
    : >"$out"
    for r in "$@"; do cat "ca-$r.crt" >>"$out"; done
}
bundle trust.pem $roles
bundle peers-master.pem slave operator
bundle peers-report.pem agent slave
bundle peers-agent.pem master operator
bundle peers-slave.pem client operator
bundle peers-operator.pem operator
chmod 644 ./*.crt ./*.pem
echo "certificates in $dir"
