#!/usr/bin/env bash
# STAND-IN IMAGES — used ONLY where no container registry is reachable (this CI).
#
#   scripts/standin-images.sh [redis|rabbitmq|otelcol|jaeger|k6|curl|all ...]   (default: all)
#
# The Compose stack, k8s/, the chart's `helm test` pod and the load test use third-party images
# by their official names and pinned tags. Where an image is missing and `docker pull` fails,
# this script builds a local stand-in under the SAME name and tag, from Debian's packages
# (redis-server, rabbitmq-server, curl) or from the pinned tool builds of scripts/tools.sh
# (otelcol, jaeger, k6). The Debian packages are older releases than the tags say (Redis 7.0,
# RabbitMQ 3.10.8, curl 7.88: each image's LABEL says so). Each stand-in keeps the official
# image's entrypoint, binary path, ports, user ids, data directories and environment for what
# Bakery uses (Dockerfiles/standin/*.Dockerfile say what that is). Anywhere a registry answers,
# the real images are pulled instead and nothing is built. Set STANDIN_FORCE=1 to rebuild.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TOOLS=${BAKERY_TOOLS:-$HOME/.cache/bakery-tools}

declare -A IMAGE=(
	[redis]=redis:8.10.2
	[rabbitmq]=rabbitmq:4.4.1-management
	[otelcol]=otel/opentelemetry-collector-contrib:0.165.0
	[jaeger]=jaegertracing/jaeger:2.13.0
	[k6]=grafana/k6:1.8.1
	[curl]=curlimages/curl:8.22.0
)

log() { printf 'standin: %s\n' "$*" >&2; }

# tool NAME: path of a pinned tool binary, built by scripts/tools.sh when not cached yet.
tool() {
	[ -x "$TOOLS/$1" ] || "$HERE/tools.sh" "$1" >/dev/null
	readlink -f "$TOOLS/$1"
}

# context NAME DIR: fills DIR with the files the stand-in's Dockerfile copies.
context() {
	case $1 in
	otelcol)
		cp "$(tool otelcol)" "$2/otelcol"
		# The official image's default config names contrib receivers this build lacks;
		# this one runs. Compose mounts k8s/otel-collector/config.yaml over it.
		cat >"$2/config.yaml" <<-'EOF'
			receivers:
			  otlp:
			    protocols:
			      grpc:
			        endpoint: 0.0.0.0:4317
			      http:
			        endpoint: 0.0.0.0:4318
			exporters:
			  debug:
			service:
			  pipelines:
			    traces:
			      receivers: [otlp]
			      exporters: [debug]
		EOF
		;;
	jaeger)
		cp "$(tool jaeger)" "$2/jaeger"
		printf '{"default_strategy": {"type": "probabilistic", "param": 1}}\n' \
			>"$2/sampling-strategies.json"
		;;
	k6) cp "$(tool k6)" "$2/k6" ;;
	esac
}

# ensure NAME: the image is present, pulled, or built as a stand-in. A stand-in built from an
# older Dockerfile (its dockerfile-sha256 label differs, or it has none) is built again.
ensure() {
	local name=$1 image=${IMAGE[$1]} ctx title sha
	sha=$(sha256sum "$ROOT/Dockerfiles/standin/$name.Dockerfile" | cut -d' ' -f1)
	if [ -z "${STANDIN_FORCE:-}" ]; then
		if title=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' \
			"$image" 2>/dev/null); then
			case $title in
			*"(local stand-in)") ;;
			*) return 0 ;;
			esac
			[ "$(docker image inspect -f '{{index .Config.Labels "bakery.standin.dockerfile-sha256"}}' \
				"$image")" = "$sha" ] && return 0
			log "stand-in $image is from an older Dockerfile: building it again"
		elif timeout 60 docker pull -q "$image" >/dev/null 2>&1; then
			log "pulled $image"
			return 0
		fi
	fi
	log "no registry: building stand-in $image"
	ctx=$(mktemp -d /tmp/bakery-standin.XXXXXX)
	context "$name" "$ctx"
	docker build -q -t "$image" --label "bakery.standin.dockerfile-sha256=$sha" \
		-f "$ROOT/Dockerfiles/standin/$name.Dockerfile" "$ctx" >/dev/null ||
		{ rm -rf "$ctx"; return 1; }
	rm -rf "$ctx"
}

"$HERE/base-image.sh"
names=("$@")
if [ ${#names[@]} -eq 0 ] || [ "${names[0]}" = all ]; then
	names=(redis rabbitmq otelcol jaeger k6 curl)
fi
for n in "${names[@]}"; do
	case $n in
	redis | rabbitmq | otelcol | jaeger | k6 | curl) ensure "$n" ;;
	*)
		echo "usage: $0 [redis|rabbitmq|otelcol|jaeger|k6|curl|all ...]" >&2
		exit 2
		;;
	esac
done
