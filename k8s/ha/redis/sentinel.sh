#!/bin/sh
# Starts this pod's Sentinel, monitoring the primary the other pods' Sentinels name (pod 0 when
# none answers, as redis.sh decides). Hostnames throughout: Sentinels resolve and announce the
# pods' DNS names, never their IPs, which change with every new pod. The Sentinel's own
# requirepass is the Redis password too (it authenticates to the other Sentinels with it).
set -eu
. /scripts/lib.sh
primary=$(primary_from_sentinels)
if [ -z "$primary" ]; then
	primary="$FIRST 6379"
fi
umask 077
# Sentinel rewrites its file as it learns: a writable copy on the pod's emptyDir.
cat >/conf/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $ME
requirepass $REDISCLI_AUTH
sentinel monitor $REDIS_SENTINEL_MASTER $primary 2
sentinel auth-pass $REDIS_SENTINEL_MASTER $REDISCLI_AUTH
sentinel down-after-milliseconds $REDIS_SENTINEL_MASTER 5000
sentinel failover-timeout $REDIS_SENTINEL_MASTER 20000
sentinel parallel-syncs $REDIS_SENTINEL_MASTER 1
CONF
echo "sentinel.sh: $ME monitors $REDIS_SENTINEL_MASTER at $primary"
exec redis-sentinel /conf/sentinel.conf
