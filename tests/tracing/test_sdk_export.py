"""The tracing SDK against a real Collector and Jaeger: known spans in, the same spans out of Jaeger.

tests/tracing/emit.c (linked with libbakery.a) writes one trace SERVER -> {CLIENT with an event
and an error, PRODUCER} and a second trace CONSUMER (new root, linked to the PRODUCER) ->
INTERNAL, over OTLP/HTTP with gzip, as http/protobuf and http/json; the spans are read back
through Jaeger's HTTP query API. Also: a Collector that is down costs only dropped, counted
spans; the exporter retries 503 honouring Retry-After and sends OTEL_EXPORTER_OTLP_HEADERS.
"""

import gzip
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BUILD_DIR, ROOT, SANITIZER_MARKERS  # noqa: E402
from otelstack import dump, jaeger_spans_by_name, jaeger_tags  # noqa: E402

SAN = os.path.basename(BUILD_DIR) == "san"


@pytest.fixture(scope="session")
def emit_bin():
    """Builds tests/tracing/emit.c (sanitized when the services are) and returns its path."""
    target = os.path.relpath(os.path.join(BUILD_DIR, "tests", "tracing", "emit"), ROOT)
    subprocess.run(["make", "-s", *(["SAN=1"] if SAN else []), target], cwd=ROOT, check=True,
                   timeout=600)
    return os.path.join(ROOT, target)


