#!/usr/bin/env bash
# Benchmarks reception's POST /orders against the ceiling (Redis and RabbitMQ without HTTP), with
# tracing on versus OTEL_SDK_DISABLED=true, over keep-alive and `Connection: close` connections.
#
#   scripts/bench.sh                 (make bench)
#
# One run, one machine: real redis-server and rabbitmq-server (tests/harness/; one node, so a
# classic queue: ORDERS_QUEUE_TYPE=classic), a real
# Collector (THE pipeline, k8s/otel-collector/config.yaml) exporting to Jaeger when it is built
# (else to a closed port: the Collector still receives everything), one baker per round
# (BAKE_TIME_SCALE=0, BENCH_BAKER_CONCURRENCY, tracing off, so that only reception's tracing
# differs) and reception, all from the plain -O2 build. Each round:
#   - per tracing mode (their order alternates from round to round), a fresh reception, warmed
#     up, then wrk (HTTP/1.1; bench/orders.lua: a different order every request, non-202s
#     counted) at each connection count keep-alive, then at each with "Connection: close",
#     then k6 at a fixed rate (bench/rate.js: BENCH_RATE orders/s, keep-alive): the same load
#     in both modes, so that their CPU per order compares at equal orders/s (wrk saturates the
#     machine, and the mode that costs more then also takes fewer);
#   - the ceiling: build/ceiling does each order's Redis writes and confirmed persistent publish
#     with WINDOW orders in flight, pipelined (bench/ceiling.c), for WINDOW = each connection
#     count.
# Per run: orders/s, wrk's (or k6's) p50/p99, connections answered (keep-alive: the wrk
# sockets that had received a response at 3/4 of the run, from ss), reception's CPU per order
# (user + system, /proc: its own cost, whatever else shares the cores; in parentheses the part
# spent by its span export thread, otel-export: wrapping and posting), the Collector's and
# Jaeger's CPU per order (the spans' cost), reception's peak RSS (VmHWM since its start, so a
# run's includes the runs before it in that order), and the baker's finished orders/s
# (baker_orders_baked_total over the same seconds). The queue is drained between runs; each
# round starts with Redis flushed and Jaeger restarted, so no round runs on a bigger store.
# All that once per placement (BENCH_PLACEMENT, "shared split"), each with its own servers:
#   - shared: everything on every core, as on a laptop;
#   - split: the Collector and Jaeger on the last core, everything else on the others (CPU
#     affinity, which children inherit), as in a cluster whose tracing backend runs on other
#     nodes: tracing then costs reception its own work, not its neighbours' as well.
# Then per placement the medians over the rounds as a table, with ratios to the ceiling at the
# same number in flight and to tracing off.
# Then, once per run (BENCH_QUORUM=1), replication's cost: with tracing off, on all cores, the
# ceiling at WINDOW in flight and reception under wrk at WINDOW keep-alive connections (WINDOW:
# the first connection count), each against the classic queue on one node and against the
# quorum queue (the services' default) on a real three-node cluster (tests/rabbit_cluster.py:
# network namespaces, root only), alternating from round to round, with a fresh queue, baker
# and reception each time; a table of the medians with CPU per order of the client (or
# reception) and of RabbitMQ (every node's processes), and the ratios quorum / classic.
# A benchmark, not a test: it fails only when a response is not 202 or a connection fails.
#
# Environment: BENCH_ROUNDS (3), BENCH_SECONDS (8, per run), BENCH_CONNECTIONS ("64 256"),
# BENCH_RATE (1000 orders/s; 0: no fixed-rate run), BENCH_WARMUP_SECONDS (2), BENCH_WRK_THREADS
# (2), BENCH_BAKER_CONCURRENCY (128: the baker's BAKER_CONCURRENCY), BENCH_PLACEMENT ("shared
# split"), BENCH_QUORUM (1; 0: no quorum comparison), BAKERY_BUILD (build: the binaries'
# directory, built here). About 12 minutes at the defaults (1.9 per round and placement) plus
# the quorum comparison's. Needs wrk (scripts/deps.sh), k6 and the Collector (scripts/tools.sh
# k6 otelcol).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v wrk >/dev/null || { echo "bench: wrk missing (scripts/deps.sh)" >&2; exit 1; }
export BENCH_K6=${BAKERY_TOOLS:-$HOME/.cache/bakery-tools}/k6
[ "${BENCH_RATE:-1000}" = 0 ] || [ -x "$BENCH_K6" ] ||
	{ echo "bench: $BENCH_K6 missing (scripts/tools.sh k6)" >&2; exit 1; }
