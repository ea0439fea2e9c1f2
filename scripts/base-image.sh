#!/usr/bin/env bash
# Makes the base image debian:bookworm-slim available: present, pulled, or (no registry) built here.
#
#   scripts/base-image.sh
#
# The Dockerfiles say `FROM debian:bookworm-slim`, as users expect. Where no registry is reachable
# (this CI), the image is assembled locally the way the official one is: a debootstrap minbase
# root filesystem with docs, man pages and apt lists dropped, imported with `docker import`.
# Needs root and debootstrap. DEBIAN_MIRROR overrides the mirror (default deb.debian.org).
set -euo pipefail

IMAGE=debian:bookworm-slim
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'base-image: %s\n' "$*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	exit 0
fi
if timeout 60 docker pull -q "$IMAGE" >/dev/null 2>&1; then
	log "pulled $IMAGE"
	exit 0
fi

log "no registry: building $IMAGE with debootstrap from $MIRROR (a few minutes)"
root=$(mktemp -d /tmp/bakery-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --arch="$(dpkg --print-architecture)" "$SUITE" "$root" "$MIRROR" >&2

# What the official slim image does: keep docs and locales out of later package installs too.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
find "$root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
rm -rf "$root"/usr/share/{man,info,groff,lintian,linda}/* \
	"$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
	"$root"/var/log/*.log "$root"/tmp/* "$root"/root/.bash_history
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
: >"$root/etc/hostname"
: >"$root/etc/resolv.conf"

tar --numeric-owner -C "$root" -c . |
	docker import --change 'CMD ["bash"]' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--message "debootstrap --variant=minbase $SUITE (local stand-in for $IMAGE)" \
		- "$IMAGE" >/dev/null
log "created $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
