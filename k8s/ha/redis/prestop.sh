#!/bin/sh
# preStop of the redis container. On the primary: refuse writes, ask a Sentinel of another pod
# (this pod's own is stopping too) for SENTINEL FAILOVER and wait, at most 30 s, until the
# Sentinels name another primary and this Redis has become its replica; then Kubernetes sends
# SIGTERM. A replica stops at once.
set -u
. /scripts/lib.sh
[ "$(timeout 3 redis-cli --no-auth-warning ROLE 2>/dev/null | head -n 1)" = master ] || exit 0
# Between the promotion of a replica and this Redis's own demotion, a write it took (and that
# its other replica acknowledged to WAIT) would be dropped when that replica resyncs from the
# new primary. Requiring more replicas than there are refuses every write from now on
# (NOREPLICAS: clients try again and find the new primary), so the replicas hold everything
# this primary acknowledged when one of them is promoted.
timeout 3 redis-cli --no-auth-warning CONFIG SET min-replicas-to-write 1000000 >/dev/null
started=
for peer in $(peers); do
	if [ "$(timeout 3 redis-cli --no-auth-warning -h "$peer" -p 26379 \
		SENTINEL FAILOVER "$REDIS_SENTINEL_MASTER" 2>/dev/null)" = OK ]; then
		started=$peer
		break
	fi
done
if [ -z "$started" ]; then
	timeout 3 redis-cli --no-auth-warning CONFIG SET min-replicas-to-write 0 >/dev/null
	echo "prestop.sh: no Sentinel started a failover (no replica in sync?): stopping as is"
	exit 0
fi
i=0
while [ "$i" -lt 30 ]; do
	primary=$(primary_from_sentinels)
	role=$(timeout 3 redis-cli --no-auth-warning ROLE 2>/dev/null | head -n 1)
	if [ -n "$primary" ] && [ "${primary% *}" != "$ME" ] && [ "$role" != master ]; then
		echo "prestop.sh: handed over to $primary"
		exit 0
	fi
	sleep 1
	i=$((i + 1))
done
echo "prestop.sh: no new primary within 30 s: stopping as is"
