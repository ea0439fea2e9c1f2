"""The Kubernetes flows the README promises, run on a real cluster (scripts/cluster.sh).

In order, each printing its duration ("flow: NAME: Ns"):
 1. helm install: k8s/ applied, the chart installed with its defaults plus only
    global.imageRegistry, `helm test`, the k6 smoke Job from k8s/k6 meeting its thresholds;
 2. helm upgrade under load: both Deployments roll while orders are posted; zero failed
    requests, zero lost orders;
 3. chaos under load: the baker, a reception, the RabbitMQ and the Redis pod deleted in turn;
    every 202 reaches finished;
 4. helm uninstall and kubectl delete -k k8s/: nothing of ours left;
 5. tilt ci with the project's Tiltfile, every resource green;
 6. tilt up: a C change served through Tilt's port forward (timed), a compile error shown as
    a failed update while the old process serves, the fix recovering;
 7. tilt trigger k6, twice, on that tilt up: a new Job each time, meeting its thresholds;
 8. cluster.sh down: no process, chain, interface, mount or sysctl left changed.
The release and namespace are not "bakery"/"default" on purpose: nothing may assume them.
Tilt runs in a copy of the working tree, so the flows edit C there, never in the checkout.
"""

import json
import os
import re
import subprocess
import time

import pytest

import kube

NS = "bakery-flows"
RELEASE = "shop"
RECEPTION = f"{RELEASE}-bakery-reception"
BAKER = f"{RELEASE}-bakery-baker"
TILT_PORT = "10371"


def k6_job(namespace, target):
    """Applies k8s/k6 for a reception at target (set where the k6 target is set, the
    k6-target ConfigMap); returns the rendered objects, for k6_delete."""
    text = kube.kubectl("kustomize", "k8s/k6").stdout
    assert "BASE_URL: http://bakery-reception:8000" in text, "k8s/k6 names no default target"
    text = text.replace("http://bakery-reception:8000", target)
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=text)
    return text


def k6_delete(namespace, text):
    kube.kubectl("delete", "-n", namespace, "--wait=true", "-f", "-", input=text)


def wait_job(namespace, name, timeout):
    """Waits for a Job to succeed (k6 exits non-zero when a threshold fails); its log."""
    def done():
        st = kube.kjson("job", name, "-n", namespace).get("status", {})
        if st.get("failed"):
            log = kube.kubectl("logs", "-n", namespace, f"job/{name}", check=False).stdout
            pytest.fail(f"job {name} failed:\n{log[-4000:]}")
        return st.get("succeeded")
    kube.wait(f"job {name}", done, timeout, interval=2)
    return kube.kubectl("logs", "-n", namespace, f"job/{name}").stdout


def thresholds_line(log):
    """k6's summary lines for the figures its thresholds are on."""
    return [ln.strip() for ln in log.splitlines() if re.match(
        r"\s*(checks|http_req_failed|order_completion_time|orders_failed|orders_finished|"
        r"iterations)\.{3}", ln)]


def rollout(kind_name, timeout=300):
    kube.kubectl("rollout", "status", "-n", NS, kind_name, f"--timeout={timeout}s",
                 timeout=timeout + 30)


# ---------------------------------------------------------------------------------------------
def test_1_helm_install(cluster, images):
    t0 = time.monotonic()
    kube.kubectl("create", "namespace", NS)
    kube.kubectl("apply", "-n", NS, "-k", "k8s")
    for obj in ("statefulset/redis", "statefulset/rabbitmq", "deployment/otel-collector",
                "deployment/jaeger"):
        rollout(obj, 400)
    kube.helm("install", RELEASE, "charts/bakery", "-n", NS, "--wait", "--timeout", "5m",
              "--set", "global.imageRegistry=localhost:5000", timeout=420)
    out = kube.helm("test", RELEASE, "-n", NS, "--logs", "--timeout", "3m", timeout=240).stdout
    assert re.search(r"Phase:\s+Succeeded", out), out
    for pod in kube.pods(NS, "app.kubernetes.io/instance=" + RELEASE):
        for c in pod["spec"]["containers"]:
            assert c["image"].startswith(f"localhost:5000/bakery/"), c["image"]
            assert c["image"].endswith(":" + images), c["image"]
    k6 = k6_job(NS, f"http://{RECEPTION}:8000")
    log = wait_job(NS, "k6", 300)
    print("\n".join(thresholds_line(log)))
    assert re.search(r"orders_failed\.*: 0\.00%", log), log[-3000:]
    k6_delete(NS, k6)
    kube.flow_time("helm install + helm test + k6 smoke Job", t0)


