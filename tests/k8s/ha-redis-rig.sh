#!/bin/bash
# The Redis pods of k8s/ha without Kubernetes, for test_ha_redis_scripts.py: k8s/ha/redis/*.sh
# run as they are (only their /scripts, /conf and /data paths moved) with Debian's
# redis-server, as three "pods" on 127.0.0.10-12 named redis-<n>.redis-headless by a private
# /etc/hosts. Run as root under `unshare -n -m -p -f --mount-proc` (own network, mounts and
# pids: nothing reaches or outlives the test). Prints "RESULT <name> <value>" lines.
set -u
ROOT=$1 R=$2
ip link set lo up
printf '127.0.0.1 localhost\n' >"$R/hosts"
for i in 0 1 2; do printf '127.0.0.1%s redis-%s.redis-headless\n' "$i" "$i" >>"$R/hosts"; done
mount --bind "$R/hosts" /etc/hosts
# Each pod has its own IP, so each Redis and Sentinel binds it, and redis-cli without -h talks
# to its own pod; redis-sentinel is the server binary by that name, as in the images.
mkdir -p "$R/bin" "$R/sbin"
ln -s /usr/bin/redis-server "$R/sbin/redis-sentinel"
printf '#!/bin/sh\nexec /usr/bin/redis-server "$@" --bind "$POD_IP"\n' >"$R/bin/redis-server"
printf '#!/bin/sh\nexec %s/sbin/redis-sentinel "$@" --bind "$POD_IP"\n' "$R" >"$R/bin/redis-sentinel"
printf '#!/bin/sh\ncase " $* " in *" -h "*) exec /usr/bin/redis-cli "$@" ;; esac\nexec /usr/bin/redis-cli -h "$POD_IP" "$@"\n' >"$R/bin/redis-cli"
chmod +x "$R"/bin/*
export PATH=$R/bin:$PATH REDIS_REPLICAS=3 REDIS_SENTINEL_MASTER=mymaster REDISCLI_AUTH=rig-password
for i in 0 1 2; do
	d=$R/redis-$i
	mkdir -p "$d/conf" "$d/data" "$d/scripts"
	for f in "$ROOT"/k8s/ha/redis/*.sh; do
		sed -e "s|/scripts/|$d/scripts/|g; s|/conf/|$d/conf/|g; s|^dir /data|dir $d/data|" "$f" \
			>"$d/scripts/$(basename "$f")"
	done
done
result() { echo "RESULT $1 $2"; }
start() { # start N [redis|sentinel]: the pod's containers (both by default)
	local d=$R/redis-$1
	export POD_NAME=redis-$1 POD_IP=127.0.0.1$1
	if [ "${2:-redis}" = redis ]; then
		sh "$d/scripts/redis.sh" >>"$d/redis.log" 2>&1 &
		echo $! >"$d/redis.pid"
	fi
	if [ "${2:-sentinel}" = sentinel ]; then
		sh "$d/scripts/sentinel.sh" >>"$d/sentinel.log" 2>&1 &
		echo $! >"$d/sentinel.pid"
	fi
}
cli() { /usr/bin/redis-cli --no-auth-warning -h "127.0.0.1$1" "${@:2}" 2>&1; }
roles() { for i in 0 1 2; do cli "$i" ROLE | head -n 1; done | tr '\n' ' '; }
# The primaries the three Sentinels name, space-separated (one when they agree).
primaries() { for i in 0 1 2; do cli "$i" -p 26379 SENTINEL get-master-addr-by-name mymaster | head -n 1; done | sort -u | paste -sd ' '; }
ordinal() { echo "${1#redis-}" | cut -d. -f1; } # redis-<n>.redis-headless -> n
until_primary_is_not() { # NAME TIMEOUT: seconds until every Sentinel names another primary
	local t=0
	while [ "$t" -lt "$2" ]; do
		case $(primaries) in "$1" | *" "*) ;; *) echo "$t"; return ;; esac
		sleep 1
		t=$((t + 1))
	done
	echo timeout
}
wait_for() { # SECONDS COMMAND...: until COMMAND succeeds
	local t=0
	until "${@:2}" >/dev/null 2>&1; do
		[ "$t" -ge "$1" ] && return 1
		sleep 0.5
		t=$((t + 1))
	done
}
# 1. First start, one pod after the other as the StatefulSet does (OrderedReady).
for i in 0 1 2; do
	start "$i"
	wait_for 20 sh -c "/usr/bin/redis-cli -h 127.0.0.1$i -p 26379 -a rig-password --no-auth-warning ping | grep -q PONG"
done
# Each replica is counted by its name (host:port): its master-host names a redis-<n> too.
for what in "replicas :6379" "sentinels "; do
	set -- $what
	wait_for 30 sh -c "[ \"\$(/usr/bin/redis-cli -h 127.0.0.10 -p 26379 -a rig-password --no-auth-warning SENTINEL $1 mymaster | grep -c '^redis-.\.redis-headless${2:-}\$')\" = 2 ]"
done
result first.roles "$(roles)"
result first.primaries "$(primaries)"
result first.replicas "$(cli 0 -p 26379 SENTINEL replicas mymaster | grep -c '^redis-.\.redis-headless:6379$')"
result first.sentinels "$(cli 0 -p 26379 SENTINEL sentinels mymaster | grep -c '^redis-.\.redis-headless$')"
result noauth.redis "$(env -u REDISCLI_AUTH /usr/bin/redis-cli -h 127.0.0.11 PING 2>&1 | head -n 1)"
result noauth.sentinel "$(env -u REDISCLI_AUTH /usr/bin/redis-cli -h 127.0.0.11 -p 26379 PING 2>&1 | head -n 1)"
cli 0 SET order:1 kept >/dev/null
# 2. The primary's pod is deleted: preStop hands over, the pod stops, comes back a replica.
# Meanwhile a client writes to it as the services do (each write followed by WAIT 1) and
# records the writes acknowledged so: every one must be on the new primary.
writer() {
	local n=0
	while [ ! -e "$R/writer.stop" ]; do
		n=$((n + 1))
		case $(printf 'SET hand:%s v\nWAIT 1 1000\n' "$n" | cli 0 | tr '\n' ' ') in
		"OK "[1-9]*) echo "hand:$n" >>"$R/acked" ;;
		esac
	done
}
: >"$R/acked"
writer &
writer_pid=$!
wait_for 10 test -s "$R/acked"
t0=$(date +%s)
POD_NAME=redis-0 POD_IP=127.0.0.10 sh "$R/redis-0/scripts/prestop.sh" >"$R/prestop.log" 2>&1
result prestop.seconds $(($(date +%s) - t0))
touch "$R/writer.stop"
wait "$writer_pid"
n=$(ordinal "$(primaries)")
result handover.acked "$(wc -l <"$R/acked")"
result handover.lost "$(for k in $(cat "$R/acked"); do cli "$n" EXISTS "$k"; done | grep -c '^0$')"
result prestop.roles "$(roles)"
result prestop.primaries "$(primaries)"
kill "$(cat "$R/redis-0/redis.pid")" "$(cat "$R/redis-0/sentinel.pid")"
sleep 1
start 0
wait_for 20 sh -c '/usr/bin/redis-cli -h 127.0.0.10 -a rig-password --no-auth-warning ROLE | head -n 1 | grep -q slave'
result back.log "$(grep -o 'starts as .*' "$R/redis-0/redis.log" | tail -n 1)"
result back.roles "$(roles)"
# 3. The primary dies (SIGKILL): the Sentinels promote a replica; it comes back a replica.
p=$(primaries)
n=$(ordinal "$p")
kill -9 "$(cat "$R/redis-$n/redis.pid")"
result kill.failover_seconds "$(until_primary_is_not "$p" 40)"
# Back after the failover (a new pod, or a container that crashed for longer than 5 s).
start "$n" redis
wait_for 20 sh -c "/usr/bin/redis-cli -h 127.0.0.1$n -a rig-password --no-auth-warning ROLE | head -n 1 | grep -q slave"
result kill.back_log "$(grep -o 'starts as .*' "$R/redis-$n/redis.log" | tail -n 1)"
result kill.roles "$(roles)"
wait_for 20 sh -c '[ "$(for i in 0 1 2; do /usr/bin/redis-cli -h 127.0.0.1$i -a rig-password --no-auth-warning GET order:1; done | grep -c kept)" = 3 ]'
result data "$(for i in 0 1 2; do cli "$i" GET order:1; done | tr '\n' ' ')"
for i in 0 1 2; do echo "--- redis-$i"; cat "$R/redis-$i/redis.log"; done >&2
