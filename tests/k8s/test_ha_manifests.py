"""k8s/ha, the highly available set-up, offline: its kustomize build against the Kubernetes
schemas; a three-node RabbitMQ cluster and Redis with replicas and Sentinels as the issue
describes them; no credential anywhere in what is rendered (everything from the Secret the
credentials Job generates); PodDisruptionBudgets that select the right pods; the chart with
ci/ha-values.yaml pointing at exactly those pods; the schema's new values; the Tiltfile's --ha.
"""

import json
import os
import re

import pytest
import yaml

from k8stools import CHART, ROOT, helm_template, kustomize, tiltfile_result, validate

HA_VALUES = os.path.join(CHART, "ci", "ha-values.yaml")
SECRET = "bakery-ha-credentials"
SECRET_KEYS = {"rabbitmq-username", "rabbitmq-password", "rabbitmq-erlang-cookie",
               "redis-password"}


def objects(text):
    return [o for o in yaml.safe_load_all(text) if o]


def index(objs):
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


@pytest.fixture(scope="module")
def ha_text():
    return kustomize("k8s/ha")


@pytest.fixture(scope="module")
def ha(ha_text):
    return index(objects(ha_text))


@pytest.fixture(scope="module")
def chart_ha():
    return index(objects(helm_template("-f", HA_VALUES).stdout))


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def configmap_file(ha, prefix, name):
    """A file of a generated ConfigMap (its name carries kustomize's hash)."""
    (cm,) = [o for (k, n), o in ha.items() if k == "ConfigMap" and n.startswith(prefix + "-")]
    return cm["data"][name]


def test_ha_builds_and_passes_kubernetes_schemas(ha_text, ha, tmp_path):
    for i, doc in enumerate(d for d in re.split(r"^---$", ha_text, flags=re.M) if d.strip()):
        (tmp_path / f"{i:02d}.yaml").write_text(doc)
    validate([tmp_path])
    for key in (("StatefulSet", "rabbitmq"), ("StatefulSet", "redis"),
                ("Service", "rabbitmq"), ("Service", "rabbitmq-headless"),
                ("Service", "redis-headless"), ("PodDisruptionBudget", "rabbitmq"),
                ("PodDisruptionBudget", "redis"), ("Job", SECRET), ("Role", SECRET),
                ("RoleBinding", SECRET), ("ServiceAccount", SECRET),
                # the Collector and Jaeger of k8s/, reused
                ("Deployment", "otel-collector"), ("Deployment", "jaeger")):
        assert key in ha, (key, sorted(ha))
    # The light set-up's single Redis Service would reach replicas too: none here.
    assert ("Service", "redis") not in ha
    assert not any(k == "Secret" for k, _ in ha), "no Secret with fixed values is shipped"


def test_every_container_is_pinned_hardened_probed_and_sized(ha):
    for (kind, name), obj in ha.items():
        if kind not in ("StatefulSet", "Deployment", "Job"):
            continue
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for c in spec["containers"]:
            where = f"{name}/{c['name']}"
            assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", c["image"]), (where, c["image"])
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
            assert "memory" in c["resources"]["limits"], where
            if kind != "Job":
                assert "readinessProbe" in c and "livenessProbe" in c, where
    # The Redis pods' containers and the Job run with a read-only root filesystem.
    for name in ("redis", SECRET):
        obj = ha[("StatefulSet" if name == "redis" else "Job", name)]
        for c in pod_spec(obj)["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, (name, c["name"])


def test_rabbitmq_three_nodes_form_one_cluster(ha):
    sts = ha[("StatefulSet", "rabbitmq")]
    spec = sts["spec"]
    assert spec["replicas"] == 3 and spec["serviceName"] == "rabbitmq-headless"
    # A node that restarts waits for its peers: one-by-one starts could wait forever.
    assert spec["podManagementPolicy"] == "Parallel"
    headless = ha[("Service", "rabbitmq-headless")]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["ports"]} >= {4369, 25672, 5672}
    (c,) = pod_spec(sts)["containers"]
    assert c["image"] == "rabbitmq:4.4.1-management"
    env = env_of(c)
    assert env["RABBITMQ_USE_LONGNAME"]["value"] == "true"
    assert env["RABBITMQ_NODENAME"]["value"] == "rabbit@$(POD_NAME).rabbitmq-headless"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # Each node on its own volume (default StorageClass, as k8s/rabbitmq) at the image's
    # data directory, where the cookie lives too.
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data" and "storageClassName" not in claim["spec"]
    assert {"name": "data", "mountPath": "/var/lib/rabbitmq"} in c["volumeMounts"]
    assert "emptyDir" not in json.dumps([v for v in pod_spec(sts)["volumes"]
                                         if v["name"] == "data"])
    # The configuration: every node listed by its long name, pause_minority.
    conf = configmap_file(ha, "rabbitmq-config", "rabbitmq.conf")
    settings = dict(re.findall(r"^([\w.]+) = (\S+)$", conf, re.M))
    assert settings["cluster_formation.peer_discovery_backend"] == "classic_config"
    nodes = {v for k, v in settings.items() if k.startswith("cluster_formation.classic_config.nodes.")}
    assert nodes == {f"rabbit@rabbitmq-{i}.rabbitmq-headless" for i in range(3)}
    assert settings["cluster_partition_handling"] == "pause_minority"
    # guest: never created (a default user from the Secret) and local-only if it were.
    assert settings["loopback_users.guest"] == "true"
    start = configmap_file(ha, "rabbitmq-config", "start.sh")
    assert "default_user = " in start and "default_pass = " in start
    assert ".erlang.cookie" in start and "chmod 400" in start
    assert c["command"] == ["sh", "/config/start.sh"]


