#!/usr/bin/env bash
# Runs Compose on Bakery's stack (docker-compose.yml), with `docker compose` v2 or docker-compose v1.
#
#   scripts/compose.sh ps | logs -f baker | ...
#
# The project name is COMPOSE_PROJECT_NAME (default bakery), so up, down and tests agree on it.
set -euo pipefail

cd "$(dirname "$0")/.."
if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose=(docker-compose)
else
	echo "compose: neither 'docker compose' nor 'docker-compose' is installed" >&2
	exit 1
fi
exec "${compose[@]}" -p "${COMPOSE_PROJECT_NAME:-bakery}" -f docker-compose.yml "$@"