def test_2_helm_upgrade_under_load(cluster):
    t0 = time.monotonic()
    before = {p["metadata"]["name"] for p in kube.pods(NS, "app.kubernetes.io/instance=" + RELEASE)}
    with kube.OrderLoad(kube.service_ip(NS, RECEPTION)) as load:
        time.sleep(3)
        kube.helm("upgrade", RELEASE, "charts/bakery", "-n", NS, "--reuse-values", "--wait",
                  "--timeout", "5m", "--set", "logLevel=debug", timeout=420)
        # The load goes on until the old pods are gone, terminating ones included.
        kube.wait("the old pods gone", lambda: not before & {
            p["metadata"]["name"] for p in kube.kjson("pods", "-n", NS)["items"]}, 120)
        time.sleep(2)
    after = {p["metadata"]["name"] for p in kube.pods(NS, "app.kubernetes.io/instance=" + RELEASE)}
    lost = load.unfinished(120)
    print(f"\nupgrade under load: accepted {len(load.accepted)}, failed {len(load.failures)}, "
          f"lost {len(lost)}; pods replaced: {len(before - after)} of {len(before)}")
    assert not (before & after), f"not every pod was replaced: {before & after}"
    assert len(load.accepted) > 50
    assert load.failures == []
    assert not lost, f"{len(lost)} accepted orders never finished"
    kube.flow_time("helm upgrade under load", t0)


def test_3_chaos_under_load(cluster):
    t0 = time.monotonic()
    k6 = k6_job(NS, f"http://{RECEPTION}:8000")
    victims = [("baker", f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=baker",
                f"deployment/{BAKER}"),
               ("reception", f"app.kubernetes.io/instance={RELEASE},"
                "app.kubernetes.io/component=reception", f"deployment/{RECEPTION}"),
               ("rabbitmq", "app.kubernetes.io/name=rabbitmq", "statefulset/rabbitmq"),
               ("redis", "app.kubernetes.io/name=redis", "statefulset/redis")]
    with kube.OrderLoad(kube.service_ip(NS, RECEPTION)) as load:
        for name, selector, owner in victims:
            time.sleep(5)
            before = kube.pods(NS, selector)
            pod, uid = before[0]["metadata"]["name"], before[0]["metadata"]["uid"]
            t = time.monotonic()
            kube.kubectl("delete", "pod", "-n", NS, pod, "--wait=false")

            def replaced():
                now = kube.pods(NS, selector)
                return (len(now) == len(before) and all(map(kube.ready, now))
                        and uid not in [p["metadata"]["uid"] for p in now])
            kube.wait(f"{name} pod {pod} replaced and ready", replaced, 300, 0.5)
            rollout(owner, 300)
            print(f"\nchaos: deleted {name} pod {pod}; back in {time.monotonic() - t:.1f}s; "
                  f"accepted so far {len(load.accepted)}", flush=True)
        time.sleep(5)
    lost = load.unfinished(120)
    print(f"\nchaos: accepted {len(load.accepted)}, finished {len(load.accepted) - len(lost)}, "
          f"lost {len(lost)}; refused (503 while a dependency was down) {load.refused}, "
          f"other failures {len(load.failures) - load.refused}")
    if lost:
        print("lost:", json.dumps(dict(list(lost.items())[:20]), indent=1), "\nbaker:",
              kube.kubectl("logs", "-n", NS, f"deployment/{BAKER}", "--tail=40",
                           check=False).stdout)
    assert len(load.accepted) > 50
    assert not lost, f"{len(lost)} accepted orders never finished"
    k6_delete(NS, k6)
    kube.flow_time("chaos under load", t0)


