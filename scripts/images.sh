#!/usr/bin/env bash
# Builds the runtime images bakery/reception and bakery/baker (`make images`) and prints their sizes.
#
#   scripts/images.sh [reception|baker ...]      (default: both)
#
# Tags: latest and the git short revision. Fails when an image reaches the size budget
# (IMAGE_MAX_BYTES, default 25 MB). The base image debian:bookworm-slim is pulled, or built
# locally by scripts/base-image.sh where no registry is reachable.
set -euo pipefail

cd "$(dirname "$0")/.."
MAX=${IMAGE_MAX_BYTES:-25000000}

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
short=$(git rev-parse --short HEAD 2>/dev/null || echo dev)

scripts/base-image.sh
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(reception baker)

for svc in "${services[@]}"; do
	case $svc in
	reception | baker) ;;
	*)
		echo "usage: $0 [reception|baker ...]" >&2
		exit 2
		;;
	esac
	echo "images: building bakery/$svc ($short)" >&2
	docker build -f "Dockerfiles/$svc.Dockerfile" --build-arg "REVISION=$revision" \
		-t "bakery/$svc:latest" -t "bakery/$svc:$short" .
done

status=0
for svc in "${services[@]}"; do
	size=$(docker image inspect -f '{{.Size}}' "bakery/$svc:latest")
	awk -v s="$svc" -v t="$short" -v b="$size" \
		'BEGIN { printf "images: bakery/%s:%s  %.1f MB (%d bytes)\n", s, t, b / 1e6, b }'
	if [ "$size" -ge "$MAX" ]; then
		echo "images: bakery/$svc is over the size budget of $MAX bytes" >&2
		status=1
	fi
done
exit $status
