"""A real OpenTelemetry Collector and a real Jaeger on free loopback ports, for tracing tests.

    from otelstack import Jaeger, Collector

    with Jaeger(workdir) as jaeger, Collector(jaeger, workdir) as collector:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url}   # give to a service
        traces = jaeger.wait_traces("reception", count=1)                 # Jaeger's query API

Jaeger      Jaeger v2 (~/.cache/bakery-tools/jaeger) with THE configuration k8s/jaeger/config.yaml
            (memory storage); every listener on its own free 127.0.0.1 port (OTLP gRPC/HTTP,
            query HTTP/gRPC, health). traces(service), trace(id), wait_traces(...).
Collector   ~/.cache/bakery-tools/otelcol with THE pipeline k8s/otel-collector/config.yaml; its
            OTLP receivers and own metrics on free ports (OTELCOL_{GRPC,HTTP}_LISTEN,
            OTELCOL_METRICS_HOST/PORT), exporting to the Jaeger given (JAEGER_OTLP_ENDPOINT).
            stop()/start() for "Collector down" tests.

Each class writes its process's output to <workdir>/<name>.log and stops it at close; nothing
here is a mock. Both binaries are built (and cached) by scripts/tools.sh.
"""

import json
import os
import signal
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import ROOT, free_port, http_get, port_open, wait_until  # noqa: E402

TOOLS = os.environ.get("BAKERY_TOOLS", os.path.expanduser("~/.cache/bakery-tools"))
OTELCOL_BIN = os.path.join(TOOLS, "otelcol")
JAEGER_BIN = os.path.join(TOOLS, "jaeger")
JAEGER_CONFIG = os.path.join(ROOT, "k8s", "jaeger", "config.yaml")
COLLECTOR_CONFIG = os.path.join(ROOT, "k8s", "otel-collector", "config.yaml")


class _Process:
    """One long-running program with its output in a log file."""

    name = "process"

    def __init__(self, workdir):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.log_path = os.path.join(self.workdir, f"{self.name}.log")
        self.proc = None

    def _spawn(self, argv, env):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after timeout seconds; returns the exit code (None if never
        started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        return rc

    def _wait(self, ready, what, timeout=60):
        def check():
            if not self.running():
                raise RuntimeError(f"{self.name} exited; log:\n{self.log()[-3000:]}")
            return ready()

        try:
            wait_until(check, timeout=timeout, interval=0.2, what=what)
        except Exception:
            self.stop()
            raise

    def close(self):
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Jaeger(_Process):
    """Jaeger v2 with k8s/jaeger/config.yaml (memory storage) on private loopback ports."""

    name = "jaeger"

    def __init__(self, workdir, start=True):
        super().__init__(workdir)
        self.otlp_grpc_port = free_port()
        self.otlp_http_port = free_port()
        self.query_port = free_port()
        self.query_grpc_port = free_port()
        self.health_port = free_port()
        if start:
            self.start()

    @property
    def otlp_grpc_endpoint(self):
        """host:port of Jaeger's OTLP/gRPC receiver (the Collector's JAEGER_OTLP_ENDPOINT)."""
        return f"127.0.0.1:{self.otlp_grpc_port}"

    @property
    def query_url(self):
        return f"http://127.0.0.1:{self.query_port}"

    def start(self):
        if not os.access(JAEGER_BIN, os.X_OK):
            raise RuntimeError(f"{JAEGER_BIN} missing: run scripts/tools.sh jaeger")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.workdir,
            "JAEGER_LISTEN_HOST": "127.0.0.1",
            "JAEGER_OTLP_GRPC_PORT": str(self.otlp_grpc_port),
            "JAEGER_OTLP_HTTP_PORT": str(self.otlp_http_port),
            "JAEGER_QUERY_PORT": str(self.query_port),
            "JAEGER_QUERY_GRPC_PORT": str(self.query_grpc_port),
            "JAEGER_HEALTH_PORT": str(self.health_port),
        }
        argv = [JAEGER_BIN, f"--config={JAEGER_CONFIG}"]
        self._spawn(argv, env)
        self._wait(lambda: http_get(f"{self.query_url}/api/services").status == 200
                   and port_open(self.otlp_grpc_port), "jaeger query API and OTLP receiver")

    def api(self, path, **params):
        """GET a query-API path and return its decoded JSON."""
        url = f"{self.query_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        r = http_get(url)
        if r.status != 200:
            raise RuntimeError(f"GET {url}: {r.status} {r.text[:500]}")
        return r.json()

    def services(self):
        return self.api("/api/services").get("data") or []

    def traces(self, service, limit=100, **params):
        """The traces holding spans of service (Jaeger's JSON model), newest first."""
        return self.api("/api/traces", service=service, limit=limit, **params).get("data") or []

    def trace(self, trace_id):
        """One whole trace by its 32-hex id, or None when Jaeger does not have it."""
        r = http_get(f"{self.query_url}/api/traces/{trace_id}")
        if r.status == 404:
            return None
        if r.status != 200:
            raise RuntimeError(f"GET /api/traces/{trace_id}: {r.status} {r.text[:500]}")
        data = r.json().get("data") or []
        return data[0] if data else None

    def wait_trace(self, trace_id, spans=1, timeout=60):
        """Polls until the trace holds at least `spans` spans; returns it."""
        def ready():
            t = self.trace(trace_id)
            return t if t and len(t["spans"]) >= spans else None

        return wait_until(ready, timeout=timeout, interval=0.5,
                          what=f"trace {trace_id} with {spans} spans in Jaeger")

    def wait_traces(self, service, count=1, timeout=60, limit=100):
        """Polls until service has at least count traces (of the newest limit); returns them."""
        return wait_until(lambda: (lambda t: t if len(t) >= count else None)(
                              self.traces(service, limit=limit)),
                          timeout=timeout, interval=0.5,
                          what=f"{count} traces of {service} in Jaeger")


class Collector(_Process):
    """The OpenTelemetry Collector with Bakery's pipeline, exporting to a Jaeger."""

    name = "otelcol"

    def __init__(self, jaeger, workdir, start=True):
        super().__init__(workdir)
        self.jaeger_endpoint = jaeger.otlp_grpc_endpoint if isinstance(jaeger, Jaeger) else jaeger
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        if start:
            self.start()

    @property
    def otlp_http_url(self):
        """The base OTEL_EXPORTER_OTLP_ENDPOINT for services (the SDK appends /v1/traces)."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self):
        if not os.access(OTELCOL_BIN, os.X_OK):
            raise RuntimeError(f"{OTELCOL_BIN} missing: run scripts/tools.sh otelcol")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.workdir,
            "OTELCOL_GRPC_LISTEN": f"127.0.0.1:{self.grpc_port}",
            "OTELCOL_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            "JAEGER_OTLP_ENDPOINT": self.jaeger_endpoint,
        }
        self._spawn([OTELCOL_BIN, f"--config={COLLECTOR_CONFIG}"], env)
        self._wait(lambda: http_get(f"http://127.0.0.1:{self.metrics_port}/metrics").status == 200
                   and port_open(self.http_port), "collector metrics and OTLP/HTTP")

    def metrics(self):
        """The Collector's own Prometheus metrics text."""
        return http_get(f"http://127.0.0.1:{self.metrics_port}/metrics").text


def jaeger_tags(obj):
    """{key: value} of a Jaeger span's (or process's) tags."""
    return {t["key"]: t["value"] for t in obj.get("tags", [])}


def jaeger_spans_by_name(trace):
    return {s["operationName"]: s for s in trace["spans"]}


def dump(obj):
    return json.dumps(obj, indent=1)[:4000]

