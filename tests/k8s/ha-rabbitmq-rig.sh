#!/bin/bash
# The RabbitMQ pods of k8s/ha without Kubernetes, for test_ha_rabbitmq_config.py: three nodes
# of Debian's rabbitmq-server started at once (podManagementPolicy: Parallel), each in a
# network namespace of its own on a bridge, named rabbitmq-<n>.rabbitmq-headless by a private
# /etc/hosts, each with its own /var/lib/rabbitmq and an empty /etc/rabbitmq (its conf.d an
# emptyDir in the pod), running k8s/ha/rabbitmq/start.sh and rabbitmq.conf as they are (only
# the /credentials and /config paths moved) with the pod's environment, as the rabbitmq user.
# Run as root under `unshare -n -m -p -f --mount-proc`: nothing reaches or outlives the test.
# Prints "RESULT <name> <value>" lines.
set -u
ROOT=$1 R=$2
ip link set lo up
ip link add br0 type bridge && ip link set br0 up && ip addr add 10.77.0.1/24 dev br0
printf '127.0.0.1 localhost\n' >"$R/hosts"
for i in 0 1 2; do printf '10.77.0.1%s rabbitmq-%s.rabbitmq-headless\n' "$i" "$i" >>"$R/hosts"; done
mount --bind "$R/hosts" /etc/hosts
mkdir -p /run/netns; mount -t tmpfs tmpfs /run/netns
mkdir -p "$R/credentials" "$R/config"
printf bakery-abc >"$R/credentials/rabbitmq-username"; printf s3cret >"$R/credentials/rabbitmq-password"
printf cookiecookiecookie >"$R/credentials/rabbitmq-erlang-cookie"
cp "$ROOT/k8s/ha/rabbitmq/rabbitmq.conf" "$R/config/"
sed -e "s|/credentials/|$R/credentials/|g; s|/config/|$R/config/|g" "$ROOT/k8s/ha/rabbitmq/start.sh" >"$R/config/start.sh"
chmod -R a+rX "$R"
for i in 0 1 2; do
	ip netns add r$i
	ip link add h$i type veth peer name eth0 netns r$i
	ip link set h$i master br0 up
	ip netns exec r$i ip addr add 10.77.0.1$i/24 dev eth0
	ip netns exec r$i ip link set eth0 up
	ip netns exec r$i ip link set lo up
	mkdir -p "$R/n$i/data" "$R/n$i/etc/conf.d"; chown -R rabbitmq:rabbitmq "$R/n$i"
done
node() { # N COMMAND...: in pod N's network and mounts, as the rabbitmq user, with the pod's env
	local i=$1; shift
	ip netns exec r$i unshare -m bash -c '
		mount --bind "$1/n$2/data" /var/lib/rabbitmq
		mount --bind "$1/n$2/etc" /etc/rabbitmq
		shift 2
		exec runuser -u rabbitmq -- env -i HOME=/var/lib/rabbitmq PATH=/usr/lib/rabbitmq/bin:/usr/bin:/bin \
			RABBITMQ_LOGS=- RABBITMQ_USE_LONGNAME=true RABBITMQ_NODENAME=rabbit@rabbitmq-$0.rabbitmq-headless \
			RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none" "$@"' "$i" "$R" "$i" "$@"
}
t0=$(date +%s)
for i in 0 1 2; do node $i sh "$R/config/start.sh" >"$R/n$i.log" 2>&1 & done
# Until every node answers (a node that exits ends the wait), at most 200 s in all.
for i in 0 1 2; do
	until node $i rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; do
		[ $(($(date +%s) - t0)) -lt 200 ] && jobs -r | grep -q . || break 2
		sleep 1
	done
done
echo "RESULT boot_seconds $(( $(date +%s) - t0 ))"
echo "RESULT cluster $(node 0 rabbitmqctl -q cluster_status --formatter json | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["running_nodes"])))')"
echo "RESULT cluster2 $(node 2 rabbitmqctl -q cluster_status --formatter json | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["running_nodes"])))')"
echo "RESULT users $(node 1 rabbitmqctl -q list_users --formatter json | python3 -c 'import json,sys; print(" ".join(u["user"] for u in json.load(sys.stdin)))')"
echo "RESULT partition $(node 0 rabbitmqctl -q environment | grep -o 'cluster_partition_handling,[a-z_]*')"
login() { # USER PASSWORD: an AMQP login (and a publish to nowhere) on node 1
	if amqp-publish --server=10.77.0.11 --username="$1" --password="$2" -r nowhere -b x >/dev/null 2>&1; then
		echo accepted
	else
		echo refused
	fi
}
echo "RESULT login.guest $(login guest guest)"
echo "RESULT login.wrong $(login bakery-abc wrong)"
echo "RESULT login.user $(login bakery-abc s3cret)"
for i in 0 1 2; do echo "--- n$i"; tail -5 "$R/n$i.log"; done >&2
