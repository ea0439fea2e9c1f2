"""Fixtures for tests/cluster: a real Kubernetes (scripts/cluster.sh) with Bakery's images.

Session-scoped:
    cluster   brings the cluster up (timed; one already up is taken down first) and down at
              the end, unless a test already did or BAKERY_KEEP_CLUSTER=1; yields the host
              state recorded before up (sysctls, iptables chains, interfaces) for the test
              that checks down leaves nothing.
    images    `make images` (tagged with the chart's appVersion) and the infrastructure
              images (official where they can be pulled, stand-ins otherwise), all pushed to
              the cluster's registry under the names the manifests use.
"""

import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kube  # noqa: E402

SYSCTLS = ["kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory",
           "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
           "net.ipv4.conf.all.route_localnet", "net.netfilter.nf_conntrack_max"]


def host_state():
    """What the cluster may change on the host, to compare before up and after down."""
    sysctls = {s: subprocess.run(["sysctl", "-n", s], capture_output=True,
                                 text=True).stdout.strip() for s in SYSCTLS}
    chains = sorted(
        line.split()[1]
        for table in ("filter", "nat", "mangle")
        for line in subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                                   text=True).stdout.splitlines()
        if line.startswith("-N "))
    links = sorted(subprocess.run(["ip", "-o", "link", "show"], capture_output=True,
                                  text=True).stdout.split("\n"))
    links = sorted(line.split(":")[1].strip().split("@")[0] for line in links if line)
    return {"sysctls": sysctls, "chains": chains, "links": links}


@pytest.fixture(scope="session")
def cluster():
    # A cluster left up (BAKERY_KEEP_CLUSTER=1, an interrupted run) would make the baseline
    # that the teardown check compares with: start from none.
    if subprocess.run([kube.CLUSTER_SH, "status"], capture_output=True).returncode == 0:
        subprocess.run([kube.CLUSTER_SH, "down"], capture_output=True, timeout=300)
    before = host_state()
    t0 = time.monotonic()
    p = subprocess.run([kube.CLUSTER_SH, "up"], capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        subprocess.run([kube.CLUSTER_SH, "down"], capture_output=True, timeout=300)
        pytest.fail(f"cluster.sh up exited {p.returncode}\n{p.stdout[-3000:]}\n"
                    f"{p.stderr[-6000:]}")
    kube.flow_time("cluster up", t0)
    yield before
    if os.environ.get("BAKERY_KEEP_CLUSTER") != "1":
        subprocess.run([kube.CLUSTER_SH, "down"], capture_output=True, timeout=300)


def chart_app_version():
    with open(os.path.join(kube.ROOT, "charts", "bakery", "Chart.yaml")) as f:
        return re.search(r'^appVersion:\s*"?([^"\s]+)', f.read(), re.M).group(1)


def referenced_images():
    """Every image the infrastructure (light and HA), the k6 Job and the chart's test pod
    name."""
    text = "".join(kube.kubectl("kustomize", d).stdout for d in ("k8s", "k8s/k6", "k8s/ha"))
    text += kube.helm("template", "x", "charts/bakery").stdout
    return sorted({m for m in re.findall(r'^\s*image:\s*"?([^"\s]+)', text, re.M)
                   if "bakery/" not in m})


@pytest.fixture(scope="session")
def images(cluster):
    t0 = time.monotonic()
    kube.run(["scripts/images.sh"], timeout=1800)
    kube.run(["scripts/standin-images.sh", "all"], timeout=1800)
    version = chart_app_version()
    kube.run([kube.CLUSTER_SH, "push", f"bakery/reception:{version}", f"bakery/baker:{version}",
              *referenced_images()], timeout=900)
    kube.flow_time("images built and pushed", t0)
    return version
