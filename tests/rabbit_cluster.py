"""A real three-node RabbitMQ cluster for tests, each node in its own network namespace.

    from rabbit_cluster import RabbitCluster

    with RabbitCluster() as cluster:                   # started and joined (about a minute)
        bakery = Bakery(redis, cluster, log_dir)       # RABBIT_HOST = every node, in turn
        leader = cluster.leader(bakery.queue)          # the node leading a quorum queue
        leader.kill(); leader.start()                  # SIGKILL every process, then boot
        node.partition(); node.heal()                  # its link down, then up again

Layout (root only): a /24, 10.213.<k>.0/24 with k picked per process, on a bridge that lives
in a namespace of its own (the host's iptables FORWARD policy may drop bridged traffic: inside
the switch namespace nothing filters). The host reaches it through one veth pair, host end
10.213.<k>.1; node i lives in namespace bk<k>n<i> at 10.213.<k>.(11+i), with its own epmd,
Erlang distribution port and AMQP port 5672, named rabbit@10.213.<k>.(11+i)
(RABBITMQ_USE_LONGNAME=true: no name resolution needed). Node 0 starts first, the others join
it one after another. advanced.config lowers quorum_tick_interval and net_ticktime for quick
failover; cluster_partition_handling = pause_minority, so a cut-off node closes its clients'
connections. Services run on the host and reach the nodes at their namespace addresses.

close() kills every process of every namespace (by pid, `ip netns pids`), deletes the host's
veth end and the namespaces, waits until the kernel has removed them all, and raises if
anything is left (leftovers() names it).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

from harness import RABBIT_BIN, port_open, wait_until
from harness.util import Closing
from harness.rabbit import amqp_get, list_queues, node_files, rabbitmqctl

COOKIE = "bakery-rabbit-cluster-cookie"
ADVANCED = """[
 {rabbit, [{quorum_tick_interval, 500}]},
 {kernel, [{net_ticktime, 8}]}
]."""


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def _pick_subnet():
    """A k for 10.213.<k>.0/24 that no link or namespace of this host uses now."""
    used = _ip("-br", "addr").stdout + _ip("netns", "list").stdout
    start = os.getpid() % 200 + 20
    for k in [start] + random.sample(range(20, 250), 40):
        if f"10.213.{k}." not in used and f"bk{k}" not in used:
            return k
    raise RuntimeError("no free 10.213.<k>.0/24")


class RabbitNode:
    """One node of the cluster, in its namespace; its data survives kill() and start()."""

    def __init__(self, cluster, i):
        self.cluster = cluster
        self.index = i
        self.ns = f"bk{cluster.k}n{i}"
        self.ip = f"10.213.{cluster.k}.{11 + i}"
        self.addr = f"{self.ip}:5672"
        self.nodename = f"rabbit@{self.ip}"
        self.dir = os.path.join(cluster.dir, f"node{i}")
        self.out = os.path.join(self.dir, "rabbit.out")
        self.env = node_files(self.dir, {
            "enabled_plugins": "[].\n", "advanced.config": ADVANCED,
            "rabbitmq.conf": "listeners.tcp.1 = 0.0.0.0:5672\nloopback_users = none\n"
                             "cluster_partition_handling = pause_minority\n"}, cookie=COOKIE)
        self.env.update(RABBITMQ_USE_LONGNAME="true", RABBITMQ_NODENAME=self.nodename)

    def _net(self):
        k = self.cluster.k
        sw = self.cluster.switch
        _ip("netns", "add", self.ns)
        _ip("-n", self.ns, "link", "set", "lo", "up")
        _ip("link", "add", f"bk{k}v{self.index}", "netns", self.ns, "type", "veth", "peer",
            "name", f"p{self.index}", "netns", sw)
        _ip("-n", self.ns, "link", "set", f"bk{k}v{self.index}", "name", "eth0")
        _ip("-n", self.ns, "addr", "add", f"{self.ip}/24", "dev", "eth0")
        _ip("-n", self.ns, "link", "set", "eth0", "up")
        _ip("-n", sw, "link", "set", f"p{self.index}", "master", "br0", "up")

    def pids(self):
        r = _ip("netns", "pids", self.ns, check=False)
        return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []

    def alive(self):
        return bool(self.pids())

    def start(self, timeout=120.0, attempts=3):
        """Boots the node in its namespace (data kept) and waits until it has started; a boot
        that exits (the distribution port not free yet after a kill, say) is retried."""
        for attempt in range(attempts):
            try:
                return self._boot(timeout)
            except RuntimeError:
                self.kill()
                if attempt == attempts - 1:
                    raise
                time.sleep(2)

    def _boot(self, timeout):
        assert not self.alive(), f"{self.nodename} already running"
        with open(self.out, "ab") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", self.ns,
                                     os.path.join(RABBIT_BIN, "rabbitmq-server")],
                                    env=self.env,
                                    stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                    start_new_session=True)

        deadline = time.monotonic() + timeout
        while not port_open(5672, self.ip):
            if proc.poll() is not None:
                raise RuntimeError(f"{self.nodename} exited:\n{open(self.out).read()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"rabbitmq {self.nodename} not up in {timeout} s")
            time.sleep(0.25)
        self.ctl("await_startup", timeout=timeout)
        return self

    def kill(self):
        """SIGKILLs every process of the namespace (beam, epmd, ...): a node that died."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.ns}: processes left {self.pids()}")

    def partition(self):
        """Cuts the node off: its only link goes down (clients and peers alike)."""
        _ip("-n", self.ns, "link", "set", "eth0", "down")

    def heal(self):
        _ip("-n", self.ns, "link", "set", "eth0", "up")

    def ctl(self, *args, timeout=60.0):
        """Runs rabbitmqctl against this node from its namespace; returns stdout."""
        return rabbitmqctl(self.env, self.nodename, args, timeout,
                           prefix=("ip", "netns", "exec", self.ns))


