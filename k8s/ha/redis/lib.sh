# Sourced by redis.sh, sentinel.sh and prestop.sh. From the pod's environment: POD_NAME
# (redis-<n>), REDIS_REPLICAS (pods in the StatefulSet), REDIS_SENTINEL_MASTER (the name the
# Sentinels monitor), REDISCLI_AUTH (the password; redis-cli sends it to Redis and Sentinels).
# Every pod has a stable DNS name <pod>.redis-headless, published before it is ready.
SET=${POD_NAME%-*}
ORDINAL=${POD_NAME##*-}
ME=$POD_NAME.redis-headless
FIRST=$SET-0.redis-headless
# No globbing of the words of an answer.
set -f

# The other pods' DNS names.
peers() {
	i=0
	while [ "$i" -lt "$REDIS_REPLICAS" ]; do
		[ "$i" = "$ORDINAL" ] || echo "$SET-$i.redis-headless"
		i=$((i + 1))
	done
}

# "host port" of the primary as the first other pod's Sentinel that answers names it; nothing
# when none answers (the first start of all of them). This pod's own Sentinel is not asked:
# it starts with this pod and knows no more than this script.
primary_from_sentinels() {
	for peer in $(peers); do
		answer=$(timeout 3 redis-cli --no-auth-warning -h "$peer" -p 26379 \
			SENTINEL get-master-addr-by-name "$REDIS_SENTINEL_MASTER" 2>/dev/null | tr '\n' ' ') || continue
		set -- $answer
		if [ $# -eq 2 ] && [ "$2" -gt 0 ] 2>/dev/null; then
			echo "$1 $2"
			return 0
		fi
	done
	return 0
}