def test_redis_three_pods_each_with_a_sentinel(ha):
    sts = ha[("StatefulSet", "redis")]
    spec = sts["spec"]
    assert spec["replicas"] == 3 and spec["serviceName"] == "redis-headless"
    containers = {c["name"]: c for c in pod_spec(sts)["containers"]}
    assert set(containers) == {"redis", "sentinel"}
    for c in containers.values():
        assert c["image"] == "redis:8.10.2"
        env = env_of(c)
        assert env["REDIS_REPLICAS"]["value"] == str(spec["replicas"])
        assert env["REDIS_SENTINEL_MASTER"]["value"] == "mymaster"
    assert containers["redis"]["command"] == ["sh", "/scripts/redis.sh"]
    assert containers["sentinel"]["command"] == ["sh", "/scripts/sentinel.sh"]
    assert {p["containerPort"] for p in containers["sentinel"]["ports"]} == {26379}
    headless = ha[("Service", "redis-headless")]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["ports"]} == {6379, 26379}
    # The Sentinels' configuration: hostnames, a quorum of 2 of 3, their own password.
    sentinel = configmap_file(ha, "redis-scripts", "sentinel.sh")
    for line in ("sentinel resolve-hostnames yes", "sentinel announce-hostnames yes",
                 "sentinel announce-ip $ME", "requirepass $REDISCLI_AUTH",
                 "sentinel monitor $REDIS_SENTINEL_MASTER $primary 2",
                 "sentinel auth-pass $REDIS_SENTINEL_MASTER $REDISCLI_AUTH"):
        assert f"\n{line}\n" in sentinel, line
    # resolve-hostnames must come before the monitor line that names a host.
    assert sentinel.index("resolve-hostnames") < sentinel.index("sentinel monitor")
    redis = configmap_file(ha, "redis-scripts", "redis.sh")
    for line in ("requirepass $REDISCLI_AUTH", "masterauth $REDISCLI_AUTH",
                 "replica-announce-ip $ME", "appendonly yes", "appendfsync everysec"):
        assert f"\n{line}\n" in redis, line
    # The primary hands over before its pod stops, with the time to do it.
    lifecycle = containers["redis"]["lifecycle"]["preStop"]["exec"]["command"]
    assert lifecycle == ["sh", "/scripts/prestop.sh"]
    prestop = configmap_file(ha, "redis-scripts", "prestop.sh")
    assert "SENTINEL FAILOVER" in prestop
    wait = int(re.search(r'-lt (\d+) \]', prestop).group(1))
    assert pod_spec(sts)["terminationGracePeriodSeconds"] >= wait + 15
    # Each Redis on its own volume.
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data" and "storageClassName" not in claim["spec"]
    assert {"name": "data", "mountPath": "/data"} in containers["redis"]["volumeMounts"]


@pytest.mark.parametrize("name", ["rabbitmq", "redis"])
def test_anti_affinity_prefers_different_nodes(ha, name):
    sts = ha[("StatefulSet", name)]
    (term,) = pod_spec(sts)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()


