"""The Tiltfile's live update contract, for real in Docker: the reception image's `dev` stage
(the Tiltfile's target) runs scripts/dev-run.sh; a source file synced the way Tilt syncs it
(tar through exec, to the live_update sync() destination), then the Tiltfile's run() steps
(`make ... build/reception`, then `touch /tmp/.restart`) get the new code serving without an
image build; a compile error fails the make step, so the restart step never runs and the old
process keeps serving. Timing is not asserted (see the README's figure)."""

import io
import os
import secrets
import shutil
import subprocess
import tarfile
import time

import pytest

from k8stools import ROOT, live_update_build, run

from harness import http_get, wait_until  # tests/harness/, on sys.path via tests/conftest.py

IMAGE = "bakery/reception:dev-test"


def docker(*args, check=True, **kw):
    return run(["docker", *args], check=check, **kw)


@pytest.fixture
def dev_container():
    if shutil.which("docker") is None:
        pytest.fail("docker is required (scripts/deps.sh)")
    docker("build", "-q", "--target", "dev", "-f", "Dockerfiles/reception.Dockerfile",
           "-t", IMAGE, ".", timeout=1200)
    name = f"bakery-k8s-dev-{secrets.token_hex(4)}"
    docker("network", "create", name)
    try:
        docker("run", "-d", "--name", name, "--network", name, "-p", "127.0.0.1::8000",
               "-e", "OTEL_SDK_DISABLED=true", IMAGE)
        port = docker("port", name, "8000/tcp").stdout.splitlines()[0].rsplit(":", 1)[1]
        yield name, f"http://127.0.0.1:{port}"
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", name, check=False)


def sync(container, path, content, mtime=None):
    """What Tilt's sync() does: a tar of the changed file extracted in the container, its time
    in whole seconds (Go's tar rounds it: a quick save can look older than its object)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = content.encode()
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size = len(data)
        info.mode = 0o644
        info.mtime = round(time.time()) if mtime is None else mtime
        tar.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "exec", "-i", container, "tar", "-C", "/", "-xf", "-"],
                   input=buf.getvalue(), check=True, timeout=60)


def live_update(container, content, mtime=None):
    """The Tiltfile's live_update: sync('reception/', '/src/reception/'), then the run() steps
    in order, stopping at the first that fails (as Tilt does). Returns the make step."""
    sync(container, "/src/reception/routes.c", content, mtime)
    # Tilt runs each run() step through `sh -c`.
    make = docker("exec", container, "sh", "-c", live_update_build("reception"), check=False,
                  timeout=300)
    if make.returncode == 0:
        docker("exec", container, "sh", "-c", "touch /tmp/.restart")
    return make


def test_synced_change_is_rebuilt_and_served(dev_container):
    container, url = dev_container
    first = wait_until(lambda: http_get(url + "/").status == 200 and http_get(url + "/"),
                       timeout=120, what="reception in the dev container")
    assert "reception is attended" in first.text
    source = open(os.path.join(ROOT, "reception", "routes.c")).read()
    marker = f"attended by live update {secrets.token_hex(3)}"
    changed = source.replace("reception is attended", f"reception is {marker}")
    assert changed != source
    make = live_update(container, changed)
    assert make.returncode == 0, make.stdout + make.stderr
    wait_until(lambda: marker in http_get(url + "/").text, timeout=120,
               what="the changed code serving")
    logs = docker("logs", container).stderr
    assert "change detected: rebuilding reception" in logs

    # A compile error: the update fails at the make step and the old process keeps serving.
    broken = changed.replace("static void handle_root(", "static void handle_root(oops ")
    make = live_update(container, broken)
    assert make.returncode != 0
    assert "error" in make.stdout + make.stderr
    time.sleep(1)
    assert marker in http_get(url + "/").text
    assert docker("logs", container).stderr.count("change detected: rebuilding reception") == 1

    # Fixing it recovers, even when the synced file looks older than its object file.
    make = live_update(container, source, mtime=1)
    assert make.returncode == 0, make.stdout + make.stderr
    wait_until(lambda: http_get(url + "/").json()["message"] == "reception is attended",
               timeout=120, what="the fixed code serving")