export BAKERY_BUILD=${BAKERY_BUILD:-build} # the plain -O2 build, never the sanitized one
make -s -j2 BUILD="$BAKERY_BUILD" all
# The SDK's own cost first: instructions per order and per span under callgrind (repeatable).
make -s BUILD="$BAKERY_BUILD" bench-sdk
exec /usr/bin/python3 - <<'PY'
import os, re, signal, statistics, subprocess, sys, tempfile, time

sys.path[:0] = ["tests", "tests/tracing"]
from harness import (BUILD_DIR, Bakery, RabbitServer, RedisServer, free_port, http_get,
                     parse_prometheus, wait_until)
import otelstack
from rabbit_cluster import RabbitCluster

rounds = int(os.environ.get("BENCH_ROUNDS", 3))
seconds = int(os.environ.get("BENCH_SECONDS", 8))
conn_counts = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "64 256").split()]
rate = int(os.environ.get("BENCH_RATE", 1000))
warmup = int(os.environ.get("BENCH_WARMUP_SECONDS", 2))
wrk_threads = os.environ.get("BENCH_WRK_THREADS", "2")
baker_concurrency = os.environ.get("BENCH_BAKER_CONCURRENCY", "128")
placements = os.environ.get("BENCH_PLACEMENT", "shared split").split()
quorum = os.environ.get("BENCH_QUORUM", "1") != "0"
if not placements or set(placements) - {"shared", "split"}:
    sys.exit("bench: BENCH_PLACEMENT is a list of shared and split")
work = tempfile.mkdtemp(prefix="bakery-bench-")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the servers below
script = os.path.abspath("bench/orders.lua")
rate_script = os.path.abspath("bench/rate.js")
CEILING = os.path.join(BUILD_DIR, "ceiling")
TRACING = ("tracing on", "tracing off")


def cpu_seconds(pid):
    """user + system CPU time of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export_cpu_seconds(pid):
    """CPU time of reception's span export thread (named otel-export); 0 when tracing is off."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == "otel-export":
                return cpu_seconds(f"{pid}/task/{tid}")
    return 0.0


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def sink_cpu_seconds():
    """CPU time of the Collector and Jaeger (on reception's cores, or on their own)."""
    procs = [collector.proc] + ([jaeger.proc] if sink == "Jaeger" else [])
    return sum(cpu_seconds(p.pid) for p in procs if p is not None)


def broker_cpu_seconds(rabbit):
    """CPU time of RabbitMQ's processes: every node's namespace, or the one node's process group
    (beam.smp, erl_child_setup, ...); a process that ends meanwhile counts nothing."""
    cluster = isinstance(rabbit, RabbitCluster)
    pids = ([p for n in rabbit.nodes for p in n.pids()] if cluster else
            [int(p) for p in os.listdir("/proc") if p.isdigit()])
    total = 0.0
    for p in pids:
        try:
            if cluster or os.getpgid(p) == rabbit.proc.pid:
                total += cpu_seconds(p)
        except OSError:
            pass
    return total


def baked(baker):
    samples = parse_prometheus(http_get(f"{baker.url}/metrics").text)
    return sum(v for (n, _), v in samples.items() if n == "baker_orders_baked_total")