def pod_labels(ha):
    """{workload name: its pods' labels} of every workload in the build."""
    return {n: o["spec"]["template"]["metadata"]["labels"] for (k, n), o in ha.items()
            if k in ("StatefulSet", "Deployment", "Job")}


@pytest.mark.parametrize("name", ["rabbitmq", "redis"])
def test_pdbs_select_exactly_their_statefulsets_pods(ha, name):
    pdb = ha[("PodDisruptionBudget", name)]["spec"]
    assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb
    selector = pdb["selector"]["matchLabels"]
    selected = {w for w, labels in pod_labels(ha).items() if selector.items() <= labels.items()}
    assert selected == {name}, selected


def credential_like(name):
    return re.search(r"PASS|USER|COOKIE|AUTH|SECRET|TOKEN", name) is not None


def test_no_literal_credential_anywhere(ha_text, ha, chart_ha):
    # No fixed value: no Secret, no credential variable with a value, no password in a file.
    for where, objs in (("k8s/ha", ha), ("chart", chart_ha)):
        assert not any(k == "Secret" for k, _ in objs), where
        for (kind, name), obj in objs.items():
            if kind not in ("StatefulSet", "Deployment", "Job", "Pod"):
                continue
            spec = obj["spec"] if kind == "Pod" else pod_spec(obj)
            for c in spec["containers"]:
                for e in c.get("env", []):
                    if credential_like(e["name"]):
                        ref = e.get("valueFrom", {}).get("secretKeyRef")
                        assert ref and ref["name"] == SECRET, (where, name, e)
                        assert "value" not in e, (where, name, e)
    # Only the Secret's keys are read, and every use of one is a reference to the Secret.
    used = set(re.findall(r"key: ([\w-]+)\n\s+name: " + SECRET, ha_text))
    used |= set(re.findall(r"- key: ([\w-]+)\n\s+path:", ha_text))
    assert used == SECRET_KEYS, used
    # The files of the ConfigMaps (scripts, rabbitmq.conf) write the credentials from variables
    # or from the Secret's files only.
    lines = [line.strip() for (kind, _), obj in ha.items() if kind == "ConfigMap"
             for text in obj["data"].values() for line in text.splitlines()]
    passwords = [re.sub(r"^(requirepass|masterauth|sentinel auth-pass \S+) ", "", line)
                 for line in lines
                 if re.match(r"(requirepass|masterauth|sentinel auth-pass) ", line)]
    assert len(passwords) == 4 and all(p.startswith("$") for p in passwords), passwords
    # guest appears only in comments and in the line that keeps it to the node itself.
    others = [line for (kind, _), obj in ha.items() if kind != "ConfigMap"
              for line in yaml.safe_dump(obj).splitlines()]
    for line in lines + others:
        if "guest" in line and not line.strip().startswith("#"):
            assert line.strip() == "loopback_users.guest = true", line
    # The generated values are random, made at install time.
    script = configmap_file(ha, "bakery-ha-credentials-script", "generate.sh")
    assert "/dev/urandom" in script
    for key in SECRET_KEYS:
        assert f'"{key}": "' in script and re.search(f'"{key}": "[^"$]*\\$\\(rand \\d+\\)"',
                                                     script), key


def test_credentials_job_may_only_create_secrets(ha):
    role = ha[("Role", SECRET)]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]
    binding = ha[("RoleBinding", SECRET)]
    assert binding["roleRef"]["name"] == SECRET
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SECRET}]
    job = pod_spec(ha[("Job", SECRET)])
    assert job["serviceAccountName"] == SECRET
    # Only this pod talks to the API server; everything else of k8s/ha mounts no token.
    for (kind, name), obj in ha.items():
        if kind in ("StatefulSet", "Deployment"):
            assert pod_spec(obj)["automountServiceAccountToken"] is False, name
    (c,) = job["containers"]
    # An image the project already uses (the chart's `helm test` pod) and knows how to stand in.
    assert c["image"] == "curlimages/curl:8.22.0"
    standin = open(os.path.join(ROOT, "scripts", "standin-images.sh")).read()
    assert "[curl]=curlimages/curl:8.22.0" in standin


