#!/usr/bin/env bash
# Installs the Debian packages Bakery builds, runs and tests with; a no-op when all are present.
#
#   scripts/deps.sh
#
# Idempotent: apt-get runs only for what `dpkg -s` reports missing. Root, or sudo when not root.
# Go (for scripts/tools.sh) is expected at /usr/local/go/bin: Debian's golang is too old.
set -euo pipefail

PACKAGES=(
	make gcc clang pkg-config libclang-rt-14-dev
	libhiredis-dev librabbitmq-dev libcivetweb-dev libcurl4-openssl-dev libjansson-dev zlib1g-dev
	redis-server redis-tools rabbitmq-server amqp-tools
	clang-format python3 python3-pytest python3-yaml debootstrap jq curl ca-certificates wrk
	valgrind # make bench-sdk: the tracing SDK's instructions under callgrind
	# scripts/cluster.sh: the test cluster's runtime, network, etcd and local registry
	etcd-server containerd runc containernetworking-plugins docker-registry openssl iproute2
	iptables conntrack ebtables ethtool ipset
)

# From bookworm-backports: the OTLP .proto files and protoc, which decode what the SDK's
# hand-written encoder sends (tests/tracing/test_otlp_protoc.py).
BACKPORTS=(opentelemetry-proto protobuf-compiler)
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.list

# One dpkg-query lists what is installed; the rest is missing.
declare -A installed
while read -r status name; do
	[ "$status" = ii ] && installed[$name]=1
done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n')
missing=()
for p in "${PACKAGES[@]}"; do
	[ -n "${installed[$p]:-}" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "deps: installing ${missing[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		"${missing[@]}"
fi

backports_missing=()
for p in "${BACKPORTS[@]}"; do
	[ -n "${installed[$p]:-}" ] || backports_missing+=("$p")
done
if [ ${#backports_missing[@]} -gt 0 ]; then
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "deps: installing ${backports_missing[*]} from bookworm-backports" >&2
	grep -rqs '^deb .*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ ||
		echo 'deb http://deb.debian.org/debian bookworm-backports main' |
		$sudo tee "$BACKPORTS_LIST" >/dev/null
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		-t bookworm-backports "${backports_missing[@]}"
fi

export PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null; then
	echo "deps: warning: no Go toolchain on PATH or in /usr/local/go/bin;" \
		"scripts/tools.sh needs Go >= 1.23" >&2
fi
