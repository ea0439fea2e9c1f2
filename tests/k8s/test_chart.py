"""The Helm chart: lint, render with every CI values file, validate against the Kubernetes
schemas, reject bad values, and carry the production defaults the issue asks for."""

import glob
import os
import re

import pytest

from k8stools import (CHART, KUBE_VERSION, OFFLINE, ROOT, by_kind_name, kube_schemas, documents,
                      helm_template, run, tool_path, validate)

CI_VALUES = sorted(glob.glob(os.path.join(CHART, "ci", "*-values.yaml")))
CASES = [None] + CI_VALUES


def case_id(values):
    return "default" if values is None else os.path.basename(values)


def values_args(values):
    return [] if values is None else ["-f", values]


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_helm_lint_strict(values):
    out = run([tool_path("helm"), "lint", "--strict", CHART, *values_args(values)]).stdout
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_rendered_manifests_pass_kubernetes_schemas(values, tmp_path):
    text = helm_template(*values_args(values)).stdout
    docs = documents(text)
    assert len(docs) >= 6, text
    for i, doc in enumerate(docs):  # one file per object: errors then name the object
        (tmp_path / f"{i:02d}.yaml").write_text(doc)
    validate([tmp_path])


def test_validator_rejects_an_invalid_manifest(tmp_path):
    """kubectl-validate really checks: a wrong type and an unknown field both fail."""
    text = helm_template().stdout
    deployment = by_kind_name(text)[("Deployment", "bakery-reception")]
    (tmp_path / "type.yaml").write_text(deployment.replace("replicas: 2", 'replicas: "two"'))
    (tmp_path / "field.yaml").write_text(deployment.replace("livenessProbe:", "livenesProbe:"))
    for schemas in (["--local-schemas", kube_schemas("KUBE_OLDEST_VERSION")],
                    ["--local-schemas", kube_schemas()]):
        p = run([tool_path("kubectl-validate"), *schemas, str(tmp_path)], check=False,
                env=OFFLINE)
        assert p.returncode != 0
        assert "spec.replicas" in p.stdout + p.stderr
        assert "livenesProbe" in p.stdout + p.stderr


def test_schema_rejects_bad_values(tmp_path):
    bad = tmp_path / "bad-values.yaml"
    bad.write_text("baker:\n  concurrency: 0\n"
                   "redis:\n  address: redis-without-port\n"
                   "otel:\n  endpoint: otel-collector:4318\n  sampler: sometimes\n"
                   "reception:\n  replicas: 3\n")
    p = helm_template("-f", str(bad), check=False)
    assert p.returncode != 0
    for what in ("/baker/concurrency", "/redis/address", "/otel/endpoint", "/otel/sampler",
                 "'replicas' not allowed"):
        assert what in p.stderr, p.stderr


def test_services_run_hardened_with_probes_and_downward_api():
    objs = by_kind_name(helm_template().stdout)
    for name, port, probe_port in (("reception", "8000", "http"), ("baker", "8001", "health")):
        d = objs[("Deployment", f"bakery-{name}")]
        for needle in (
            "runAsNonRoot: true", "runAsUser: 10001", "type: RuntimeDefault",
            "allowPrivilegeEscalation: false", "readOnlyRootFilesystem: true",
            "drop:\n              - ALL", "automountServiceAccountToken: false",
            f"livenessProbe:\n            httpGet:\n              path: /healthz\n"
            f"              port: {probe_port}",
            f"readinessProbe:\n            httpGet:\n              path: /readyz\n"
            f"              port: {probe_port}",
            "fieldPath: metadata.name", "fieldPath: metadata.namespace",
            "fieldPath: spec.nodeName", "name: K8S_POD_NAME", "name: K8S_NAMESPACE_NAME",
            "name: K8S_NODE_NAME", f"name: OTEL_SERVICE_NAME\n              value: {name}",
            f'prometheus.io/port: "{port}"', "checksum/config: ", "requests:",
            f"image: localhost:5000/bakery/{name}:0.1.0\n",
            "rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0",
            "terminationGracePeriodSeconds: 30",
        ):
            assert needle in d, f"{name}: {needle!r} missing in\n{d}"
        assert ("PodDisruptionBudget", f"bakery-{name}") in objs
        assert ("HorizontalPodAutoscaler", f"bakery-{name}") not in objs
        assert ("NetworkPolicy", f"bakery-{name}") not in objs
    baker = objs[("Deployment", "bakery-baker")]
    assert 'name: BAKER_CONCURRENCY\n              value: "4"' in baker
    assert 'name: HEALTH_PORT\n              value: "8001"' in baker
    config = objs[("ConfigMap", "bakery")]
    for needle in ('DB_HOST: "redis:6379"', 'RABBIT_HOST: "rabbitmq:5672"',
                   'OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector:4318"',
                   'OTEL_TRACES_SAMPLER: "parentbased_always_on"'):
        assert needle in config
    secret = objs[("Secret", "bakery")]
    assert "rabbitmq-username:" in secret and "rabbitmq-password:" in secret
    # The helm test hook posts an order (files/test-order.sh, tested for real elsewhere).
    test_pod = objs[("Pod", "bakery-test-order")]
    assert "helm.sh/hook: test" in test_pod
    assert re.search(r"image: docker\.io/curlimages/curl:8\.\d+\.\d+\n", test_pod)
    assert "BASE_URL\n          value: http://bakery-reception:8000" in test_pod


