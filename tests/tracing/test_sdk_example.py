"""examples/hello_trace.c, built against build/libotel.a alone, exports to a real Collector.

The example links against the SDK's static library and nothing else of Bakery (checked on its
symbols and shared libraries); run with only OTEL_EXPORTER_OTLP_ENDPOINT set, its span (name,
kind, attributes, service) is read back from Jaeger under the trace id it prints, and the
traceparent it injected names that trace.
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BUILD_DIR, ROOT, SANITIZER_MARKERS  # noqa: E402
from otelstack import dump, jaeger_tags  # noqa: E402

SAN = os.path.basename(BUILD_DIR) == "san"


def test_example_exports_through_the_collector(collector, jaeger):
    target = os.path.relpath(os.path.join(BUILD_DIR, "examples", "hello_trace"), ROOT)
    subprocess.run(["make", "-s", *(["SAN=1"] if SAN else []), target], cwd=ROOT, check=True,
                   timeout=600)
    binary = os.path.join(ROOT, target)

    # Nothing of Bakery inside: no civetweb, hiredis, rabbitmq, jansson; no Bakery symbol.
    libs = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for lib in ("civetweb", "hiredis", "rabbitmq", "jansson"):
        assert lib not in libs, libs
    symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                             check=True).stdout
    for sym in ("log_write", "metrics_counter", "order_parse_request", "otel_diag_register"):
        assert not re.search(rf"\b{sym}\b", symbols), sym

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url}
    p = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=60)
    for marker in SANITIZER_MARKERS:
        assert marker not in p.stderr, p.stderr
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    trace_id = re.search(r"^trace_id: ([0-9a-f]{32}) exported: 1$", p.stdout, re.M).group(1)
    traceparent = re.search(r"^traceparent: (\S+)$", p.stdout, re.M).group(1)
    assert traceparent.startswith(f"00-{trace_id}-") and traceparent.endswith("-01")

    trace = jaeger.wait_trace(trace_id, spans=1)
    (span,) = trace["spans"]
    assert span["operationName"] == "say-hello", dump(trace)
    assert traceparent.split("-")[2] == span["spanID"]
    tags = jaeger_tags(span)
    assert tags["span.kind"] == "client" and tags["greeting"] == "hello, world", dump(trace)
    assert tags["attempt"] == 1, dump(trace)
    assert trace["processes"][span["processID"]]["serviceName"] == "hello-trace"