def test_ha_values_name_exactly_the_ha_pods(ha, chart_ha):
    """The chart's HA values point at k8s/ha's pods by their stable names and ports."""
    values = yaml.safe_load(open(HA_VALUES))

    def stable_names(sts_name, port_name):
        sts = ha[("StatefulSet", sts_name)]
        svc = ha[("Service", sts["spec"]["serviceName"])]
        (port,) = [p["port"] for p in svc["spec"]["ports"] if p["name"] == port_name]
        return sorted(f"{sts_name}-{i}.{svc['metadata']['name']}:{port}"
                      for i in range(sts["spec"]["replicas"]))

    assert sorted(values["rabbitmq"]["addresses"]) == stable_names("rabbitmq", "amqp")
    assert sorted(values["redis"]["sentinel"]["addresses"]) == stable_names("redis", "sentinel")
    redis_env = env_of(pod_spec(ha[("StatefulSet", "redis")])["containers"][0])
    assert values["redis"]["sentinel"]["masterName"] == redis_env["REDIS_SENTINEL_MASTER"]["value"]


def test_chart_with_ha_values_renders_the_ha_environment(chart_ha):
    config = chart_ha[("ConfigMap", "bakery")]["data"]
    assert config["RABBIT_HOST"] == ",".join(
        f"rabbitmq-{i}.rabbitmq-headless:5672" for i in range(3))
    assert config["REDIS_SENTINELS"] == ",".join(
        f"redis-{i}.redis-headless:26379" for i in range(3))
    assert config["REDIS_SENTINEL_MASTER"] == "mymaster"
    assert config["ORDERS_QUEUE_TYPE"] == "quorum"
    assert config["ORDERS_DELIVERY_LIMIT"] == "100"
    assert "DB_HOST" not in config  # the Sentinels name the primary
    for name in ("reception", "baker"):
        d = chart_ha[("Deployment", f"bakery-{name}")]
        assert d["spec"]["replicas"] >= 2, name
        env = env_of(pod_spec(d)["containers"][0])
        for var, key in (("RABBIT_USERNAME", "rabbitmq-username"),
                         ("RABBIT_PASSWORD", "rabbitmq-password"),
                         ("REDIS_PASSWORD", "redis-password")):
            assert env[var]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": key}, var
        assert pod_spec(d)["affinity"]["podAntiAffinity"], name


def test_chart_defaults_keep_one_redis_and_no_password():
    objs = index(objects(helm_template().stdout))
    config = objs[("ConfigMap", "bakery")]["data"]
    assert config["DB_HOST"] == "redis:6379" and config["RABBIT_HOST"] == "rabbitmq:5672"
    assert "REDIS_SENTINELS" not in config and "REDIS_SENTINEL_MASTER" not in config
    assert config["ORDERS_QUEUE_TYPE"] == "quorum" and config["ORDERS_DELIVERY_LIMIT"] == "100"
    for name in ("reception", "baker"):
        env = env_of(pod_spec(objs[("Deployment", f"bakery-{name}")])["containers"][0])
        assert "REDIS_PASSWORD" not in env


def test_networkpolicy_allows_every_ha_port():
    objs = index(objects(helm_template("-f", HA_VALUES, "--set",
                                       "networkPolicy.enabled=true").stdout))
    for name in ("reception", "baker"):
        egress = objs[("NetworkPolicy", f"bakery-{name}")]["spec"]["egress"]
        ports = {p["port"] for rule in egress for p in rule["ports"]}
        assert ports == {53, 6379, 26379, 5672, 4318}, (name, ports)


def test_schema_rejects_bad_ha_values(tmp_path):
    bad = tmp_path / "bad-values.yaml"
    bad.write_text("rabbitmq:\n  queueType: mirrored\n  deliveryLimit: 0\n"
                   "  addresses: [rabbitmq-0.rabbitmq-headless]\n"
                   "redis:\n  sentinel:\n    addresses: [redis-0:26379, redis-0:26379]\n"
                   "  password:\n    secret: bakery-ha-credentials\n")
    p = helm_template("-f", str(bad), check=False)
    assert p.returncode != 0
    for what in ("/rabbitmq/queueType", "/rabbitmq/deliveryLimit", "/rabbitmq/addresses/0",
                 "/redis/sentinel/addresses", "'secret' not allowed"):
        assert what in p.stderr, (what, p.stderr)
    # Each alone is enough (the first one above is what the issue names).
    bad.write_text("rabbitmq:\n  queueType: mirrored\n")
    p = helm_template("-f", str(bad), check=False)
    assert p.returncode != 0 and "/rabbitmq/queueType" in p.stderr, p.stderr
    ok = tmp_path / "ok-values.yaml"
    ok.write_text("rabbitmq:\n  queueType: classic\n")
    assert helm_template("-f", str(ok), check=False).returncode == 0


