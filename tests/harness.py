"""Real servers and Bakery processes for tests: Redis, RabbitMQ, reception and baker.

Every test suite under tests/ (integration, tracing, e2e, k8s) imports this module (stdlib only;
conftest.py wires it into pytest fixtures). Nothing here is a mock: each class starts the real
program on free loopback ports in a private temporary directory and stops it again.

    from harness import RedisServer, RabbitServer, Bakery, wait_until, http_get

    with RedisServer() as redis, RabbitServer() as rabbit:       # started, stopped at exit
        bakery = Bakery(redis, rabbit, log_dir="/tmp/x")         # unique ORDERS_QUEUE
        reception = bakery.reception(BAKE_TIME_SCALE="0")         # started and /readyz 200
        baker = bakery.baker(BAKE_TIME_SCALE="0")
        r = reception.post("/orders", {"customer": "homer", "pastry": "la bombe"})
        key = r.json()["orderKey"]
        wait_until(lambda: redis.hget(f"order:{key}", "status") == "finished")
        bakery.close()                      # SIGTERM all, then asserts no sanitizer report

RedisServer      redis-server --port N --bind 127.0.0.1, data in a temp dir. stop() saves the
                 data (SHUTDOWN SAVE) so start() after stop() (or restart()) keeps the orders;
                 kill() is a crash. command()/hget()/hgetall()/keys() speak RESP directly, and
                 monitor() records every command the server executes.
RabbitServer     /usr/lib/rabbitmq/bin/rabbitmq-server run directly (the /usr/sbin wrapper su's
                 to the rabbitmq user), with a private node name, AMQP port, distribution port
                 and epmd (its own `epmd -port`, stopped at close), data in a temp dir that
                 survives stop()/start()/restart(), so durable queues and persistent messages do
                 too. ctl() runs rabbitmqctl against it; queues()/exchanges() list them;
                 publish() sends a message with amqp-publish (Debian's amqp-tools); get() takes
                 one message with amqp-get. Starting takes 5-20 s: share one per session.
Service          one reception or baker process: env, stdout/stderr captured to files, get()/
                 post()/request() against its HTTP port, wait_ready() (/readyz 200), kill()
                 (SIGKILL), terminate() (SIGTERM, returns the exit code), log_records() (its
                 JSON log lines), check_sanitizers() (fails on any ASan/UBSan/LSan report).
Bakery           launches services wired to one Redis and one RabbitMQ with a private queue
                 name, so tests sharing servers do not see each other's messages; place()
                 posts an order, order(key) reads it from Redis, wait_status(keys, status).
BUILD_DIR        where the binaries are: $BAKERY_BUILD, else build/san (ASan+UBSan) when it
                 holds both services, else build.
Helpers          wait_until(fn, timeout); free_port(); port_open(); http_request/http_get/
                 http_post (stdlib http.client) and raw_request (hand-made bytes) -> Response;
                 parse_prometheus(text); the contract's KEY_RE, RFC3339_UTC, RFC3339_NS,
                 assert_error(response, status); fnv1a32() and slow_pastry(min_ms), which pick
                 a pastry whose simulated bake takes at least min_ms x BAKE_TIME_SCALE;
                 TcpProxy(target), a forwarder that can freeze or (subclassed) delay.

Services get OTEL_SDK_DISABLED=true unless the caller passes OTEL_* variables (or
OTEL_SDK_DISABLED=None: a None value removes a variable). The caller's own Bakery variables
(DB_HOST, PORT, ...) and OTEL_* never leak into a service.
"""

import atexit
import http.client
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RABBIT_BIN = "/usr/lib/rabbitmq/bin"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
# Variables a service reads; removed from the inherited environment before the test's own.
SERVICE_VARS = (
    "DB_HOST", "RABBIT_HOST", "RABBIT_USERNAME", "RABBIT_PASSWORD", "ORDERS_QUEUE", "PORT",
    "BAKER_CONCURRENCY", "BAKE_TIME_SCALE", "HEALTH_PORT", "LOG_LEVEL", "ORDER_QUEUE_DEADLINE_MS",
    "ORDERS_QUEUE_TYPE", "ORDERS_DELIVERY_LIMIT",
    "HTTP_HEADER_TIMEOUT_MS", "HTTP_BODY_TIMEOUT_MS", "HTTP_KEEPALIVE_TIMEOUT_MS",
    "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_PASSWORD", "REDIS_WAIT_REPLICAS",
)


