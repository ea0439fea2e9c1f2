#!/usr/bin/env python3
"""trace.py — draws one order's whole journey from Jaeger's query API as a terminal waterfall.

    scripts/trace.py [ORDER_KEY]          (make trace KEY=<key>, or make trace <key>)

Without a key: the latest order (the newest reception trace with a POST /orders span).
The order's creation trace is found through the traceId that GET /orders/{key} returns
(RECEPTION_URL), else through Jaeger's tag search on bakery.order_key; the baker's traces
and the status checks (GET /orders/{key}) are the traces that link to it (its own GET sends
an unsampled traceparent, so it adds none). Each span: service, name, kind, duration, a bar
on one time axis shared by all the traces, status, key attributes, then its events and links.

Environment: JAEGER_URL (default http://127.0.0.1:16686), RECEPTION_URL (default
http://127.0.0.1:8000), RECEPTION_SERVICE / BAKER_SERVICE (service names, default reception /
baker), TRACE_WAIT (seconds to wait for a trace not in Jaeger yet, default 10). Python 3
standard library only. Exit status 1 when the order or its trace is not found.
"""

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

JAEGER_URL = os.environ.get("JAEGER_URL", "http://127.0.0.1:16686").rstrip("/")
RECEPTION_URL = os.environ.get("RECEPTION_URL", "http://127.0.0.1:8000").rstrip("/")
RECEPTION = os.environ.get("RECEPTION_SERVICE", "reception")
BAKER = os.environ.get("BAKER_SERVICE", "baker")
WAIT = float(os.environ.get("TRACE_WAIT", "10"))  # seconds to wait for a trace still in flight
BAR = 32  # characters of the time axis
# Attributes worth a glance, in this order; the rest stay in Jaeger.
KEY_ATTRS = ("http.response.status_code", "bakery.customer", "bakery.pastry",
             "db.operation.name", "bakery.status", "messaging.destination.name",
             "messaging.operation.name", "bakery.redelivered", "queue.time_on_queue_ms",
             "baker.pastry", "baker.rounds", "baker.time_to_completion_ms")


class NotFound(Exception):
    pass


def get_json(url, timeout=10, headers=None):
    """GET url; returns the decoded JSON, or None on 404."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=timeout) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def jaeger(path, **params):
    url = JAEGER_URL + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    return (get_json(url) or {}).get("data") or []


def tags(obj):
    return {t["key"]: t["value"] for t in obj.get("tags", [])}


def search(service, key, limit=50):
    """The traces of service holding a span tagged bakery.order_key=key."""
    return jaeger("/api/traces", service=service, limit=limit,
                  tags=json.dumps({"bakery.order_key": key}))


def trace_by_id(trace_id):
    data = jaeger(f"/api/traces/{trace_id}")
    return data[0] if data else None


def creation_span(trace, key=None):
    """The trace's POST /orders span (for key, if given), or None."""
    for s in trace["spans"]:
        if s["operationName"] == "POST /orders" and \
                (key is None or tags(s).get("bakery.order_key") == key):
            return s
    return None


def latest_key():
    """The key of the newest order reception traced."""
    best = None
    for t in jaeger("/api/traces", service=RECEPTION, operation="POST /orders", limit=100):
        s = creation_span(t)
        if s and tags(s).get("bakery.order_key") and (not best or s["startTime"] > best[0]):
            best = (s["startTime"], tags(s)["bakery.order_key"])
    if not best:
        raise NotFound(f"no POST /orders trace of service {RECEPTION} in Jaeger at {JAEGER_URL}")
    return best[1]


def creation_trace(key):
    """The trace in which the order was created: by the traceId reception returns, else by
    Jaeger's tag search. Spans reach Jaeger in batches (every 5 s by default), so a trace not
    there yet is looked for again until WAIT seconds have passed."""
    deadline = time.monotonic() + WAIT
    while True:
        t = find_creation_trace(key)
        if t or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if not t:
        raise NotFound(f"no trace of order {key} in Jaeger at {JAEGER_URL} after {WAIT:g} s")
    return t


def find_creation_trace(key):
    """The creation trace of key, or None while Jaeger does not hold it."""
    # An unsampled parent: with the default parentbased sampler this look-up records no span,
    # so drawing a journey does not add a status check to it.
    unsampled = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
    try:
        order = get_json(f"{RECEPTION_URL}/orders/{urllib.parse.quote(key)}", timeout=5,
                         headers={"traceparent": unsampled})
    except (OSError, ValueError):
        order = None  # reception not reachable here (a port-forwarded Jaeger): search instead
    if order and order.get("traceId"):
        t = trace_by_id(order["traceId"])
        if t and creation_span(t, key):
            return t
    for t in search(RECEPTION, key):
        if creation_span(t, key):
            return trace_by_id(t["traceID"]) or t
    return None


def links(span):
    return [(r["traceID"], r["spanID"]) for r in span.get("references", [])
            if r["refType"] == "FOLLOWS_FROM"]


