"""From an order to its trace: the creating span's context stored with the order in Redis,
GET /orders/{key}'s traceId and span link, the baker's fallback link to the stored context, and
scripts/trace.py (make trace) drawing the journey; all against a real Collector and Jaeger.
"""

import os
import re
import secrets
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ROOT, free_port, raw_request, wait_until  # noqa: E402
from otelstack import dump, jaeger_tags  # noqa: E402
from test_services import log_ids, only, otel_env, refs, traceparent  # noqa: E402

TRACE_PY = os.path.join(ROOT, "scripts", "trace.py")


def names(prefix):
    """Unique service names, so this test's traces are its own in the shared Jaeger."""
    tag = secrets.token_hex(3)
    return f"{prefix}-reception-{tag}", f"{prefix}-baker-{tag}"


def run_trace(jaeger, reception, services, *args):
    env = {**os.environ, "JAEGER_URL": jaeger.query_url, "RECEPTION_URL": reception.url,
           "RECEPTION_SERVICE": services[0], "BAKER_SERVICE": services[1]}
    return subprocess.run(["/usr/bin/python3", TRACE_PY, *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_order_knows_its_trace(bakery, collector, jaeger):
    services = names("t12")
    env = otel_env(collector.otlp_http_url)
    reception = bakery.reception(OTEL_SERVICE_NAME=services[0], **env)
    baker = bakery.baker(OTEL_SERVICE_NAME=services[1], **env)

    tp, tid, _ = traceparent()
    r = reception.post("/orders", {"customer": "homer", "pastry": "la bombe"},
                       headers={"traceparent": tp, "tracestate": "bakery=t12"})
    assert r.status == 202, r
    key = r.json()["orderKey"]
    bakery.wait_status(key)
    trace = jaeger.wait_trace(tid, spans=3)
    post = only(trace, "POST /orders")

    # Stored next to the other fields: the POST /orders span's context.
    stored = bakery.order(key)
    assert stored["traceparent"] == f"00-{tid}-{post['spanID']}-01", stored
    assert stored["tracestate"] == "bakery=t12", stored
    assert {"customer", "pastry", "orderTime", "status"} <= set(stored)

    # GET returns traceId, the trace Jaeger holds the order's creation in; its span links there.
    tp_get, tid_get, _ = traceparent()
    r = reception.get(f"/orders/{key}", headers={"traceparent": tp_get})
    assert r.status == 200, r
    body = r.json()
    assert body["traceId"] == tid and body["status"] == "finished", body
    assert jaeger_tags(only(jaeger.wait_trace(body["traceId"], spans=3), "POST /orders"))[
        "bakery.order_key"] == key
    get = only(jaeger.wait_trace(tid_get, spans=2), "GET /orders/{key}")
    assert refs(get, "FOLLOWS_FROM") == [(tid, post["spanID"])], dump(get)
    assert refs(get, "CHILD_OF") == [(tid_get, tp_get.split("-")[2])]

    # The baker keeps its link to publish-order, and every span of its trace names the order.
    btid, _ = log_ids(baker, "order finished", order_key=key)
    btrace = jaeger.wait_trace(btid, spans=7)
    receive = only(btrace, "receive-order")
    assert refs(receive, "FOLLOWS_FROM") == [(tid, only(trace, "publish-order")["spanID"])]
    for s in btrace["spans"]:
        assert jaeger_tags(s).get("bakery.order_key") == key, dump(s)

    # An order created with tracing off stores no context and returns no traceId.
    off = bakery.reception(OTEL_SDK_DISABLED="true")
    key_off = bakery.place(off)
    bakery.wait_status(key_off)
    assert "traceparent" not in bakery.order(key_off)
    assert "traceId" not in off.get(f"/orders/{key_off}").json()

    # make trace KEY: the journey as a tree, joined through the links.
    r = run_trace(jaeger, reception, services, key)
    assert r.returncode == 0, r.stderr
    check_tree(r.stdout, key, tid, btid, tid_get, max(10, *map(len, services)))
    # Found by tag search too, with no reception to ask (a port-forwarded Jaeger).
    gone = subprocess.run(["/usr/bin/python3", TRACE_PY, key], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "JAEGER_URL": jaeger.query_url,
                                           "RECEPTION_URL": "http://127.0.0.1:9",
                                           "RECEPTION_SERVICE": services[0],
                                           "BAKER_SERVICE": services[1]})
    assert gone.returncode == 0 and gone.stdout == r.stdout, gone.stderr
    # Without a key: the latest order; an unknown key fails and says so.
    key2 = bakery.place(reception, customer="marge", pastry="croissant")
    bakery.wait_status(key2)
    tid2, _ = log_ids(reception, "order accepted", order_key=key2)
    jaeger.wait_trace(tid2, spans=3)
    latest = wait_until(lambda: (lambda x: x if key2 in x.stdout else None)(
        run_trace(jaeger, reception, services)), 30, interval=0.5, what="the latest order")
    assert latest.stdout.startswith(f"order {key2}:"), latest.stdout
    unknown = run_trace(jaeger, reception, services, "0" * 32)
    assert unknown.returncode == 1 and "no trace of order" in unknown.stderr


def check_tree(out, key, tid, btid, tid_get, service_width):
    """The waterfall: traces in time order, each span's depth and place, the links."""
    lines = out.splitlines()
    assert lines[0].startswith(f"order {key}: 3 trace(s), 12 spans"), out
    heads = [i for i, x in enumerate(lines) if x.startswith("trace ")]
    assert [lines[i].split()[1] for i in heads] == [tid, btid, tid_get], out

    def spans(section):
        """[(depth, name, kind)] of the span lines in a trace's section."""
        out_ = []
        for x in section:
            m = re.match(r"( *)(\S+(?: /\S+)*) +(\w+) +[\d.]+ m?s \|[ #]+\| (ok|ERROR)",
                         x[3 + service_width:])
            if x.startswith("  ") and m and x[2] != " ":
                out_.append((len(m.group(1)) // 2, m.group(2), m.group(3)))
        return out_

    creation = spans(lines[heads[0]:heads[1]])
    assert creation == [(0, "POST /orders", "server"), (1, "create-order", "client"),
                        (1, "publish-order", "producer")], out
    baking = spans(lines[heads[1]:heads[2]])
    assert baking[:2] == [(0, "receive-order", "consumer"), (1, "processing-order", "internal")]
    assert baking[2:6] == [(2, "read-order", "client"), (2, "update-order", "client"),
                           (2, "baking", "internal"), (2, "update-order", "client")], out
    assert baking[6:] == [(1, "settle-order", "client")], out
    assert spans(lines[heads[2]:]) == [(0, "GET /orders/{key}", "server"),
                                       (1, "read-order", "client")], out
    section = "\n".join(lines[heads[1]:heads[2]])
    assert "~> link to t12-reception-" in section and f"publish-order (trace {tid})" in section
    assert f"POST /orders (trace {tid})" in "\n".join(lines[heads[2]:]), out
    assert "bakery.status=finished" in section and "http.response.status_code=202" in out
    # Bars share one axis: the baker starts after reception's POST began.
    bars = [x[x.index("|"):x.rindex("|") + 1] for x in lines if "|" in x and "#" in x]
    assert all(len(b) == len(bars[0]) for b in bars)
    assert bars[0].index("#") <= min(b.index("#") for b in bars)


def test_baker_falls_back_to_stored_context(bakery, rabbit_server, collector, jaeger):
    """A queued message without trace headers: the baker links to the order's stored context."""
    services = names("t12fb")
    env = otel_env(collector.otlp_http_url)
    reception = bakery.reception(OTEL_SERVICE_NAME=services[0], **env)
    tp, tid, _ = traceparent()
    r = reception.post("/orders", {"customer": "homer", "pastry": "tart"},
                       headers={"traceparent": tp})
    assert r.status == 202, r
    key = r.json()["orderKey"]
    post = only(jaeger.wait_trace(tid, spans=3), "POST /orders")
    # The message reception published (with headers) is replaced by one without any.
    rabbit_server.ctl("purge_queue", bakery.queue)
    rabbit_server.publish('{"orderKey":"%s","timeEnqueued":"2026-01-01T00:00:00Z"}' % key,
                          routing_key=bakery.queue)
    baker = bakery.baker(OTEL_SERVICE_NAME=services[1], **env)
    bakery.wait_status(key)
    btid, _ = log_ids(baker, "order finished", order_key=key)
    receive = only(jaeger.wait_trace(btid, spans=7), "receive-order")
    assert refs(receive, "FOLLOWS_FROM") == [(tid, post["spanID"])], dump(receive)
    assert jaeger_tags(receive)["bakery.order_key"] == key
    # make trace joins it through that link.
    r = run_trace(jaeger, reception, services, key)
    assert r.returncode == 0, r.stderr
    assert [x.split()[1] for x in r.stdout.splitlines() if x.startswith("trace ")] == \
        [tid, btid], r.stdout
    assert f"~> link to {services[0]} POST /orders (trace {tid})" in r.stdout


def test_trace_shows_mistakes(bakery, collector, jaeger):
    """The baker's mistakes (10% per round, at random) appear as events under baking."""
    services = names("t12m")
    env = otel_env(collector.otlp_http_url)
    reception = bakery.reception(OTEL_SERVICE_NAME=services[0], **env)
    baker = bakery.baker(OTEL_SERVICE_NAME=services[1], **env)
    keys = [bakery.place(reception, customer=f"c{i}") for i in range(80)]  # 0.9^80: 0.02%
    bakery.wait_status(keys)
    rounds = {x["order_key"]: int(x["rounds"]) for x in baker.log_records()
              if x.get("msg") == "order finished"}
    key = next(k for k in keys if rounds[k] > 1)
    jaeger.wait_trace(log_ids(baker, "order finished", order_key=key)[0], spans=7)
    r = run_trace(jaeger, reception, services, key)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    baking = next(i for i, x in enumerate(lines) if " baking " in x)
    assert f"baker.rounds={rounds[key]}" in lines[baking], r.stdout
    mistakes = [x for x in lines[baking + 1:baking + rounds[key]]
                if re.match(r" +\* \+[\d.]+ m?s baker made mistake, redoing$", x)]
    assert len(mistakes) == rounds[key] - 1, r.stdout


def post_raw(reception, header_lines):
    """POST /orders with the given header lines as sent, repeated names included."""
    body = b'{"customer":"homer","pastry":"la bombe"}'
    head = "".join(f"{line}\r\n" for line in header_lines)
    data = (f"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{head}\r\n").encode() + body
    return raw_request(reception.http_port, data)


def test_repeated_trace_header_fields(bakery):
    """Every field of a header reaches the SDK (mg_get_header alone gives the first): the
    tracestate fields are one list, in order, a repeated key keeping its first member; two
    traceparent fields start a new trace. The stored context shows what was extracted (no
    Collector needed: spans go nowhere)."""
    reception = bakery.reception(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
                                 OTEL_TRACES_SAMPLER="always_on")
    tp, tid, _ = traceparent()
    r = post_raw(reception, [f"traceparent: {tp}", "tracestate: a=1,b@=2", "TraceState: ",
                             "tracestate: c=3 , a=4"])
    assert r.status == 202, r
    stored = bakery.order(r.json()["orderKey"])
    assert stored["traceparent"].startswith(f"00-{tid}-"), stored
    assert stored["tracestate"] == "a=1,b@=2,c=3", stored

    tp2, tid2, _ = traceparent()
    r = post_raw(reception, [f"traceparent: {tp}", f"traceparent: {tp2}", "tracestate: a=1"])
    assert r.status == 202, r
    stored = bakery.order(r.json()["orderKey"])
    new_tid = stored["traceparent"].split("-")[1]
    assert new_tid not in (tid, tid2), stored
    assert "tracestate" not in stored or stored["tracestate"] == "", stored
