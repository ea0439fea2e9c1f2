#!/bin/sh
# Starts this pod's Redis. The primary is whoever the Sentinels of the other pods name; a pod
# they name is the primary again, any other (a returning old primary too) starts as its
# replica. When no Sentinel answers (the very first start, the pods starting one by one), pod 0
# is the primary. Data: AOF on the pod's volume, fsynced every second, as in k8s/redis.
set -eu
. /scripts/lib.sh
primary=$(primary_from_sentinels)
if [ -z "$primary" ] && [ "$ORDINAL" != 0 ]; then
	primary="$FIRST 6379"
fi
umask 077
cat >/conf/redis.conf <<CONF
port 6379
dir /data
appendonly yes
appendfsync everysec
save ""
protected-mode no
requirepass $REDISCLI_AUTH
masterauth $REDISCLI_AUTH
replica-announce-ip $ME
CONF
if [ -n "$primary" ] && [ "${primary% *}" != "$ME" ]; then
	echo "replicaof $primary" >>/conf/redis.conf
	echo "redis.sh: $ME starts as a replica of $primary"
else
	echo "redis.sh: $ME starts as the primary"
fi
exec redis-server /conf/redis.conf
