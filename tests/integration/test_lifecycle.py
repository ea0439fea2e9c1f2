"""Process lifecycle: configuration errors at start, graceful SIGTERM."""

import http.client
import json
import os
import signal
import socket
import time

import pytest

import harness


@pytest.mark.parametrize("service,var,value", [
    ("reception", "PORT", "abc"),
    ("reception", "PORT", "70000"),
    ("reception", "PORT", "80 80"),
    ("reception", "DB_HOST", "localhost"),
    ("reception", "DB_HOST", "127.0.0.1:notaport"),
    ("reception", "RABBIT_HOST", "127.0.0.1:0"),
    ("reception", "LOG_LEVEL", "loud"),
    ("baker", "BAKER_CONCURRENCY", "0"),
    ("baker", "BAKER_CONCURRENCY", "-3"),
    ("baker", "BAKER_CONCURRENCY", "many"),
    ("baker", "BAKE_TIME_SCALE", "fast"),
    ("baker", "BAKE_TIME_SCALE", "-1"),
    ("baker", "BAKE_TIME_SCALE", "nan"),
    ("baker", "HEALTH_PORT", "abc"),
    ("baker", "RABBIT_HOST", ":5672"),
    ("baker", "ORDERS_QUEUE", ""),
    ("reception", "RABBIT_USERNAME", ""),
    ("reception", "OTEL_BSP_SCHEDULE_DELAY", "-1"),
    ("baker", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
])
def test_bad_config_exits_2_naming_the_variable(make_redis, make_rabbit, make_bakery,
                                                service, var, value):
    """Bakery's variables and the SDK's OTEL_* ones are reported the same way: exit 2 and one
    JSON error line naming the variable."""
    bakery = make_bakery(make_redis(start=False), make_rabbit(start=False))  # never reached
    svc = bakery.start(service, wait=False, **{var: value})
    rc = svc.wait_exit(10)
    assert rc is not None, f"{service} with {var}={value!r} still running"
    assert rc == 2, f"{service} with {var}={value!r} exited {rc}:\n{svc.output()}"
    lines = [json.loads(line) for line in svc.output().splitlines() if line.startswith("{")]
    named = [line for line in lines if line.get("variable") == var]
    assert len(named) == 1, f"{service} did not name {var} in one JSON line:\n{svc.output()}"
    assert named[0]["msg"] == "invalid environment variable" and named[0]["level"] == "error"
    assert named[0]["service"] == service and named[0]["error"], named[0]


def test_reception_sigterm_finishes_in_flight_request_and_exits_0(bakery):
    reception = bakery.reception()
    body = json.dumps({"customer": "homer", "pastry": "la bombe"}).encode()
    head = (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
    with socket.create_connection(("127.0.0.1", reception.http_port), timeout=20) as sock:
        sock.sendall(head + body[:10])
        time.sleep(0.3)  # the request is in flight: headers read, body half there
        t0 = time.monotonic()
        os.kill(reception.pid, signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[10:])
        r = http.client.HTTPResponse(sock)
        r.begin()
        status, answer = r.status, r.read()
    assert status == 202, (status, answer)
    key = json.loads(answer)["orderKey"]
    rc = reception.wait_exit(10)
    assert rc == 0, f"exit {rc} after {time.monotonic() - t0:.1f}s:\n{reception.output()[-3000:]}"
    assert bakery.order(key)["status"] == "pending"
    assert bakery.rabbit.queues()[bakery.queue]["messages"] == 1
    with pytest.raises(OSError):
        harness.http_get(reception.url + "/healthz", timeout=2)  # no longer accepting


def test_reception_sigterm_when_idle_exits_0_quickly(bakery):
    reception = bakery.reception()
    baker = bakery.baker()
    bakery.wait_status(bakery.place(reception))
    for svc in (reception, baker):
        t0 = time.monotonic()
        rc = svc.terminate(timeout=10)
        assert rc == 0, f"{svc.name}: exit {rc} after {time.monotonic() - t0:.1f}s"
