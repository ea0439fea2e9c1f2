"""Fixtures for the end-to-end suite: the whole Compose stack, brought up by `make up`.

`stack` (module scope) runs `make up` under a project name and loopback ports of its own, so
it never collides with a stack a developer runs or with other tests, and ALWAYS runs
`make down` afterwards, whether up or a test failed. Docker is required: a missing docker fails
the suite (it is not skipped).
"""

import os
import secrets
import shutil

import pytest

from e2e_stack import Stack
from harness import free_port


@pytest.fixture(scope="module")
def stack():
    if shutil.which("docker") is None:
        pytest.fail("docker is required for the end-to-end tests (scripts/deps.sh)")
    project = f"bakery-e2e-{secrets.token_hex(3)}"
    env = dict(os.environ,
               COMPOSE_PROJECT_NAME=project,
               BAKERY_RECEPTION_PORT=str(free_port()),
               BAKERY_JAEGER_PORT=str(free_port()),
               BAKERY_RABBITMQ_PORT=str(free_port()),
               # Bakes of up to a second: orders are still in flight when the baker is killed.
               BAKE_TIME_SCALE="10")
    s = Stack(project, env)
    try:
        # Cold: base image, stand-ins and both images are built first (minutes); guards hangs.
        up = s.make("up", timeout=3600)
        if up.returncode != 0:
            pytest.fail(f"make up failed ({up.returncode})\n--- stdout\n{up.stdout[-6000:]}"
                        f"\n--- stderr\n{up.stderr[-6000:]}")
        yield s
    finally:
        down = s.make("down", timeout=300)
        if down.returncode != 0:
            print(f"make down failed ({down.returncode}): {down.stderr[-3000:]}")
