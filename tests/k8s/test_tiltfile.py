"""The Tiltfile, evaluated by a real Tilt (`tilt alpha tiltfile-result`, no cluster traffic:
a throwaway kubeconfig names a context whose API server is a closed loopback port)."""

import json
import os

import pytest

from k8stools import ROOT, live_update_build, tiltfile_result

TRIGGER_MODE_MANUAL = 2  # Tilt's model.TriggerModeManual: manual, and no auto_init


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    p = tiltfile_result(tmp_path_factory.mktemp("tilt"), "minikube")
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stderr[-4000:]}"
    return json.loads(p.stdout)


def test_local_contexts_only(tmp_path):
    """minikube (above), kind's and the project's test cluster ("bakery", scripts/cluster.sh)
    are allowed; any other cluster is refused as possibly production."""
    for context in ("bakery", "kind-kind"):
        p = tiltfile_result(tmp_path, context)
        assert p.returncode == 0, f"{context}: exit {p.returncode}\n{p.stderr[-4000:]}"
    p = tiltfile_result(tmp_path, "production")
    assert p.returncode != 0
    assert "might be production" in p.stderr


def manifests(result):
    return {m["Name"]: m for m in result["Manifests"]}


def test_resources_and_labels(result):
    ms = manifests(result)
    expected = {"redis": "infra", "rabbitmq": "infra", "otel-collector": "infra",
                "jaeger": "infra", "bakery-config": "app", "reception": "app", "baker": "app",
                "k6": "tools"}
    for name, label in expected.items():
        assert name in ms, sorted(ms)
        assert label in (ms[name].get("Labels") or {}), (name, ms[name].get("Labels"))
    # The chart's `helm test` pod is filtered out of the dev loop.
    assert not any("test-order" in n for n in ms)


def kinds_and_names(manifest):
    """(kind, name) of each object a resource deploys."""
    docs = manifest["DeployTarget"]["yaml"].split("\n---\n")
    out = set()
    for doc in docs:
        kind = next(line.split(": ", 1)[1] for line in doc.splitlines() if line.startswith("kind: "))
        name = next(line.split(": ", 1)[1] for line in doc.splitlines()
                    if line.startswith("  name: "))
        out.add((kind, name))
    return out


def test_services_wait_for_their_infrastructure_and_shared_config(result):
    ms = manifests(result)
    for name in ("reception", "baker"):
        assert set(ms[name]["ResourceDependencies"]) >= {
            "bakery-config", "redis", "rabbitmq", "otel-collector"}


def test_shared_objects_are_a_resource_of_their_own(result):
    """What both services read lives in bakery-config, not in either service's resource, so
    neither starts before it exists and updating one never deletes it under the other."""
    ms = manifests(result)
    shared = {("ConfigMap", "bakery"), ("Secret", "bakery"), ("ServiceAccount", "bakery")}
    assert kinds_and_names(ms["bakery-config"]) == shared
    for name in ("reception", "baker"):
        assert not kinds_and_names(ms[name]) & shared, name
        assert ("Deployment", f"bakery-{name}") in kinds_and_names(ms[name])


def test_names_are_the_charts_own(tmp_path):
    """The Tiltfile takes object names from what the chart renders (bakery.fullname), never
    recomputes them: with a fullnameOverride every resource still finds its objects, and k6
    targets that reception."""
    source = open(os.path.join(ROOT, "Tiltfile")).read()
    assert source.count("DEV_SETTINGS = [\n") == 1
    # Beside the real one: a Tiltfile's paths are relative to its directory.
    copy = f".Tiltfile-release-{os.getpid()}"
    with open(os.path.join(ROOT, copy), "w") as f:
        f.write(source.replace("DEV_SETTINGS = [\n",
                               "DEV_SETTINGS = [\n    'fullnameOverride=shop',\n"))
    try:
        p = tiltfile_result(tmp_path, "minikube", tiltfile=copy)
    finally:
        os.remove(os.path.join(ROOT, copy))
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stderr[-4000:]}"
    ms = manifests(json.loads(p.stdout))
    assert kinds_and_names(ms["bakery-config"]) == {
        ("ConfigMap", "shop"), ("Secret", "shop"), ("ServiceAccount", "shop")}
    for name in ("reception", "baker"):
        assert {("Deployment", f"shop-{name}"),
                ("PodDisruptionBudget", f"shop-{name}")} <= kinds_and_names(ms[name])
    assert "BASE_URL: http://shop-reception:8000" in " ".join(
        ms["k6"]["DeployTarget"]["applyCmd"]["env"])


def test_images_are_tilts_builds_without_a_registry(result):
    """No registry in the chart's references: Tilt matches bakery/<svc> to its builds."""
    ms = manifests(result)
    for name in ("reception", "baker"):
        assert f"image: bakery/{name}:dev\n" in ms[name]["DeployTarget"]["yaml"]
    assert "preStop" not in ms["reception"]["DeployTarget"]["yaml"]  # quick dev restarts


def java_string_hash(text):
    """Starlark's hash() of a string (Java's String.hashCode), as 32 unsigned bits."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h


def test_collector_rolls_when_its_config_changes(result):
    """A checksum of k8s/otel-collector/config.yaml on the Collector's pod template: a changed
    pipeline changes the Deployment, hence a rollout (a ConfigMap change alone would not)."""
    collector = manifests(result)["otel-collector"]
    config = open(os.path.join(ROOT, "k8s", "otel-collector", "config.yaml")).read()
    expected = "%x" % java_string_hash(config)
    assert f"checksum/config: {expected}\n" in collector["DeployTarget"]["yaml"]
    assert ("ConfigMap", "otel-collector-config") in kinds_and_names(collector)


def test_k6_is_manual_and_every_trigger_runs_the_job_anew(result):
    k6 = manifests(result)["k6"]
    assert k6["TriggerMode"] == TRIGGER_MODE_MANUAL
    assert set(k6["ResourceDependencies"]) == {"reception", "baker"}
    deploy = k6["DeployTarget"]
    script = " ".join(deploy["applyCmd"]["args"])
    # An unchanged Job re-applied runs nothing: the previous one is deleted first.
    assert script.index("kubectl delete job k6") < script.index("kubectl apply")
    (objects,) = [e.split("=", 1)[1] for e in deploy["applyCmd"]["env"]
                  if e.startswith("K6_YAML=")]
    assert "grafana/k6:1.8.1" in objects and "name: k6-script" in objects
    # The target is this Tiltfile's release's reception, set in the k6-target ConfigMap.
    assert "BASE_URL: http://bakery-reception:8000" in objects
    assert "kubectl delete" in " ".join(deploy["deleteCmd"]["args"])


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
    # Compile first: a compile error fails the update and the restart never happens.
    assert [e["args"] for e in live["execs"]] == [
        ["sh", "-c", live_update_build(service)],
        ["sh", "-c", "touch /tmp/.restart"]]
