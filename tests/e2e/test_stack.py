"""End to end in Docker: `make up`, orders through reception on loopback, traces in Jaeger,
hardened containers, a SIGKILLed baker that comes back without losing an order, `make down`.

The tests share one stack (the `stack` fixture) and run in file order; the last one takes the
stack down and checks that nothing of the project is left.
"""

import os
import re
import signal

import pytest

from e2e_stack import docker, inspect
from harness import http_get, http_post, wait_until

PASTRIES = ["croissant", "baguette", "pain au chocolat", "brioche", "eclair", "macaron"]
MAX_IMAGE_BYTES = 25_000_000


def post_orders(stack, n, who):
    """Posts n orders; returns their keys (each accepted with 202)."""
    keys = []
    for i in range(n):
        r = http_post(stack.reception + "/orders",
                      {"customer": f"{who}-{i}", "pastry": PASTRIES[i % len(PASTRIES)]})
        assert r.status == 202, r
        keys.append(r.json()["orderKey"])
    return keys


def statuses(stack, keys):
    return {k: http_get(f"{stack.reception}/orders/{k}").json().get("status") for k in keys}


def wait_finished(stack, keys, timeout=180):
    """Waits until every order is finished; fails listing the ones that are not."""
    last = {}

    def done():
        last.update(statuses(stack, keys))
        return all(s == "finished" for s in last.values())

    try:
        wait_until(done, timeout=timeout, interval=0.5, what="every order finished")
    except TimeoutError:
        pending = {k: s for k, s in last.items() if s != "finished"}
        pytest.fail(f"{len(pending)} of {len(keys)} orders not finished: {pending}")


@pytest.fixture(scope="module")
def orders(stack):
    keys = post_orders(stack, 20, "e2e")
    assert len(set(keys)) == len(keys)
    return keys


def test_every_order_is_finished(stack, orders):
    wait_finished(stack, orders)
    for k in orders:
        o = http_get(f"{stack.reception}/orders/{k}").json()
        assert o["status"] == "finished"
        assert o["customer"].startswith("e2e-") and o["pastry"] in PASTRIES


# ------------------------------------------------------------------------------ traces

def jaeger_traces(stack, service, operation=None):
    url = f"{stack.jaeger}/api/traces?service={service}&limit=2000&lookback=1h"
    if operation:
        url += f"&operation={operation}"
    r = http_get(url, timeout=30)
    assert r.status == 200, r
    return r.json()["data"] or []


def spans_of(trace):
    """The trace's spans, each with `service`, `kind` and `tag` (a dict) added."""
    out = []
    for s in trace["spans"]:
        s = dict(s)
        s["service"] = trace["processes"][s["processID"]]["serviceName"]
        s["tag"] = {t["key"]: t["value"] for t in s.get("tags", [])}
        s["kind"] = s["tag"].get("span.kind")
        out.append(s)
    return out


def span_ref(trace_id, span_id):
    """Jaeger prints ids in hex, the trace id without its zero high half: compare as ints."""
    return int(trace_id, 16), int(span_id, 16)


