#!/usr/bin/env bash
# Measures Tilt-style live update on the reception dev image: sync one changed source file
# into the running container the way Tilt does (tar through docker exec), touch /tmp/.restart,
# and time until the new code answers. The figure in the README comes from it.
#
#   docker build -f Dockerfiles/reception.Dockerfile --target dev -t bakery/reception:dev .
#   scripts/measure-live-update.sh bakery/reception:dev [runs]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
image=$1 runs=${2:-3}
net=bakery-k8s-lu-$$
ctr=bakery-k8s-lu-$$
work=$(mktemp -d)
cleanup() { docker rm -f "$ctr" >/dev/null 2>&1 || true; docker network rm "$net" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
docker network create "$net" >/dev/null
docker run -d --name "$ctr" --network "$net" -p 127.0.0.1::8000 \
	-e OTEL_SDK_DISABLED=true -e DB_HOST=127.0.0.1:6379 -e RABBIT_HOST=127.0.0.1:5672 \
	"$image" >/dev/null
port=$(docker port "$ctr" 8000/tcp | head -1 | sed 's/.*://')
url=http://127.0.0.1:$port/
for _ in $(seq 300); do curl -fsS "$url" >/dev/null 2>&1 && break; sleep 0.1; done
echo "first answer: $(curl -fsS "$url")"
mkdir -p "$work/src/reception"
for i in $(seq "$runs"); do
	sed "s/reception is attended/reception is attended (edit $i)/" "$ROOT/reception/routes.c" \
		>"$work/src/reception/routes.c"
	t0=$(date +%s.%N)
	tar -C "$work" -cf - src/reception/routes.c | docker exec -i "$ctr" tar -C / -xf -
	docker exec "$ctr" touch /tmp/.restart
	until curl -fsS "$url" 2>/dev/null | grep -q "edit $i"; do sleep 0.02; done
	t1=$(date +%s.%N)
	printf 'run %d: %.2f s from sync to new code serving\n' "$i" "$(echo "$t1 - $t0" | bc)"
done
docker logs -t "$ctr" 2>&1 | grep -E "dev-run|^[^ ]+ cc |shutdown|stop" | tail -12