class RabbitCluster(Closing):
    """Three (n) RabbitMQ nodes joined into one cluster; see the module docstring."""

    def __init__(self, n=3, start=True):
        self.k = _pick_subnet()
        self.switch = f"bk{self.k}sw"
        self.host_link = f"bk{self.k}h"
        self.dir = tempfile.mkdtemp(prefix="bakery-rcluster-")
        self.nodes = []
        try:
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "set", "lo", "up")
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            _ip("link", "add", self.host_link, "type", "veth", "peer", "name", "up0",
                "netns", self.switch)
            _ip("-n", self.switch, "link", "set", "up0", "master", "br0", "up")
            _ip("addr", "add", f"10.213.{self.k}.1/24", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            for i in range(n):
                node = RabbitNode(self, i)
                self.nodes.append(node)
                node._net()
            if start:
                self.start()
        except BaseException:
            self.close()
            raise

    @property
    def addr(self):
        """RABBIT_HOST for the services: every node, comma-separated."""
        return ",".join(n.addr for n in self.nodes)

    def start(self):
        """Starts node 0, then each other node, which joins it (retried: a join may race
        the first node's boot)."""
        first = self.nodes[0].start()
        for node in self.nodes[1:]:
            node.start()
            node.ctl("stop_app")
            wait_until(lambda: node.ctl("join_cluster", first.nodename) is not None, 60,
                       interval=1, what=f"{node.nodename} joins")
            node.ctl("start_app")
        wait_until(lambda: len(self.running()) == len(self.nodes), 60, what="all nodes running")
        return self

    def live(self):
        """A node that is up and reachable (to ask the cluster something)."""
        for n in self.nodes:
            if n.alive():
                try:
                    n.ctl("ping", timeout=10)
                    return n
                except Exception:
                    continue
        raise RuntimeError("no live node")

    def running(self, node=None):
        """The names of the running nodes, as node (else any live one) sees them."""
        status = json.loads((node or self.live()).ctl("cluster_status", "--formatter", "json"))
        return status.get("running_nodes", [])

    def node(self, nodename):
        return next(n for n in self.nodes if n.nodename == nodename)

    def leader(self, queue):
        """The node leading quorum queue `queue` now."""
        rows = json.loads(self.live().ctl("list_queues", "name", "leader", "--formatter",
                                          "json") or "[]")
        name = next(r["leader"] for r in rows if r["name"] == queue)
        return self.node(name)

    def queues(self):
        """{name: {type, arguments, messages, messages_ready, messages_unacknowledged,
        consumers, members}} from a live node (quorum figures lag by a tick)."""
        cols = ("name", "type", "arguments", "messages", "messages_ready",
                "messages_unacknowledged", "consumers", "members")
        return list_queues(self.live().ctl, cols)

    def get(self, queue):
        """Takes (and acks) one message of queue with amqp-get via a live node; its body or
        None."""
        return amqp_get(self.live().ip, 5672, queue)

    def leftovers(self):
        """What of ours the host still has: namespaces, links (should be [] after close)."""
        names = _ip("netns", "list").stdout.split() + [
            line.split()[0].split("@")[0] for line in _ip("-br", "link").stdout.splitlines()]
        return sorted({n for n in names if n.startswith(f"bk{self.k}")})

    def close(self):
        """Kills every node, deletes the links and namespaces, waits until they are gone."""
        for node in self.nodes:
            node.kill()
        _ip("link", "del", self.host_link, check=False)
        for node in self.nodes:
            _ip("-n", self.switch, "link", "del", f"p{node.index}", check=False)
            _ip("netns", "del", node.ns, check=False)
        _ip("netns", "del", self.switch, check=False)
        try:
            wait_until(lambda: not self.leftovers(), 30, interval=0.2,
                       what=f"links and namespaces of 10.213.{self.k}.0/24 gone")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
