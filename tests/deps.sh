#!/usr/bin/env bash
# Installs what building and testing lbcp needs, from Debian's archive, when missing.
# Sourced by tests/run.sh and deploy/local/demo.sh.
lb_install_deps() {
    local pkgs=(build-essential cmake pkg-config libnng-dev libprotobuf-c-dev protobuf-c-compiler
                libcurl4-openssl-dev libyaml-dev libcjson-dev libcmocka-dev libmicrohttpd-dev
                etcd-server etcd-client python3 curl iproute2 procps clang-format prometheus tmux
                clang libclang-rt-dev openssl systemd help2man dpkg-dev fakeroot docker-compose python3-pip
                chromium libsodium-dev "$@")
    # Node.js and npm (dashboard test): the machine image may ship them from another
    # source (nodesource's nodejs bundles npm and conflicts with Debian's npm package),
    # so ask Debian for them only when the commands are missing.
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}
