"""Helpers for tests/k8s: the pinned tools from scripts/tools.sh, rendering, YAML documents.

The tools are real binaries in $BAKERY_TOOLS (default ~/.cache/bakery-tools); `make test`
builds them first (scripts/tools.sh). A missing tool fails the test that needs it.
"""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.environ.get("BAKERY_TOOLS", os.path.expanduser("~/.cache/bakery-tools"))
CHART = os.path.join(ROOT, "charts", "bakery")
# The Kubernetes version whose built-in schemas (carried by kubectl-validate) the manifests
# must satisfy, and that `helm template` renders for.
KUBE_VERSION = "1.30"
# No kubeconfig: nothing may talk to a cluster.
OFFLINE = dict(os.environ, KUBECONFIG=os.devnull)


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
    """kubectl-validate against KUBE_VERSION's built-in schemas, offline; fails on any error."""
    return run([tool_path("kubectl-validate"), "--version", KUBE_VERSION, *map(str, paths)],
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
