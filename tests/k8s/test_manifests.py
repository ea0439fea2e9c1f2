"""k8s/: the infrastructure and the k6 Job, built by kustomize (ConfigMaps generated from
k8s/otel-collector/config.yaml and loadtest/orders.js, and the k6 target), validated against
the Kubernetes schemas, with pinned images, probes, resource requests, persistent Redis and
RabbitMQ, a Collector that rolls when its pipeline changes, and no namespace anywhere."""

import os
import re
import shutil

from k8stools import ROOT, by_kind_name, documents, kustomize, validate

# (kind, image) of each workload: current releases in support (see the README).
WORKLOADS = {
    "redis": ("StatefulSet", "redis:8.10.2"),
    "rabbitmq": ("StatefulSet", "rabbitmq:4.4.1-management"),
    "otel-collector": ("Deployment", "otel/opentelemetry-collector-contrib:0.165.0"),
    "jaeger": ("Deployment", "jaegertracing/jaeger:2.13.0"),
}


def write_docs(text, directory):
    for i, doc in enumerate(documents(text)):
        (directory / f"{i:02d}.yaml").write_text(doc)


def manifest_files():
    files = []
    for dirpath, _, names in os.walk(os.path.join(ROOT, "k8s")):
        for n in names:
            if n.endswith(".yaml") and n not in ("kustomization.yaml", "config.yaml"):
                files.append(os.path.join(dirpath, n))
    return sorted(files)


def test_infrastructure_builds_and_passes_kubernetes_schemas(tmp_path):
    text = kustomize("k8s")
    objs = by_kind_name(text)
    for name, (kind, image) in WORKLOADS.items():
        d = objs[(kind, name)]
        assert f"image: {image}\n" in d
        assert ("Service", name) in objs
        assert "readinessProbe:" in d and "livenessProbe:" in d, name
        assert re.search(r"requests:\n\s+cpu: \S+\n\s+memory: \S+", d), name
        assert "runAsNonRoot: true" in d and "allowPrivilegeEscalation: false" in d, name
    assert "value: jaeger:4317" in objs[("Deployment", "otel-collector")]
    write_docs(text, tmp_path)
    validate([tmp_path])


def test_redis_and_rabbitmq_keep_their_data_across_pod_replacement():
    objs = by_kind_name(kustomize("k8s"))
    for name, mount, uid in (("redis", "/data", 999), ("rabbitmq", "/var/lib/rabbitmq", 999)):
        sts = objs[("StatefulSet", name)]
        # A volume per pod from the default StorageClass (no storageClassName), at the data
        # directory of the official image, writable by its user.
        assert re.search(r"volumeClaimTemplates:\n  - metadata:\n      labels:(\n.*)*?\n"
                         r"      name: data\n    spec:\n      accessModes:\n      - ReadWriteOnce",
                         sts), sts
        assert "storageClassName" not in sts
        assert f"- mountPath: {mount}\n          name: data\n" in sts
        for field in (f"runAsUser: {uid}", f"runAsGroup: {uid}", f"fsGroup: {uid}",
                      "runAsNonRoot: true"):
            assert field in sts, (name, field)
        assert "emptyDir" not in sts
        # A headless governing Service besides the normal one.
        assert f"serviceName: {name}-headless\n" in sts
        headless = objs[("Service", f"{name}-headless")]
        assert "clusterIP: None" in headless
        assert ("Service", name) in objs and "clusterIP: None" not in objs[("Service", name)]
        # Comes back quickly after `kubectl delete pod`: a bounded stop, probes that start soon.
        grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", sts).group(1))
        assert 5 <= grace <= 60, (name, grace)
        # `kubectl delete -k k8s/` leaves no volume behind.
        assert "persistentVolumeClaimRetentionPolicy:\n    whenDeleted: Delete" in sts
    redis = objs[("StatefulSet", "redis")]
    # Append-only file on, fsync every second (documented in the manifest).
    assert re.search(r"- --appendonly\n\s+- \"?yes\"?\n\s+- --appendfsync\n\s+- everysec\n", redis), redis
    assert "appendfsync everysec" in open(os.path.join(ROOT, "k8s", "redis",
                                                       "statefulset.yaml")).read()
    rabbit = objs[("StatefulSet", "rabbitmq")]
    # A node name that does not change with the pod, so its database directory is found again.
    assert re.search(r"- name: POD_NAME\n\s+valueFrom:\n\s+fieldRef:\n\s+fieldPath: metadata.name\n"
                     r"\s+- name: RABBITMQ_NODENAME\n\s+value: rabbit@\$\(POD_NAME\)\n", rabbit), rabbit


def test_collector_configmap_is_the_shared_config_file_and_its_hash_rolls_the_collector(tmp_path):
    objs = by_kind_name(kustomize("k8s"))
    config = open(os.path.join(ROOT, "k8s", "otel-collector", "config.yaml")).read()
    (name,) = [n for k, n in objs if k == "ConfigMap" and n.startswith("otel-collector-config-")]
    cm = objs[("ConfigMap", name)]
    embedded = "".join("    " + line if line.strip() else "\n"
                       for line in config.splitlines(keepends=True))
    assert "  config.yaml: |\n" + embedded in cm
    # kustomize wrote the hashed name into the Deployment: a changed pipeline is a new pod
    # template, hence a rollout.
    assert f"name: {name}\n" in objs[("Deployment", "otel-collector")]
    copy = tmp_path / "k8s"
    shutil.copytree(os.path.join(ROOT, "k8s"), copy)
    with open(copy / "otel-collector" / "config.yaml", "a") as f:
        f.write("# changed\n")
    changed = by_kind_name(kustomize(str(copy)))
    (other,) = [n for k, n in changed if k == "ConfigMap" and n.startswith("otel-collector-config-")]
    assert other != name
    assert f"name: {other}\n" in changed[("Deployment", "otel-collector")]


def test_k6_job_builds_with_the_script_from_loadtest_and_one_target(tmp_path):
    text = kustomize("k8s/k6")
    objs = by_kind_name(text)
    job = objs[("Job", "k6")]
    assert "image: grafana/k6:1.8.1\n" in job
    # BASE_URL comes from one place, the k6-target ConfigMap, by default the reception of
    # `helm install bakery charts/bakery`.
    assert re.search(r"- name: BASE_URL\n\s+valueFrom:\n\s+configMapKeyRef:\n\s+key: BASE_URL\n"
                     r"\s+name: k6-target\n", job), job
    assert "http://" not in job
    assert "BASE_URL: http://bakery-reception:8000\n" in objs[("ConfigMap", "k6-target")]
    assert text.count("http://bakery-reception:8000") == 1
    script = open(os.path.join(ROOT, "loadtest", "orders.js")).read()
    cm = objs[("ConfigMap", "k6-script")]
    for line in script.splitlines():
        if line.strip():
            assert "    " + line + "\n" in cm
    write_docs(text, tmp_path)
    validate([tmp_path])


def test_no_namespace_and_no_cluster_domain_anywhere():
    """Everything lands in the namespace it is applied to and finds its peers there."""
    texts = {path: open(path).read() for path in manifest_files()}
    texts["kustomize k8s"] = kustomize("k8s")
    texts["kustomize k8s/k6"] = kustomize("k8s/k6")
    for where, text in texts.items():
        assert not re.search(r"^\s*namespace:", text, re.M), where
        assert "svc.cluster.local" not in text and ".svc:" not in text, where


def test_every_manifest_file_passes_kubernetes_schemas():
    """The files themselves, as the Tiltfile reads them (no kustomize in between)."""
    files = manifest_files()
    assert len(files) >= 11
    validate(files)