def test_4_uninstall_leaves_nothing(cluster):
    t0 = time.monotonic()
    kube.helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "3m", timeout=240)
    kube.kubectl("delete", "-n", NS, "-k", "k8s", "--wait=true", timeout=300)

    def leftovers():
        items = kube.kjson("all,configmaps,secrets,pvc,serviceaccounts,pdb,networkpolicies,"
                           "jobs,roles,rolebindings", "-n", NS)["items"]
        return [f'{i["kind"]}/{i["metadata"]["name"]}' for i in items
                if i["metadata"]["name"] not in ("kube-root-ca.crt", "default")]
    end = time.monotonic() + 180
    while leftovers() and time.monotonic() < end:
        time.sleep(2)
    assert leftovers() == []
    kube.kubectl("delete", "namespace", NS, "--wait=true", timeout=300)
    kube.flow_time("helm uninstall + kubectl delete -k k8s", t0)


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of the working tree (tracked and untracked, not ignored files): Tilt runs there,
    so the flows can edit C sources without touching the checkout."""
    dest = tmp_path_factory.mktemp("tilt") / "bakery"
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"],
                           cwd=kube.ROOT, capture_output=True, check=True).stdout
    dest.mkdir()
    archive = subprocess.run(["tar", "-C", kube.ROOT, "--null", "--ignore-failed-read", "-T", "-",
                              "-cf", "-"], input=files, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-C", str(dest), "-xf", "-"], input=archive, check=True)
    return str(dest)


def tilt(*args, cwd=kube.ROOT, **kw):
    return kube.run([kube.tool("tilt"), *args], cwd=cwd, **kw)


def uiresources():
    out = tilt("get", "uiresources", "-o", "json", "--port", TILT_PORT, check=False)
    if out.returncode != 0:
        return {}
    return {i["metadata"]["name"]: i.get("status", {}) for i in json.loads(out.stdout)["items"]}


def test_5_tilt_ci(cluster, images, tree):
    t0 = time.monotonic()
    p = tilt("ci", "--port", TILT_PORT, "--timeout", "15m", check=False, timeout=1200, cwd=tree)
    tail = (p.stdout + p.stderr)[-5000:]
    assert p.returncode == 0, tail
    assert "SUCCESS" in tail
    kube.flow_time("tilt ci", t0)


ROOT_MESSAGE = "reception is attended"


def get_root():
    try:
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def tilt_up(cluster, images, tree):
    """`tilt up` headless on the project's Tiltfile in the copy of the tree; yields the path
    of reception/routes.c there."""
    proc = subprocess.Popen([kube.tool("tilt"), "up", "--port", TILT_PORT, "--stream"],
                            cwd=tree, env=kube.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        kube.wait("tilt up: reception and baker green and served", lambda: all(
            uiresources().get(r, {}).get("runtimeStatus") == "ok" for r in ("reception", "baker"))
            and ROOT_MESSAGE in get_root(), 900, 2)
        kube.flow_time("tilt up (all green, reception served)", t0)
        yield os.path.join(tree, "reception", "routes.c")
    finally:
        proc.terminate()
        proc.wait(60)
        tilt("down", check=False, timeout=600, cwd=tree)


def update_status(name):
    return uiresources().get(name, {}).get("updateStatus")


def test_6_tilt_live_update(tilt_up):
    t0 = time.monotonic()
    routes_c = tilt_up
    with open(routes_c) as f:
        src = f.read()
    # 1. A change of behaviour, timed from the save to the new answer through the forward.
    new = "reception is attended (live)"
    t = time.monotonic()
    with open(routes_c, "w") as f:
        f.write(src.replace(ROOT_MESSAGE, new))
    kube.wait("the new behaviour served", lambda: new in get_root(), 120, 0.05)
    live = time.monotonic() - t
    print(f"\nlive update: save -> new behaviour served in {live:.2f}s (target < 2 s)")
    kube.wait("update ok", lambda: update_status("reception") == "ok", 60)
    # 2. A compile error: the update fails in Tilt, the old process keeps serving.
    with open(routes_c, "w") as f:
        f.write(src.replace(ROOT_MESSAGE, new) + "\nthis is not C;\n")
    kube.wait("update shown as failed", lambda: update_status("reception") == "error", 120)
    assert new in get_root(), "the old process stopped serving on a failed build"
    # 3. The fix recovers.
    fixed = "reception is attended (fixed)"
    with open(routes_c, "w") as f:
        f.write(src.replace(ROOT_MESSAGE, fixed))
    kube.wait("recovered", lambda: fixed in get_root() and update_status("reception") == "ok",
              120, 0.2)
    kube.flow_time("tilt live update, compile error, fix", t0)
    assert live < 10, f"live update took {live:.1f}s"


def k6_job_now():
    items = kube.kjson("jobs", "-n", "default", "-l", "app.kubernetes.io/name=k6")["items"]
    return items[0] if items else None


def test_7_tilt_trigger_k6_twice(tilt_up):
    t0 = time.monotonic()
    seen = set()
    for run in (1, 2):
        tilt("trigger", "k6", "--port", TILT_PORT)
        job = kube.wait(f"k6 run {run}: a new Job", lambda: (j := k6_job_now())
                        and j["metadata"]["uid"] not in seen and j, 120, 0.5)
        seen.add(job["metadata"]["uid"])
        log = wait_job("default", job["metadata"]["name"], 300)
        kube.wait(f"k6 run {run}: green in Tilt", lambda: uiresources()["k6"].get(
            "runtimeStatus") == "ok" and update_status("k6") == "ok", 60)
        print(f"\nk6 from Tilt, run {run}:", *thresholds_line(log), sep="\n  ")
        assert re.search(r"orders_failed\.*: 0\.00%", log), log[-3000:]
    kube.flow_time("tilt trigger k6, twice", t0)


def test_8_cluster_down_leaves_nothing(cluster):
    t0 = time.monotonic()
    kube.run([kube.CLUSTER_SH, "down"], timeout=300)
    kube.flow_time("cluster down", t0)
    after = __import__("conftest").host_state()
    procs = subprocess.run(["pgrep", "-a", "-f", "kube-|kubelet|etcd --name bakery|"
                            "containerd --config .*bakery|docker-registry serve"],
                           capture_output=True, text=True).stdout
    assert procs == "", procs
    mounts = [ln for ln in open("/proc/self/mounts") if "bakery-cluster" in ln]
    assert mounts == []
    assert after["sysctls"] == cluster["sysctls"]
    assert [c for c in after["chains"] if c not in cluster["chains"]] == []
    assert [lk for lk in after["links"] if lk not in cluster["links"]] == []
