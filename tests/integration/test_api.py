"""reception's HTTP contract, black-box: every route, every bad input, status codes, bodies."""

import http.client
import json
import os
import re

import pytest

import harness
from harness import KEY_RE, RFC3339_UTC, assert_error

GOOD = {"customer": "homer", "pastry": "la bombe"}


@pytest.fixture(scope="module")
def stack(redis_server, rabbit_server, tmp_path_factory):
    """One reception and one baker for the whole module (requests here do not hurt them)."""
    b = harness.Bakery(redis_server, rabbit_server, tmp_path_factory.mktemp("api"))
    b.reception()
    b.baker()
    yield b
    b.close()


@pytest.fixture
def reception(stack):
    svc = stack.services[0]
    assert svc.alive(), "reception died in an earlier test:\n" + svc.output()[-3000:]
    yield svc
    assert svc.alive() and svc.healthy(), "reception died:\n" + svc.output()[-3000:]


def test_root(reception):
    r = reception.get("/")
    assert r.status == 200
    assert r.header("Content-Type", "").startswith("application/json")
    assert r.json() == {"message": "reception is attended"}


def test_no_password_file_on_disk_is_consulted(stack, reception):
    # civetweb looks for a .htpasswd beside every path it serves (a stat per request), and one
    # found makes it answer 401 unless every request is allowed: nothing on disk may lock the
    # API or the probes.
    path = "/.htpasswd"
    assert not os.path.exists(path)
    with open(path, "w") as f:
        f.write("user:reception:0123456789abcdef0123456789abcdef\n")
    try:
        assert reception.get("/").status == 200
        assert reception.post("/orders", GOOD).status == 202
        assert harness.http_get(f"{stack.services[1].url}/healthz").status == 200
    finally:
        os.remove(path)


def test_order_accepted_then_finished(stack, reception):
    r = reception.post("/orders", GOOD)
    assert r.status == 202, r
    assert r.header("Content-Type", "").startswith("application/json")
    body = r.json()
    assert list(body) == ["orderKey"] and KEY_RE.match(body["orderKey"]), body
    key = body["orderKey"]

    r = reception.get(f"/orders/{key}")
    assert r.status == 200, r
    order = r.json()
    assert set(order) == {"pastry", "customer", "orderTime", "status"}, order
    assert (order["customer"], order["pastry"]) == ("homer", "la bombe")
    assert RFC3339_UTC.match(order["orderTime"]), order
    assert order["status"] in ("pending", "baking", "finished"), order

    stack.wait_status(key, "finished", 30)
    assert reception.get(f"/orders/{key}").json()["status"] == "finished"


def test_unicode_round_trip(stack, reception):
    customer, pastry = "Zo\u00eb \U0001F9C1", "cr\u00e8me br\u00fbl\u00e9e \"\\/\t"
    key = stack.place(reception, customer, pastry)
    order = reception.get(f"/orders/{key}").json()
    assert (order["customer"], order["pastry"]) == (customer, pastry)


