"""The SDK's hand-written protobuf encoder against the OTLP .proto files, not a Collector's leniency.

tests/tracing/emit.c's shapes (every attribute type, UTF-8 repair, an event, a link, an error
status, remote and local parents) are posted to a stand-in Collector in this test; protoc
(Debian's opentelemetry-proto 1.5.0 from bookworm-backports, scripts/deps.sh) decodes each body
as an ExportTraceServiceRequest. The decoded text, its ids, times and host-specific values
replaced by placeholders, must equal tests/tracing/otlp_shapes.txtpb: any change to what the
encoder sends, in meaning, shows here. No unknown field may appear.
"""

import http.server
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_sdk_export import emit_bin, run_emit  # noqa: E402,F401 (a fixture)

PROTO_DIR = "/usr/include"
PROTO = "opentelemetry/proto/collector/trace/v1/trace_service.proto"
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otlp_shapes.txtpb")


class _Capture(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        _Capture.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def normalize(text):
    """Ids become I1, I2, ... in order of appearance (equal ids, equal names); times and the
    host's values become placeholders."""
    names = {}

    def ident(m):
        return f'{m.group(1)}: "I{names.setdefault(m.group(2), len(names) + 1)}"'

    text = re.sub(r'\b(trace_id|span_id|parent_span_id): "((?:[^"\\]|\\.)*)"', ident, text)
    text = re.sub(r"(time_unix_nano): \d+", r"\1: T", text)
    for key in ("service.instance.id", "host.name"):
        text = re.sub(r'(key: "%s"\n\s*value \{\n\s*string_value: )"[^"]*"' % re.escape(key),
                      r'\1"X"', text)
    return text


def test_protoc_decodes_the_sdk_output(emit_bin):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_BSP_SCHEDULE_DELAY": "60000"}
        out, _ = run_emit(emit_bin, ["shapes"], env)
    finally:
        server.shutdown()
        server.server_close()
    assert out["stats"]["exported"] == 5 and len(_Capture.bodies) == 1
    p = subprocess.run(["protoc", f"-I{PROTO_DIR}", PROTO,
                        "--decode=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"],
                       input=_Capture.bodies[0], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    text = p.stdout.decode()
    assert not re.search(r"^\s*\d+:", text, re.M), "unknown fields:\n" + text
    got = normalize(text)
    if os.environ.get("OTLP_GOLDEN_WRITE"):
        with open(GOLDEN, "w") as f:
            f.write(got)
    with open(GOLDEN) as f:
        assert got == f.read()
