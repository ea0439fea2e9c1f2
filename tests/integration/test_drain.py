"""reception's graceful drain on SIGTERM, what a Kubernetes rolling update relies on: /readyz
turns 503 at once, every request is still served in full, each response says
"Connection: close" and the connection is closed after it (keep-alive clients move to another
pod), and the process exits 0 once no request is in flight and no connection is left."""

import http.client
import json
import os
import signal
import socket
import time

import harness

ORDER = {"customer": "homer", "pastry": "la bombe"}


def held_post(port, customer):
    """A POST /orders whose headers are read and whose body is half sent: in flight until
    release() sends the rest; returns (socket, release)."""
    body = json.dumps({"customer": customer, "pastry": "eclair"}).encode()
    head = (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(head + body[:10])

    def release():
        sock.sendall(body[10:])
        r = http.client.HTTPResponse(sock)
        r.begin()
        return r.status, r.getheader("Connection"), r.read()

    return sock, release


def send(client, method, path, body=None):
    """One request on a keep-alive http.client connection (it reconnects by itself after a
    "Connection: close" response); returns (status, Connection header, body)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    client.request(method, path, body=json.dumps(body) if body is not None else None,
                   headers=headers)
    r = client.getresponse()
    return r.status, r.getheader("Connection"), r.read()


def closes_after_one_response(port, path="/"):
    """Sends a keep-alive HTTP/1.1 request on a raw socket; returns the response's status and
    whether the server then closed the connection (EOF) rather than waiting for another."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        r = http.client.HTTPResponse(sock)
        r.begin()
        r.read()
        try:
            sock.settimeout(3)
            closed = sock.recv(1) == b""
        except socket.timeout:
            closed = False
        return r.status, closed


def test_sigterm_keeps_serving_keep_alive_clients_with_connection_close(bakery):
    reception = bakery.reception()
    port = reception.http_port

    # Before SIGTERM: a keep-alive client's requests share one connection, which stays open.
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    keys = []
    for _ in range(3):
        status, connection, answer = send(client, "POST", "/orders", ORDER)
        assert status == 202 and (connection or "").lower() != "close", (status, connection)
        keys.append(json.loads(answer)["orderKey"])
    assert closes_after_one_response(port) == (200, False)

    # A request in flight keeps the drain going while the rest is checked.
    held, release = held_post(port, "held")
    time.sleep(0.3)
    t0 = time.monotonic()
    os.kill(reception.pid, signal.SIGTERM)

    # Readiness goes false at once; liveness stays true (no restart mid-drain).
    harness.wait_until(lambda: reception.get("/readyz", timeout=5).status == 503, timeout=5,
                       what="/readyz 503 after SIGTERM")
    ready = reception.get("/readyz")
    harness.assert_error(ready, 503)
    assert ready.json()["error"] == "shutting down"
    assert reception.get("/healthz").status == 200

    # The keep-alive client keeps sending: every request is served (no 503), each response
    # says Connection: close, and the client's next request goes over a new connection.
    seen = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        for method, path, body in (("POST", "/orders", ORDER), ("GET", "/", None)):
            status, connection, answer = send(client, method, path, body)
            seen.append((method, status, connection))
            if method == "POST" and status == 202:
                keys.append(json.loads(answer)["orderKey"])
    assert len(seen) >= 4, seen
    assert all(s in (200, 202) for _, s, _ in seen), seen
    assert all((c or "").lower() == "close" for _, _, c in seen), seen
    # The server itself closes the connection after such a response.
    assert closes_after_one_response(port) == (200, True)
    assert reception.alive()

    # The held request completes normally too.
    status, connection, answer = release()
    held.close()
    assert status == 202, (status, answer)
    assert (connection or "").lower() == "close"
    keys.append(json.loads(answer)["orderKey"])
    client.close()

    # Nothing in flight, no connection left: it stops well before the drain's bound.
    rc = reception.wait_exit(10)
    took = time.monotonic() - t0
    assert rc == 0, f"exit {rc} after {took:.1f}s:\n{reception.output()[-3000:]}"
    assert took < 7, f"drain took {took:.1f}s: it waited for its bound, not for the clients"
    assert "drain timed out" not in reception.output()

    # Every order answered 202 is stored and queued.
    for key in keys:
        assert bakery.order(key)["status"] == "pending", key
    assert bakery.rabbit.queues()[bakery.queue]["messages"] == len(keys)


def test_sigterm_drain_is_bounded_by_an_idle_client(bakery):
    """A client that holds a connection open without sending does not hold the pod: the
    drain ends when civetweb times the idle connection out, or at its own bound."""
    reception = bakery.reception()
    with socket.create_connection(("127.0.0.1", reception.http_port), timeout=20) as idle:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.client.HTTPResponse(idle)
        r.begin()
        r.read()
        assert r.status == 200
        t0 = time.monotonic()
        rc = reception.terminate(timeout=15)
        took = time.monotonic() - t0
    assert rc == 0, reception.output()[-3000:]
    assert took < 10, f"stopped after {took:.1f}s"
