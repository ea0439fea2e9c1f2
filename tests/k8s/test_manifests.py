"""k8s/: the infrastructure and the k6 Job, built by kustomize (ConfigMaps generated from
k8s/otel-collector/config.yaml and loadtest/orders.js), validated against the Kubernetes
schemas, with pinned images, probes and resource requests."""

import os
import re

from k8stools import ROOT, by_kind_name, documents, kustomize, validate

PINNED = {
    "redis": "redis:7.4.2",
    "rabbitmq": "rabbitmq:3.13.7-management",
    "otel-collector": "otel/opentelemetry-collector-contrib:0.150.0",
    "jaeger": "jaegertracing/all-in-one:1.76.0",
}


def write_docs(text, directory):
    for i, doc in enumerate(documents(text)):
        (directory / f"{i:02d}.yaml").write_text(doc)


def test_infrastructure_builds_and_passes_kubernetes_schemas(tmp_path):
    text = kustomize("k8s")
    objs = by_kind_name(text)
    for name, image in PINNED.items():
        d = objs[("Deployment", name)]
        assert f"image: {image}\n" in d
        assert ("Service", name) in objs
        assert "readinessProbe:" in d and "livenessProbe:" in d, name
        assert re.search(r"requests:\n\s+cpu: \S+\n\s+memory: \S+", d), name
        assert "runAsNonRoot: true" in d and "allowPrivilegeEscalation: false" in d, name
    assert "value: jaeger:4317" in objs[("Deployment", "otel-collector")]
    write_docs(text, tmp_path)
    validate([tmp_path])


def test_collector_configmap_is_the_shared_config_file():
    objs = by_kind_name(kustomize("k8s"))
    config = open(os.path.join(ROOT, "k8s", "otel-collector", "config.yaml")).read()
    cm = objs[("ConfigMap", "otel-collector-config")]
    embedded = "".join("    " + line if line.strip() else "\n"
                       for line in config.splitlines(keepends=True))
    assert "  config.yaml: |\n" + embedded in cm


def test_k6_job_builds_with_the_script_from_loadtest(tmp_path):
    text = kustomize("k8s/k6")
    objs = by_kind_name(text)
    job = objs[("Job", "k6")]
    assert "image: grafana/k6:1.8.1\n" in job
    assert "value: http://bakery-reception:8000" in job
    script = open(os.path.join(ROOT, "loadtest", "orders.js")).read()
    cm = objs[("ConfigMap", "k6-script")]
    for line in script.splitlines():
        if line.strip():
            assert "    " + line + "\n" in cm
    write_docs(text, tmp_path)
    validate([tmp_path])


def test_every_manifest_file_passes_kubernetes_schemas():
    """The files themselves, as the Tiltfile reads them (no kustomize in between)."""
    files = []
    for dirpath, _, names in os.walk(os.path.join(ROOT, "k8s")):
        for n in names:
            if n.endswith(".yaml") and n not in ("kustomization.yaml", "config.yaml"):
                files.append(os.path.join(dirpath, n))
    assert len(files) >= 9
    validate(sorted(files))