def run_emit(emit_bin, args, env, timeout=120):
    """Runs emit with only the given OTEL_* environment; returns (its result object, stdout)."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    p = subprocess.run([emit_bin, *args], env=full, capture_output=True, text=True,
                       timeout=timeout)  # a hang guard: shutdown must be bounded
    for marker in SANITIZER_MARKERS:
        assert marker not in p.stderr, p.stderr
    assert p.returncode == 0, f"emit exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    result = [x["emit"] for x in lines if "emit" in x]
    assert len(result) == 1, p.stdout
    return result[0], lines


def ref(span, kind):
    return [(r["traceID"], r["spanID"]) for r in span.get("references", [])
            if r["refType"] == kind]


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_spans_reach_jaeger(emit_bin, collector, jaeger, protocol):
    service = f"emit-{protocol.split('/')[1]}-{secrets.token_hex(4)}"
    out, _ = run_emit(emit_bin, ["shapes"], {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test,team=bak%20ery",
        "K8S_POD_NAME": "pod-1",
        "K8S_NAMESPACE_NAME": "bakery",
        "K8S_NODE_NAME": "node-1",
    })
    assert out["stats"] == {"ended": 5, "exported": 5, "dropped": 0}, out

    # Trace one: SERVER -> CLIENT (event, error), SERVER -> PRODUCER.
    tid = out["server"]["trace_id"]
    assert out["client"]["trace_id"] == tid and out["producer"]["trace_id"] == tid
    trace = jaeger.wait_trace(tid, spans=3)
    spans = jaeger_spans_by_name(trace)
    assert set(spans) == {"emit-server", "emit-client", "emit-publish"}, dump(trace)
    server, client, producer = spans["emit-server"], spans["emit-client"], spans["emit-publish"]
    assert server["spanID"] == out["server"]["span_id"]
    assert client["spanID"] == out["client"]["span_id"]
    assert producer["spanID"] == out["producer"]["span_id"]
    assert ref(server, "CHILD_OF") == []
    assert ref(client, "CHILD_OF") == [(tid, server["spanID"])]
    assert ref(producer, "CHILD_OF") == [(tid, server["spanID"])]
    assert jaeger_tags(server)["span.kind"] == "server"
    assert jaeger_tags(client)["span.kind"] == "client"
    assert jaeger_tags(producer)["span.kind"] == "producer"
    assert client["startTime"] >= server["startTime"]
    assert client["startTime"] + client["duration"] <= server["startTime"] + server["duration"]

    tags = {t["key"]: (t["type"], t["value"]) for t in server["tags"]}
    assert tags["http.request.method"] == ("string", "POST")
    assert tags["http.response.status_code"] == ("int64", 202)
    assert tags["emit.double"] == ("float64", 0.25)
    assert tags["emit.bool"] == ("bool", True)
    assert tags["emit.utf8"] == ("string", "caf\u00e9 ?")  # invalid UTF-8 replaced

    ctags = jaeger_tags(client)
    assert ctags["db.system"] == "redis"
    assert ctags["otel.status_code"] == "ERROR"
    assert ctags["otel.status_description"] == "emit failure"
    assert ctags["error"] is True
    assert len(client["logs"]) == 1, dump(client)
    fields = {f["key"]: f["value"] for f in client["logs"][0]["fields"]}
    assert fields == {"event": "emit-event", "event.str": "burnt", "event.int": 3,
                      "event.double": 1.5, "event.bool": True}
    assert jaeger_tags(producer)["messaging.system"] == "rabbitmq"

    process = trace["processes"][server["processID"]]
    assert process["serviceName"] == service
    ptags = jaeger_tags(process)
    assert ptags["service.version"] == "0.0.1"
    assert ptags["telemetry.sdk.language"] == "c"
    assert ptags["deployment.environment.name"] == "test"
    assert ptags["team"] == "bak ery"
    assert ptags["k8s.pod.name"] == "pod-1"
    assert ptags["k8s.namespace.name"] == "bakery"
    assert ptags["k8s.node.name"] == "node-1"
    assert len(ptags["service.instance.id"]) == 36
    assert ptags["host.name"]

    # Trace two: a new root CONSUMER linked to the PRODUCER, with an INTERNAL child.
    tid2 = out["consumer"]["trace_id"]
    assert tid2 != tid and out["internal"]["trace_id"] == tid2
    trace2 = jaeger.wait_trace(tid2, spans=2)
    spans2 = jaeger_spans_by_name(trace2)
    consumer, internal = spans2["emit-consume"], spans2["emit-internal"]
    assert jaeger_tags(consumer)["span.kind"] == "consumer"
    assert jaeger_tags(internal).get("span.kind", "internal") == "internal"
    assert ref(consumer, "CHILD_OF") == []
    assert ref(consumer, "FOLLOWS_FROM") == [(tid, producer["spanID"])], dump(consumer)
    assert ref(internal, "CHILD_OF") == [(tid2, consumer["spanID"])]

    # Both traces are found by service, as the UI would.
    found = {t["traceID"] for t in jaeger.wait_traces(service, count=2)}
    assert found == {tid, tid2}


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_many_small_batches_all_arrive(emit_bin, collector, jaeger, protocol):
    """Spans are encoded as they end into a ring of batches: 2,000 of them in batches of 50 (a
    ring of 40) go out as 40 requests or more, and every span reaches Jaeger, each once."""
    service = f"emit-batches-{protocol.split('/')[1]}-{secrets.token_hex(4)}"
    n = 2000
    out, _ = run_emit(emit_bin, ["burst", str(n)], {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50",
        "OTEL_BSP_MAX_QUEUE_SIZE": str(n),
        "OTEL_BSP_SCHEDULE_DELAY": "10",
    })
    assert out["stats"] == {"ended": n, "exported": n, "dropped": 0}, out
    traces = jaeger.wait_traces(service, count=n, limit=n + 10)
    seen = sorted(jaeger_tags(t["spans"][0])["i"] for t in traces)
    assert seen == list(range(n))


def test_collector_down_costs_only_dropped_spans(emit_bin, make_collector, jaeger):
    collector = make_collector()
    collector.stop()  # its port is known and nothing listens there now
    service = f"emit-down-{secrets.token_hex(4)}"
    env = {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
        "OTEL_BSP_MAX_QUEUE_SIZE": "64",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    out, lines = run_emit(emit_bin, ["burst", "20000"], env)
    assert out["stats"]["ended"] == 20000
    assert out["stats"]["exported"] == 0
    assert out["stats"]["dropped"] == 20000
    warnings = [x for x in lines if x.get("msg") == "spans dropped"]
    assert warnings and int(warnings[0]["queue_full"]) > 0, lines[:5]
    assert len(warnings) <= 3, "the drop warning is rate-limited"

    # The Collector back: spans flow again.
    collector.start()
    out, _ = run_emit(emit_bin, ["shapes"], env)
    assert out["stats"] == {"ended": 5, "exported": 5, "dropped": 0}
    jaeger.wait_trace(out["server"]["trace_id"], spans=3)


class _FlakyCollector(http.server.BaseHTTPRequestHandler):
    """Answers the first POST with 503 + Retry-After: 1 and later ones with 200."""

    requests = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((time.monotonic(), self.path, dict(self.headers), body))
        if len(self.requests) == 1:
            self.send_response(503)
            self.send_header("Retry-After", "1")
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_retry_after_and_headers(emit_bin):
    _FlakyCollector.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyCollector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        out, _ = run_emit(emit_bin, ["burst", "3"], {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}/custom/path",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%3Dcret,x-tenant=bakery",
            "OTEL_BSP_SCHEDULE_DELAY": "10",
        })
    finally:
        server.shutdown()
        server.server_close()
    reqs = _FlakyCollector.requests
    assert out["stats"] == {"ended": 3, "exported": 3, "dropped": 0}
    assert len(reqs) == 2
    assert reqs[1][0] - reqs[0][0] >= 0.9, "Retry-After: 1 was honoured"
    for _, path, headers, body in reqs:
        assert path == "/custom/path"  # a signal-specific endpoint is used as is
        assert headers["Content-Type"] == "application/json"
        assert headers["Content-Encoding"] == "gzip"
        assert headers["api-key"] == "s=cret" and headers["x-tenant"] == "bakery"
        doc = json.loads(gzip.decompress(body))
        spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
        assert [s["name"] for s in spans] == ["emit-burst"] * 3
        assert [s["attributes"][0]["value"]["intValue"] for s in spans] == ["0", "1", "2"]


class _KeepAliveCollector(http.server.BaseHTTPRequestHandler):
    """An HTTP/1.1 Collector that keeps connections open, recording which one each POST used."""

    protocol_version = "HTTP/1.1"
    requests = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.client_address, self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_collector(tmp_path):
    """_KeepAliveCollector over TLS with a self-signed certificate for 127.0.0.1; yields
    (its https URL, the certificate's path)."""
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    _KeepAliveCollector.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveCollector)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    finally:
        server.shutdown()
        server.server_close()


