"""RabbitServer: a private RabbitMQ node on free loopback ports (see harness/__init__.py)."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile

from .process import _Process, _Server
from .util import _read, free_port, port_open, wait_until

RABBIT_BIN = "/usr/lib/rabbitmq/bin"


def node_files(dir, files, cookie=None):
    """Lays out a node's directory (home, mnesia, log and the given config files, plus the
    Erlang cookie if given) and returns the environment both the server and the CLI need:
    ours minus RABBITMQ_*/ERL_*, then HOME and every file and directory in dir."""
    home = os.path.join(dir, "home")
    for d in ("home", "mnesia", "log"):
        os.makedirs(os.path.join(dir, d))
    if cookie is not None:
        path = os.path.join(home, ".erlang.cookie")
        with open(path, "w") as f:
            f.write(cookie)
        os.chmod(path, 0o400)
    for name, text in files.items():
        with open(os.path.join(dir, name), "w") as f:
            f.write(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    env.update(
        HOME=home,
        RABBITMQ_CONF_ENV_FILE=os.path.join(dir, "rabbitmq-env.conf"),  # absent
        RABBITMQ_CONFIG_FILE=os.path.join(dir, "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(dir, "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(dir, "enabled_plugins"),
        RABBITMQ_MNESIA_BASE=os.path.join(dir, "mnesia"),
        RABBITMQ_LOG_BASE=os.path.join(dir, "log"),
        RABBITMQ_PID_FILE=os.path.join(dir, "rabbit.pid"),
        # Idle schedulers sleep instead of spinning: on a small shared machine the spin
        # takes CPU from everything else under test (RabbitMQ's runtime tuning guide).
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none",
    )
    return env


def rabbitmqctl(env, nodename, args, timeout=60.0, prefix=()):
    """Runs rabbitmqctl (after prefix, e.g. `ip netns exec NS`) against nodename; returns
    stdout, raises on a non-zero exit."""
    r = subprocess.run([*prefix, os.path.join(RABBIT_BIN, "rabbitmqctl"), "-n", nodename,
                        "-q", *args], env=env, capture_output=True, text=True,
                       timeout=timeout + 30)
    if r.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {nodename}: exit {r.returncode}\n"
                           f"{r.stdout}{r.stderr}")
    return r.stdout


def list_queues(ctl, columns):
    """rabbitmqctl list_queues columns as {name: row}, arguments as a {key: value} dict
    (rabbitmqctl gives them as [[key, type, value], ...]); ctl runs rabbitmqctl."""
    rows = json.loads(ctl("list_queues", *columns, "--formatter", "json") or "[]")
    queues = {q["name"]: q for q in rows}
    for q in queues.values():
        q["arguments"] = {a[0]: a[-1] for a in q.get("arguments") or []}
    return queues


def amqp_get(host, port, queue):
    """Takes (and acks) one message from queue with amqp-get; returns its body or None."""
    r = subprocess.run(["amqp-get", f"--server={host}", f"--port={port}", "-q", queue],
                       capture_output=True, timeout=30)
    return r.stdout.decode() if r.returncode == 0 else None


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
        self.env = node_files(self.dir, {
            "enabled_plugins": "[].\n",
            # A quorum queue's counts reach list_queues once a tick (5 s by default): 100 ms.
            "advanced.config": "[{rabbit, [{quorum_tick_interval, 100}]}].\n",
            "rabbitmq.conf": f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"})
        self.env.update(
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
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

    def ctl(self, *args, timeout=60.0):
        """Runs rabbitmqctl against this node; returns stdout, raises on a non-zero exit."""
        return rabbitmqctl(self.env, self.nodename, args, timeout)

    def _list(self, what, columns):
        out = self.ctl(what, *columns, "--formatter", "json")
        return json.loads(out or "[]")

    def queues(self):
        """Returns {name: {durable, arguments, messages, messages_ready,
        messages_unacknowledged, messages_persistent, consumers}}."""
        cols = ("name", "durable", "arguments", "messages", "messages_ready",
                "messages_unacknowledged", "messages_persistent", "consumers")
        queues = list_queues(self.ctl, cols)
        for q in queues.values():
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
        return amqp_get("127.0.0.1", self.port, queue)
