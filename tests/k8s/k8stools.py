"""Helpers for tests/k8s: the pinned tools from scripts/tools.sh, rendering, YAML documents.

The tools are real binaries in $BAKERY_TOOLS (default ~/.cache/bakery-tools); `make test`
builds them first (scripts/tools.sh). A missing tool fails the test that needs it.
"""

import atexit
import glob
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness import free_port  # tests/harness/, on sys.path via tests/conftest.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.environ.get("BAKERY_TOOLS", os.path.expanduser("~/.cache/bakery-tools"))
CHART = os.path.join(ROOT, "charts", "bakery")
# The Kubernetes versions the manifests must satisfy: the chart's minimum (kubeVersion >=1.35,
# the oldest minor still supported upstream; also what `helm template` renders for) and the
# test cluster's (scripts/cluster.sh), both pinned in scripts/tools.sh, each validated with the
# OpenAPI schemas of its k8s.io/kubernetes module (kubectl-validate carries none newer than
# 1.30).
KUBE_VERSION = "1.35"
# No kubeconfig: nothing may talk to a cluster.
OFFLINE = dict(os.environ, KUBECONFIG=os.devnull)


def pinned_kube_version(var="KUBE_VERSION"):
    """A Kubernetes version scripts/tools.sh pins: KUBE_VERSION (the test cluster's) or
    KUBE_OLDEST_VERSION (the chart's minimum)."""
    with open(os.path.join(ROOT, "scripts", "tools.sh")) as f:
        return re.search(rf"^{var}=(v[0-9.]+)", f.read(), re.M).group(1)


_schemas = {}


def kube_schemas(var="KUBE_VERSION"):
    """A --local-schemas directory (api/v1.json, apis/<group>/<version>.json) for a pinned
    version (see pinned_kube_version), made once from api/openapi-spec/v3 of the
    k8s.io/kubernetes module in the Go module cache, where scripts/tools.sh kubernetes put it."""
    version = pinned_kube_version(var)
    if version in _schemas:
        return _schemas[version]
    go = shutil.which("go") or "/usr/local/go/bin/go"
    modcache = None
    if os.access(go, os.X_OK):
        modcache = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True,
                                  text=True).stdout.strip()
    modcache = modcache or os.path.expanduser("~/go/pkg/mod")
    spec = os.path.join(modcache, f"k8s.io/kubernetes@{version}", "api", "openapi-spec", "v3")
    files = glob.glob(os.path.join(spec, "api*__v*_openapi.json"))
    if not files:
        pytest.fail(f"no Kubernetes {version} OpenAPI schemas in {spec}: "
                    "run scripts/tools.sh kubernetes")
    out = tempfile.mkdtemp(prefix=f"bakery-k8s-schemas-{version}-")
    atexit.register(shutil.rmtree, out, True)
    for path in files:
        # api__v1_openapi.json -> api/v1.json; apis__apps__v1_openapi.json -> apis/apps/v1.json
        rel = os.path.basename(path)[:-len("_openapi.json")].replace("__", "/") + ".json"
        os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
        shutil.copyfile(path, os.path.join(out, rel))
    _schemas[version] = out
    return out


def live_update_build(service):
    """The Tiltfile's live_update compile step for service, as Tilt runs it (sh -c): touch the
    sources whose content changed since the last update, then make."""
    return ('cd /src && { md5sum -c --quiet .sources.md5 2>/dev/null | '
            'sed -n "s/: FAILED$//p" | xargs -r touch; '
            f'md5sum common/*.[ch] common/otel/*.[ch] {service}/*.[ch] > .sources.md5; '
            f'make -s -j2 build/{service}; }}')


def tool_path(name):
    """Absolute path of a pinned tool; fails the test when scripts/tools.sh has not built it."""
    path = os.path.join(TOOLS, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} missing: run scripts/tools.sh {name}")
    return path


def run(argv, check=True, timeout=300, **kw):
    """Runs argv in the repository root; returns the CompletedProcess (text). With check, a
    non-zero exit fails the test showing stdout and stderr."""
    p = subprocess.run(argv, cwd=kw.pop("cwd", ROOT), capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {p.returncode}\n"
                    f"--- stdout\n{p.stdout[-4000:]}\n--- stderr\n{p.stderr[-4000:]}")
    return p


def helm_template(*args, check=True):
    """`helm template bakery charts/bakery <args>` for KUBE_VERSION; the CompletedProcess."""
    return run([tool_path("helm"), "template", "bakery", CHART,
                "--kube-version", KUBE_VERSION + ".0", *args], check=check)


def kustomize(directory):
    """The kustomize build of directory (relative to the repository) as YAML text: the pinned
    kustomize when scripts/tools.sh built one, else `kubectl kustomize` (same engine)."""
    own = os.path.join(TOOLS, "kustomize")
    if os.access(own, os.X_OK):
        argv = [own, "build", directory]
    elif shutil.which("kubectl"):
        argv = ["kubectl", "kustomize", directory]
    else:
        pytest.fail("no kustomize: run scripts/tools.sh kustomize")
    return run(argv).stdout


def validate(paths):
    """kubectl-validate against the schemas of the chart's oldest Kubernetes and of the test
    cluster's, offline; fails on any error."""
    paths = list(map(str, paths))
    run([tool_path("kubectl-validate"), "--local-schemas", kube_schemas("KUBE_OLDEST_VERSION"),
         *paths], env=OFFLINE)
    return run([tool_path("kubectl-validate"), "--local-schemas", kube_schemas(), *paths],
               env=OFFLINE)


def documents(text):
    """Splits multi-document YAML into non-empty documents (text)."""
    docs = re.split(r"^---[ \t]*$", text, flags=re.M)
    return [d.strip() + "\n" for d in docs if re.search(r"^kind:", d, flags=re.M)]


def kind_of(doc):
    return re.search(r"^kind:\s*(\S+)", doc, flags=re.M).group(1)


def name_of(doc):
    return re.search(r"^metadata:\n(?:  .*\n)*?  name:\s*(\S+)", doc, flags=re.M).group(1)


def by_kind_name(text):
    """{(kind, name): document} of multi-document YAML."""
    return {(kind_of(d), name_of(d)): d for d in documents(text)}


# {name} is both the context and the cluster name: Tilt judges a cluster by its name.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: https://127.0.0.1:{port}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
    namespace: default
current-context: {name}
users:
- name: {name}
  user:
    token: not-a-real-token
"""


def tiltfile_result(tmp, context, args=(), tiltfile="Tiltfile"):
    """`tilt alpha tiltfile-result` of tiltfile (relative to the repository root) with the
    kubeconfig's context (and cluster) named context and the Tiltfile's own arguments args (as
    after `tilt up --`); the CompletedProcess (exit 5 on a Tiltfile error)."""
    kubeconfig = tmp / f"kubeconfig-{context}"
    kubeconfig.write_text(KUBECONFIG.format(name=context, port=free_port()))
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), TILT_DEV_DIR=str(tmp / "tilt-dev"),
               TILT_DISABLE_ANALYTICS="1", DO_NOT_TRACK="1",
               # helm() runs `helm template`, kustomize() `kustomize build`
               PATH=TOOLS + os.pathsep + os.environ["PATH"])
    return run([tool_path("tilt"), "alpha", "tiltfile-result", "-f", tiltfile, "--", *args],
               env=env, check=False)
