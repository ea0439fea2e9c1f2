"""The highly available flows on a real cluster (scripts/cluster.sh), in order, each printing its
duration ("flow: NAME: Ns"):
 1. install: k8s/ha applied (the credentials Job makes bakery-ha-credentials; three RabbitMQ
    nodes form one cluster; Redis has a primary, two replicas and three Sentinels agreeing on
    it), the chart installed with ci/ha-values.yaml, `helm test`;
 2. a client without the credentials (or with guest's) is refused by Redis, by the Sentinels
    and by RabbitMQ; with them it is let in;
 3. faults under load (k6 and keep-alive clients): the pod of the quorum queue's leader, the
    Redis primary's pod, a reception pod and a baker pod deleted in turn; every 202 reaches
    finished (0 lost), nothing is dead-lettered, the only failures are JSON 503 refusals, and
    the longest stretch without an accepted order around each fault is printed (target:
    under 15 s);
 4. uninstall: nothing of ours left, the generated Secret included.
The namespace and release are neither "bakery" nor "default", nor test_flows.py's.
"""

import base64
import json
import os
import re
import socket
import subprocess
import threading
import time

import pytest

import kube

NS = "bakery-ha-flows"
RELEASE = "hashop"
RECEPTION = f"{RELEASE}-bakery-reception"
SECRET = "bakery-ha-credentials"
QUEUE = "orders"
# The target for the longest stretch without an accepted order around one fault.
WINDOW_TARGET_S = 15.0


@pytest.fixture(scope="module", autouse=True)
def ha_cluster(cluster, images):
    """The session's cluster; up again (with the images pushed) when test_flows.py's last
    flow already took it down in this session, and down again at the end then."""
    if subprocess.run([kube.CLUSTER_SH, "status"], capture_output=True).returncode == 0:
        yield
        return
    t0 = time.monotonic()
    kube.run([kube.CLUSTER_SH, "up"], timeout=1800)
    import conftest  # tests/cluster/conftest.py: the images the cluster needs
    kube.run([kube.CLUSTER_SH, "push", f"bakery/reception:{images}", f"bakery/baker:{images}",
              *conftest.referenced_images()], timeout=900)
    kube.flow_time("cluster up again for the HA flows", t0)
    yield
    if os.environ.get("BAKERY_KEEP_CLUSTER") != "1":
        kube.run([kube.CLUSTER_SH, "down"], timeout=300, check=False)


def kubectl(*args, **kw):
    return kube.kubectl("-n", NS, *args, **kw)


def rollout(kind_name, timeout=600):
    kubectl("rollout", "status", kind_name, f"--timeout={timeout}s", timeout=timeout + 30)


def secret():
    data = kube.kjson("secret", SECRET, "-n", NS)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def rabbitmqctl(*args, pod="rabbitmq-0"):
    """rabbitmqctl in a RabbitMQ pod (its environment carries the long node name)."""
    return kubectl("exec", pod, "-c", "rabbitmq", "--", "rabbitmqctl", "-q", *args,
                   timeout=120).stdout


def sentinel(*args, pod="redis-0"):
    """redis-cli against a pod's Sentinel (REDISCLI_AUTH is in the container's environment)."""
    return kubectl("exec", pod, "-c", "sentinel", "--", "redis-cli", "--no-auth-warning",
                   "-p", "26379", *args, timeout=60).stdout.split()


def redis_primary_pod():
    host, _port = sentinel("SENTINEL", "get-master-addr-by-name", "mymaster")
    return host.split(".")[0]  # redis-<n>.redis-headless -> redis-<n>


def quorum_leader_pod():
    queues = json.loads(rabbitmqctl("list_queues", "name", "type", "leader", "--formatter",
                                    "json"))
    (q,) = [q for q in queues if q["name"] == QUEUE]
    assert q["type"] in ("quorum", "rabbit_quorum_queue"), q
    return q["leader"].split("@", 1)[1].split(".")[0]  # rabbit@rabbitmq-<n>.rabbitmq-headless


def resp(ip, port, *command):
    """One command in RESP over a new connection, no AUTH; the first line of the answer."""
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(("*%d\r\n" % len(command) + "".join(
            "$%d\r\n%s\r\n" % (len(c), c) for c in command)).encode())
        return s.recv(4096).decode(errors="replace").split("\r\n")[0]


def pod_ip(name):
    return kube.kjson("pod", name, "-n", NS)["status"]["podIP"]


def amqp_publish(ip, username, password):
    """Publishes one message to an unbound routing key (dropped, nothing queued) as username;
    the exit status (0: logged in and published)."""
    return subprocess.run(["amqp-publish", f"--server={ip}", "--port=5672",
                           f"--username={username}", f"--password={password}",
                           "-r", "bakery-ha-flows.nowhere", "-b", "x"],
                          capture_output=True, text=True, timeout=30)