def linked_traces(created, key):
    """The baker's and the status checks' traces that link to a span of the creation trace."""
    ids = {s["spanID"] for s in created["spans"]}
    out, seen = [], {created["traceID"]}
    for service in (BAKER, RECEPTION):
        for t in search(service, key):
            if t["traceID"] in seen:
                continue
            if any(tid == created["traceID"] and sid in ids
                   for s in t["spans"] for tid, sid in links(s)):
                seen.add(t["traceID"])
                out.append(trace_by_id(t["traceID"]) or t)
    return out


def ms(us):
    return f"{us / 1000:.1f} ms" if us < 10_000_000 else f"{us / 1e6:.2f} s"


def bar(start, duration, t0, total):
    a = int((start - t0) * BAR / total)
    b = max(a + 1, int(round((start + duration - t0) * BAR / total)))
    a, b = min(a, BAR - 1), min(b, BAR)
    return "|" + " " * a + "#" * (b - a) + " " * (BAR - b) + "|"


def tree(trace):
    """[(depth, span)] in parent-before-child order, siblings by start time."""
    spans = {s["spanID"]: s for s in trace["spans"]}
    children, roots = {}, []
    for s in trace["spans"]:
        parent = next((r["spanID"] for r in s.get("references", [])
                       if r["refType"] == "CHILD_OF" and r["spanID"] in spans), None)
        (children.setdefault(parent, []) if parent else roots).append(s)
    out = []

    def walk(s, depth):
        out.append((depth, s))
        for c in sorted(children.get(s["spanID"], []), key=lambda x: x["startTime"]):
            walk(c, depth + 1)

    for r in sorted(roots, key=lambda x: x["startTime"]):
        walk(r, 0)
    return out


def draw(key, traces):
    """The lines of the waterfall of traces (the creation trace first)."""
    names = {}  # spanID -> (service, name), for the links
    for t in traces:
        for s in t["spans"]:
            names[s["spanID"]] = (t["processes"][s["processID"]]["serviceName"],
                                  s["operationName"])
    t0 = min(s["startTime"] for t in traces for s in t["spans"])
    t1 = max(s["startTime"] + s["duration"] for t in traces for s in t["spans"])
    total = max(t1 - t0, 1)
    rows = [(t, d, s) for t in traces for d, s in tree(t)]
    width = max(2 * d + len(s["operationName"]) for _, d, s in rows) + 2
    sw = max(10, *(len(t["processes"][s["processID"]]["serviceName"]) for t, _, s in rows))
    lines = [f"order {key}: {len(traces)} trace(s), {len(rows)} spans, {ms(t1 - t0)} "
             f"from the first span to the last", ""]
    axis = "0".ljust(BAR - len(ms(t1 - t0))) + ms(t1 - t0)
    lines.append(f"  {'service':<{sw}} {'span'.ljust(width)} {'kind':<8} {'duration':>10} "
                 f"|{axis}| status  attributes")
    for t in traces:
        first = min(s["startTime"] for s in t["spans"])
        lines.append(f"trace {t['traceID']}  (+{ms(first - t0)})")
        for depth, s in tree(t):
            tg = tags(s)
            service = t["processes"][s["processID"]]["serviceName"]
            status = "ERROR" if tg.get("otel.status_code") == "ERROR" or tg.get("error") else "ok"
            if status == "ERROR" and tg.get("otel.status_description"):
                status += f" ({tg['otel.status_description']})"
            attrs = " ".join(f"{k}={tg[k]}" for k in KEY_ATTRS if k in tg)
            label = ("  " * depth + s["operationName"]).ljust(width)
            lines.append(f"  {service:<{sw}} {label} {tg.get('span.kind', 'internal'):<8} "
                         f"{ms(s['duration']):>10} {bar(s['startTime'], s['duration'], t0, total)}"
                         f" {status}  {attrs}".rstrip())
            pad = " " * (sw + 5 + 2 * depth)
            for tid, sid in links(s):
                what = "{} {}".format(*names[sid]) if sid in names else "a span"
                lines.append(f"{pad}~> link to {what} (trace {tid})")
            for log in s.get("logs", []):
                f = {x["key"]: x["value"] for x in log["fields"]}
                name = f.pop("event", "event")
                extra = " ".join(f"{k}={v}" for k, v in f.items())
                lines.append(f"{pad}* +{ms(log['timestamp'] - s['startTime'])} {name}"
                             f" {extra}".rstrip())
        lines.append("")
    return lines


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        key = argv[1] if len(argv) == 2 else latest_key()
        created = creation_trace(key)
        traces = [created] + sorted(linked_traces(created, key),
                                    key=lambda t: min(s["startTime"] for s in t["spans"]))
    except NotFound as e:
        print(f"trace: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"trace: cannot query Jaeger at {JAEGER_URL} ({e}); set JAEGER_URL", file=sys.stderr)
        return 1
    try:
        print("\n".join(draw(key, traces)), flush=True)
    except BrokenPipeError:  # | head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
