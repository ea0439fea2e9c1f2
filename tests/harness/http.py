"""HTTP for tests: Response, http_request/http_get/http_post (stdlib http.client) and
raw_request (hand-made bytes)."""

import http.client
import json
import socket
import urllib.parse


class Response:
    """An HTTP response: status, headers (case-insensitive get), body bytes, text, json()."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


def http_request(method, url, body=None, headers=None, timeout=10.0):
    """Sends one HTTP/1.1 request (own connection) and returns a Response.

    body: bytes, str, or any other value (sent as JSON with Content-Type application/json
    unless headers set one). Raises OSError/http.client errors when the server is not there.
    """
    u = urllib.parse.urlsplit(url)
    headers = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read())
    finally:
        conn.close()


def http_get(url, **kw):
    """GET url; see http_request."""
    return http_request("GET", url, **kw)


def http_post(url, body=None, **kw):
    """POST url with body; see http_request."""
    return http_request("POST", url, body=body, **kw)


def raw_request(port, data, timeout=10.0, host="127.0.0.1"):
    """Sends raw bytes (a hand-made request) and returns the parsed Response.

    For what http.client will not send: lying Content-Length, chunked bodies, slow bodies.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        r = http.client.HTTPResponse(sock)
        r.begin()
        return Response(r.status, r.headers, r.read())
