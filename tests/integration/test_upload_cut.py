"""An error answered before the body is read ends the upload (issue 9, item 5).

A client announcing a huge body (or sending one to a route that will not read it) gets its
answer with `Connection: close`, and the server closes the connection within a second while
the client keeps sending: no worker thread is held for as long as a client likes.
"""

import socket
import threading
import time

import pytest

CHUNK = b"x" * 16384


def _upload(port, head, seconds=6.0):
    """Sends head, then body bytes without pause; returns (response head bytes, seconds from
    the response to the server's close, or None when the server never closed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    sock.sendall(head)
    stop = threading.Event()
    send_error = []

    def sender():
        try:
            while not stop.is_set():
                sock.send(CHUNK)
        except OSError as e:  # EPIPE / ECONNRESET: the server closed
            send_error.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = b""
    answered = closed = None
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if send_error and answered is not None:
                    closed = time.monotonic()
                    break
                continue
            except OSError:  # reset
                closed = time.monotonic()
                break
            if not data:
                closed = time.monotonic()
                break
            got += data
            if answered is None and b"\r\n\r\n" in got:
                answered = time.monotonic()
    finally:
        stop.set()
        sock.close()
        t.join(5)
    return got, (closed - answered) if (closed and answered) else None


@pytest.mark.parametrize("head,status", [
    (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n", b" 413 "),
    (b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n", b" 404 "),
    (b"PUT /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n", b" 405 "),
    (b"POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"40000000\r\n", b" 413 "),
], ids=["413", "404", "405", "413-chunked"])
def test_error_before_the_body_closes_the_connection(bakery, head, status):
    reception = bakery.reception()
    got, close_after = _upload(reception.http_port, head)
    first = got.split(b"\r\n", 1)[0]
    assert status in first, got[:300]
    assert b"connection: close" in got.lower(), got[:300]
    assert close_after is not None, "the server kept reading the upload"
    assert close_after < 1.0, f"closed {close_after:.2f} s after answering"
    # The server is still whole.
    assert reception.get("/healthz").status == 200


def test_body_read_error_closes_the_connection(bakery):
    """A body that cannot be read (a malformed chunk size) is answered 400 with
    `Connection: close` (review 5e): what follows it on the connection is no request."""
    reception = bakery.reception()
    sock = socket.create_connection(("127.0.0.1", reception.http_port), timeout=10)
    try:
        sock.sendall(b"POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"zz\r\n{}\r\n0\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    finally:
        sock.close()
    head = got.split(b"\r\n\r\n", 1)[0].lower()
    assert b" 400 " in head.split(b"\r\n", 1)[0], got[:300]
    assert b"connection: close" in head, got[:300]
    assert reception.get("/healthz").status == 200
