#!/usr/bin/env bash
# Builds the images and starts Bakery's Compose stack (`make up`); returns once it serves.
#
#   scripts/up.sh
#
# Ready means: reception's /readyz answers 200, a baker consumes the orders queue (RabbitMQ's
# management API), Jaeger's query API answers, and no container is restarting. Ports (loopback
# only): BAKERY_RECEPTION_PORT (8000), BAKERY_JAEGER_PORT (16686), BAKERY_RABBITMQ_PORT (15672).
# UP_TIMEOUT (seconds, default 300) bounds the wait. `make down` removes the stack.
set -euo pipefail

cd "$(dirname "$0")/.."
reception=http://127.0.0.1:${BAKERY_RECEPTION_PORT:-8000}
jaeger=http://127.0.0.1:${BAKERY_JAEGER_PORT:-16686}
rabbitmq=http://127.0.0.1:${BAKERY_RABBITMQ_PORT:-15672}

log() { printf 'up: %s\n' "$*" >&2; }

# Third-party images: present, pulled, or (no registry) local stand-ins under the same names.
scripts/standin-images.sh redis rabbitmq otelcol jaeger
scripts/images.sh
log "starting the stack (project ${COMPOSE_PROJECT_NAME:-bakery})"
scripts/compose.sh up -d --no-build --remove-orphans

# ready: true when every check passes once.
ready() {
	curl -fsS -o /dev/null --max-time 3 "$reception/readyz" &&
		curl -fsS -o /dev/null --max-time 3 "$jaeger/api/services" &&
		[ "$(curl -fsS --max-time 3 -u guest:guest "$rabbitmq/api/queues/%2F/orders" |
			jq -r '.consumers // 0')" -ge 1 ] &&
		! scripts/compose.sh ps -q | xargs docker inspect -f '{{.State.Status}}' |
			grep -qv '^running$'
}

deadline=$((SECONDS + ${UP_TIMEOUT:-300}))
until ready 2>/dev/null; do
	if [ $SECONDS -ge $deadline ]; then
		log "the stack did not become ready in ${UP_TIMEOUT:-300}s"
		scripts/compose.sh ps >&2
		scripts/compose.sh logs --tail=30 >&2
		exit 1
	fi
	sleep 2
done

cat <<MSG
Bakery is up (project ${COMPOSE_PROJECT_NAME:-bakery}):
  reception          $reception/          (POST /orders, GET /orders/{key})
  Jaeger             $jaeger/search?service=reception
  RabbitMQ           $rabbitmq/           (guest/guest)
  logs               scripts/compose.sh logs -f
  stop and remove    make down
MSG
