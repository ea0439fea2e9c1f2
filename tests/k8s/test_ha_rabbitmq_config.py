"""k8s/ha/rabbitmq's start.sh and rabbitmq.conf for real, without Kubernetes: three nodes of
Debian's rabbitmq-server (the stand-in image's) started at once, each in its own network
namespace, named rabbitmq-<n>.rabbitmq-headless (ha-rabbitmq-rig.sh). They form one cluster
by classic_config with long names and the shared cookie, with pause_minority; the user is the
Secret's, guest does not exist."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from k8stools import ROOT

RIG = os.path.join(ROOT, "tests", "k8s", "ha-rabbitmq-rig.sh")
NODES = [f"rabbit@rabbitmq-{i}.rabbitmq-headless" for i in range(3)]


@pytest.fixture(scope="module")
def rig():
    if (os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("amqp-publish")
            or not os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server")):
        pytest.skip("needs root, unshare, amqp-tools and Debian's rabbitmq-server (scripts/deps.sh)")
    # Not under pytest's tmp_path: the rabbitmq user must reach it (/tmp/pytest-of-root is 0700).
    tmp = tempfile.mkdtemp(prefix="bakery-ha-rabbitmq-")
    os.chmod(tmp, 0o755)
    try:
        p = subprocess.run(["unshare", "-n", "-m", "-p", "-f", "--mount-proc", "--kill-child", "bash", RIG, ROOT,
                            tmp], capture_output=True, text=True, timeout=400)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(p.stdout)
    return dict(re.findall(r"^RESULT (\S+) ?(.*)$", p.stdout, re.M)), p.stderr[-6000:]


def test_three_nodes_started_at_once_form_one_cluster(rig):
    r, log = rig
    assert r["cluster"].split() == NODES, log
    assert r["cluster2"].split() == NODES, log


def test_pause_minority(rig):
    r, log = rig
    assert r["partition"] == "cluster_partition_handling,pause_minority", log


def test_the_secrets_user_only_guest_cannot_log_in(rig):
    r, log = rig
    assert r["users"].split() == ["bakery-abc"], log
    assert r["login.guest"] == "refused", log
    assert r["login.wrong"] == "refused", log
    assert r["login.user"] == "accepted", log
