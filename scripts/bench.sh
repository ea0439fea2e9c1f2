#!/usr/bin/env bash
# Benchmarks reception's POST /orders with tracing on versus OTEL_SDK_DISABLED=true.
#
#   scripts/bench.sh                 (make bench)
#
# One run, one machine: real redis-server and rabbitmq-server (tests/harness.py), a real
# Collector (THE pipeline, k8s/otel-collector/config.yaml) exporting to Jaeger when it is built
# (else to a closed port: the Collector still receives everything), the baker
# (BAKE_TIME_SCALE=0, tracing off in both modes, so that only reception's tracing differs) and
# reception from the plain -O2 build. Modes alternate for
# BENCH_ROUNDS rounds; each round restarts both services in that mode, warms up, then ab
# (ApacheBench: a fixed number of requests at a fixed concurrency; no keep-alive, as ab -k
# speaks HTTP/1.0 keep-alive, which civetweb does not keep) sends
# BENCH_REQUESTS POSTs over BENCH_CONNECTIONS connections. Prints requests/s per round, the
# medians, the overhead, reception's own CPU time per request (user + system, from /proc: the
# SDK's cost, unaffected by the Collector and the baker sharing the machine's cores), its RSS
# and the spans it dropped. A benchmark, not a test: it
# checks only that every request got 202.
#
# Environment: BENCH_REQUESTS (20000), BENCH_CONNECTIONS (32), BENCH_ROUNDS (3),
# BENCH_WARMUP (1000). Needs ab (apache2-utils, scripts/deps.sh) and the Collector
# (scripts/tools.sh otelcol).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v ab >/dev/null || { echo "bench: ab missing (scripts/deps.sh)" >&2; exit 1; }
make -s -j2 all
export BAKERY_BUILD=build # the plain -O2 build, never the sanitized one
exec /usr/bin/python3 - <<'PY'
import os, re, signal, statistics, subprocess, sys, tempfile

sys.path[:0] = ["tests", "tests/tracing"]
from harness import Bakery, RabbitServer, RedisServer, free_port, http_get, parse_prometheus, wait_until
import otelstack

requests = int(os.environ.get("BENCH_REQUESTS", 20000))
connections = int(os.environ.get("BENCH_CONNECTIONS", 32))
rounds = int(os.environ.get("BENCH_ROUNDS", 3))
warmup = int(os.environ.get("BENCH_WARMUP", 1000))
work = tempfile.mkdtemp(prefix="bakery-bench-")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the servers below
body = os.path.join(work, "order.json")
with open(body, "w") as f:
    f.write('{"customer":"bench","pastry":"croissant"}')


def load(url, n):
    """n POST /orders at the fixed concurrency; returns requests/s."""
    out = subprocess.run(["ab", "-q", "-n", str(n), "-c", str(connections), "-s", "30",
                          "-p", body, "-T", "application/json", f"{url}/orders"],
                         capture_output=True, text=True, check=True).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    if failed or "Non-2xx responses" in out:
        sys.exit(f"bench: failed requests:\n{out}")
    return float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))


def cpu_seconds(pid):
    """user + system CPU time of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        s = f.read()
    return tuple(int(re.search(rf"{k}:\s+(\d+)", s).group(1)) for k in ("VmRSS", "VmHWM"))


def metric(svc, name):
    samples = parse_prometheus(http_get(f"{svc.url}/metrics").text)
    return sum(v for (n, _), v in samples.items() if n == name)


stack = []
try:
    redis = RedisServer(); stack.append(redis)
    rabbit = RabbitServer(); stack.append(rabbit)
    if os.access(otelstack.JAEGER_BIN, os.X_OK):
        jaeger = otelstack.Jaeger(os.path.join(work, "jaeger")); stack.append(jaeger)
        sink = "jaeger"
    else:
        jaeger = f"127.0.0.1:{free_port()}"  # nothing listens: the Collector drops after receiving
        sink = "a closed port (no Jaeger built)"
    collector = otelstack.Collector(jaeger, os.path.join(work, "collector")); stack.append(collector)
    modes = {
        "tracing on": {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
                       "OTEL_SDK_DISABLED": "false"},
        "OTEL_SDK_DISABLED=true": {"OTEL_SDK_DISABLED": "true"},
    }
    results = {m: [] for m in modes}
    print(f"bench: {requests} POST /orders per round at concurrency {connections} (ab), "
          f"{rounds} rounds per mode, alternating; Collector -> {sink}; {os.cpu_count()} CPUs",
          flush=True)
    for r in range(rounds):
        for mode, env in (modes.items() if r % 2 == 0 else reversed(modes.items())):
            bakery = Bakery(redis, rabbit, os.path.join(work, "logs"))
            try:
                env = {**env, "LOG_LEVEL": "warn", "BAKE_TIME_SCALE": "0"}
                baker = bakery.baker(**{**env, "OTEL_SDK_DISABLED": "true"})
                reception = bakery.reception(**env)
                load(reception.url, warmup)
                cpu0 = cpu_seconds(reception.pid)
                rps = load(reception.url, requests)
                cpu_us = (cpu_seconds(reception.pid) - cpu0) * 1e6 / requests
                rss, hwm = rss_kib(reception.pid)
                # Let the baker drain the queue so the next round starts alike.
                wait_until(lambda: int(rabbit.queues()[bakery.queue]["messages"]) == 0, 300,
                           interval=1, what="queue drained")
                spans = (metric(reception, "otel_spans_dropped_total")
                         if mode == "tracing on" else 0)
                results[mode].append((rps, rss, hwm, spans, cpu_us))
                print(f"  round {r + 1} {mode:24s} {rps:9.1f} req/s   {cpu_us:6.1f} CPU us/req   "
                      f"reception RSS {rss / 1024:6.1f} "
                      f"MiB (peak {hwm / 1024:6.1f})" +
                      (f"   spans dropped {spans:.0f}" if mode == "tracing on" else ""),
                      flush=True)
            finally:
                bakery.close()
    on = statistics.median(x[0] for x in results["tracing on"])
    off = statistics.median(x[0] for x in results["OTEL_SDK_DISABLED=true"])
    rss_on = statistics.median(x[1] for x in results["tracing on"]) / 1024
    rss_off = statistics.median(x[1] for x in results["OTEL_SDK_DISABLED=true"]) / 1024
    print(f"median requests/s: tracing on {on:.1f}, OTEL_SDK_DISABLED=true {off:.1f}; "
          f"ratio {on / off:.3f}, overhead {100 * (1 - on / off):.1f}%")
    cpu_on = statistics.median(x[4] for x in results["tracing on"])
    cpu_off = statistics.median(x[4] for x in results["OTEL_SDK_DISABLED=true"])
    print(f"median reception CPU per request: tracing on {cpu_on:.1f} us, "
          f"OTEL_SDK_DISABLED=true {cpu_off:.1f} us; ratio {cpu_on / cpu_off:.3f}, "
          f"overhead {100 * (cpu_on / cpu_off - 1):.1f}%")
    print(f"median reception RSS after a round: tracing on {rss_on:.1f} MiB, "
          f"OTEL_SDK_DISABLED=true {rss_off:.1f} MiB")
    spans_dropped = sum(x[3] for x in results["tracing on"])
    print(f"spans dropped by reception over all tracing rounds: {spans_dropped:.0f}")
finally:
    for p in reversed(stack):
        p.close()
PY
