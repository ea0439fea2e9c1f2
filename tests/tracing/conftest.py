"""Fixtures for the tracing suites: a real Jaeger and OpenTelemetry Collector (tests/tracing/otelstack.py).

Session-scoped (shared; tests tell their data apart by a unique service name):
    jaeger           an otelstack.Jaeger (memory storage, query API at jaeger.query_url)
    collector        an otelstack.Collector with k8s/otel-collector/config.yaml exporting to it;
                     point services at collector.otlp_http_url (OTEL_EXPORTER_OTLP_ENDPOINT)
Function-scoped:
    make_collector   make_collector(start=True) -> a private Collector to that Jaeger, which
                     a test may stop and start; stopped after the test
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import otelstack  # noqa: E402


@pytest.fixture(scope="session")
def otel_workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("otel")


@pytest.fixture(scope="session")
def jaeger(otel_workdir):
    with otelstack.Jaeger(otel_workdir / "jaeger") as j:
        yield j


@pytest.fixture(scope="session")
def collector(jaeger, otel_workdir):
    with otelstack.Collector(jaeger, otel_workdir / "collector") as c:
        yield c


@pytest.fixture
def make_collector(jaeger, tmp_path):
    made = []

    def factory(start=True):
        c = otelstack.Collector(jaeger, tmp_path / f"collector{len(made)}", start=start)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()
