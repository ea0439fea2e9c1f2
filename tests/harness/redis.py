"""RedisServer: a private redis-server on a free loopback port (see harness/__init__.py)."""

import os
import shutil
import signal
import tempfile

from .process import _Process, _Server
from .resp import RedisCommands, RedisMonitor, _Resp, command
from .util import free_port, port_open, wait_until


class RedisServer(RedisCommands, _Server):
    """A private redis-server on a free loopback port; see the module docstring. Its own
    commands AUTH when password is set (a subclass's requirepass)."""

    password = None

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
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def command(self, *args):
        """Runs one command on a fresh connection; returns the decoded reply."""
        return command(self.port, *args, password=self.password)

    def monitor(self):
        """Returns a started RedisMonitor."""
        return RedisMonitor(self.port)
