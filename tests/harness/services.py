"""Bakery's own processes: Service (one reception or baker), service_env(), Bakery
(services wired to one Redis and one RabbitMQ with a private queue), BUILD_DIR."""

import json
import os
import secrets
import signal

from .http import http_request
from .process import _Process
from .util import _read, free_port, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