def test_traces_link_the_baker_to_the_reception(stack, orders):
    """Issue 3's shape: a reception SERVER span with a `publish-order` PRODUCER span under it
    (messaging.message.id = the order key), and in the baker's own trace a `receive-order`
    CONSUMER span with a span link to that publish span. Needs the tracing integration in
    both services."""
    wait_finished(stack, orders)
    keys = set(orders)
    found = {}

    def collect():
        publish = {}  # order key -> (publish span, spans of its trace by id)
        for t in jaeger_traces(stack, "reception"):
            spans = {s["spanID"]: s for s in spans_of(t)}
            for s in spans.values():
                key = s["tag"].get("messaging.message.id")
                if s["operationName"] == "publish-order" and key in keys:
                    publish[key] = (s, spans)
        linked = {}  # (trace id, span id) a receive-order span links to -> that span
        for t in jaeger_traces(stack, "baker", "receive-order"):
            for s in spans_of(t):
                if s["operationName"] == "receive-order":
                    for ref in s.get("references", []):
                        linked[span_ref(ref["traceID"], ref["spanID"])] = s
        found.update(publish=publish, linked=linked)
        return len(publish) == len(keys) and all(
            span_ref(p["traceID"], p["spanID"]) in linked for p, _ in publish.values())

    try:
        wait_until(collect, timeout=90, interval=2, what="the orders' traces in Jaeger")
    except TimeoutError:
        pytest.fail(f"Jaeger has publish-order spans for {len(found.get('publish', {}))} of "
                    f"{len(keys)} orders and {len(found.get('linked', {}))} linked "
                    f"receive-order spans (tracing integrated in both services?)")

    for key, (pub, spans) in found["publish"].items():
        assert pub["service"] == "reception" and pub["kind"] == "producer", pub
        # Up the parent chain to the trace's root: the reception's SERVER span.
        root, seen = pub, set()
        while True:
            parents = [r for r in root.get("references", [])
                       if r["refType"] == "CHILD_OF" and r["spanID"] in spans]
            if not parents or root["spanID"] in seen:
                break
            seen.add(root["spanID"])
            root = spans[parents[0]["spanID"]]
        assert root is not pub, f"publish-order of {key} has no parent span"
        assert root["service"] == "reception" and root["kind"] == "server", root
        assert root["tag"].get("http.request.method") == "POST", root["tag"]

        recv = found["linked"][span_ref(pub["traceID"], pub["spanID"])]
        assert recv["service"] == "baker" and recv["kind"] == "consumer", recv
        assert int(recv["traceID"], 16) != int(pub["traceID"], 16), \
            "receive-order must start its own trace and link to publish-order"


# ------------------------------------------------------------------------------ hardening

@pytest.mark.parametrize("service", ["reception", "baker"])
def test_service_containers_are_hardened(stack, service):
    c = inspect(stack.container(service))
    user = c["Config"]["User"]
    assert re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", user), \
        f"{service} must run as a numeric non-root user, runs as {user!r}"
    assert c["HostConfig"]["ReadonlyRootfs"] is True
    assert c["State"]["Running"] is True

    image = inspect(c["Config"]["Image"])
    assert image["Config"]["User"] == user
    assert image["Size"] < MAX_IMAGE_BYTES, f"{service} image is {image['Size']} bytes"
    # No shell in the runtime image.
    p = docker("run", "--rm", "--entrypoint", "/bin/sh", c["Config"]["Image"], "-c", "true",
               check=False)
    assert p.returncode != 0, f"{service} image has a shell"


def test_nothing_is_published_beyond_loopback(stack):
    published = 0
    for cid in stack.containers():
        ports = inspect(cid)["NetworkSettings"]["Ports"] or {}
        for bindings in ports.values():
            for b in bindings or []:
                published += 1
                assert b["HostIp"] == "127.0.0.1", f"{cid} publishes {b}"
    assert published == 3  # reception, Jaeger, RabbitMQ management
    networks = docker("network", "ls", "-q", *stack.label()).stdout.split()
    assert len(networks) == 1, networks
    assert inspect(networks[0])["Driver"] == "bridge"


# ------------------------------------------------------------------------------ crash

def test_sigkilled_baker_restarts_and_loses_no_order(stack):
    keys = post_orders(stack, 30, "crash")
    wait_until(lambda: stack.queue("orders")["messages_unacknowledged"] > 0, timeout=60,
               interval=0.2, what="orders in the baker's hands")
    cid = stack.container("baker")
    before = inspect(cid)["State"]
    restarts = inspect(cid)["RestartCount"]
    # A crash, not `docker kill` (Docker treats that as a deliberate stop and would not
    # restart it): SIGKILL the baker process itself, as the kernel's OOM killer would.
    os.kill(before["Pid"], signal.SIGKILL)

    def restarted():
        c = inspect(cid)
        return (c["RestartCount"] > restarts and c["State"]["Running"]
                and c["State"]["Pid"] != before["Pid"])

    wait_until(restarted, timeout=90, interval=0.5, what="the baker restarted by Docker")
    wait_finished(stack, keys)
    wait_until(lambda: stack.queue("orders")["messages"] == 0, timeout=60, interval=0.5,
               what="the orders queue drained")
    assert stack.queue("orders.dead")["messages"] == 0, "orders were dead-lettered"


# ------------------------------------------------------------------------------ down (last)

def test_down_leaves_nothing(stack):
    p = stack.make("down", timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert stack.containers() == []
    assert docker("network", "ls", "-q", *stack.label()).stdout.split() == []
    assert docker("volume", "ls", "-q", *stack.label()).stdout.split() == []