def _default_build():
    if os.environ.get("BAKERY_BUILD"):
        return os.path.join(ROOT, os.environ["BAKERY_BUILD"])
    san = os.path.join(ROOT, "build", "san")
    if all(os.access(os.path.join(san, b), os.X_OK) for b in ("reception", "baker")):
        return san
    return os.path.join(ROOT, "build")


BUILD_DIR = _default_build()


# ---------------------------------------------------------------------------- the contract

KEY_RE = re.compile(r"^[0-9a-f]{32}$")  # an orderKey
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
RFC3339_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")


def assert_error(r, status):
    """Asserts r has status and a JSON body {"error": "<non-empty string>"}."""
    assert r.status == status, r
    assert r.header("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], r


def fnv1a32(s):
    """FNV-1a 32-bit of s's UTF-8, the hash the baker's simulated bake time comes from."""
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def slow_pastry(min_ms, prefix="pastry"):
    """A pastry name whose bake round takes at least min_ms (of at most 99) x BAKE_TIME_SCALE."""
    return next(p for p in (f"{prefix}-{i}" for i in range(10000)) if fnv1a32(p) % 100 >= min_ms)


# ---------------------------------------------------------------------------- small helpers


def free_port():
    """Returns a TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(fn, timeout=30.0, interval=0.1, what=None):
    """Calls fn until it returns something truthy and returns that; exceptions count as not yet.

    Raises TimeoutError after timeout seconds, naming `what` (or fn) and the last result.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the thing polled is often not up yet
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for "
                               f"{what or getattr(fn, '__name__', fn)}; last: {last!r}")
        time.sleep(interval)


class TcpProxy:
    """A TCP forwarder on a free loopback port, like the address of a failover pair (a VIP, a
    Service): each new connection goes to the current `target` port; connections already made
    stay where they were. While `frozen`, it forwards nothing (a silent network). A subclass
    may delay chunks in `relay` (a slow network)."""

    def __init__(self, target):
        self.target = target
        self.frozen = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.closed = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def relay(self, conn, data, from_server):
        """Called before each chunk is forwarded; conn is a dict of this connection's own."""

    def _pump(self, client, server):
        peer = {client: server, server: client}
        conn = {}
        try:
            while not self.closed:
                ready, _, _ = select.select([client, server], [], [], 0.1)
                if self.frozen:
                    continue
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    self.relay(conn, data, s is server)
                    peer[s].sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            server.close()

    def close(self):
        self.closed = True
        self.sock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass


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


def parse_prometheus(text):
    """Parses Prometheus text format into {(name, frozenset(labels.items())): float}.

    Raises ValueError on a line that is not a comment, blank, or `name{labels} value [ts]`.
    """
    samples = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
    label_re = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            raise ValueError(f"not a Prometheus sample: {line!r}")
        labels = {}
        rest = m.group(3) or ""
        pos = 0
        while pos < len(rest):
            lm = label_re.match(rest, pos)
            if not lm:
                raise ValueError(f"bad labels in {line!r}")
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return samples


# ---------------------------------------------------------------------------- processes


_live = set()  # every _Process not yet reaped: killed at interpreter exit as a last resort


@atexit.register
def _kill_leftovers():
    for p in list(_live):
        p.signal_group(signal.SIGKILL)


class _Process:
    """A child in its own session, stdout/stderr to files; stop() always reaps it."""

    def __init__(self, argv, env, log_prefix, cwd=None):
        self.argv = argv
        self.stdout_path = log_prefix + ".out"
        self.stderr_path = log_prefix + ".err"
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=cwd,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        _live.add(self)

    def alive(self):
        return self.proc.poll() is None

    def signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout):
        """Waits for the exit; returns the exit code (negative: signal) or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends sig to the process group, SIGKILL after timeout; returns the exit code."""
        if self.alive():
            self.signal_group(sig)
            if self.wait(timeout) is None:
                self.signal_group(signal.SIGKILL)
        rc = self.proc.wait()
        self.signal_group(signal.SIGKILL)  # stragglers in the group (e.g. erl_child_setup)
        _live.discard(self)
        return rc


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------- Redis


