"""Redis with replicas and Sentinel (issue 23): reception and baker find the primary through
the Sentinels, and no accepted order is lost or wrongly 404ed when the primary is SIGKILLed
under a steady order stream, with one Sentinel down, or when the primary turns read-only; a
client without the password is refused."""

import http.client
import json
import os
import sys
import threading
import time

import pytest

import harness

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from redis_sentinel import MASTER, SentinelRedis  # noqa: E402

PASSWORD = "s3cret-for-tests"


@pytest.fixture
def cluster():
    with SentinelRedis(password=PASSWORD) as c:
        yield c


class Stream:
    """Posts orders one after another on one keep-alive connection until stopped; each
    accepted order's fields are kept, and a second thread GETs the accepted ones meanwhile."""

    def __init__(self, reception, name, on_accept=None):
        self.reception = reception
        self.name = name
        self.on_accept = on_accept  # called with the key right after a 202, in the thread
        self.accepted = {}  # key -> (customer, pastry, time of the 202)
        self.refused = []  # (status, error, Retry-After) of the other answers
        self.bad_gets = []  # a 404 for an accepted order, or a 503 without JSON/Retry-After
        self.gets = 0
        self.started = time.monotonic()
        self.last_202 = self.started
        self.longest_gap = 0.0  # the longest stretch with no 202
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._post, daemon=True),
                        threading.Thread(target=self._get, daemon=True)]
        for t in self.threads:
            t.start()

    def _conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.reception.http_port, timeout=15)

    def _post(self):
        conn, i = self._conn(), 0
        while not self.stop.is_set():
            i += 1
            order = {"customer": f"{self.name}-{i}", "pastry": f"pastry-{i % 7}"}
            try:
                conn.request("POST", "/orders", body=json.dumps(order),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = self._conn()
                time.sleep(0.05)
                continue
            now = time.monotonic()
            if r.status == 202:
                key = json.loads(body)["orderKey"]
                with self.lock:
                    self.accepted[key] = (order["customer"], order["pastry"], now)
                    self.longest_gap = max(self.longest_gap, now - self.last_202)
                    self.last_202 = now
                if self.on_accept:
                    self.on_accept(key)
            else:
                self.refused.append((r.status, body[:200], r.getheader("Retry-After")))
                time.sleep(0.05)
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = self._conn()
        conn.close()

    def _get(self):
        conn = self._conn()
        while not self.stop.is_set():
            with self.lock:
                keys = list(self.accepted)[-20:]
            for key in keys:
                try:
                    conn.request("GET", f"/orders/{key}")
                    r = conn.getresponse()
                    body = r.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = self._conn()
                    continue
                self.gets += 1
                if r.status == 404 or (r.status == 503 and not (
                        r.getheader("Retry-After")
                        and r.getheader("Content-Type", "").startswith("application/json"))):
                    self.bad_gets.append((key, r.status, body[:200]))
                elif r.status not in (200, 503):
                    self.bad_gets.append((key, r.status, body[:200]))
            time.sleep(0.02)
        conn.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        now = time.monotonic()
        self.longest_gap = max(self.longest_gap, now - self.last_202)
        return self


def _check(bakery, stream, what, timeout=90):
    """Every accepted order reaches finished with its own fields; prints the figures."""
    keys = list(stream.accepted)
    finished, lost = {}, []
    deadline = time.monotonic() + timeout
    pending = set(keys)
    while pending and time.monotonic() < deadline:
        for k in list(pending):
            try:
                o = bakery.order(k)
            except (OSError, harness.RedisError, ConnectionError, RuntimeError):
                break  # the primary is changing: ask again
            if o.get("status") == "finished":
                finished[k] = o
                pending.discard(k)
        if pending:
            time.sleep(0.3)
    for k in keys:
        o = finished.get(k)
        customer, pastry, _ = stream.accepted[k]
        if (not o or o.get("customer") != customer or o.get("pastry") != pastry
                or not harness.RFC3339_UTC.match(o.get("orderTime", ""))):
            lost.append((k, o))
    refusals = {}
    for status, _, _ in stream.refused:
        refusals[status] = refusals.get(status, 0) + 1
    print(f"\n{what}: accepted {len(keys)} finished {len(finished)} lost {len(lost)} "
          f"longest gap without a 202 {stream.longest_gap:.1f} s; refused {refusals}; "
          f"GETs {stream.gets}, wrong {len(stream.bad_gets)}")
    assert not lost, lost[:5]
    assert not stream.bad_gets, stream.bad_gets[:5]
    for status, body, retry_after in stream.refused:  # refusals are the JSON 503
        assert status == 503 and body.startswith(b"{\"error\"") and retry_after, \
            (status, body, retry_after)


def _services(make_bakery, cluster, rabbit, **env):
    bakery = make_bakery(cluster, rabbit)
    reception = bakery.reception(**cluster.env(**env))
    bakery.baker(BAKER_CONCURRENCY="4", **cluster.env(**env))
    return bakery, reception


def _kill_under_load(cluster, bakery, reception, name, before=2.0, after=6.0):
    """Streams orders, SIGKILLs the primary right after a 202, waits for the failover and
    streams on; returns the stream and the key accepted just before the kill."""
    armed = threading.Event()
    killed = {}

    def on_accept(key):
        if armed.is_set() and not killed:
            killed["node"] = cluster.kill_primary()  # before the next request is sent
            killed["key"] = key
            killed["at"] = time.monotonic()

    stream = Stream(reception, name, on_accept)
    time.sleep(before)
    assert len(stream.accepted) > 5, stream.refused[:5]
    armed.set()
    harness.wait_until(lambda: killed, 10, what="the kill")
    new = cluster.wait_failover(killed["node"])
    failover_s = time.monotonic() - killed["at"]
    time.sleep(after)
    stream.finish()
    print(f"\nprimary {killed['node'].addr} killed; {new.addr} promoted in {failover_s:.1f} s")
    assert killed["key"] in stream.accepted
    return stream, killed


def test_primary_killed_under_load_loses_no_order(cluster, make_bakery, rabbit_server):
    bakery, reception = _services(make_bakery, cluster, rabbit_server)
    stream, killed = _kill_under_load(cluster, bakery, reception, "kill")
    _check(bakery, stream, "primary SIGKILLed")
    # The order whose 202 came just before the kill, field by field.
    o = bakery.order(killed["key"])
    customer, pastry, _ = stream.accepted[killed["key"]]
    assert (o["status"], o["customer"], o["pastry"]) == ("finished", customer, pastry), o
    # Orders flow again after the failover: more were accepted after the kill.
    assert any(t > killed["at"] + 1 for _, _, t in stream.accepted.values())
    assert stream.longest_gap < 15, stream.longest_gap
    # The old primary comes back as a replica of the new one.
    old = cluster.restart(killed["node"])
    cluster.wait_replica(old, cluster.primary)


def test_failover_with_one_sentinel_stopped(cluster, make_bakery, rabbit_server):
    cluster.stop_sentinel(0)  # the first listed: the one the watchers would follow first
    bakery, reception = _services(make_bakery, cluster, rabbit_server)
    stream, _ = _kill_under_load(cluster, bakery, reception, "one-sentinel-down")
    _check(bakery, stream, "primary SIGKILLed, one Sentinel stopped")


def test_readonly_primary_is_left_for_the_new_one(cluster, make_bakery, rabbit_server):
    """The primary is demoted behind the services' backs (no +switch-master: the Sentinels are
    re-pointed by hand): their connections to it meet READONLY and move to the new one."""
    bakery, reception = _services(make_bakery, cluster, rabbit_server)
    stream = Stream(reception, "readonly")
    time.sleep(1.5)
    old = cluster.primary
    new = next(n for n in cluster.nodes if n is not old)
    other = next(n for n in cluster.nodes if n is not old and n is not new)
    old.command("CLIENT", "PAUSE", "3000", "WRITE")  # nothing written while roles change
    harness.wait_until(lambda: new.command("INFO", "replication").split(
        "slave_repl_offset:")[1].split()[0] == old.command("INFO", "replication").split(
        "master_repl_offset:")[1].split()[0], 3, interval=0.05, what="replica caught up")
    new.command("REPLICAOF", "NO", "ONE")
    for s in cluster.sentinels:
        s.command("SENTINEL", "REMOVE", MASTER)
        s.command("SENTINEL", "MONITOR", MASTER, "127.0.0.1", new.port, 2)
        s.command("SENTINEL", "SET", MASTER, "auth-pass", PASSWORD,
                  "down-after-milliseconds", 1000, "failover-timeout", 4000)
    old.command("REPLICAOF", "127.0.0.1", new.port)
    other.command("REPLICAOF", "127.0.0.1", new.port)
    old.command("CLIENT", "UNPAUSE")
    with pytest.raises(harness.RedisError, match="^READONLY"):
        old.command("HSET", "order:x", "status", "pending")
    switched = time.monotonic()
    time.sleep(6)
    stream.finish()
    assert any(t > switched + 1 for _, _, t in stream.accepted.values())
    _check(bakery, stream, "primary demoted (READONLY)")
    assert new.command("EXISTS", f"order:{next(iter(stream.accepted))}") == 1


def _one_error_line(svc, password):
    def logged():
        return [r for r in svc.log_records() if r.get("level") == "error"]
    lines = harness.wait_until(logged, 20, what=f"{svc.name}'s error line")
    time.sleep(3)  # a few more rounds of retries: still one line
    lines = logged()
    assert len(lines) == 1, lines
    assert "REDIS_PASSWORD" in lines[0]["msg"], lines
    if password:
        assert password not in svc.output()
    assert not svc.ready()


def test_password_is_required(cluster, make_bakery, rabbit_server):
    # A client without the password is refused by Redis and by the Sentinels.
    for port in (cluster.primary.port, cluster.sentinels[0].port):
        c = harness._Resp(port)
        try:
            c.send("PING")
            with pytest.raises(harness.RedisError, match="^NOAUTH"):
                c.reply()
        finally:
            c.close()
    # Services with a wrong password, or none, say so in one error line and are not ready.
    bakery = make_bakery(cluster, rabbit_server)
    wrong = "wrong-password-123"
    for env in ({"REDIS_PASSWORD": wrong}, {"REDIS_PASSWORD": None}):
        reception = bakery.reception(wait=False, **cluster.env(**env))
        baker = bakery.baker(wait=False, **cluster.env(**env))
        for svc in (reception, baker):
            _one_error_line(svc, env["REDIS_PASSWORD"])
        r = reception.post("/orders", {"customer": "homer", "pastry": "la bombe"})
        harness.assert_error(r, 503)
        assert r.header("Retry-After")
        for svc in (reception, baker):  # that baker would hold the next order's message
            svc.stop()
    # With the password, the same set-up works; so does a single Redis (DB_HOST) with it.
    reception = bakery.reception(**cluster.env())
    bakery.baker(**cluster.env())
    bakery.wait_status([bakery.place(reception)], "finished", 30)
    single = bakery.reception(DB_HOST=cluster.primary.addr, REDIS_PASSWORD=PASSWORD)
    bakery.wait_status([bakery.place(single)], "finished", 30)


def test_wait_fails_the_write_without_replicas(cluster, make_bakery, rabbit_server):
    """REDIS_WAIT_REPLICAS: with fewer replicas than asked acknowledging, no 202."""
    bakery, reception = _services(make_bakery, cluster, rabbit_server, REDIS_WAIT_REPLICAS="3")
    r = reception.post("/orders", {"customer": "homer", "pastry": "la bombe"})
    harness.assert_error(r, 503)
    assert r.header("Retry-After")
    bakery.close()
    bakery, reception = _services(make_bakery, cluster, rabbit_server, REDIS_WAIT_REPLICAS="2")
    bakery.wait_status([bakery.place(reception)], "finished", 30)