def test_standin_images_have_what_k8s_ha_runs(ha):
    """Where no registry answers, stand-ins replace the official images
    (scripts/standin-images.sh): they must offer what k8s/ha's commands call, as the official
    ones do."""
    standin = os.path.join(ROOT, "Dockerfiles", "standin")
    redis = open(os.path.join(standin, "redis.Dockerfile")).read()
    assert "ln -s /usr/bin/redis-server /usr/local/bin/redis-sentinel" in redis
    assert "USER 999:999" in redis and "WORKDIR /data" in redis
    rabbit = open(os.path.join(standin, "rabbitmq.Dockerfile")).read()
    assert "HOME=/var/lib/rabbitmq" in rabbit and "USER 999:999" in rabbit
    assert "PATH=/usr/lib/rabbitmq/bin:" in rabbit  # rabbitmq-server, as start.sh execs it
    curl = open(os.path.join(standin, "curl.Dockerfile")).read()
    assert "useradd -r -u 100 -g 101" in curl
    job = pod_spec(ha[("Job", SECRET)])
    assert (job["securityContext"]["runAsUser"], job["securityContext"]["runAsGroup"]) == (100, 101)
    for name in ("rabbitmq", "redis"):
        assert pod_spec(ha[("StatefulSet", name)])["securityContext"]["runAsUser"] == 999


@pytest.fixture(scope="module")
def tilt_ha(tmp_path_factory):
    p = tiltfile_result(tmp_path_factory.mktemp("tilt-ha"), "minikube", ["--ha"])
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stderr[-4000:]}"
    return {m["Name"]: m for m in json.loads(p.stdout)["Manifests"]}


def deployed(manifest):
    return index(objects(manifest["DeployTarget"]["yaml"]))


def test_tiltfile_with_ha_deploys_k8s_ha_and_the_ha_values(tilt_ha):
    for name in ("redis", "rabbitmq", "bakery-ha-credentials", "otel-collector", "jaeger"):
        assert "infra" in (tilt_ha[name].get("Labels") or {}), name
    rabbit = deployed(tilt_ha["rabbitmq"])
    assert rabbit[("StatefulSet", "rabbitmq")]["spec"]["replicas"] == 3
    assert ("PodDisruptionBudget", "rabbitmq") in rabbit
    redis = deployed(tilt_ha["redis"])
    assert {c["name"] for c in pod_spec(redis[("StatefulSet", "redis")])["containers"]} == {
        "redis", "sentinel"}
    assert ("PodDisruptionBudget", "redis") in redis
    # The very objects of k8s/ha (its scripts' ConfigMaps with kustomize's hashes included).
    ha = index(objects(kustomize("k8s/ha")))
    for part in (rabbit, redis, deployed(tilt_ha["bakery-ha-credentials"])):
        for key, obj in part.items():
            assert key in ha, key
            if key[0] in ("StatefulSet", "Job"):
                assert obj["spec"]["template"]["spec"] == ha[key]["spec"]["template"]["spec"], key
            if key[0] == "ConfigMap":
                assert obj["data"] == ha[key]["data"], key
        assert {k[0] for k in part} >= {"ConfigMap"}, sorted(part)
    for name in ("redis", "rabbitmq"):
        assert tilt_ha[name]["ResourceDependencies"] == ["bakery-ha-credentials"], name
    # The chart with ci/ha-values.yaml: the HA addresses, two pods each, no chart Secret.
    config = deployed(tilt_ha["bakery-config"])
    assert "REDIS_SENTINELS" in config[("ConfigMap", "bakery")]["data"]
    assert ("Secret", "bakery") not in config
    for name in ("reception", "baker"):
        d = deployed(tilt_ha[name])[("Deployment", f"bakery-{name}")]
        assert d["spec"]["replicas"] == 2, name
        assert set(tilt_ha[name]["ResourceDependencies"]) >= {"bakery-config", "redis", "rabbitmq"}


def test_tiltfile_without_ha_stays_light(tmp_path):
    p = tiltfile_result(tmp_path, "minikube")
    assert p.returncode == 0, p.stderr[-4000:]
    ms = {m["Name"]: m for m in json.loads(p.stdout)["Manifests"]}
    assert "bakery-ha-credentials" not in ms
    assert deployed(ms["rabbitmq"])[("StatefulSet", "rabbitmq")]["spec"]["replicas"] == 1
