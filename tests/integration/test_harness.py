"""The harness itself against the real servers: start, stop, restart, data kept, nothing left."""

import os

import pytest

import harness


def _pids_with_env(var, value):
    """Pids of processes whose environment has var=value (other engineers run nodes too)."""
    want = f"{var}={value}".encode()
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    pids.append(pid)
        except OSError:
            pass
    return pids


def test_redis_start_stop_restart_keeps_data(make_redis):
    redis = make_redis()
    assert redis.command("PING") == "PONG"
    redis.command("HSET", "order:x", "status", "pending", "customer", "h\u00e9")
    redis.stop()
    assert not harness.port_open(redis.port)
    with pytest.raises(OSError):
        redis.command("PING")
    redis.start()
    assert redis.hgetall("order:x") == {"status": "pending", "customer": "h\u00e9"}
    redis.command("HSET", "order:y", "status", "pending")
    redis.kill()
    redis.start()
    assert redis.keys() == ["order:x"]  # a crash loses what was not saved


def test_redis_monitor_sees_commands(make_redis):
    redis = make_redis()
    mon = redis.monitor()
    redis.command("HSET", "order:m", "status", "baking")
    harness.wait_until(lambda: any("order:m" in line for line in mon.lines()), 5)
    assert any('"baking"' in line for line in mon.stop())


def test_rabbit_restart_keeps_durable_queue_and_persistent_messages(make_rabbit):
    rabbit = make_rabbit()
    rabbit.declare_queue("kept", durable=True)
    rabbit.declare_queue("lost", durable=False)
    rabbit.publish('{"n":1}', "kept", persistent=True)
    rabbit.publish('{"n":2}', "kept", persistent=False)
    queues = rabbit.queues()
    assert queues["kept"]["durable"] is True and queues["kept"]["messages"] == 2
    assert queues["kept"]["messages_persistent"] == 1

    rabbit.stop()
    assert not harness.port_open(rabbit.port)
    rabbit.start()
    queues = rabbit.queues()
    assert "lost" not in queues
    assert queues["kept"]["messages"] == 1
    assert rabbit.get("kept") == '{"n":1}'
    assert rabbit.queues()["kept"]["messages"] == 0

    rabbit.close()
    assert not os.path.exists(rabbit.dir)
    assert not harness.port_open(rabbit.port) and not harness.port_open(rabbit.epmd_port)
    assert _pids_with_env("ERL_EPMD_PORT", rabbit.epmd_port) == []  # epmd, beam: all gone


def test_wait_until_times_out_with_last_value():
    with pytest.raises(TimeoutError, match="last: 0"):
        harness.wait_until(lambda: 0, timeout=0.3, what="zero")
    assert harness.wait_until(lambda: 7, timeout=1) == 7


def test_parse_prometheus():
    text = ('# HELP x_total X.\n# TYPE x_total counter\nx_total{route="/orders",code="202"} 3\n'
            'y 1.5e3\nz_bucket{le="+Inf"} 4\n')
    s = harness.parse_prometheus(text)
    assert s[("x_total", frozenset({("route", "/orders"), ("code", "202")}))] == 3
    assert s[("y", frozenset())] == 1500
    with pytest.raises(ValueError):
        harness.parse_prometheus("not a sample line at all\n")
