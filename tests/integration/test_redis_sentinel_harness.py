"""The Redis Sentinel harness (tests/redis_sentinel.py) itself: a failover when the primary is
SIGKILLed, its return as a replica, a stopped Sentinel, passwords, and nothing left behind."""

import os
import sys

import pytest

import harness

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from redis_sentinel import SentinelRedis  # noqa: E402


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_failover_return_and_close():
    c = SentinelRedis(password="harness-pw")
    try:
        first = c.primary
        assert first.role() == "master"
        assert sorted(n.role() for n in c.nodes) == ["master", "slave", "slave"]
        c.command("SET", "k", "v")
        c.command("WAIT", 2, 2000)

        # A client without the password is refused by Redis and by a Sentinel.
        for port in (first.port, c.sentinels[1].port):
            conn = harness._Resp(port)
            try:
                conn.send("PING")
                with pytest.raises(harness.RedisError, match="^NOAUTH"):
                    conn.reply()
            finally:
                conn.close()

        # SIGKILL the primary: a replica is promoted and keeps the data.
        old = c.kill_primary()
        assert not old.proc.alive()
        new = c.wait_failover(old, timeout=30)
        assert new is not old and c.primary is new
        assert new.command("GET", "k") == "v"

        # It comes back as a replica of the new primary.
        c.restart(old)
        c.wait_replica(old, new)
        assert old.command("GET", "k") == "v"

        # One Sentinel stopped: the two left still fail over.
        c.stop_sentinel(0)
        assert not c.sentinels[0].alive()
        again = c.kill_primary()
        third = c.wait_failover(again, timeout=30)
        assert third is not again and third.command("GET", "k") == "v"
        c.start_sentinel(0)
        c.restart(again)
        c.wait_agreed(third)
    finally:
        pids = [p.proc.pid for p in c.nodes + c.sentinels if p.proc is not None]
        ports = [n.port for n in c.nodes] + [s.port for s in c.sentinels]
        c.close()
    assert all(_gone(pid) for pid in pids)
    assert not any(harness.port_open(p) for p in ports)
