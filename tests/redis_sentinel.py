"""A real Redis primary with two replicas and three Sentinels on loopback, for failover tests.

    from redis_sentinel import SentinelRedis

    with SentinelRedis(password="pw") as r:        # started; primary known to every Sentinel
        env = r.env()                               # REDIS_SENTINELS, REDIS_PASSWORD for services
        old = r.kill_primary()                      # SIGKILL the primary
        new = r.wait_failover(old)                  # a replica promoted, every Sentinel agrees
        r.restart(old)                              # it comes back; Sentinel makes it a replica
        r.wait_replica(old, new)
        r.stop_sentinel(0)                          # SIGTERM one Sentinel; start_sentinel(0)

Debian's redis-server (a Sentinel is `redis-server sentinel.conf --sentinel`), each process on a
free 127.0.0.1 port in a private temporary directory. Redis has requirepass and masterauth, the
Sentinels requirepass (the same password: Sentinels use it with each other) and auth-pass; a
short down-after-milliseconds (1000) and failover-timeout (4000) keep failovers to seconds.
Nodes are harness.RedisServer subclasses that AUTH; `addr`, `command()`, `hget()`,
`hgetall()` and `keys()` of SentinelRedis go to the current primary, so a harness.Bakery can be
built on it (its DB_HOST is ignored once REDIS_SENTINELS is set). close() leaves no process.
"""

import os
import shutil
import signal
import tempfile

from harness import RedisError, RedisServer, _Process, free_port, port_open, wait_until
from harness.resp import RedisCommands, command
from harness.util import Closing

MASTER = "mymaster"


class AuthRedis(RedisServer):
    """A RedisServer whose own commands AUTH with password (stop() is a SIGTERM)."""

    def __init__(self, password, args=()):
        self.password = password
        super().__init__(start=False, args=["--requirepass", password, "--masterauth",
                                            password, "--repl-diskless-sync-delay", "0",
                                            *args])

    def stop(self):
        if self.proc is not None and self.proc.alive():
            self.proc.stop(signal.SIGTERM, timeout=10)

    def role(self):
        """"master" or "slave"; None when it does not answer."""
        try:
            return self.command("ROLE")[0]
        except (OSError, RedisError, ConnectionError):
            return None


