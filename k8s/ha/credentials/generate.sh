#!/bin/sh
# Creates the Secret bakery-ha-credentials in this pod's namespace with random values, unless
# it exists (the API answers 409 and nothing changes). Keys: rabbitmq-username,
# rabbitmq-password, rabbitmq-erlang-cookie (RabbitMQ), redis-password (Redis and Sentinel).
# Runs in the curl image: sh, tr, head and curl. Letters and digits only, so the values need
# no quoting in rabbitmq.conf, redis.conf or sentinel.conf.
set -eu
umask 077
sa=/var/run/secrets/kubernetes.io/serviceaccount
ns=$(cat "$sa/namespace")
rand() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"; }
# The token goes in a header file, not on curl's command line.
printf 'Authorization: Bearer %s\n' "$(cat "$sa/token")" >/tmp/auth
cat >/tmp/secret.json <<JSON
{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
 "metadata": {"name": "bakery-ha-credentials",
   "labels": {"app.kubernetes.io/name": "bakery-ha-credentials", "app.kubernetes.io/part-of": "bakery"}},
 "stringData": {"rabbitmq-username": "bakery-$(rand 8)", "rabbitmq-password": "$(rand 32)",
   "rabbitmq-erlang-cookie": "$(rand 48)", "redis-password": "$(rand 32)"}}
JSON
code=$(curl -sS --retry 5 --retry-connrefused --retry-max-time 60 --max-time 20 -o /tmp/answer \
	-w '%{http_code}' \
	--cacert "$sa/ca.crt" -H @/tmp/auth -H 'Content-Type: application/json' \
	--data-binary @/tmp/secret.json \
	"https://kubernetes.default.svc/api/v1/namespaces/$ns/secrets")
rm -f /tmp/auth /tmp/secret.json
case $code in
201) echo "bakery-ha-credentials: created with random values" ;;
409) echo "bakery-ha-credentials: exists, kept" ;;
*)
	echo "bakery-ha-credentials: the API answered $code:" >&2
	cat /tmp/answer >&2
	exit 1
	;;
esac
