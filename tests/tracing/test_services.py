"""reception and baker traced end to end through a real Collector into a real Jaeger.

Real redis-server and rabbitmq-server (tests/conftest.py), the built services, the Collector
with THE pipeline (k8s/otel-collector/config.yaml) and Jaeger (tests/tracing/conftest.py).
Traces are found by id: an incoming traceparent names the trace of a request, and the services'
own log lines carry trace_id and span_id for the rest. Asserted from Jaeger's query API: span
names, kinds, parent/child structure, the baker's link to the reception's publish-order span,
the key attributes and events, resource service.name; for http/protobuf and http/json with
gzip. Also: with the Collector down, orders still flow and the lost spans are counted.
"""

import os
import secrets
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import http_get, parse_prometheus, wait_until  # noqa: E402
from otelstack import dump, jaeger_tags  # noqa: E402


def otel_env(collector_url, protocol="http/protobuf"):
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }


def traceparent():
    """A fresh sampled incoming context: (header value, trace id, parent span id)."""
    tid, sid = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{tid}-{sid}-01", tid, sid


def refs(span, kind):
    return [(r["traceID"], r["spanID"]) for r in span.get("references", [])
            if r["refType"] == kind]


def kind(span):
    return jaeger_tags(span).get("span.kind", "internal")


def events(span):
    """[(event name, {field: value})] of a Jaeger span's logs."""
    out = []
    for log in span.get("logs", []):
        fields = {f["key"]: f["value"] for f in log["fields"]}
        out.append((fields.pop("event", None), fields))
    return out


def only(trace, name):
    spans = [s for s in trace["spans"] if s["operationName"] == name]
    assert len(spans) == 1, f"{len(spans)} spans named {name}:\n{dump(trace)}"
    return spans[0]


def named(trace, name):
    return [s for s in trace["spans"] if s["operationName"] == name]


def service_of(trace, span):
    return trace["processes"][span["processID"]]


def log_ids(service, msg, **match):
    """(trace_id, span_id) of the service's one log line msg whose fields match."""
    lines = [r for r in service.log_records()
             if r.get("msg") == msg and all(r.get(k) == v for k, v in match.items())]
    assert len(lines) == 1, f"{msg} {match}: {lines}"
    assert len(lines[0].get("trace_id", "")) == 32 and len(lines[0].get("span_id", "")) == 16, \
        lines[0]
    return lines[0]["trace_id"], lines[0]["span_id"]


def check_error(span, description=None):
    tags = jaeger_tags(span)
    assert tags.get("otel.status_code") == "ERROR" and tags.get("error") is True, dump(span)
    if description is not None:
        assert tags.get("otel.status_description") == description, dump(span)