def test_production_values_turn_on_hpa_netpol_and_existing_secret():
    objs = by_kind_name(helm_template("-f", os.path.join(CHART, "ci",
                                                         "production-values.yaml")).stdout)
    assert ("Secret", "bakery") not in objs  # the user's bakery-credentials instead
    for name in ("reception", "baker"):
        d = objs[("Deployment", f"bakery-{name}")]
        assert "name: bakery-credentials" in d
        assert "\n  replicas:" not in d  # the HPA owns the replica count
        assert ("HorizontalPodAutoscaler", f"bakery-{name}") in objs
        netpol = objs[("NetworkPolicy", f"bakery-{name}")]
        for port in ("6380", "5672", "443", "53"):  # redis, rabbitmq, https OTLP, DNS
            assert f"port: {port}\n" in netpol, netpol
    config = objs[("ConfigMap", "bakery")]
    assert 'OTEL_TRACES_SAMPLER_ARG: "0.1"' in config
    assert 'OTEL_EXPORTER_OTLP_PROTOCOL: "http/json"' in config


def test_checksum_changes_when_configuration_or_secret_changes():
    def checksum(*args):
        d = by_kind_name(helm_template(*args).stdout)[("Deployment", "bakery-baker")]
        return re.search(r"checksum/config: (\w+)", d).group(1)

    base = checksum()
    assert checksum() == base
    assert checksum("--set", "rabbitmq.password=other") != base
    assert checksum("--set", "logLevel=debug") != base


def chart_yaml():
    return open(os.path.join(CHART, "Chart.yaml")).read()


def test_chart_metadata():
    meta = chart_yaml()
    assert re.search(r'^kubeVersion: ">=1\.35\.0-0"$', meta, re.M), meta
    assert re.search(r"^home: https://\S+$", meta, re.M)
    assert re.search(r"^sources:\n  - https://\S+$", meta, re.M)
    version = re.search(r"^version: (\S+)$", meta, re.M).group(1)
    assert version != "0.1.0", "the chart changed: its version must move"
    # Minors out of upstream support are refused (1.35 is the oldest supported one).
    p = helm_template("--kube-version", "1.34.0", check=False)
    assert p.returncode != 0 and "kubeVersion" in p.stderr, p.stderr


def test_default_image_tags_are_the_app_version_that_images_sh_builds():
    app_version = re.search(r'^appVersion: "([^"]+)"$', chart_yaml(), re.M).group(1)
    images_sh = open(os.path.join(ROOT, "scripts", "images.sh")).read()
    assert "charts/bakery/Chart.yaml" in images_sh and '"bakery/$svc:$version"' in images_sh
    objs = by_kind_name(helm_template().stdout)
    for name in ("reception", "baker"):
        d = objs[("Deployment", f"bakery-{name}")]
        assert f"image: localhost:5000/bakery/{name}:{app_version}\n" in d


def images_of(text):
    return sorted(re.findall(r"^\s*image: (\S+)$", text, re.M))


def test_global_image_registry_prefixes_every_image():
    text = helm_template("--set", "global.imageRegistry=registry.example.com:5000/team").stdout
    images = images_of(text)
    assert images == ["registry.example.com:5000/team/bakery/baker:0.1.0",
                      "registry.example.com:5000/team/bakery/reception:0.1.0",
                      "registry.example.com:5000/team/curlimages/curl:8.22.0"], images
    # It wins over each image's own registry; without either, no registry at all.
    text = helm_template("--set", "global.imageRegistry=reg.example.com",
                         "--set", "reception.image.registry=other.example.com").stdout
    assert "image: reg.example.com/bakery/reception:0.1.0\n" in text
    text = helm_template("--set", "reception.image.registry=", "--set", "baker.image.registry=",
                         "--set", "tests.image.registry=").stdout
    assert images_of(text) == ["bakery/baker:0.1.0", "bakery/reception:0.1.0",
                               "curlimages/curl:8.22.0"]