class RedisError(Exception):
    """An error reply from Redis."""


class _Resp:
    """A minimal RESP2 client connection (enough for tests: commands, replies, MONITOR)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = self.sock.makefile("rb")

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def reply(self):
        line = self.buf.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)[:-2]
            return data.decode("utf-8", "surrogateescape")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError(f"bad reply {line!r}")

    def close(self):
        self.buf.close()
        self.sock.close()


class RedisMonitor:
    """Records every command Redis executes (MONITOR) until stop(); lines() returns them."""

    def __init__(self, port):
        self._conn = _Resp(port, timeout=None)
        self._conn.send("MONITOR")
        self._conn.reply()
        self._lines = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while True:
                self._lines.append(self._conn.reply())
        except Exception:
            pass

    def lines(self):
        return list(self._lines)

    def stop(self):
        try:
            self._conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        self._conn.close()
        return self.lines()


class _Server:
    """What the servers share: start() and stop() are theirs; kill() is a crash (SIGKILL:
    Redis loses unsaved data; RabbitMQ keeps confirmed persistent messages)."""

    proc = None

    def kill(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def _boot(self):
        """start(), or close() (nothing left behind) when it fails."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise


class RedisServer(_Server):
    """A private redis-server on a free loopback port; see the module docstring."""

    def __init__(self, start=True, port=None, args=()):
        self.port = port or free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="bakery-redis-")
        self.proc = None
        self.args = list(args)  # extra redis-server options, after (so over) the defaults
        if start:
            self._boot()

    def start(self, timeout=30.0, wait=True):
        """Starts the server (keeping data saved by stop()) and, if wait, waits until it
        answers PING."""
        assert self.proc is None or not self.proc.alive(), "already running"
        self.proc = _Process(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
             "--protected-mode", "yes", *self.args],
            dict(os.environ), os.path.join(self.dir, "redis"))
        if wait:
            wait_until(lambda: self.command("PING") == "PONG", timeout,
                       what=f"redis {self.addr}")
        return self

    def stop(self):
        """Saves the data and stops the server (SHUTDOWN SAVE; SIGKILL if that fails)."""
        if self.proc is None or not self.proc.alive():
            return
        try:
            c = _Resp(self.port)
            c.send("SHUTDOWN", "SAVE")
            try:
                c.reply()  # normally the connection just closes
            except (ConnectionError, OSError):
                pass
            c.close()
        except OSError:
            pass
        self.proc.stop(signal.SIGTERM, timeout=10)
        wait_until(lambda: not port_open(self.port), 10, what="redis port closed")

    def close(self):
        """Stops the server for good and removes its directory."""
        if self.proc is not None:
            self.proc.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *args):
        """Runs one command on a fresh connection; returns the decoded reply."""
        c = _Resp(self.port)
        try:
            c.send(*args)
            return c.reply()
        finally:
            c.close()

    def hget(self, key, field):
        return self.command("HGET", key, field)

    def hgetall(self, key):
        flat = self.command("HGETALL", key) or []
        return dict(zip(flat[0::2], flat[1::2]))

    def keys(self, pattern="*"):
        return sorted(self.command("KEYS", pattern))

    def monitor(self):
        """Returns a started RedisMonitor."""
        return RedisMonitor(self.port)


# ---------------------------------------------------------------------------- RabbitMQ


