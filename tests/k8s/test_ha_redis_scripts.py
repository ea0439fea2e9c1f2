"""k8s/ha/redis's start and preStop scripts for real, without Kubernetes: three Redis pods with
Sentinels (Debian's redis-server) named redis-<n>.redis-headless, in a private network, mount
and pid namespace (ha-redis-rig.sh). The first start makes pod 0 the primary; the primary's
preStop hands over; a returning old primary, deleted or killed, becomes a replica; clients
without the password are refused; no write is lost."""

import os
import re
import shutil
import subprocess

import pytest

from k8stools import ROOT

RIG = os.path.join(ROOT, "tests", "k8s", "ha-redis-rig.sh")


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists("/usr/bin/redis-server"):
        pytest.skip("needs root, unshare and Debian's redis-server (scripts/deps.sh)")
    p = subprocess.run(["unshare", "-n", "-m", "-p", "-f", "--mount-proc", "--kill-child", "bash", RIG, ROOT,
                        str(tmp_path_factory.mktemp("ha-redis"))],
                       capture_output=True, text=True, timeout=300)
    results = dict(re.findall(r"^RESULT (\S+) ?(.*)$", p.stdout, re.M))
    print(p.stdout)
    return results, p.stderr[-6000:]


def test_first_start_makes_pod_0_the_primary_of_two_replicas_and_three_sentinels(rig):
    r, log = rig
    assert r["first.roles"].split() == ["master", "slave", "slave"], log
    assert r["first.primaries"] == "redis-0.redis-headless", log
    assert r["first.replicas"] == "2" and r["first.sentinels"] == "2", log


def test_redis_and_sentinels_refuse_clients_without_the_password(rig):
    r, log = rig
    assert r["noauth.redis"].startswith("NOAUTH"), log
    assert r["noauth.sentinel"].startswith("NOAUTH"), log


def test_prestop_hands_the_primary_over_and_it_returns_as_a_replica(rig):
    r, log = rig
    assert int(r["prestop.seconds"]) <= 30, log
    assert r["prestop.roles"].split()[0] == "slave", log
    assert r["prestop.primaries"] in ("redis-1.redis-headless", "redis-2.redis-headless"), log
    assert r["back.log"].startswith("starts as a replica of " + r["prestop.primaries"]), log
    assert sorted(r["back.roles"].split()) == ["master", "slave", "slave"], log


def test_no_write_acknowledged_during_the_handover_is_lost(rig):
    """A write the old primary took after a replica's promotion, acknowledged by its other
    replica (WAIT 1), would vanish when that replica resyncs: preStop refuses writes first."""
    r, log = rig
    assert int(r["handover.acked"]) > 0, log
    assert r["handover.lost"] == "0", log


def test_a_killed_primary_is_replaced_and_returns_as_a_replica(rig):
    r, log = rig
    assert r["kill.failover_seconds"] != "timeout" and int(r["kill.failover_seconds"]) <= 30, log
    assert r["kill.back_log"].startswith("starts as a replica of "), log
    assert sorted(r["kill.roles"].split()) == ["master", "slave", "slave"], log


def test_no_write_lost_across_the_handovers(rig):
    r, log = rig
    assert r["data"].split() == ["kept"] * 3, log