def test_https_keeps_one_connection(emit_bin, tls_collector):
    """The exporter sends its batches from its own memory over a libcurl connection: over TLS,
    checked against OTEL_EXPORTER_OTLP_CERTIFICATE, every batch on the one kept-alive
    connection, each request's head and body intact."""
    url, cert = tls_collector
    out, _ = run_emit(emit_bin, ["burst", "300"], {
        "OTEL_EXPORTER_OTLP_ENDPOINT": url + "/",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": cert,
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=bakery",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50",
        "OTEL_BSP_MAX_QUEUE_SIZE": "300",
        "OTEL_BSP_SCHEDULE_DELAY": "10",
    })
    reqs = _KeepAliveCollector.requests
    assert out["stats"] == {"ended": 300, "exported": 300, "dropped": 0}
    assert len(reqs) >= 6
    assert len({r[0] for r in reqs}) == 1, "one connection for every batch"
    for _, path, headers, body in reqs:
        assert path == "/v1/traces"
        assert headers["Host"] == url.removeprefix("https://")
        assert headers["Content-Type"] == "application/x-protobuf"
        assert headers["x-tenant"] == "bakery"
        assert headers["User-Agent"].startswith("OTel-OTLP-Exporter-C/")
        assert int(headers["Content-Length"]) == len(body) > 0
    total = sum(len(r[3]) for r in reqs)
    assert total > 300 * 20, "each span's bytes arrived"


def test_https_untrusted_certificate_is_not_retried(emit_bin, tls_collector):
    """Without OTEL_EXPORTER_OTLP_CERTIFICATE the self-signed certificate fails verification:
    a failure that will not fix itself, so the batch is dropped at once, not retried, and
    nothing reaches the server."""
    url, _ = tls_collector
    t0 = time.monotonic()
    out, _ = run_emit(emit_bin, ["burst", "10"], {
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "OTEL_BSP_SCHEDULE_DELAY": "10",
        "OTEL_BSP_EXPORT_TIMEOUT": "20000",
    })
    assert out["stats"] == {"ended": 10, "exported": 0, "dropped": 10}
    assert time.monotonic() - t0 < 10, "no retries with backoff for a bad certificate"
    assert _KeepAliveCollector.requests == []