class Sentinel:
    """One redis-server --sentinel on a free port, its config file in its own directory."""

    def __init__(self, primary_port, password, quorum=2, down_after_ms=1000,
                 failover_timeout_ms=4000):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="bakery-sentinel-")
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write(f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
                    f"requirepass {password}\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} {quorum}\n"
                    f"sentinel auth-pass {MASTER} {password}\n"
                    f"sentinel down-after-milliseconds {MASTER} {down_after_ms}\n"
                    f"sentinel failover-timeout {MASTER} {failover_timeout_ms}\n"
                    f"sentinel parallel-syncs {MASTER} 2\n")
        self.proc = None
        self.start()

    def start(self):
        assert self.proc is None or not self.proc.alive(), "already running"
        self.proc = _Process(["redis-server", self.conf, "--sentinel"], dict(os.environ),
                             os.path.join(self.dir, "sentinel"))
        wait_until(lambda: self.command("PING") == "PONG", 20, what=f"sentinel {self.addr}")
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, timeout=10)
            wait_until(lambda: not port_open(self.port), 10, what="sentinel port closed")

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def command(self, *args):
        return command(self.port, *args, password=self.password)

    def primary(self):
        """The primary's port as this Sentinel names it (None when it cannot say)."""
        try:
            r = self.command("SENTINEL", "get-master-addr-by-name", MASTER)
        except (OSError, RedisError, ConnectionError):
            return None
        return int(r[1]) if r else None

    def close(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelRedis(RedisCommands, Closing):
    """A primary, two replicas and three Sentinels; see the module docstring."""

    def __init__(self, password="bakery-test-pw", replicas=2, sentinels=3):
        self.password = password
        self.nodes = []
        self.sentinels = []
        try:
            primary = AuthRedis(password)
            self.nodes.append(primary)
            primary.start(wait=False)
            wait_until(lambda: primary.command("PING") == "PONG", 20, what="primary")
            for _ in range(replicas):
                r = AuthRedis(password, args=["--replicaof", "127.0.0.1", str(primary.port)])
                self.nodes.append(r)
                r.start(wait=False)
            for r in self.nodes[1:]:
                wait_until(lambda: self._link_up(r), 30, what=f"replica {r.addr} in sync")
            for _ in range(sentinels):
                self.sentinels.append(Sentinel(primary.port, password))
            self.wait_agreed(primary)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ state

    def _link_up(self, node):
        info = node.command("INFO", "replication")
        return "master_link_status:up" in info

    def node(self, port):
        return next(n for n in self.nodes if n.port == port)

    @property
    def primary(self):
        """The node the running Sentinels name (the first that answers)."""
        for s in self.sentinels:
            if s.alive():
                port = s.primary()
                if port:
                    return self.node(port)
        raise RuntimeError("no sentinel names a primary")

    @property
    def addr(self):
        return self.primary.addr

    def command(self, *args):
        return self.primary.command(*args)

    def env(self, **extra):
        """The services' variables for this set-up."""
        env = {"REDIS_SENTINELS": ",".join(s.addr for s in self.sentinels),
               "REDIS_SENTINEL_MASTER": MASTER, "REDIS_PASSWORD": self.password}
        env.update(extra)
        return env

    def wait_agreed(self, node, timeout=30):
        """Waits until every running Sentinel names node the primary, it says it is one, and
        each Sentinel sees the two others and node's replicas."""
        def agreed():
            for s in self.sentinels:
                if not s.alive():
                    continue
                if s.primary() != node.port:
                    return False
                m = s.command("SENTINEL", "master", MASTER)
                fields = dict(zip(m[0::2], m[1::2]))
                running = sum(1 for o in self.sentinels if o.alive())
                if int(fields["num-other-sentinels"]) < running - 1:
                    return False
            return node.role() == "master"
        wait_until(agreed, timeout, interval=0.2, what=f"sentinels agree on {node.addr}")
        return node

    # ------------------------------------------------------------------ faults

    def kill_primary(self):
        """SIGKILLs the current primary; returns it."""
        node = self.primary
        node.kill()
        return node

    def wait_failover(self, old, timeout=60):
        """Waits until a replica other than old is the primary every running Sentinel names,
        and it answers as one; returns it."""
        def promoted():
            ports = {s.primary() for s in self.sentinels if s.alive()}
            if len(ports) != 1:
                return None
            port = ports.pop()
            if port in (None, old.port):
                return None
            node = self.node(port)
            return node if node.role() == "master" else None
        return wait_until(promoted, timeout, interval=0.1, what="failover")

    def restart(self, node):
        """Starts a killed or stopped node again with its first options."""
        node.start(wait=False)
        wait_until(lambda: node.command("PING") == "PONG", 20, what=f"{node.addr} back")
        return node

    def wait_replica(self, node, primary, timeout=60):
        """Waits until node replicates primary with its link up."""
        def following():
            info = node.command("INFO", "replication")
            return (node.role() == "slave" and f"master_port:{primary.port}" in info
                    and "master_link_status:up" in info)
        return wait_until(following, timeout, interval=0.2,
                          what=f"{node.addr} a replica of {primary.addr}")

    def stop_sentinel(self, i):
        """Stops Sentinel i (SIGTERM); returns it."""
        self.sentinels[i].stop()
        return self.sentinels[i]

    def start_sentinel(self, i):
        return self.sentinels[i].start()

    def close(self):
        """Stops every process (SIGKILL) and removes their directories."""
        for s in self.sentinels:
            s.close()
        for n in self.nodes:
            n.close()
