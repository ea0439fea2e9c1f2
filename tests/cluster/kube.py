"""Helpers for tests/cluster: the real cluster's tools, waits, and a recording order client.

kubectl, helm and tilt are the pinned builds in $BAKERY_TOOLS (scripts/tools.sh); the cluster
is scripts/cluster.sh's, reached through the kubeconfig it prints.
"""

import http.client
import json
import os
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.environ.get("BAKERY_TOOLS", os.path.expanduser("~/.cache/bakery-tools"))
CLUSTER_SH = os.path.join(ROOT, "scripts", "cluster.sh")


def tool(name):
    path = os.path.join(TOOLS, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} missing: run scripts/tools.sh")
    return path


def env():
    """The environment every tool runs in: the cluster's kubeconfig, the tools on PATH."""
    kubeconfig = subprocess.run([CLUSTER_SH, "kubeconfig"], capture_output=True, text=True,
                                check=True).stdout.strip()
    return dict(os.environ, KUBECONFIG=kubeconfig,
                PATH=TOOLS + os.pathsep + os.environ.get("PATH", ""))


def run(argv, check=True, timeout=600, **kw):
    """Runs argv in the repository root with env(); the CompletedProcess (text). With check,
    a non-zero exit fails the test with the tail of its output."""
    p = subprocess.run(argv, cwd=kw.pop("cwd", ROOT), capture_output=True, text=True,
                       timeout=timeout, env=kw.pop("env", None) or env(), **kw)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {p.returncode}\n"
                    f"--- stdout\n{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-6000:]}")
    return p


def kubectl(*args, **kw):
    return run([tool("kubectl"), *args], **kw)


def helm(*args, **kw):
    return run([tool("helm"), *args], **kw)


def kjson(*args):
    """`kubectl get ... -o json`, parsed."""
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def wait(what, predicate, timeout, interval=1.0):
    """Polls predicate() until it returns a truthy value (returned); fails after timeout."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = predicate()
        except Exception as e:  # a transient API error is retried like a false
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout}s (last: {last!r})")


def flow_time(name, t0):
    """Prints a flow's duration in the form the README quotes."""
    print(f"\nflow: {name}: {time.monotonic() - t0:.1f}s", flush=True)


def service_ip(namespace, name):
    return kjson("service", name, "-n", namespace)["spec"]["clusterIP"]


def pods(namespace, selector):
    """The pods matching a label selector that are not being deleted."""
    items = kjson("pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


class OrderLoad:
    """Posts orders over HTTP/1.1 keep-alive from `workers` threads until stopped, recording
    every accepted key and every failure; then checks that each accepted order finishes.

    A failure is any answer but 202 or any connection error; `refused` keeps 503s apart
    (the documented answer while a dependency is down, when nothing is accepted).

    `rate` (orders/s from all workers together) stays well under what the chart's bakers
    finish (2 pods x 4 at a time, croissants of ~110 ms: ~70/s): the flows test faults, not
    an ever-growing backlog, whose size would depend on how fast the machine answers."""

    def __init__(self, host, port=8000, workers=4, rate=40):
        self.host, self.port, self.workers = host, port, workers
        self.interval = workers / rate  # between one worker's orders
        self.accepted, self.failures, self.refused = [], [], 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def __enter__(self):
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)
        self._threads = []

    def _loop(self, worker):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        n = 0
        due = time.monotonic()
        while not self._stop.is_set():
            n += 1
            body = json.dumps({"customer": f"load-{worker}-{n}", "pastry": "croissant"})
            try:
                conn.request("POST", "/orders", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                with self._lock:
                    self.failures.append(f"{type(e).__name__}: {e}")
                time.sleep(0.2)
                continue
            with self._lock:
                if r.status == 202:
                    self.accepted.append(json.loads(data)["orderKey"])
                else:
                    self.failures.append(f"{r.status} {data[:200]!r}")
                    if r.status == 503:
                        self.refused += 1
            # The next order on schedule; after a slow answer, not a burst to catch up.
            due = max(due + self.interval, time.monotonic())
            self._stop.wait(due - time.monotonic())
        conn.close()

    def unfinished(self, stall, limit=900):
        """Polls every accepted order until all are finished; returns {key: last status} of
        those that never did. A backlog the bakers are still working through is not a loss:
        the wait ends when `stall` seconds pass with no order newly finished (or after
        `limit`), and prints how long the backlog took to drain."""
        left = {k: None for k in self.accepted}
        t0 = time.monotonic()
        progress = t0
        conn = None
        while left:
            before = len(left)
            for key in list(left):
                try:
                    conn = conn or http.client.HTTPConnection(self.host, self.port, timeout=10)
                    conn.request("GET", f"/orders/{key}")
                    r = conn.getresponse()
                    data = r.read()
                    st = json.loads(data).get("status") if r.status == 200 else f"http {r.status}"
                except (OSError, http.client.HTTPException, ValueError) as e:
                    st = type(e).__name__
                    if conn:
                        conn.close()
                    conn = None
                if st == "finished":
                    del left[key]
                else:
                    left[key] = st
            now = time.monotonic()
            if len(left) < before:
                progress = now
            if not left or now - progress > stall or now - t0 > limit:
                break
            time.sleep(2)
        if conn:
            conn.close()
        print(f"\nall accepted orders polled: {len(self.accepted) - len(left)} finished, "
              f"{len(left)} not, after {time.monotonic() - t0:.1f}s", flush=True)
        return left
