"""Shared pytest fixtures for every suite under tests/: real servers and Bakery services.

Session-scoped (shared, never restarted by tests):
    redis_server     a RedisServer          rabbit_server    a RabbitServer
Function-scoped (torn down after the test, even when it fails):
    bakery           a harness.Bakery on the shared servers with its own ORDERS_QUEUE;
                     bakery.reception(**env) / bakery.baker(**env) start services; at
                     teardown all are stopped and their stderr must hold no sanitizer report.
    make_bakery      make_bakery(redis, rabbit) -> another Bakery (e.g. on private servers).
    make_redis       make_redis(start=True, **kw) -> a private RedisServer a test may
                     stop/kill (kw: RedisServer's, e.g. args=[extra redis-server options]).
    make_rabbit      make_rabbit(start=True) -> a private RabbitServer (start: 5-20 s).
See tests/harness/ (the harness package) for the classes.
"""

import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so fixtures still stop their servers.
signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def redis_server():
    with harness.RedisServer() as r:
        yield r


@pytest.fixture(scope="session")
def rabbit_server():
    with harness.RabbitServer() as r:
        yield r


def _closing_factory(make):
    made = []

    def factory(*args, **kw):
        obj = make(*args, **kw)
        made.append(obj)
        return obj

    return factory, made


def _close_all(made):
    errors = []
    for obj in reversed(made):
        try:
            obj.close()
        except Exception as e:  # close everything, then report
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def make_redis():
    factory, made = _closing_factory(
        lambda start=True, **kw: harness.RedisServer(start=start, **kw))
    yield factory
    _close_all(made)


@pytest.fixture
def make_rabbit():
    factory, made = _closing_factory(lambda start=True: harness.RabbitServer(start=start))
    yield factory
    _close_all(made)


@pytest.fixture
def make_bakery(tmp_path):
    factory, made = _closing_factory(
        lambda redis, rabbit, **kw: harness.Bakery(redis, rabbit, tmp_path / "logs", **kw))
    yield factory
    _close_all(made)


@pytest.fixture
def bakery(make_bakery, redis_server, rabbit_server):
    return make_bakery(redis_server, rabbit_server)