def answered(port):
    """(wrk sockets to port that received bytes, all wrk sockets to port), from ss."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    infos = [line for line in out.splitlines() if line.startswith(("\t", " "))]
    return sum("bytes_received:" in line for line in infos), len(infos)


def drain(rabbit, queue):
    wait_until(lambda: int(rabbit.queues()[queue]["messages"]) == 0, 600, interval=0.5,
               what="queue drained")


def wrk(url, conns, close, secs):
    """Runs wrk; returns its BENCH line's fields and (answered, connections) at 3/4 of the run."""
    env = {**os.environ, "BENCH_CLOSE": "1" if close else "0"}
    p = subprocess.Popen(["wrk", "-t", wrk_threads, "-c", str(conns), "-d", f"{secs}s",
                          "--timeout", "10s", "-s", script, url], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(secs * 0.75)
    seen = answered(int(url.rsplit(":", 1)[1]))
    out = p.communicate()[0]
    m = re.search(r"^BENCH (.*)$", out, re.M)
    if p.returncode or not m:
        sys.exit(f"bench: wrk failed:\n{out}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    return r, seen


def k6(url, secs):
    """Runs k6 at rate orders/s (bench/rate.js); returns its BENCH line's fields as wrk's."""
    p = subprocess.run([os.environ["BENCH_K6"], "run", "--no-usage-report", "-q",
                        "-e", f"URL={url}", "-e", f"BENCH_RATE={rate}",
                        "-e", f"BENCH_SECONDS={secs}", rate_script],
                       capture_output=True, text=True)
    m = re.search(r"^BENCH (.*)$", p.stdout, re.M)
    if p.returncode or not m:
        sys.exit(f"bench: k6 failed:\n{p.stdout}{p.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    if r["dropped"]:  # the orders/s column shows it too
        print(f"  (k6 sent {r['dropped']} orders fewer than {rate}/s: 256 were waiting)")
    return {**r, "duration_us": secs * 1000000, "connect_errors": 0, "read_errors": 0,
            "write_errors": 0, "timeouts": 0}, (0, 0)


def ceiling(bakery, window, baker, queue_type="classic"):
    env = {**os.environ, **bakery.env(ORDERS_QUEUE_TYPE=queue_type)}
    b0, t0 = baked(baker), time.monotonic()
    out = subprocess.run([CEILING, str(seconds), str(window)], env=env, capture_output=True,
                         text=True)
    b1, t1 = baked(baker), time.monotonic()
    m = re.search(r"^CEILING (.*)$", out.stdout, re.M)
    if out.returncode or not m:
        sys.exit(f"bench: ceiling failed:\n{out.stdout}{out.stderr}")
    r = {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    r["baked_per_s"] = (b1 - b0) / (t1 - t0)
    return r


def pin(cpus):
    """Runs this process's next children on cpus (they inherit the forking thread's set)."""
    os.sched_setaffinity(0, cpus)


def bench(placement):
    """One placement's rounds (module doc); fills results[(placement, load, mode)]."""
    cpus = ALL_CPUS if placement == "shared" else ALL_CPUS - {max(ALL_CPUS)}
    sink_cpus = ALL_CPUS if placement == "shared" else {max(ALL_CPUS)}
    global collector, jaeger, sink
    stack = []
    try:
        pin(sink_cpus)
        if os.access(otelstack.JAEGER_BIN, os.X_OK):
            jaeger = otelstack.Jaeger(os.path.join(work, placement, "jaeger")); stack.append(jaeger)
            sink = "Jaeger"
        else:
            # nothing listens: the Collector drops what it receives
            jaeger = f"127.0.0.1:{free_port()}"
            sink = "a closed port (no Jaeger built)"
        collector = otelstack.Collector(jaeger, os.path.join(work, placement, "collector"))
        stack.append(collector)
        pin(cpus)
        redis = RedisServer(); stack.append(redis)
        rabbit = RabbitServer(); stack.append(rabbit)
        tracing_env = {
            "tracing on": {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
                           "OTEL_SDK_DISABLED": "false"},
            "tracing off": {"OTEL_SDK_DISABLED": "true"},
        }
        print(f"bench: {placement}: the Collector and {sink} on CPUs {sorted(sink_cpus)}, "
              f"everything else (Redis, RabbitMQ with a classic queue, reception, the baker, "
              f"wrk, the ceiling) on {sorted(cpus)}", flush=True)
        for r in range(rounds):
            if r:  # every round starts as the first did: no orders in Redis, no traces in Jaeger
                redis.command("FLUSHALL")
                if sink == "Jaeger":
                    jaeger.stop()
                    pin(sink_cpus)
                    jaeger.start()
                    pin(cpus)
            bakery = Bakery(redis, rabbit, os.path.join(work, placement, "logs"))
            try:
                base = {"LOG_LEVEL": "warn", "BAKE_TIME_SCALE": "0",
                        "ORDERS_QUEUE_TYPE": "classic"}
                baker = bakery.baker(**base, OTEL_SDK_DISABLED="true",
                                     BAKER_CONCURRENCY=baker_concurrency)
                modes = TRACING if r % 2 == 0 else TRACING[::-1]
                for mode in modes:
                    reception = bakery.reception(**base, **tracing_env[mode])
                    wrk(reception.url, conn_counts[0], False, warmup)
                    drain(rabbit, bakery.queue)
                    for conns, kind in loads:
                        cpu0, b0, t0 = cpu_seconds(reception.pid), baked(baker), time.monotonic()
                        sink0, exp0 = sink_cpu_seconds(), export_cpu_seconds(reception.pid)
                        w, (seen, total) = (k6(reception.url, seconds) if kind == "rate" else
                                            wrk(reception.url, conns, kind == "close", seconds))
                        cpu1, b1, t1 = cpu_seconds(reception.pid), baked(baker), time.monotonic()
                        sink1, exp1 = sink_cpu_seconds(), export_cpu_seconds(reception.pid)
                        if (w["non202"] or w["connect_errors"] or w["read_errors"] or
                                w["write_errors"]):
                            sys.exit(f"bench: {mode}, {conns} {kind}: {w}")
                        run = {"rps": w["requests"] / (w["duration_us"] / 1e6),
                               "p50": w["p50_us"] / 1000, "p99": w["p99_us"] / 1000,
                               "answered": f"{seen}/{total}" if kind == "keep-alive" else "-",
                               "cpu": (cpu1 - cpu0) * 1e6 / w["requests"],
                               "sink_cpu": (sink1 - sink0) * 1e6 / w["requests"],
                               "export_cpu": (exp1 - exp0) * 1e6 / w["requests"],
                               "rss": peak_rss_mib(reception.pid),
                               "baked_per_s": (b1 - b0) / (t1 - t0), "timeouts": w["timeouts"]}
                        load = f"{conns} {kind}"
                        results.setdefault((placement, load, mode), []).append(run)
                        print(f"  {placement} round {r + 1}  {load:15s} {mode:11s} "
                              f"{run['rps']:8.0f} orders/s  "
                              f"p50 {run['p50']:6.1f} ms  p99 {run['p99']:6.1f} ms  "
                              f"answered {run['answered']:>7s}  {run['cpu']:5.1f} CPU us/order "
                              f"(export {run['export_cpu']:4.1f}; Collector+Jaeger "
                              f"{run['sink_cpu']:5.1f})  "
                              f"RSS {run['rss']:5.1f} MiB  baker {run['baked_per_s']:6.0f}/s",
                              flush=True)
                        drain(rabbit, bakery.queue)
                    reception.terminate()
                for conns in conn_counts:
                    c = ceiling(bakery, conns, baker)
                    run = {"rps": c["orders_per_s"], "p50": c["p50_us"] / 1000,
                           "p99": c["p99_us"] / 1000, "cpu": c["cpu_us"],
                           "baked_per_s": c["baked_per_s"]}
                    results.setdefault((placement, f"{conns} in flight", "ceiling"),
                                       []).append(run)
                    print(f"  {placement} round {r + 1}  ceiling {conns:3d} in flight  "
                          f"{run['rps']:8.0f} orders/s  "
                          f"p50 {run['p50']:6.1f} ms  p99 {run['p99']:6.1f} ms  "
                          f"{run['cpu']:5.1f} CPU us/order (client)  "
                          f"baker {run['baked_per_s']:6.0f}/s", flush=True)
                    drain(rabbit, bakery.queue)
            finally:
                bakery.close()
    finally:
        for p in reversed(stack):
            p.close()
        pin(ALL_CPUS)


def table(placement):
    def med(load, mode, key):
        return statistics.median(x[key] for x in results[(placement, load, mode)])

    def rows(load, top):
        """A load's two rows, tracing on and off; top: the ceiling's orders/s, or None."""
        off_rps, off_cpu = med(load, "tracing off", "rps"), med(load, "tracing off", "cpu")
        name = load.replace(" rate", "/s, fixed rate (k6)")
        for mode in TRACING:
            runs = results[(placement, load, mode)]
            rps, cpu = med(load, mode, "rps"), med(load, mode, "cpu")
            answers = sorted(x["answered"] for x in runs)
            vs_off = ("" if mode == "tracing off" else
                      f"{rps / off_rps:.3f} orders/s, {cpu / off_cpu:.3f} CPU")
            print(f"| {name} | {mode} | {rps:.0f} | {med(load, mode, 'p50'):.1f} | "
                  f"{med(load, mode, 'p99'):.1f} | {answers[len(answers) // 2]} | "
                  f"{cpu:.1f} ({med(load, mode, 'export_cpu'):.1f}) | "
                  f"{med(load, mode, 'sink_cpu'):.1f} | "
                  f"{max(x['rss'] for x in runs):.1f} | "
                  f"{med(load, mode, 'baked_per_s'):.0f} | "
                  f"{f'{rps / top:.2f}' if top else '-'} | {vs_off} |")

    print(f"\n{placement}: medians of {rounds} rounds\n")
    print("| load | mode | orders/s | p50 ms | p99 ms | connections answered | "
          "reception CPU µs/order (its export thread's) | Collector + Jaeger CPU µs/order | "
          "reception RSS MiB | baker finished/s | vs ceiling | vs tracing off |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for conns in conn_counts:
        top = med(f"{conns} in flight", "ceiling", "rps")
        print(f"| ceiling, {conns} in flight | no HTTP | {top:.0f} | "
              f"{med(f'{conns} in flight', 'ceiling', 'p50'):.1f} | "
              f"{med(f'{conns} in flight', 'ceiling', 'p99'):.1f} | | "
              f"{med(f'{conns} in flight', 'ceiling', 'cpu'):.1f} (the client's) | | | "
              f"{med(f'{conns} in flight', 'ceiling', 'baked_per_s'):.0f} | 1 | |")
        for kind in ("keep-alive", "close"):
            rows(f"{conns} {kind}", top)
    if rate:
        rows(f"{rate} rate", None)


def replication():
    """The classic queue on one node against the quorum queue on three (module doc); fills
    replicated[(load, queue type)]."""
    conns, stack = conn_counts[0], []
    try:
        redis = RedisServer(); stack.append(redis)
        single = RabbitServer(); stack.append(single)
        cluster = RabbitCluster(); stack.append(cluster)
        targets = (("classic", single), ("quorum", cluster))
        print(f"bench: replication: classic on one node, quorum on three ({cluster.addr}), "
              f"tracing off, everything on {sorted(ALL_CPUS)}", flush=True)
        for r in range(rounds):
            for qtype, rabbit in (targets if r % 2 == 0 else targets[::-1]):
                redis.command("FLUSHALL")
                bakery = Bakery(redis, rabbit, os.path.join(work, "replication", "logs"))
                try:
                    base = {"LOG_LEVEL": "warn", "BAKE_TIME_SCALE": "0",
                            "OTEL_SDK_DISABLED": "true", "ORDERS_QUEUE_TYPE": qtype}
                    baker = bakery.baker(**base, BAKER_CONCURRENCY=baker_concurrency)
                    mq0 = broker_cpu_seconds(rabbit)
                    c = ceiling(bakery, conns, baker, qtype)
                    runs = [(f"ceiling, {conns} in flight", {
                        "rps": c["orders_per_s"], "p50": c["p50_us"] / 1000,
                        "p99": c["p99_us"] / 1000, "cpu": c["cpu_us"],
                        "mq_cpu": (broker_cpu_seconds(rabbit) - mq0) * 1e6 / c["orders"]})]
                    drain(rabbit, bakery.queue)
                    reception = bakery.reception(**base)
                    wrk(reception.url, conns, False, warmup)
                    drain(rabbit, bakery.queue)
                    cpu0, mq0 = cpu_seconds(reception.pid), broker_cpu_seconds(rabbit)
                    w, _ = wrk(reception.url, conns, False, seconds)
                    n = w["requests"]
                    if w["non202"] or w["connect_errors"] or w["read_errors"] or w["write_errors"]:
                        sys.exit(f"bench: {qtype}, {conns} keep-alive: {w}")
                    runs.append((f"{conns} keep-alive", {
                        "rps": n / (w["duration_us"] / 1e6), "p50": w["p50_us"] / 1000,
                        "p99": w["p99_us"] / 1000,
                        "cpu": (cpu_seconds(reception.pid) - cpu0) * 1e6 / n,
                        "mq_cpu": (broker_cpu_seconds(rabbit) - mq0) * 1e6 / n}))
                    drain(rabbit, bakery.queue)
                    for load, run in runs:
                        replicated.setdefault((load, qtype), []).append(run)
                        print(f"  replication round {r + 1}  {load:21s} {qtype:7s} "
                              f"{run['rps']:8.0f} orders/s  p50 {run['p50']:6.1f} ms  "
                              f"p99 {run['p99']:6.1f} ms  {run['cpu']:5.1f} CPU us/order  "
                              f"RabbitMQ {run['mq_cpu']:6.1f}", flush=True)
                finally:
                    bakery.close()
    finally:
        for p in reversed(stack):
            p.close()


def replication_table():
    keys = ("rps", "p50", "p99", "cpu", "mq_cpu")
    print(f"\nreplication (tracing off): medians of {rounds} rounds\n")
    print("| load | queue | orders/s | p50 ms | p99 ms | CPU µs/order (the client's or "
          "reception's) | RabbitMQ CPU µs/order (every node) |")
    print("|---|---|---|---|---|---|---|")
    for load in dict.fromkeys(load for load, _ in replicated):
        med = {q: [statistics.median(x[k] for x in replicated[(load, q)]) for k in keys]
               for q in ("classic", "quorum")}
        for q, name in (("classic", "classic, 1 node"), ("quorum", "quorum, 3 nodes")):
            print(f"| {load} | {name} | {med[q][0]:.0f} | {med[q][1]:.1f} | {med[q][2]:.1f} | "
                  f"{med[q][3]:.1f} | {med[q][4]:.1f} |")
        print(f"| {load} | quorum / classic | " +
              " | ".join(f"{a / b:.2f}" for a, b in zip(med["quorum"], med["classic"])) + " |")


ALL_CPUS = os.sched_getaffinity(0)
if len(ALL_CPUS) < 2:
    placements = ["shared"]  # nothing to split
results = {}  # (placement, load, mode) -> list of per-round dicts
replicated = {}  # (load, queue type) -> list of per-round dicts
# keep-alive first: its peak RSS then holds no thread a Connection: close run woke (each new
# connection may go to another of civetweb's threads, so those runs touch all their stacks)
loads = ([(c, kind) for kind in ("keep-alive", "close") for c in conn_counts] +
         ([(rate, "rate")] if rate else []))
print(f"bench: {rounds} rounds of {seconds:g} s runs, alternating; wrk -t{wrk_threads}; "
      f"connections {conn_counts}; placements {placements}; {len(ALL_CPUS)} CPUs; "
      f"quorum comparison {'on' if quorum else 'off'}; binaries from {BUILD_DIR}", flush=True)
t_start = time.monotonic()
for placement in placements:
    bench(placement)
if quorum:
    replication()
print(f"\n{(time.monotonic() - t_start) / 60:.1f} min")
for placement in placements:
    table(placement)
if quorum:
    replication_table()
PY