class Windows:
    """Watches an OrderLoad: the longest stretch with no newly accepted order within each
    marked period (a fault and its recovery)."""

    def __init__(self, load):
        self.load, self.longest, self._stop = load, {}, threading.Event()
        self._period = None
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def mark(self, period):
        self._period = period
        self.longest.setdefault(period, 0.0)

    def _watch(self):
        count, last = len(self.load.accepted), time.monotonic()
        while not self._stop.is_set():
            time.sleep(0.1)
            now, n = time.monotonic(), len(self.load.accepted)
            if n != count:
                count, last = n, now
            if self._period is not None:
                self.longest[self._period] = max(self.longest[self._period], now - last)


# ---------------------------------------------------------------------------------------------
def test_ha_1_install(cluster):
    t0 = time.monotonic()
    # Applied, not created: a run interrupted before test_ha_4 may have left it.
    kube.kubectl("apply", "-f", "-", input=kube.kubectl(
        "create", "namespace", NS, "--dry-run=client", "-o", "yaml").stdout)
    kubectl("apply", "-k", "k8s/ha")
    kubectl("wait", "--for=condition=complete", f"job/{SECRET}", "--timeout=300s", timeout=330)
    assert set(secret()) == {"rabbitmq-username", "rabbitmq-password", "rabbitmq-erlang-cookie",
                             "redis-password"}
    for obj in ("statefulset/rabbitmq", "statefulset/redis", "deployment/otel-collector",
                "deployment/jaeger"):
        rollout(obj)
    # One RabbitMQ cluster of three running nodes, the same seen from each.
    for i in range(3):
        status = json.loads(rabbitmqctl("cluster_status", "--formatter", "json",
                                        pod=f"rabbitmq-{i}"))
        running = sorted(status["running_nodes"])
        assert running == [f"rabbit@rabbitmq-{n}.rabbitmq-headless" for n in range(3)], status
    # Redis: every Sentinel names the same primary, knows two replicas and its two peers.
    primaries = {tuple(sentinel("SENTINEL", "get-master-addr-by-name", "mymaster",
                                pod=f"redis-{i}")) for i in range(3)}
    assert len(primaries) == 1, primaries
    # The Sentinels find each other and the replicas by their hello messages, every 2 s.
    kube.wait("the Sentinels know each other", lambda: " ".join(
        sentinel("SENTINEL", "ckquorum", "mymaster")).startswith("OK 3 usable"), 60, 1)

    def replicas():
        return kubectl("exec", "redis-0", "-c", "sentinel", "--", "redis-cli",
                       "--no-auth-warning", "-p", "26379", "SENTINEL", "replicas",
                       "mymaster").stdout
    kube.wait("the Sentinels know both replicas", lambda: len(re.findall(
        r"^redis-\d\.redis-headless:6379$", replicas(), re.M)) == 2, 60, 1)
    kube.helm("install", RELEASE, "charts/bakery", "-n", NS, "--wait", "--timeout", "6m",
              "-f", "charts/bakery/ci/ha-values.yaml",
              "--set", "global.imageRegistry=localhost:5000", timeout=420)
    out = kube.helm("test", RELEASE, "-n", NS, "--logs", "--timeout", "3m", timeout=240).stdout
    assert re.search(r"Phase:\s+Succeeded", out), out
    assert len(kube.pods(NS, f"app.kubernetes.io/instance={RELEASE},"
                             "app.kubernetes.io/component=reception")) >= 2
    # The services declared the orders queue as a quorum queue, led by one of the nodes.
    print(f"\norders queue leader: {quorum_leader_pod()}; Redis primary: {redis_primary_pod()}")
    kube.flow_time("HA install: k8s/ha, helm install -f ci/ha-values.yaml, helm test", t0)


def test_ha_2_clients_without_credentials_are_refused(cluster):
    t0 = time.monotonic()
    creds = secret()
    for i in range(3):
        ip = pod_ip(f"redis-{i}")
        for port in (6379, 26379):
            assert resp(ip, port, "PING").startswith("-NOAUTH"), (i, port)
            assert resp(ip, port, "AUTH", "wrong-password").startswith("-WRONGPASS"), (i, port)
            assert resp(ip, port, "AUTH", creds["redis-password"]) == "+OK", (i, port)
    rabbit = kube.service_ip(NS, "rabbitmq")
    for user, password in (("guest", "guest"), (creds["rabbitmq-username"], "wrong-password")):
        p = amqp_publish(rabbit, user, password)
        assert p.returncode != 0, (user, p.stdout, p.stderr)
    p = amqp_publish(rabbit, creds["rabbitmq-username"], creds["rabbitmq-password"])
    assert p.returncode == 0, p.stderr
    users = rabbitmqctl("list_users", "--formatter", "json")
    assert "guest" not in [u["user"] for u in json.loads(users)], users
    kube.flow_time("HA: clients without credentials refused", t0)


