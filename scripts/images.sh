#!/usr/bin/env bash
# Builds the runtime images bakery/reception and bakery/baker (`make images`), prints their
# sizes, and pushes them to a registry when asked (`make push`).
#
#   scripts/images.sh [reception|baker ...]                      (default: both)
#   scripts/images.sh --push [REGISTRY] [reception|baker ...]    build, then push
#
# Tags: latest, the git short revision, and the chart's appVersion (charts/bakery/Chart.yaml),
# which is the chart's default image tag. --push also tags and pushes
# REGISTRY/bakery/<svc>:<appVersion>; REGISTRY is the argument, else $REGISTRY, else
# localhost:5000 (the local-registry convention of kind, minikube and KEP-1755, and the
# chart's default image registry). Fails when an image reaches the size budget
# (IMAGE_MAX_BYTES, default 25 MB). The base image debian:bookworm-slim is pulled, or built
# locally by scripts/base-image.sh where no registry is reachable.
set -euo pipefail

cd "$(dirname "$0")/.."
MAX=${IMAGE_MAX_BYTES:-25000000}

usage() {
	echo "usage: $0 [--push [REGISTRY]] [reception|baker ...]" >&2
	exit 2
}

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
short=$(git rev-parse --short HEAD 2>/dev/null || echo dev)
version=$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' \
	charts/bakery/Chart.yaml)
[ -n "$version" ] || {
	echo "images: no appVersion in charts/bakery/Chart.yaml" >&2
	exit 1
}

push=
registry=${REGISTRY:-localhost:5000}
services=()
while [ $# -gt 0 ]; do
	case $1 in
	--push=*)
		push=1
		registry=${1#--push=}
		;;
	--push)
		push=1
		case ${2:-} in
		"" | -* | reception | baker) ;;
		*)
			registry=$2
			shift
			;;
		esac
		;;
	reception | baker) services+=("$1") ;;
	*) usage ;;
	esac
	shift
done
[ ${#services[@]} -gt 0 ] || services=(reception baker)
registry=${registry%/}
[ -n "$registry" ] || usage

scripts/base-image.sh
for svc in "${services[@]}"; do
	echo "images: building bakery/$svc ($version, $short)" >&2
	docker build -f "Dockerfiles/$svc.Dockerfile" --build-arg "REVISION=$revision" \
		-t "bakery/$svc:latest" -t "bakery/$svc:$short" -t "bakery/$svc:$version" .
done

status=0
for svc in "${services[@]}"; do
	size=$(docker image inspect -f '{{.Size}}' "bakery/$svc:latest")
	awk -v s="$svc" -v t="$version" -v b="$size" \
		'BEGIN { printf "images: bakery/%s:%s  %.1f MB (%d bytes)\n", s, t, b / 1e6, b }'
	if [ "$size" -ge "$MAX" ]; then
		echo "images: bakery/$svc is over the size budget of $MAX bytes" >&2
		status=1
	fi
done
[ $status -eq 0 ] || exit $status

if [ -n "$push" ]; then
	for svc in "${services[@]}"; do
		ref=$registry/bakery/$svc:$version
		docker tag "bakery/$svc:$version" "$ref"
		docker push "$ref" >/dev/null
		echo "images: pushed $ref"
	done
fi
