"""reception's request metrics stay bounded: scanners cannot crowd out `POST /orders 503`.

Issue 9, item 12: every method civetweb accepts, sent to every route and to many unknown paths,
folds into a fixed label set (method OTHER, route "unmatched"); nothing is dropped, and what a
full metric would drop is counted in bakery_metrics_series_dropped_total.
"""

import harness

# Methods civetweb 1.15 hands to the request handler, and a few it may.
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND",
           "PROPPATCH", "MKCOL", "LOCK", "UNLOCK", "MOVE", "COPY", "REPORT", "MKACTIVITY",
           "CHECKOUT", "SEARCH", "BIND"]
KNOWN = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
         "OTHER"}
PATHS = ["/", "/orders", "/orders/0123456789abcdef0123456789abcdef", "/healthz", "/readyz",
         "/metrics"] + [f"/scan-{i}" for i in range(40)] + ["/orders/x/y", "/.env", "/wp-login"]


def _series(reception, name):
    s = harness.parse_prometheus(reception.get("/metrics").text)
    return {labels: v for (n, labels), v in s.items() if n == name}


def test_odd_methods_and_paths_do_not_push_out_orders_503(make_bakery, make_redis,
                                                         rabbit_server):
    # Redis never started: every POST /orders is a 503 (order store unavailable).
    bakery = make_bakery(make_redis(start=False), rabbit_server)
    reception = bakery.reception(wait=False)
    reception.wait_healthy()
    for method in METHODS:
        for path in PATHS:
            req = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            try:
                harness.raw_request(reception.http_port, req.encode(), timeout=10)
            except Exception:  # a method civetweb refuses outright may just close
                pass
    r = reception.post("/orders", {"customer": "homer", "pastry": "la bombe"})
    harness.assert_error(r, 503)
    requests = _series(reception, "reception_http_requests_total")
    methods = {dict(k)["method"] for k in requests}
    routes = {dict(k)["route"] for k in requests}
    assert methods <= KNOWN, methods - KNOWN
    assert "OTHER" in methods
    assert routes <= {"/", "/orders", "/orders/{key}", "/healthz", "/readyz", "/metrics",
                      "unmatched"}, routes
    key = frozenset({"route": "/orders", "method": "POST", "code": "503"}.items())
    assert requests.get(key, 0) >= 1, sorted(requests)
    dropped = _series(reception, "bakery_metrics_series_dropped_total")
    assert dropped, "no bakery_metrics_series_dropped_total"
    assert all(v == 0 for v in dropped.values()), dropped
