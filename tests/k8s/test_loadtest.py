"""The k6 load test: the script's profiles as k6 reads them, and a real smoke run
(`make loadtest`'s script) against real reception and baker processes, real Redis and
RabbitMQ. Also the chart's `helm test` script against the same services."""

import json
import os

import pytest

from k8stools import CHART, ROOT, run, tool_path

SCRIPT = os.path.join(ROOT, "loadtest", "orders.js")


def inspect(profile):
    argv = [tool_path("k6"), "inspect", "--execution-requirements"]
    if profile:
        argv += ["-e", f"LOADTEST_PROFILE={profile}"]
    return run(argv + [SCRIPT], check=False)


@pytest.mark.parametrize("profile,vus,duration", [
    (None, 2, "30s"), ("smoke", 2, "30s"), ("full", 15, "15m0s")])
def test_profiles(profile, vus, duration):
    p = inspect(profile)
    assert p.returncode == 0, p.stderr
    options = json.loads(p.stdout)
    assert (options["vus"], options["duration"]) == (vus, duration)
    thresholds = options["thresholds"]
    assert any(k.startswith("http_req_duration") and "p(95)" in v[0]
               for k, v in thresholds.items())
    assert thresholds["http_req_failed"] == ["rate<0.01"]
    assert "order_completion_time" in thresholds


def test_unknown_profile_is_refused():
    p = inspect("soak")
    assert p.returncode != 0
    assert "LOADTEST_PROFILE" in p.stderr


def test_smoke_run_against_real_services(bakery, redis_server, tmp_path):
    reception = bakery.reception()
    bakery.baker(BAKE_TIME_SCALE="1.0")
    summary = tmp_path / "summary.json"
    env = dict(os.environ, BASE_URL=reception.url, LOADTEST_PROFILE="smoke",
               BAKERY_TOOLS=os.path.dirname(tool_path("k6")))
    p = run([os.path.join(ROOT, "scripts", "loadtest.sh"), f"--summary-export={summary}"],
            check=False, env=env, timeout=180)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert "order_completion_time" in p.stdout  # the printed summary
    metrics = json.loads(summary.read_text())["metrics"]
    finished = metrics["orders_finished"]["count"]
    assert finished >= 10
    assert metrics["orders_failed"]["value"] == 0
    assert metrics["order_completion_time"]["p(95)"] > 0
    assert all(t is False for m in metrics.values() for t in m.get("thresholds", {}).values())
    # The orders really went through Redis: k6's customers' orders are all finished.
    statuses = [redis_server.hgetall(k) for k in redis_server.keys("order:*")]
    mine = [o for o in statuses if o.get("customer", "").startswith("k6-vu")]
    assert len(mine) >= finished
    assert sum(o["status"] == "finished" for o in mine) >= finished


def test_helm_test_script_against_real_services(bakery):
    reception = bakery.reception()
    bakery.baker()
    env = dict(os.environ, BASE_URL=reception.url, TIMEOUT_SECONDS="30")
    p = run(["sh", os.path.join(CHART, "files", "test-order.sh")], check=False, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "finished" in p.stdout


def test_helm_test_script_fails_without_baker(bakery):
    reception = bakery.reception()  # no baker: the order stays pending
    env = dict(os.environ, BASE_URL=reception.url, TIMEOUT_SECONDS="2")
    p = run(["sh", os.path.join(CHART, "files", "test-order.sh")], check=False, env=env)
    assert p.returncode == 1
    assert "not finished" in p.stderr