def check_ok(span):
    assert jaeger_tags(span).get("otel.status_code") != "ERROR", dump(span)


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_order_traces(bakery, redis_server, rabbit_server, collector, jaeger, protocol):
    env = otel_env(collector.otlp_http_url, protocol)
    reception = bakery.reception(**env)
    baker = bakery.baker(**env)
    redis_host, redis_port = redis_server.addr.rsplit(":", 1)

    # One order continues the caller's trace; one starts its own.
    tp, tid, parent_sid = traceparent()
    r = reception.post("/orders", {"customer": "homer", "pastry": "la bombe"},
                       headers={"traceparent": tp, "tracestate": "bakery=t1",
                                "baggage": "user=homer", "User-Agent": "bakery-test/1"})
    assert r.status == 202, r
    key = r.json()["orderKey"]
    key2 = bakery.place(reception, customer="marge", pastry="croissant")
    bakery.wait_status([key, key2])

    # A read and an unknown route, each in a trace we name.
    tp_get, tid_get, _ = traceparent()
    assert reception.get(f"/orders/{key}", headers={"traceparent": tp_get}).status == 200
    tp_404, tid_404, _ = traceparent()
    assert reception.get("/no/such/route", headers={"traceparent": tp_404}).status == 404

    # reception: POST /orders continues the incoming trace: server -> create-order, publish-order.
    assert log_ids(reception, "order accepted", order_key=key)[0] == tid
    trace = jaeger.wait_trace(tid, spans=3)
    assert sorted(s["operationName"] for s in trace["spans"]) == \
        ["POST /orders", "create-order", "publish-order"], dump(trace)
    server, create, publish = (only(trace, n) for n in
                               ("POST /orders", "create-order", "publish-order"))
    assert refs(server, "CHILD_OF") == [(tid, parent_sid)]
    assert refs(create, "CHILD_OF") == [(tid, server["spanID"])]
    assert refs(publish, "CHILD_OF") == [(tid, server["spanID"])]
    assert (kind(server), kind(create), kind(publish)) == ("server", "client", "producer")
    assert create["startTime"] + create["duration"] <= publish["startTime"] + 1
    tags = jaeger_tags(server)
    assert {k: tags.get(k) for k in (
        "http.request.method", "http.route", "url.path", "http.response.status_code",
        "user_agent.original", "client.address", "bakery.order_key", "bakery.pastry",
        "bakery.customer")} == {
        "http.request.method": "POST", "http.route": "/orders", "url.path": "/orders",
        "http.response.status_code": 202, "user_agent.original": "bakery-test/1",
        "client.address": "127.0.0.1", "bakery.order_key": key, "bakery.pastry": "la bombe",
        "bakery.customer": "homer"}, dump(server)
    check_ok(server)
    tags = jaeger_tags(create)
    assert (tags["db.system"], tags["db.operation.name"], tags["server.address"],
            tags["server.port"]) == ("redis", "HSET", redis_host, int(redis_port)), dump(create)
    tags = jaeger_tags(publish)
    assert (tags["messaging.system"], tags["messaging.destination.name"],
            tags["messaging.operation.type"], tags["messaging.message.id"]) == \
        ("rabbitmq", bakery.queue, "publish", key), dump(publish)
    process = service_of(trace, server)
    assert process["serviceName"] == "reception"
    assert jaeger_tags(process)["service.version"]

    # The order without a traceparent: a new trace, found through its log line.
    tid2, _ = log_ids(reception, "order accepted", order_key=key2)
    assert tid2 != tid
    trace2 = jaeger.wait_trace(tid2, spans=3)
    server2 = only(trace2, "POST /orders")
    assert refs(server2, "CHILD_OF") == []
    assert jaeger_tags(server2)["bakery.order_key"] == key2

    # baker: a new trace receive-order -> processing-order -> read/update/baking/update,
    # receive-order -> settle-order, linked to the reception's publish-order.
    btid, bsid = log_ids(baker, "order finished", order_key=key)
    assert btid != tid
    btrace = jaeger.wait_trace(btid, spans=7)
    names = sorted(s["operationName"] for s in btrace["spans"])
    assert names == ["baking", "processing-order", "read-order", "receive-order",
                     "settle-order", "update-order", "update-order"], dump(btrace)
    receive, processing, baking, read, settle = (only(btrace, n) for n in (
        "receive-order", "processing-order", "baking", "read-order", "settle-order"))
    assert refs(receive, "CHILD_OF") == []
    assert refs(receive, "FOLLOWS_FROM") == [(tid, publish["spanID"])], dump(receive)
    assert refs(processing, "CHILD_OF") == [(btid, receive["spanID"])]
    assert processing["spanID"] == bsid  # "order finished" is logged in processing-order
    for child in (baking, read, *named(btrace, "update-order")):
        assert refs(child, "CHILD_OF") == [(btid, processing["spanID"])], dump(child)
    assert refs(settle, "CHILD_OF") == [(btid, receive["spanID"])]
    assert (kind(receive), kind(processing), kind(baking), kind(read), kind(settle)) == \
        ("consumer", "internal", "internal", "client", "client")
    tags = jaeger_tags(receive)
    assert tags["messaging.system"] == "rabbitmq"
    assert tags["messaging.destination.name"] == bakery.queue
    assert tags["messaging.message.id"] == key
    assert 0 <= tags["queue.time_on_queue_ms"] < 60000, dump(receive)
    assert events(receive) == [("message processed", {"bakery.outcome": "ack"})]
    assert events(settle) == [("message acknowledged", {})]
    tags = jaeger_tags(processing)
    assert tags["bakery.order_key"] == key
    assert 0 <= tags["baker.time_to_completion_ms"] < 60000
    tags = jaeger_tags(baking)
    assert tags["baker.pastry"] == "la bombe" and tags["baker.rounds"] >= 1
    mistakes = [e for e in events(baking) if e[0] == "baker made mistake, redoing"]
    assert len(mistakes) == tags["baker.rounds"] - 1
    assert tags.get("baker.mistake", False) is (tags["baker.rounds"] > 1)
    updates = sorted(jaeger_tags(s)["bakery.status"] for s in named(btrace, "update-order"))
    assert updates == ["baking", "finished"]
    for s in (read, *named(btrace, "update-order")):
        t = jaeger_tags(s)
        assert (t["db.system"], t["server.address"], t["server.port"]) == \
            ("redis", redis_host, int(redis_port))
        check_ok(s)
    assert jaeger_tags(read)["db.operation.name"] == "HMGET"
    for s in btrace["spans"]:
        assert service_of(btrace, s)["serviceName"] == "baker"
    # Every baker log line about the order carries this trace.
    lines = [x for x in baker.log_records() if x.get("order_key") == key]
    assert lines and all(x.get("trace_id") == btid for x in lines), lines

    # GET /orders/{key}: server -> read-order; the unknown route is named by its method only.
    trace = jaeger.wait_trace(tid_get, spans=2)
    server, read = only(trace, "GET /orders/{key}"), only(trace, "read-order")
    assert refs(read, "CHILD_OF") == [(tid_get, server["spanID"])]
    assert jaeger_tags(server)["http.route"] == "/orders/{key}"
    assert jaeger_tags(server)["url.path"] == f"/orders/{key}"
    assert jaeger_tags(read)["db.operation.name"] == "HMGET"
    trace = jaeger.wait_trace(tid_404, spans=1)
    server = only(trace, "GET")
    tags = jaeger_tags(server)
    assert tags["http.response.status_code"] == 404 and "http.route" not in tags
    check_ok(server)
    # Probes and scrapes (the harness polled /readyz) make no spans.
    operations = jaeger.api("/api/services/reception/operations")["data"]
    assert "POST /orders" in operations
    assert not {"GET /readyz", "GET /healthz", "GET /metrics"} & set(operations), operations


