#!/bin/sh
# `helm test` check (also run by tests/k8s against a real reception): posts an order to
# BASE_URL and waits until it is finished. Exits 0 on "finished", 1 otherwise.
#
#   BASE_URL=http://bakery-reception:8000 TIMEOUT_SECONDS=60 sh test-order.sh
set -eu
base=${BASE_URL:?BASE_URL is required}
timeout=${TIMEOUT_SECONDS:-60}

body=$(curl -fsS --retry 5 --retry-connrefused --max-time 10 \
	-H 'Content-Type: application/json' \
	-d '{"customer":"helm-test","pastry":"croissant"}' "$base/orders")
key=$(printf '%s' "$body" | sed -n 's/.*"orderKey" *: *"\([0-9a-f]\{32\}\)".*/\1/p')
if [ -z "$key" ]; then
	echo "test-order: no orderKey in: $body" >&2
	exit 1
fi
echo "test-order: accepted $key"

i=0
status=unknown
while [ "$i" -lt "$timeout" ]; do
	body=$(curl -fsS --max-time 10 "$base/orders/$key") || body=
	status=$(printf '%s' "$body" | sed -n 's/.*"status" *: *"\([a-z]*\)".*/\1/p')
	case $status in
	finished)
		echo "test-order: $key finished"
		exit 0
		;;
	failed)
		echo "test-order: $key failed" >&2
		exit 1
		;;
	esac
	sleep 1
	i=$((i + 1))
done
echo "test-order: $key not finished after ${timeout}s (status: $status)" >&2
exit 1
