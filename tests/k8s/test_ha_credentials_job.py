"""k8s/ha/credentials/generate.sh, the credentials Job's script, for real against a stand-in
API server (ha-credentials-rig.py) in private network, mount and pid namespaces: it POSTs one
Secret bakery-ha-credentials with the service account's token over verified TLS, with random
letters-and-digits values for every key, says so; keeps an existing one (409); fails loudly on
any other answer (here 403, as when RBAC forbids it)."""

import json
import os
import re
import shutil
import subprocess

import pytest

from k8stools import ROOT

SCRIPT = os.path.join(ROOT, "k8s", "ha", "credentials", "generate.sh")
API = os.path.join(ROOT, "tests", "k8s", "ha-credentials-rig.py")
KEYS = {"rabbitmq-username", "rabbitmq-password", "rabbitmq-erlang-cookie", "redis-password"}

# Inside the namespaces: kubernetes.default.svc is 127.0.0.1, the service account's files are
# where the kubelet mounts them, /tmp is the pod's emptyDir. Three runs: create, keep, fail.
RIG = r"""
set -eu
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount /run/rig
cd /run/rig
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kubernetes.default.svc \
    -addext subjectAltName=DNS:kubernetes.default.svc -keyout key.pem -out cert.pem 2>/dev/null
sa=/run/secrets/kubernetes.io/serviceaccount
cp cert.pem $sa/ca.crt; printf rig-token >$sa/token; printf shop-ns >$sa/namespace
[ -e /var/run/secrets ] || { echo "no /var/run -> /run" >&2; exit 1; }
printf '127.0.0.1 localhost kubernetes.default.svc\n' >hosts
mount --bind hosts /etc/hosts
mount -t tmpfs tmpfs /tmp
api() {
    python3 "$API" cert.pem key.pem rig-token "$1" >>requests.jsonl 2>api.log &
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null && return; sleep 0.1; done
}
api ok
for run in create keep; do
    if out=$(sh "$SCRIPT" 2>&1); then rc=0; else rc=$?; fi
    echo "RUN $run rc=$rc $out" | tr '\n' ' '; echo
done
echo "LEFT $(ls /tmp | tr '\n' ' ')"
kill %1; wait 2>/dev/null || true
api fail
if out=$(sh "$SCRIPT" 2>&1); then rc=0; else rc=$?; fi
echo "RUN fail rc=$rc $out" | tr '\n' ' '; echo
cat requests.jsonl | sed 's/^/REQUEST /'
"""


@pytest.fixture(scope="module")
def rig():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("openssl"):
        pytest.skip("needs root, unshare and openssl")
    p = subprocess.run(["unshare", "-n", "-m", "-p", "-f", "--mount-proc", "--kill-child", "bash", "-c", RIG],
                       env=dict(os.environ, SCRIPT=SCRIPT, API=API),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    runs = {m[0]: (int(m[1]), m[2]) for m in re.findall(r"^RUN (\w+) rc=(\d+) (.*)$",
                                                         p.stdout, re.M)}
    requests = [json.loads(line) for line in re.findall(r"^REQUEST (.*)$", p.stdout, re.M)]
    left = re.search(r"^LEFT (.*)$", p.stdout, re.M).group(1).split()
    return runs, requests, left


def test_creates_one_secret_with_random_values_for_every_key(rig):
    runs, requests, left = rig
    assert runs["create"] == (0, "bakery-ha-credentials: created with random values "), runs
    first = requests[0]
    assert first["path"] == "/api/v1/namespaces/shop-ns/secrets"  # the pod's own namespace
    assert first["auth"] is True and first["content_type"] == "application/json"
    secret = first["body"]
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "bakery-ha-credentials"
    data = secret["stringData"]
    assert set(data) == KEYS
    for key, value in data.items():
        assert re.fullmatch(r"[A-Za-z0-9-]{15,}", value), (key, value)
    assert re.fullmatch(r"bakery-[A-Za-z0-9]{8}", data["rabbitmq-username"])
    assert len(set(data.values())) == len(data)
    # Neither the token nor the values stay behind on the pod's /tmp.
    assert "auth" not in left and "secret.json" not in left, left


def test_keeps_an_existing_secret_and_generates_anew_each_run(rig):
    runs, requests, _ = rig
    assert runs["keep"] == (0, "bakery-ha-credentials: exists, kept "), runs
    assert requests[0]["body"]["stringData"] != requests[1]["body"]["stringData"]


def test_fails_on_any_other_answer(rig):
    runs, _, _ = rig
    rc, out = runs["fail"]
    assert rc != 0 and "the API answered 403" in out, runs
