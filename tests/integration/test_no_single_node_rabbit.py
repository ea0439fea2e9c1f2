"""No single RabbitMQ node: reception and baker with RABBIT_HOST listing the three nodes of a
real cluster (tests/rabbit_cluster.py) and the quorum queue, while a steady stream of orders
flows: the queue's leader is SIGKILLed and restarted, then one node is cut off the network and
healed. Every order that got a 202 reaches finished, none is dead-lettered; each run prints
accepted / finished / lost and the longest stretch without a 202."""

import http.client
import json
import threading
import time

import pytest

from harness import wait_until
from rabbit_cluster import RabbitCluster

THREADS = 3
PAUSE_S = 0.05  # between one thread's orders: about 60 orders/s in all


@pytest.fixture(scope="module")
def cluster():
    c = RabbitCluster()
    yield c
    c.close()


class Load:
    """THREADS clients posting orders over keep-alive connections until stop()."""

    def __init__(self, reception):
        self.port = reception.http_port
        self.accepted = {}  # orderKey -> time of its 202
        self.refused = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]
        for t in self.threads:
            t.start()

    def _run(self):
        conn = None
        body = json.dumps({"customer": "homer", "pastry": "la bombe"})
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                conn.request("POST", "/orders", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                with self.lock:
                    if r.status == 202:
                        self.accepted[json.loads(data)["orderKey"]] = time.monotonic()
                    else:
                        self.refused += 1
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.refused += 1
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(PAUSE_S)
        if conn is not None:
            conn.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)
        times = sorted(self.accepted.values())
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def _run_fault(bakery, cluster, fault, what):
    reception = bakery.reception_svc
    load = Load(reception)
    time.sleep(3)
    fault()
    time.sleep(3)
    gap = load.stop()
    keys = list(load.accepted)
    assert keys, "no order accepted"

    def finished():
        return [k for k in keys if bakery.order(k).get("status") == "finished"]

    try:
        wait_until(lambda: len(finished()) == len(keys), 150, interval=1,
                   what=f"every accepted order finished ({what})")
    finally:
        done = len(finished())
        print(f"\n{what}: accepted={len(keys)} finished={done} lost={len(keys) - done} "
              f"refused={load.refused} longest_gap_without_202={gap:.1f}s")
    dead = cluster.get(f"{bakery.queue}.dead")
    assert dead is None, f"dead-lettered: {dead}"


@pytest.fixture(scope="module")
def bakery(cluster, redis_server, tmp_path_factory):
    import harness
    b = harness.Bakery(redis_server, cluster, tmp_path_factory.mktemp("logs"))
    b.reception_svc = b.reception()
    b.baker(BAKER_CONCURRENCY="8")
    yield b
    b.close()


def test_leader_killed_and_restarted(bakery, cluster):
    leader = cluster.leader(bakery.queue)

    def fault():
        leader.kill()
        time.sleep(8)
        leader.start()

    _run_fault(bakery, cluster, fault, f"leader {leader.nodename} SIGKILLed, restarted")
    wait_until(lambda: len(cluster.running()) == 3, 60, what="three nodes again")


def test_node_partitioned_and_healed(bakery, cluster):
    node = cluster.leader(bakery.queue)  # the worst one to lose

    def fault():
        node.partition()
        time.sleep(15)
        node.heal()

    _run_fault(bakery, cluster, fault, f"{node.nodename} partitioned, healed")
