#!/bin/sh
# Starts this RabbitMQ node with the cluster's shared Erlang cookie and its user, both from the
# Secret bakery-ha-credentials (mounted at /credentials), then runs rabbitmq-server.
set -eu
umask 077
# Erlang reads the cookie from $HOME (the data volume) and refuses one others may read.
rm -f "$HOME/.erlang.cookie"
cat /credentials/rabbitmq-erlang-cookie >"$HOME/.erlang.cookie"
chmod 400 "$HOME/.erlang.cookie"
# /etc/rabbitmq/conf.d is an emptyDir: the cluster's configuration and, on a blank node, the
# user it creates instead of guest (the cluster shares its users: one that joins gets them).
cp /config/rabbitmq.conf /etc/rabbitmq/conf.d/10-cluster.conf
{
	printf 'default_user = %s\n' "$(cat /credentials/rabbitmq-username)"
	printf 'default_pass = %s\n' "$(cat /credentials/rabbitmq-password)"
} >/etc/rabbitmq/conf.d/20-credentials.conf
exec rabbitmq-server