class RabbitServer(_Server):
    """A private RabbitMQ node on free loopback ports; see the module docstring."""

    def __init__(self, start=True):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.nodename = f"bakery-{secrets.token_hex(4)}@localhost"
        self.dir = tempfile.mkdtemp(prefix="bakery-rabbit-")
        self.proc = None
        self.epmd = None
        home = os.path.join(self.dir, "home")
        for d in ("home", "mnesia", "log"):
            os.makedirs(os.path.join(self.dir, d))
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        with open(os.path.join(self.dir, "advanced.config"), "w") as f:
            # A quorum queue's counts reach list_queues once a tick (5 s by default): 100 ms.
            f.write("[{rabbit, [{quorum_tick_interval, 100}]}].\n")
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        # What both the server and the CLI need: the cookie (HOME), epmd, node, config files.
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))
        }
        self.env.update(
            HOME=home,
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONF_ENV_FILE=os.path.join(self.dir, "rabbitmq-env.conf"),  # absent
            RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(self.dir, "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
            RABBITMQ_PID_FILE=os.path.join(self.dir, "rabbit.pid"),
            # Idle schedulers sleep instead of spinning: on a small shared machine the spin
            # takes CPU from everything else under test (RabbitMQ's runtime tuning guide).
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none",
        )
        if start:
            self._boot()

    def start(self, timeout=120.0):
        """Starts the node (data dir kept across restarts) and waits until it has booted."""
        assert self.proc is None or not self.proc.alive(), "already running"
        if self.epmd is None or not self.epmd.alive():
            self.epmd = _Process(["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                 self.env, os.path.join(self.dir, "epmd"))
            wait_until(lambda: port_open(self.epmd_port), 10, what="epmd")
        self.proc = _Process([os.path.join(RABBIT_BIN, "rabbitmq-server")], self.env,
                             os.path.join(self.dir, "rabbit"))

        def up():
            if not self.proc.alive():
                out = _read(self.proc.stdout_path)[-3000:]
                raise RuntimeError(f"rabbitmq-server exited:\n{out}")
            return port_open(self.port)

        wait_until(up, timeout, interval=0.25, what=f"rabbitmq {self.addr}")
        self.ctl("await_startup", timeout=timeout)
        return self

    def stop(self, timeout=60.0):
        """Stops the node gracefully (SIGTERM), keeping its data; epmd stays up."""
        if self.proc is not None and self.proc.alive():
            self.proc.stop(signal.SIGTERM, timeout)
            wait_until(lambda: not port_open(self.port), 10, what="rabbitmq port closed")

    def close(self):
        """Stops the node and its epmd for good and removes the data directory."""
        try:
            self.stop()
        finally:
            self.kill()  # if the graceful stop failed
            if self.epmd is not None:
                self.epmd.stop(signal.SIGKILL)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def ctl(self, *args, timeout=60.0):
        """Runs rabbitmqctl against this node; returns stdout, raises on a non-zero exit."""
        r = subprocess.run([os.path.join(RABBIT_BIN, "rabbitmqctl"), "-n", self.nodename,
                            "-q", *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout + 30)
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: exit {r.returncode}\n"
                               f"{r.stdout}{r.stderr}")
        return r.stdout

    def _list(self, what, columns):
        out = self.ctl(what, *columns, "--formatter", "json")
        return json.loads(out or "[]")

    def queues(self):
        """Returns {name: {durable, arguments, messages, messages_ready,
        messages_unacknowledged, messages_persistent, consumers}}."""
        cols = ("name", "durable", "arguments", "messages", "messages_ready",
                "messages_unacknowledged", "messages_persistent", "consumers")
        queues = {q["name"]: q for q in self._list("list_queues", cols)}
        for q in queues.values():  # rabbitmqctl gives arguments as [[key, type, value], ...]
            q["arguments"] = {a[0]: a[-1] for a in q.get("arguments") or []}
            if q["arguments"].get("x-queue-type") == "quorum":  # every message is persistent
                q["messages_persistent"] = q["messages"]
        return queues

    def exchanges(self):
        """Returns {name: {type, durable}}."""
        return {e["name"]: e for e in self._list("list_exchanges", ("name", "type", "durable"))}

    def connections(self):
        """Returns the client connections as a list of {name, state, channels}."""
        return self._list("list_connections", ("name", "state", "channels"))

    def publish(self, body, routing_key, exchange="", persistent=True,
                content_type="application/json", headers=None):
        """Publishes one message with amqp-publish (default exchange: routing_key = queue)."""
        argv = ["amqp-publish", "--server=127.0.0.1", f"--port={self.port}",
                "-e", exchange, "-r", routing_key, "-C", content_type, "-b", body]
        if persistent:
            argv.append("-p")
        for k, v in (headers or {}).items():
            argv += ["-H", f"{k}: {v}"]
        subprocess.run(argv, check=True, timeout=30, capture_output=True)

    def declare_queue(self, queue, durable=True):
        """Declares a plain queue with amqp-declare-queue (for tests of the harness itself)."""
        argv = ["amqp-declare-queue", "--server=127.0.0.1", f"--port={self.port}", "-q", queue]
        if durable:
            argv.append("-d")
        subprocess.run(argv, check=True, timeout=30, capture_output=True)

    def get(self, queue):
        """Takes (and acks) one message from queue with amqp-get; returns its body or None."""
        r = subprocess.run(["amqp-get", "--server=127.0.0.1", f"--port={self.port}",
                            "-q", queue], capture_output=True, timeout=30)
        return r.stdout.decode() if r.returncode == 0 else None


# ---------------------------------------------------------------------------- services


class Service:
    """One running reception or baker; see the module docstring."""

    def __init__(self, name, env, log_dir, http_port, binary=None):
        self.name = name
        self.binary = binary or os.path.join(BUILD_DIR, name)
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError(f"{self.binary} not built (make, or make SAN=1)")
        self.http_port = http_port
        self.url = f"http://127.0.0.1:{http_port}"
        self.env = env
        os.makedirs(log_dir, exist_ok=True)
        self.log_prefix = os.path.join(log_dir, f"{name}-{secrets.token_hex(3)}")
        self.proc = _Process([self.binary], env, self.log_prefix)
        self.pid = self.proc.pid
        self.returncode = None

    # HTTP
    def request(self, method, path, body=None, headers=None, timeout=10.0):
        return http_request(method, self.url + path, body=body, headers=headers,
                            timeout=timeout)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def ready(self):
        """True when /readyz answers 200 now."""
        try:
            return self.get("/readyz", timeout=5).status == 200
        except OSError:
            return False

    def healthy(self):
        """True when /healthz answers 200 now."""
        try:
            return self.get("/healthz", timeout=5).status == 200
        except OSError:
            return False

    def _check_alive(self):
        if not self.alive():
            raise AssertionError(f"{self.name} exited with {self.proc.proc.returncode}:\n"
                                 f"{self.output()[-3000:]}")

    def wait_ready(self, timeout=60.0):
        """Waits for /readyz 200; fails at once if the process exits."""
        wait_until(lambda: self._check_alive() or self.ready(), timeout,
                   what=f"{self.name} ready")
        return self

    def wait_healthy(self, timeout=30.0):
        """Waits for /healthz 200 (the process serves HTTP); fails if it exits."""
        wait_until(lambda: self._check_alive() or self.healthy(), timeout,
                   what=f"{self.name} healthy")
        return self

    # lifecycle
    def alive(self):
        return self.proc.alive()

    def kill(self):
        """SIGKILL; returns the exit code (-9)."""
        self.returncode = self.proc.stop(signal.SIGKILL)
        return self.returncode

    def terminate(self, timeout=10.0):
        """SIGTERM and wait up to timeout; returns the exit code, None if still running."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        rc = self.proc.wait(timeout)
        if rc is not None:
            self.returncode = rc
        return rc

    def wait_exit(self, timeout=30.0):
        """Waits for the process to exit on its own; returns the exit code or None."""
        rc = self.proc.wait(timeout)
        if rc is not None:
            self.returncode = rc
        return rc

    def stop(self):
        """SIGTERM, SIGKILL after 15 s; returns the exit code."""
        self.returncode = self.proc.stop(signal.SIGTERM, 15)
        return self.returncode

    # output
    def stdout(self):
        return _read(self.proc.stdout_path)

    def stderr(self):
        return _read(self.proc.stderr_path)

    def output(self):
        return self.stdout() + self.stderr()

    def log_records(self):
        """Parses stdout as JSON lines; raises ValueError naming the first bad line."""
        records = []
        for n, line in enumerate(self.stdout().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                raise ValueError(f"{self.name} stdout line {n} is not JSON: {line!r}")
            if not isinstance(rec, dict):
                raise ValueError(f"{self.name} stdout line {n} is not an object: {line!r}")
            records.append(rec)
        return records

    def check_sanitizers(self):
        """Raises AssertionError if stderr holds an ASan, UBSan or LSan report."""
        err = self.stderr()
        for marker in SANITIZER_MARKERS:
            if marker in err:
                i = err.index(marker)
                raise AssertionError(f"{self.name} ({self.log_prefix}.err) sanitizer report:\n"
                                     f"{err[max(0, i - 200):i + 4000]}")

    def __repr__(self):
        return f"<Service {self.name} pid={self.pid} {self.url}>"


def service_env(extra=None):
    """The environment a service starts with: ours minus Bakery/OTEL variables, plus extra.

    A None value in extra removes that variable. OTEL_SDK_DISABLED=true unless extra names any
    OTEL_* variable. Sanitizer options make every finding fatal and visible.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in SERVICE_VARS and not k.startswith("OTEL_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:detect_stack_use_after_return=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    extra = dict(extra or {})
    if not any(k.startswith("OTEL_") for k in extra):
        env["OTEL_SDK_DISABLED"] = "true"
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


class Bakery:
    """Starts reception and baker processes wired to redis and rabbit with a private queue.

    redis/rabbit: RedisServer/RabbitServer (or anything with .addr), possibly not started yet.
    Every service started here is stopped by close(), which then asserts that none wrote a
    sanitizer report.
    """

    def __init__(self, redis, rabbit, log_dir, queue=None):
        self.redis = redis
        self.rabbit = rabbit
        self.log_dir = str(log_dir)
        self.queue = queue or f"orders-{secrets.token_hex(4)}"
        self.services = []

    def env(self, **extra):
        base = {"DB_HOST": self.redis.addr, "RABBIT_HOST": self.rabbit.addr,
                "ORDERS_QUEUE": self.queue, "BAKE_TIME_SCALE": "0", "LOG_LEVEL": "info"}
        base.update(extra)
        return base

    def start(self, name, wait=True, **env):
        """Starts build/<name> with the wiring env plus env; waits for /readyz if wait."""
        port_var = "PORT" if name == "reception" else "HEALTH_PORT"
        env.setdefault(port_var, str(free_port()))
        port = int(env[port_var]) if str(env[port_var]).isdigit() else 0  # a bad-config test
        svc = Service(name, service_env(self.env(**env)), self.log_dir, port)
        self.services.append(svc)
        if wait:
            svc.wait_ready()
        return svc

    def reception(self, wait=True, **env):
        """Starts a reception (PORT free unless given); see start()."""
        return self.start("reception", wait, **env)

    def baker(self, wait=True, **env):
        """Starts a baker (HEALTH_PORT free unless given); see start()."""
        return self.start("baker", wait, **env)

    def order(self, key):
        """The order hash order:<key> from Redis ({} when absent)."""
        return self.redis.hgetall(f"order:{key}")

    def wait_status(self, keys, status="finished", timeout=60.0):
        """Waits until every order in keys has status; returns {key: order}."""
        keys = [keys] if isinstance(keys, str) else list(keys)

        def check():
            orders = {k: self.order(k) for k in keys}
            behind = {k: o.get("status") for k, o in orders.items() if o.get("status") != status}
            if behind:
                raise AssertionError(f"{len(behind)} of {len(keys)} not {status}: "
                                     f"{dict(list(behind.items())[:5])}")
            return orders

        return wait_until(check, timeout, interval=0.2, what=f"orders {status}")

    def place(self, reception, customer="homer", pastry="la bombe"):
        """POSTs an order; asserts 202 and returns its orderKey."""
        r = reception.post("/orders", {"customer": customer, "pastry": pastry})
        assert r.status == 202, r
        return r.json()["orderKey"]

    def close(self):
        """Stops every service (SIGTERM, then SIGKILL) and checks their sanitizer output."""
        for svc in self.services:
            svc.stop()
        problems = []
        for svc in self.services:
            try:
                svc.check_sanitizers()
            except AssertionError as e:
                problems.append(str(e))
        if problems:
            raise AssertionError("\n\n".join(problems))