def test_image_pull_secrets_global_and_chart_on_every_pod():
    objs = by_kind_name(helm_template("-f", os.path.join(CHART, "ci", "subchart-values.yaml")).stdout)
    expected = "imagePullSecrets:\n{i}  - name: shared-regcred\n{i}  - name: other-regcred\n"
    for name in ("reception", "baker"):
        assert expected.format(i=" " * 6) in objs[("Deployment", f"bakery-{name}")]
    assert expected.format(i="  ") in objs[("Pod", "bakery-test-order")]
    # None by default: no empty imagePullSecrets list.
    assert "imagePullSecrets" not in helm_template().stdout


def test_schema_accepts_any_global_and_rejects_bad_registries(tmp_path):
    p = helm_template("--set", "global.storageClass=fast", "--set", "global.anything.deep=1",
                      check=False)
    assert p.returncode == 0, p.stderr
    bad = tmp_path / "bad-values.yaml"
    bad.write_text("reception:\n  image:\n    registry: http://registry.example.com\n"
                   "imagePullSecrets:\n  - {}\n"
                   "tests:\n  image:\n    tag: \"\"\n")
    p = helm_template("-f", str(bad), check=False)
    assert p.returncode != 0
    for what in ("/reception/image/registry", "/imagePullSecrets/0", "/tests/image"):
        assert what in p.stderr, p.stderr


def test_reception_waits_before_sigterm_and_has_time_to_drain():
    d = by_kind_name(helm_template().stdout)[("Deployment", "bakery-reception")]
    assert "lifecycle:\n            preStop:\n              sleep:\n                seconds: 5\n" in d
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", d).group(1))
    assert grace >= 5 + 8 + 10, "preStop + reception's 8 s drain + the span export"
    baker = by_kind_name(helm_template().stdout)[("Deployment", "bakery-baker")]
    assert "preStop" not in baker
    d = by_kind_name(helm_template("--set", "reception.preStopSleepSeconds=0").stdout)[
        ("Deployment", "bakery-reception")]
    assert "lifecycle:" not in d


def test_reception_client_deadlines_are_values():
    """HTTP_*_TIMEOUT_MS, reception's defences against slow and idle clients, set from the
    chart; the schema holds them to the range reception accepts."""
    env = lambda d: dict(re.findall(r"- name: (HTTP_\w+_TIMEOUT_MS)\n\s+value: \"(\d+)\"", d))
    d = by_kind_name(helm_template().stdout)[("Deployment", "bakery-reception")]
    assert env(d) == {"HTTP_HEADER_TIMEOUT_MS": "5000", "HTTP_BODY_TIMEOUT_MS": "10000",
                      "HTTP_KEEPALIVE_TIMEOUT_MS": "5000"}
    d = by_kind_name(helm_template("--set", "reception.timeouts.bodyMs=30000").stdout)[
        ("Deployment", "bakery-reception")]
    assert env(d)["HTTP_BODY_TIMEOUT_MS"] == "30000"
    p = helm_template("--set", "reception.timeouts.headerMs=50", check=False)
    assert p.returncode != 0 and "/reception/timeouts/headerMs" in p.stderr, p.stderr


def test_no_namespace_and_no_cluster_domain_in_the_rendered_chart():
    for values in CASES:
        text = helm_template("--namespace", "shop-ns", *values_args(values)).stdout
        assert "namespace:" not in text and "shop-ns" not in text, case_id(values)
        assert "svc.cluster.local" not in text, case_id(values)


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_helm3_lints_and_renders_what_helm4_renders(values):
    """The tests and the docs use Helm 4; users still on Helm 3 get the same objects."""
    helm3 = tool_path("helm3")
    out = run([helm3, "lint", "--strict", CHART, *values_args(values)]).stdout
    assert "0 chart(s) failed" in out
    three = run([helm3, "template", "bakery", CHART, "--kube-version", KUBE_VERSION + ".0",
                 *values_args(values)], env=OFFLINE).stdout
    four = helm_template(*values_args(values)).stdout
    assert len(documents(three)) >= 6, three
    assert sorted(documents(three)) == sorted(documents(four))