def metric(svc, name):
    """The sum of a metric's samples on the service's /metrics."""
    samples = parse_prometheus(http_get(f"{svc.url}/metrics").text)
    return sum(v for (n, _), v in samples.items() if n == name)


def test_failures_are_errors(make_bakery, make_redis, rabbit_server, collector, jaeger):
    """5xx, a dead-lettered message and a Redis outage: error status and events."""
    redis = make_redis()
    bakery = make_bakery(redis, rabbit_server)
    env = otel_env(collector.otlp_http_url)
    reception = bakery.reception(**env)

    # Redis down: POST answers 503; the server and create-order spans are errors.
    redis.stop()
    wait_until(lambda: not reception.ready(), 30, what="reception not ready")
    tp, tid, _ = traceparent()
    r = reception.post("/orders", {"customer": "homer", "pastry": "tart"},
                       headers={"traceparent": tp})
    assert r.status == 503, r
    trace = jaeger.wait_trace(tid, spans=2)
    server, create = only(trace, "POST /orders"), only(trace, "create-order")
    check_error(server, "order store unavailable")
    assert jaeger_tags(server)["http.response.status_code"] == 503
    assert jaeger_tags(server)["error.type"] == "503"
    check_error(create, "redis unavailable")
    assert ("redis unavailable", {}) in events(create)
    assert named(trace, "publish-order") == []

    # An order accepted, then Redis goes down before the baker starts: retried, then done.
    redis.start()
    reception.wait_ready()
    key = bakery.place(reception, pastry="eclair")
    redis.stop()
    baker = bakery.baker(wait=False, **env)
    baker.wait_healthy()
    wait_until(lambda: metric(baker, "baker_store_retries_total") >= 1, 30,
               what="the baker retrying")
    redis.start()
    bakery.wait_status(key, timeout=60)
    btid, _ = log_ids(baker, "order finished", order_key=key)
    btrace = jaeger.wait_trace(btid, spans=7)
    processing = only(btrace, "processing-order")
    retries = [e for e in events(processing) if e[0] == "redis unavailable, retrying"]
    assert retries and retries[0][1]["bakery.attempt"] == 1, dump(processing)
    failed = [s for s in named(btrace, "read-order")
              if jaeger_tags(s).get("otel.status_code") == "ERROR"]
    assert len(failed) == len(retries), dump(btrace)
    assert all(("redis unavailable", {}) in events(s) for s in failed)
    check_ok(only(btrace, "receive-order"))  # it finished after all

    # A malformed message: dead-lettered, the receive-order error linked to its sender.
    tp, tid, sid = traceparent()
    bakery.rabbit.publish("not json", routing_key=bakery.queue, headers={"traceparent": tp})
    wait_until(lambda: any(x.get("msg") == "malformed message, dead-lettering"
                           for x in baker.log_records()), 30, what="dead-lettering")
    dtid, dsid = log_ids(baker, "malformed message, dead-lettering")
    dtrace = jaeger.wait_trace(dtid, spans=3)
    receive, processing, settle = (only(dtrace, n) for n in
                                   ("receive-order", "processing-order", "settle-order"))
    assert processing["spanID"] == dsid
    assert refs(receive, "FOLLOWS_FROM") == [(tid, sid)]
    check_error(receive, "dead-lettered")
    assert events(receive) == [("message processed", {"bakery.outcome": "dead-letter"})]
    check_error(processing, "malformed message, dead-lettered")
    assert [e[0] for e in events(processing)] == ["malformed message, dead-lettered"]
    assert events(settle) == [("message dead-lettered", {})]


def test_collector_down_orders_still_flow(bakery, make_collector):
    collector = make_collector()
    collector.stop()  # nothing listens on its port now
    env = {**otel_env(collector.otlp_http_url), "OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}
    reception = bakery.reception(**env)
    baker = bakery.baker(**env)
    keys = [bakery.place(reception, customer=f"c{i}") for i in range(20)]
    bakery.wait_status(keys)
    assert reception.ready() and baker.ready()

    # The lost spans are counted (after the exporter's retries) and said in the log.
    wait_until(lambda: metric(reception, "otel_spans_dropped_total") >= 20 * 3
               and metric(baker, "otel_spans_dropped_total") >= 20 * 7, 90,
               interval=1, what="dropped spans counted")
    assert reception.ready() and baker.ready()
    for svc in (reception, baker):
        warnings = [x for x in svc.log_records() if x.get("msg") == "spans dropped"]
        assert warnings and int(warnings[0]["export_failed"]) > 0, warnings
