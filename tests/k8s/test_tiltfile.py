"""The Tiltfile, evaluated by a real Tilt (`tilt alpha tiltfile-result`, no cluster traffic:
a throwaway kubeconfig names a minikube context whose API server is a closed loopback port)."""

import json
import os

import pytest

from k8stools import ROOT, TOOLS, run, tool_path

from harness import free_port  # tests/harness.py, on sys.path via tests/conftest.py

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: minikube
  cluster:
    server: https://127.0.0.1:{port}
contexts:
- name: minikube
  context:
    cluster: minikube
    user: minikube
    namespace: default
current-context: minikube
users:
- name: minikube
  user:
    token: not-a-real-token
"""

TRIGGER_MODE_MANUAL = 2  # Tilt's model.TriggerModeManual: manual, and no auto_init


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tilt")
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=free_port()))
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), TILT_DEV_DIR=str(tmp / "tilt-dev"),
               TILT_DISABLE_ANALYTICS="1", DO_NOT_TRACK="1",
               PATH=TOOLS + os.pathsep + os.environ["PATH"])  # helm() runs `helm template`
    p = run([tool_path("tilt"), "alpha", "tiltfile-result", "-f", "Tiltfile"], env=env,
            check=False)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stderr[-4000:]}"
    return json.loads(p.stdout)


def manifests(result):
    return {m["Name"]: m for m in result["Manifests"]}


def test_resources_and_labels(result):
    ms = manifests(result)
    expected = {"redis": "infra", "rabbitmq": "infra", "otel-collector": "infra",
                "jaeger": "infra", "reception": "app", "baker": "app", "k6": "tools"}
    for name, label in expected.items():
        assert name in ms, sorted(ms)
        assert label in (ms[name].get("Labels") or {}), (name, ms[name].get("Labels"))
    # The chart's `helm test` pod is filtered out of the dev loop.
    assert not any("test-order" in n for n in ms)


def test_services_wait_for_their_infrastructure(result):
    ms = manifests(result)
    for name in ("reception", "baker"):
        assert set(ms[name]["ResourceDependencies"]) >= {"redis", "rabbitmq", "otel-collector"}


def test_k6_is_manual(result):
    k6 = manifests(result)["k6"]
    assert k6["TriggerMode"] == TRIGGER_MODE_MANUAL
    text = json.dumps(k6)
    assert "k6-script" in text and "grafana/k6:1.8.1" in text


def test_port_forwards_and_links(result):
    ms = manifests(result)
    for name, port in (("reception", 8000), ("baker", 8001), ("jaeger", 16686),
                       ("rabbitmq", 15672)):
        target = ms[name]["DeployTarget"]
        forwards = target["portForwardTemplateSpec"]["forwards"]
        assert {"localPort": port, "containerPort": port} in [
            {k: f[k] for k in ("localPort", "containerPort")} for f in forwards], name
        assert target["Links"], name


@pytest.mark.parametrize("service", ["reception", "baker"])
def test_dev_build_with_live_update(result, service):
    (image,) = manifests(result)[service]["ImageTargets"]
    assert image["BuildDetails"]["target"] == "dev"
    assert image["BuildDetails"]["dockerfileContents"].startswith(f"# {service}'s images")
    # only=: the build context is the Makefile, common/, the service and dev-run.sh.
    assert ["**", "!Makefile", "!common", f"!{service}", "!scripts/dev-run.sh"] in [
        i.get("patterns") for i in image["BuildDetails"]["contextIgnores"]]
    live = image["LiveUpdateSpec"]
    assert {(s["localPath"], s["containerPath"]) for s in live["syncs"]} == {
        ("common", "/src/common/"), (service, f"/src/{service}/")}
    assert [e["args"] for e in live["execs"]] == [["sh", "-c", "touch /tmp/.restart"]]
