#!/usr/bin/env bash
# Builds the image deploy/Dockerfile starts FROM (default lbcp/bookworm-slim:local)
# when no registry can be reached: debootstrap --variant=minbase of Debian
# bookworm from the machine's own apt mirror, trimmed like debian:bookworm-slim
# (no docs, man pages or locales), then `docker import`. Does nothing when the
# image exists already (LBCP_REBUILD_BASE=1 forces a rebuild).
# usage: base_image.sh [IMAGE]
set -euo pipefail
image=${1:-lbcp/bookworm-slim:local}
docker=${DOCKER:-docker}
if [ "${LBCP_REBUILD_BASE:-0}" != 1 ] && $docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image present"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "base_image.sh: debootstrap is not installed" >&2; exit 1; }
# The mirror this machine's apt already uses (deb822 or one-line format).
mirror=${LBCP_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
             grep -v security | head -1 || true)
fi
if [ -z "$mirror" ]; then
    mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1 || true)
fi
[ -n "$mirror" ] || { echo "base_image.sh: no Debian mirror found in apt sources; set LBCP_DEBIAN_MIRROR" >&2; exit 1; }
root=$(mktemp -d /tmp/lbcp-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# what debian:bookworm-slim leaves out
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
       "$root"/usr/share/locale/* "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/docker-norecommends"
tar -C "$root" -c . | $docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "base image $image built ($($docker image inspect -f '{{.Size}}' "$image") bytes)"
