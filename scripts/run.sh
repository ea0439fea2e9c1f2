#!/usr/bin/env bash
# Runs Bakery locally (`make run`): Redis, RabbitMQ, baker and reception on :8000, plus the
# OpenTelemetry Collector and Jaeger (query API on :16686), built first by scripts/tools.sh when
# missing (cached; minutes the first time). Ctrl-C stops it all.
#
#   scripts/run.sh          (BAKERY_BUILD=build/san for the sanitized binaries)
#   OTEL_SDK_DISABLED=true scripts/run.sh     tracing off: no Collector, no Jaeger, no build
#
# Everything binds to 127.0.0.1; data and logs live under ./.run/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/.run
BUILD=${BAKERY_BUILD:-build}
TOOLS=${BAKERY_TOOLS:-$HOME/.cache/bakery-tools}
LOGS=$RUN/logs
RABBIT_NODE=bakery@localhost

for b in reception baker; do
	[ -x "$BUILD/$b" ] || { echo "run: $BUILD/$b is not built (make all)" >&2; exit 1; }
done
tracing=true
[ "${OTEL_SDK_DISABLED:-false}" = true ] && tracing=false
# Tracing is on unless turned off: build the Collector and Jaeger now if they are missing.
if $tracing && ! { [ -x "$TOOLS/otelcol" ] && [ -x "$TOOLS/jaeger" ]; }; then
	echo "run: building the OpenTelemetry Collector and Jaeger for tracing (scripts/tools.sh"
	echo "run: otelcol jaeger, cached in $TOOLS): several minutes the first time, once."
	echo "run: (OTEL_SDK_DISABLED=true make run skips this and runs without tracing)"
	if ! scripts/tools.sh otelcol jaeger; then
		echo "run: could not build them (Go and the module proxy are needed): tracing off" >&2
		tracing=false
	fi
fi
for p in 6379 5672 8000 8001; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "run: port $p is already in use" >&2
		exit 1
	fi
done
mkdir -p "$LOGS" "$RUN/redis" "$RUN/rabbitmq/home" "$RUN/rabbitmq/mnesia" "$RUN/rabbitmq/log"

pids=()
# start NAME COMMAND...: runs COMMAND in its own process group, output to .run/logs/NAME.log.
start() {
	local name=$1
	shift
	setsid "$@" >"$LOGS/$name.log" 2>&1 &
	pids+=($!)
	printf 'run: %-10s pid %-7s log .run/logs/%s.log\n' "$name" "$!" "$name"
}

stop_all() {
	trap - EXIT INT TERM
	echo
	echo "run: stopping"
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM -- "-${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_port PORT NAME: waits up to 120 s for a listener on 127.0.0.1:PORT.
wait_port() {
	local i
	for ((i = 0; i < 480; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.25
	done
	echo "run: $2 did not open port $1; see .run/logs/" >&2
	exit 1
}

# Durability: every write goes to the append-only file, fsynced once a second (a crash of the
# machine loses at most about the last second; a Redis restart or SIGTERM loses nothing).
start redis redis-server --port 6379 --bind 127.0.0.1 --dir "$RUN/redis" --appendonly yes --appendfsync everysec

# RabbitMQ straight from its bin dir (the /usr/sbin wrapper switches to the rabbitmq user).
plugins="[]."
if compgen -G "/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_management-*" >/dev/null
then
	plugins="[rabbitmq_management]."
fi
echo "$plugins" >"$RUN/rabbitmq/enabled_plugins"
cat >"$RUN/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:5672
management.tcp.ip = 127.0.0.1
management.tcp.port = 15672
EOF
rabbit_env=(HOME="$RUN/rabbitmq/home" ERL_EPMD_ADDRESS=127.0.0.1
	RABBITMQ_NODENAME=$RABBIT_NODE RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
	RABBITMQ_CONF_ENV_FILE="$RUN/rabbitmq/rabbitmq-env.conf"
	RABBITMQ_CONFIG_FILE="$RUN/rabbitmq/rabbitmq.conf"
	RABBITMQ_ENABLED_PLUGINS_FILE="$RUN/rabbitmq/enabled_plugins"
	RABBITMQ_MNESIA_BASE="$RUN/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$RUN/rabbitmq/log"
	RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none") # idle schedulers sleep
if ! (exec 3<>/dev/tcp/127.0.0.1/4369) 2>/dev/null; then
	start epmd env "${rabbit_env[@]}" epmd -address 127.0.0.1 # ours, so it stops with us
fi
start rabbitmq env "${rabbit_env[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server
wait_port 6379 redis

# The Collector and Jaeger v2, when built, each with THE configuration k8s/ makes its
# ConfigMap from. Jaeger's own OTLP ports move to 14317/14318 so the Collector keeps 4317/4318.
otel=(OTEL_SDK_DISABLED=true)
if $tracing; then
	start jaeger env JAEGER_LISTEN_HOST=127.0.0.1 JAEGER_OTLP_GRPC_PORT=14317 \
		JAEGER_OTLP_HTTP_PORT=14318 "$TOOLS/jaeger" --config="$ROOT/k8s/jaeger/config.yaml"
	start otelcol env JAEGER_OTLP_ENDPOINT=127.0.0.1:14317 \
		OTELCOL_GRPC_LISTEN=127.0.0.1:4317 OTELCOL_HTTP_LISTEN=127.0.0.1:4318 \
		OTELCOL_METRICS_HOST=127.0.0.1 \
		"$TOOLS/otelcol" --config="$ROOT/k8s/otel-collector/config.yaml"
	wait_port 16686 jaeger
	wait_port 4318 otelcol
	otel=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318)
else
	echo "run: tracing off"
fi

# The services retry until Redis and RabbitMQ are up, so they may start right away.
start baker env "${otel[@]}" HEALTH_PORT=8001 "$BUILD/baker"
start reception env "${otel[@]}" PORT=8000 "$BUILD/reception"
wait_port 5672 rabbitmq

cat <<EOF

Bakery is running (Ctrl-C stops everything):
  reception   http://127.0.0.1:8000      curl -d '{"customer":"homer","pastry":"la bombe"}' localhost:8000/orders
  baker       http://127.0.0.1:8001/readyz   /metrics
  Redis       127.0.0.1:6379             redis-cli keys 'order:*'
  RabbitMQ    127.0.0.1:5672             management UI http://127.0.0.1:15672 (guest/guest) if enabled
              HOME=$RUN/rabbitmq/home /usr/lib/rabbitmq/bin/rabbitmqctl -n $RABBIT_NODE list_queues
EOF
if [ "${otel[0]}" != OTEL_SDK_DISABLED=true ]; then
	echo "  Jaeger      http://127.0.0.1:16686/api/traces (query API; this build has no web UI)"
	echo "              make trace <orderKey>  draws an order's traces here; make trace: the latest"
	echo "  Collector   OTLP 127.0.0.1:4317 (gRPC) / :4318 (HTTP)"
fi
echo "  logs        .run/logs/"

# Run until interrupted or until any child exits.
wait -n "${pids[@]}" || true
echo "run: a process exited; see .run/logs/" >&2
exit 1