def test_ha_3_faults_under_load(cluster):
    t0 = time.monotonic()
    from test_flows import k6_delete, k6_job  # the k6 Job exactly as the other flows run it
    k6 = k6_job(NS, f"http://{RECEPTION}:8000")
    component = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component="
    faults = [
        ("quorum leader", lambda: quorum_leader_pod(), "app.kubernetes.io/name=rabbitmq",
         "statefulset/rabbitmq"),
        ("redis primary", lambda: redis_primary_pod(), "app.kubernetes.io/name=redis",
         "statefulset/redis"),
        ("reception", None, component + "reception", f"deployment/{RECEPTION}"),
        ("baker", None, component + "baker", f"deployment/{RELEASE}-bakery-baker"),
    ]
    with kube.OrderLoad(kube.service_ip(NS, RECEPTION)) as load, Windows(load) as windows:
        time.sleep(10)
        for name, victim, selector, owner in faults:
            before = kube.pods(NS, selector)
            pod = victim() if victim else before[0]["metadata"]["name"]
            (uid,) = [p["metadata"]["uid"] for p in before if p["metadata"]["name"] == pod]
            windows.mark(name)
            t = time.monotonic()
            kubectl("delete", "pod", pod, "--wait=false")

            def replaced():
                now = kube.pods(NS, selector)
                return (len(now) == len(before) and all(map(kube.ready, now))
                        and uid not in [p["metadata"]["uid"] for p in now])
            kube.wait(f"{name}: pod {pod} replaced and ready", replaced, 600, 0.5)
            rollout(owner)
            time.sleep(10)  # orders flow again on the recovered set before the next fault
            after = {"quorum leader": quorum_leader_pod, "redis primary": redis_primary_pod}
            now = after[name]() if name in after else "-"
            print(f"\nfault: {name}: deleted {pod}; back in {time.monotonic() - t:.1f}s; "
                  f"longest stretch without an accepted order {windows.longest[name]:.1f}s; "
                  f"now {now}; accepted so far {len(load.accepted)}", flush=True)
        windows.mark("after")
        time.sleep(5)
    lost = load.unfinished(120)
    others = [f for f in load.failures if not f.startswith("503 ")]
    queues = json.loads(rabbitmqctl("list_queues", "name", "messages", "messages_ready",
                                    "messages_unacknowledged", "consumers", "--formatter",
                                    "json"))
    dead = {q["name"]: q["messages"] for q in queues}
    print(f"\nHA faults: accepted {len(load.accepted)}, finished "
          f"{len(load.accepted) - len(lost)}, lost {len(lost)}; refused (JSON 503) "
          f"{load.refused}, other failures {len(others)}; dead letters "
          f"{dead.get(QUEUE + '.dead')}; longest stretch without an accepted order: " +
          ", ".join(f"{k} {v:.1f}s" for k, v in windows.longest.items()))
    if lost:
        print("lost:", json.dumps(dict(list(lost.items())[:20]), indent=1), "\nqueues:", queues,
              "\nbakers:", kubectl("logs", "-l", component + "baker", "--tail=40", "--prefix",
                                   check=False).stdout)
    k6_delete(NS, k6)
    assert len(load.accepted) > 100
    assert not lost, f"{len(lost)} accepted orders never finished"
    assert dead.get(QUEUE + ".dead", 0) == 0
    assert others == [], others[:20]  # refusals are JSON 503s; nothing hung or was reset
    for fault, window in windows.longest.items():
        assert window < WINDOW_TARGET_S, (fault, window)
    kube.flow_time("HA faults under load (quorum leader, Redis primary, reception, baker)", t0)


def test_ha_4_uninstall_leaves_nothing(cluster):
    t0 = time.monotonic()
    kube.helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "3m", timeout=240)
    kubectl("delete", "-k", "k8s/ha", "--wait=true", timeout=600)
    kubectl("delete", "secret", SECRET)

    def leftovers():
        items = kube.kjson("all,configmaps,secrets,pvc,serviceaccounts,pdb,networkpolicies,"
                           "jobs,roles,rolebindings", "-n", NS)["items"]
        return [f'{i["kind"]}/{i["metadata"]["name"]}' for i in items
                if i["metadata"]["name"] not in ("kube-root-ca.crt", "default")]
    kube.wait("nothing of ours left", lambda: leftovers() == [], 300, 2)
    kube.kubectl("delete", "namespace", NS, "--wait=true", timeout=300)
    kube.flow_time("HA uninstall", t0)
