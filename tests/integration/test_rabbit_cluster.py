"""The three-node RabbitMQ cluster harness itself: joined, a quorum queue's leader found, a
node killed and restarted, one partitioned and healed, and nothing left behind by close()."""

import subprocess

import pytest

from harness import wait_until
from rabbit_cluster import RabbitCluster


@pytest.fixture(scope="module")
def cluster():
    c = RabbitCluster()
    yield c
    c.close()


def test_nodes_joined_and_leader_found(cluster):
    assert sorted(cluster.running()) == sorted(n.nodename for n in cluster.nodes)
    # A quorum queue has a member on each node and one leader among them.
    node = cluster.nodes[1]
    node.ctl("eval", 'rabbit_amqqueue:declare(rabbit_misc:r(<<"/">>, queue, <<"hq">>), true, '
             'false, [{<<"x-queue-type">>, longstr, <<"quorum">>}], none, <<"test">>).')
    q = wait_until(lambda: cluster.queues().get("hq"), 30, what="queue hq")
    assert q["type"] == "quorum", q
    assert sorted(q["members"]) == sorted(n.nodename for n in cluster.nodes), q
    assert cluster.leader("hq") in cluster.nodes


def test_kill_and_restart_a_node(cluster):
    victim = cluster.leader("hq")
    victim.kill()
    assert not victim.alive()
    others = [n.nodename for n in cluster.nodes if n is not victim]
    wait_until(lambda: sorted(cluster.running()) == sorted(others), 60, what="node down")
    new = wait_until(lambda: cluster.leader("hq") is not victim and cluster.leader("hq"), 60,
                     what="a new leader")
    assert new is not victim
    victim.start()
    wait_until(lambda: len(cluster.running()) == 3, 60, what="node back")


def test_partition_and_heal(cluster):
    node = cluster.nodes[2]
    node.partition()
    try:
        with pytest.raises(Exception):
            subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/{node.ip}/5672"], check=True,
                           timeout=3, capture_output=True)
        rest = [cluster.nodes[0], cluster.nodes[1]]
        wait_until(lambda: node.nodename not in cluster.running(rest[0]), 60,
                   what="the majority sees the node gone")
    finally:
        node.heal()
    wait_until(lambda: len(cluster.running()) == 3, 120, what="healed")


def test_close_leaves_nothing():
    c = RabbitCluster(n=1)
    k = c.k
    assert c.leftovers(), "the namespaces and links exist while it runs"
    pids = c.nodes[0].pids()
    assert pids
    c.close()
    assert c.leftovers() == []
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert f"bk{k}" not in links
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"bk{k}" not in netns
    for p in pids:
        assert not _exists(p), f"process {p} survived close()"


def _exists(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