@pytest.mark.parametrize("content_type", [
    "applicaion/json",  # the original's own load test sends this
    "text/plain",
    "application/json; charset=utf-8",
    None,
])
def test_content_type_is_not_checked(reception, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = reception.post("/orders", json.dumps(GOOD), headers=headers)
    assert r.status == 202, r
    assert KEY_RE.match(r.json()["orderKey"])


@pytest.mark.parametrize("body", [
    # malformed JSON
    b"", b"{", b"}", b"{'customer':'homer','pastry':'x'}", b'{"customer":"a","pastry":"b",}',
    b'{"customer":"a" "pastry":"b"}', b"nul", b'{"customer":"a","pastry":"b"',
    # not an object
    b"[]", b'["homer","la bombe"]', b'"homer"', b"42", b"null", b"true",
    # missing, empty, non-string fields
    b"{}", b'{"customer":"homer"}', b'{"pastry":"la bombe"}',
    b'{"customer":"","pastry":"la bombe"}', b'{"customer":"homer","pastry":""}',
    b'{"customer":1,"pastry":"la bombe"}', b'{"customer":"homer","pastry":null}',
    b'{"customer":["homer"],"pastry":"x"}', b'{"customer":"homer","pastry":{"a":"b"}}',
    b'{"customer":true,"pastry":"x"}', b'{"Customer":"homer","Pastry":"x"}',
    # invalid UTF-8 (raw bytes, overlong, surrogate, truncated) and lone surrogate escapes
    b'{"customer":"\xff\xfe","pastry":"x"}', b'{"customer":"\xc0\xaf","pastry":"x"}',
    b'{"customer":"\xed\xa0\x80","pastry":"x"}', b'{"customer":"homer","pastry":"\xe2\x82"}',
    b'{"customer":"\\ud800","pastry":"x"}',
    # trailing garbage
    b'{"customer":"a","pastry":"b"} x', b'{"customer":"a","pastry":"b"}{}',
    b'{"customer":"a","pastry":"b"}\x00', b'{"customer":"a","pastry":"b"}]',
], ids=repr)
def test_bad_order_is_400(reception, body):
    assert_error(reception.post("/orders", body, headers={"Content-Type": "application/json"}),
                 400)


@pytest.mark.parametrize("field", ["customer", "pastry"])
def test_field_length_limit_is_256_bytes(reception, field):
    def post(value):
        return reception.post("/orders", dict(GOOD, **{field: value}))

    assert post("x" * 256).status == 202
    assert post("\u00e9" * 128).status == 202  # 256 bytes of UTF-8
    assert_error(post("x" * 257), 400)
    assert_error(post("\u00e9" * 129), 400)  # 129 characters, 258 bytes
    assert_error(post("x" * 5000), 400)


def test_trailing_whitespace_is_fine(reception):
    assert reception.post("/orders", json.dumps(GOOD) + " \r\n\t").status == 202


def test_body_size_limit_is_64_kib(reception):
    doc = json.dumps(GOOD)
    assert reception.post("/orders", doc + " " * (65536 - len(doc))).status == 202
    assert_error(reception.post("/orders", doc + " " * (65537 - len(doc))), 413)
    assert_error(reception.post("/orders", b"[" * 100000), 413)


def test_declared_huge_body_is_413_without_reading_it(reception):
    head = (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\nConnection: close\r\n\r\n{")
    assert_error(harness.raw_request(reception.http_port, head, timeout=20), 413)


def test_chunked_body_over_64_kib_is_413(reception):
    chunk = b" " * 8192
    data = (b"POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n")
    data += b"%x\r\n%s\r\n" % (len(chunk), chunk) * 9 + b"0\r\n\r\n"
    assert_error(harness.raw_request(reception.http_port, data, timeout=20), 413)


@pytest.mark.parametrize("body", [
    b"[" * 60000,
    b"[" * 30000 + b"]" * 30000,
    b'{"a":' * 10000 + b"1" + b"}" * 10000,
    b'{"customer":"homer","pastry":"x","extra":' + b"[" * 50000 + b"]" * 10,
], ids=["open-arrays", "closed-arrays", "objects", "inside-an-order"])
def test_deep_nesting_is_400_and_harmless(reception, body):
    assert len(body) <= 65536
    assert_error(reception.post("/orders", body), 400)
    assert reception.get("/healthz").status == 200


@pytest.mark.parametrize("path", [
    "/nope", "/orders/" + "0" * 32, "/orders/" + "f" * 32, "/orders/NOT-A-KEY", "/orders/",
    "/orders/" + "a" * 31, "/orders/" + "a" * 33, "/orders/" + "A" * 32,
    "/orders/" + "a" * 32 + "/x", "/orders/..%2f..%2fetc%2fpasswd", "/orders/%00",
    "/healthz/x", "/" + "x" * 4000,
])
def test_unknown_key_or_route_is_404(reception, path):
    assert_error(reception.get(path), 404)


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", "/orders", "POST"), ("PUT", "/orders", "POST"), ("DELETE", "/orders", "POST"),
    ("POST", "/", "GET"), ("DELETE", "/", "GET"),
    ("POST", "/orders/" + "a" * 32, "GET"), ("DELETE", "/orders/" + "a" * 32, "GET"),
    ("PATCH", "/orders/" + "a" * 32, "GET"),
    ("POST", "/healthz", "GET"), ("POST", "/readyz", "GET"), ("PUT", "/metrics", "GET"),
])
def test_wrong_method_is_405_with_allow(reception, method, path, allowed):
    r = reception.request(method, path, body=b"{}" if method != "GET" else None)
    assert_error(r, 405)
    allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
    assert allowed in allow, r.headers


def test_healthz_and_readyz(reception):
    for path in ("/healthz", "/readyz"):
        r = reception.get(path)
        assert r.status == 200, (path, r)


def test_identical_orders_get_different_keys(stack, reception):
    keys = [stack.place(reception) for _ in range(20)]
    assert len(set(keys)) == 20 and all(KEY_RE.match(k) for k in keys)
    seconds = [stack.order(k)["orderTime"][:19] for k in keys]
    assert len(set(seconds)) < len(seconds), "no two orders in the same second; test is moot"


def _series(samples, name):
    return {labels: v for (n, labels), v in samples.items() if n == name}


def _metrics(svc):
    r = svc.get("/metrics")
    assert r.status == 200, r
    assert r.header("Content-Type", "").startswith("text/plain"), r.headers
    return harness.parse_prometheus(r.text), r.text


def _one(samples, pattern):
    """The value of the one unlabelled series whose name matches pattern."""
    found = [(n, v) for (n, labels), v in samples.items() if re.search(pattern, n) and not labels]
    assert len(found) == 1, f"want one series matching {pattern}, have {found}"
    return found[0][1]


def test_metrics_series_and_increase(stack, reception):
    before, text = _metrics(reception)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    hist = [n for n, t in types.items() if t == "histogram"]
    assert hist, "no latency histogram:\n" + text
    requests = [n for n, t in types.items() if t == "counter" and "request" in n]
    assert requests, "no requests counter:\n" + text
    req_name = requests[0]

    key = stack.place(reception)
    reception.get(f"/orders/{key}")
    reception.get("/orders/" + "e" * 32)  # 404
    after, text = _metrics(reception)

    for pattern in (r"accepted", r"published"):
        assert _one(after, pattern) >= _one(before, pattern) + 1, pattern
    _one(after, r"publish_fail")  # present (no failure happened here)

    def requests_for(samples, code):
        return sum(v for labels, v in _series(samples, req_name).items()
                   if dict(labels).get("code") == code
                   and "orders" in dict(labels).get("route", ""))

    assert requests_for(after, "202") >= requests_for(before, "202") + 1
    assert requests_for(after, "404") >= requests_for(before, "404") + 1
    routes = {dict(labels).get("route") for labels in _series(after, req_name)}
    assert not any(key in (r or "") or "e" * 32 in (r or "") for r in routes), \
        f"route label carries order keys (unbounded cardinality): {routes}"

    h = hist[0]
    buckets = [(dict(labels), v) for labels, v in _series(after, h + "_bucket").items()]
    assert any(b["le"] == "+Inf" for b, _ in buckets), buckets
    count = sum(_series(after, h + "_count").values())
    assert count > sum(_series(before, h + "_count").values())
    assert sum(_series(after, h + "_sum").values()) >= 0


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"\x00\xff\xfe" * 1000 + b"\r\n\r\n",
    b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    b"POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
    b"GET /orders/%zz%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET " + b"/orders/" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=lambda d: repr(d[:40]))
def test_protocol_garbage_gets_4xx_or_a_close_and_harms_nothing(reception, data):
    try:
        r = harness.raw_request(reception.http_port, data, timeout=20)
    except (OSError, ValueError, http.client.HTTPException):
        r = None  # closing the connection is a fine answer to garbage
    assert r is None or 400 <= r.status < 500, r
    assert reception.get("/healthz").status == 200
