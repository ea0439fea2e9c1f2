"""Helpers of the end-to-end suite: commands in the repository root, docker inspect, and Stack,
a handle on a running Compose project (URLs, containers, RabbitMQ queues, make up/down)."""

import json
import os
import subprocess

import pytest

from harness import http_get

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(argv, env=None, timeout=300, check=True):
    """Runs argv in the repository root; returns the CompletedProcess (text). With check, a
    non-zero exit fails the test with the output's tail."""
    p = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {p.returncode}\n"
                    f"--- stdout\n{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-6000:]}")
    return p


def docker(*args, check=True, timeout=120):
    return run(["docker", *args], check=check, timeout=timeout)


def inspect(obj):
    """`docker inspect` of one container or image, as a dict."""
    return json.loads(docker("inspect", obj).stdout)[0]


class Stack:
    """A running Compose stack: its project name, URLs, and its containers by service."""

    def __init__(self, project, env):
        self.project = project
        self.env = env
        self.reception = f"http://127.0.0.1:{env['BAKERY_RECEPTION_PORT']}"
        self.jaeger = f"http://127.0.0.1:{env['BAKERY_JAEGER_PORT']}"
        self.rabbitmq = f"http://127.0.0.1:{env['BAKERY_RABBITMQ_PORT']}"

    def label(self, *more):
        return ["--filter", f"label=com.docker.compose.project={self.project}", *more]

    def containers(self, service=None):
        """Ids of the project's containers (all states), of one service when given."""
        extra = ["--filter", f"label=com.docker.compose.service={service}"] if service else []
        return docker("ps", "-a", "-q", *self.label(*extra)).stdout.split()

    def container(self, service):
        ids = self.containers(service)
        assert len(ids) == 1, f"expected one {service} container, found {ids}"
        return ids[0]

    def queue(self, name):
        """RabbitMQ's management view of a queue (messages, messages_unacknowledged, ...)."""
        r = http_get(f"{self.rabbitmq}/api/queues/%2F/{name}",
                     headers={"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="})  # guest:guest
        assert r.status == 200, f"queue {name}: {r}"
        return r.json()

    def make(self, target, timeout):
        return run(["make", "--no-print-directory", target], env=self.env, timeout=timeout,
                   check=False)
