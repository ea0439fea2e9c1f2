"""scripts/dev-run.sh, the dev image's entrypoint for Tilt live update, run for real by
/bin/sh on a small project whose `make build/reception` makes a program that reports its
version: builds and starts it, rebuilds and restarts on touch, keeps the old process when
the build fails, forwards SIGTERM and exits with the service's status."""

import os
import signal
import subprocess
import time

import pytest

from k8stools import ROOT

MAKEFILE = """\
build/reception: version.txt
\t@test "$$(cat version.txt)" != broken
\t@mkdir -p build
\tv=$$(cat version.txt); e=$(CURDIR)/events; \\
\tprintf '#!/bin/sh\\ntrap "echo stopped %s >>%s; exit 0" TERM\\necho started %s >>%s\\nwhile :; do sleep 0.05; done\\n' \\
\t\t"$$v" "$$e" "$$v" "$$e" >build/reception.tmp
\tchmod +x build/reception.tmp
\tmv build/reception.tmp build/reception
"""


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def project(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "Makefile").write_text(MAKEFILE)
    (src / "version.txt").write_text("v1\n")
    return src


def events(src):
    path = src / "events"
    return path.read_text().split("\n")[:-1] if path.exists() else []


def start(project, tmp_path):
    env = dict(os.environ, DEV_SRC=str(project), DEV_RESTART_FILE=str(tmp_path / ".restart"))
    return subprocess.Popen(["/bin/sh", os.path.join(ROOT, "scripts", "dev-run.sh"),
                             "reception"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_rebuild_restart_and_sigterm(project, tmp_path):
    proc = start(project, tmp_path)
    try:
        assert wait_for(lambda: events(project) == ["started v1"]), events(project)

        (project / "version.txt").write_text("v2\n")
        (tmp_path / ".restart").touch()
        assert wait_for(lambda: events(project)[-1:] == ["started v2"]), events(project)
        assert events(project) == ["started v1", "stopped v1", "started v2"]

        # A broken build leaves the running service alone.
        (project / "version.txt").write_text("broken\n")
        (tmp_path / ".restart").touch()
        time.sleep(2)
        assert events(project) == ["started v1", "stopped v1", "started v2"]
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert events(project)[-1] == "stopped v2"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read()
    assert "build failed" in out


def test_exits_with_the_service_status(project, tmp_path):
    (project / "Makefile").write_text(
        "build/reception:\n\t@mkdir -p build\n"
        "\tprintf '#!/bin/sh\\nexit 7\\n' >build/reception\n\tchmod +x build/reception\n")
    proc = start(project, tmp_path)
    assert proc.wait(timeout=20) == 7


def test_refuses_unknown_service(tmp_path):
    p = subprocess.run(["/bin/sh", os.path.join(ROOT, "scripts", "dev-run.sh"), "oven"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "usage" in p.stderr
