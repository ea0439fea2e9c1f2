"""baker reliability (issue 9): Redis outages and loading never dead-letter, WRONGTYPE does at
once, SIGTERM with a full prefetch requeues what it cannot finish and exits 0 in time."""

import json
import signal
import threading
import time

import harness

OLD_RETRY_BUDGET_S = 16  # the baker used to dead-letter after 8 tries, about 16 s


def _queue(bakery, suffix=""):
    return bakery.rabbit.queues()[bakery.queue + suffix]


def _metric(svc, name):
    samples = harness.parse_prometheus(svc.get("/metrics").text)
    return sum(v for (n, _), v in samples.items() if n == name)


def _pastry(lo, hi, prefix):
    """A pastry whose bake round takes lo..hi ms (x BAKE_TIME_SCALE)."""
    return next(p for p in (f"{prefix}-{i}" for i in range(100000))
                if lo <= harness.fnv1a32(p) % 100 <= hi)


def _not_ready(svc):
    return svc.get("/readyz").status == 503


def test_redis_outage_longer_than_the_old_retry_budget_loses_nothing(make_redis, make_bakery,
                                                                     rabbit_server):
    redis = make_redis()
    bakery = make_bakery(redis, rabbit_server)
    reception = bakery.reception()
    keys = [bakery.place(reception, f"c{i}", f"p{i}") for i in range(30)]
    redis.stop()  # saves: the orders survive; their messages wait on the queue
    baker = bakery.baker(wait=False, BAKER_CONCURRENCY="4").wait_healthy()
    t0 = time.monotonic()
    harness.wait_until(lambda: _queue(bakery)["messages_unacknowledged"] == 4, 30,
                       what="the baker holding a full prefetch")
    while time.monotonic() - t0 < OLD_RETRY_BUDGET_S + 9:  # 25 s without Redis
        assert _not_ready(baker)
        q = _queue(bakery)
        assert q["messages_unacknowledged"] <= 4, q  # holds its prefetch, takes no more
        assert _queue(bakery, ".dead")["messages"] == 0
        time.sleep(1)
    assert baker.alive()
    redis.start()
    bakery.wait_status(keys, "finished", 60)
    baker.wait_ready(30)
    harness.wait_until(lambda: _queue(bakery)["messages"] == 0, 30, what="queue drained")
    assert _queue(bakery, ".dead")["messages"] == 0
    assert _metric(baker, "baker_store_retries_total") > 0


def test_redis_loading_longer_than_the_old_retry_budget_is_waited_out(make_redis, make_bakery,
                                                                      rabbit_server):
    # Loading a big dataset: Redis answers LOADING (or nothing) for about 20 s.
    redis = make_redis()
    redis.args = ["--enable-debug-command", "local"]
    redis.restart()
    assert redis.command("DEBUG", "POPULATE", "100000", "filler") == "OK"
    bakery = make_bakery(redis, rabbit_server)
    reception = bakery.reception()
    keys = [bakery.place(reception, f"c{i}", f"p{i}") for i in range(10)]
    redis.stop()  # SHUTDOWN SAVE: orders and filler in dump.rdb
    redis.args = ["--key-load-delay", "200", "--loading-process-events-interval-bytes", "1024"]
    redis.start(wait=False)
    t0 = time.monotonic()

    def loading():
        try:
            redis.command("PING")
            return False
        except harness.RedisError as e:
            return str(e).startswith("LOADING")

    harness.wait_until(loading, 10, what="redis answering LOADING")
    baker = bakery.baker(wait=False).wait_healthy()
    harness.wait_until(lambda: not loading(), 120, interval=0.5, what="redis loaded")
    assert time.monotonic() - t0 > OLD_RETRY_BUDGET_S, "loading was too quick to prove it"
    bakery.wait_status(keys, "finished", 60)
    baker.wait_ready(30)
    assert _queue(bakery, ".dead")["messages"] == 0


def test_wrongtype_is_dead_lettered_at_once_without_retries(bakery):
    reception = bakery.reception()
    baker = bakery.baker()
    key = "0123456789abcdef0123456789abcdef"
    bakery.redis.command("DEL", f"order:{key}")
    bakery.redis.command("SET", f"order:{key}", "not a hash")
    before = _metric(baker, "baker_store_retries_total")
    t0 = time.monotonic()
    bakery.rabbit.publish(json.dumps({"orderKey": key, "timeEnqueued": "2026-01-01T00:00:00Z"}),
                          bakery.queue)
    harness.wait_until(lambda: _queue(bakery, ".dead")["messages"] == 1, 10,
                       what="the message dead-lettered")
    assert time.monotonic() - t0 < 5
    assert _metric(baker, "baker_store_retries_total") == before  # permanent: not retried
    assert bakery.redis.command("GET", f"order:{key}") == "not a hash"  # left alone
    assert baker.ready()
    bakery.wait_status(bakery.place(reception), "finished", 30)  # consuming goes on
    bakery.redis.command("DEL", f"order:{key}")


def test_sigterm_with_a_full_prefetch_requeues_and_exits_0_within_10s(bakery):
    reception = bakery.reception()
    # 60 orders, 50 prefetched and baking at once: at scale 200 a third bake in 2-3 s (they
    # finish in the drain), the rest in 16-20 s a round (they cannot); 10 wait on the queue.
    baker = bakery.baker(BAKER_CONCURRENCY="50", BAKE_TIME_SCALE="200")
    keys = [bakery.place(reception, f"c{i}", _pastry(10, 15, f"q{i}") if i % 3 == 0
                         else _pastry(80, 99, f"s{i}")) for i in range(60)]
    harness.wait_until(
        lambda: sum(bakery.order(k)["status"] == "baking" for k in keys) == 50, 60,
        what="50 orders baking")
    t0 = time.monotonic()
    rc = baker.terminate(timeout=10)
    took = time.monotonic() - t0
    assert rc == 0, f"exit {rc} after {took:.1f}s:\n{baker.output()[-3000:]}"

    orders = {k: bakery.order(k) for k in keys}
    finished = [k for k, o in orders.items() if o["status"] == "finished"]
    q = harness.wait_until(lambda: _queue(bakery), 10)
    assert q["messages_unacknowledged"] == 0, q
    assert q["messages"] == len(keys) - len(finished), (q, len(finished))  # the rest requeued
    assert 0 < len(finished) < 50, len(finished)  # some done in the drain, some not
    logs = [r.get("msg") for r in baker.log_records()]
    assert any("requeue" in (m or "") for m in logs), logs[-20:]

    bakery.baker()  # BAKE_TIME_SCALE=0
    bakery.wait_status(keys, "finished", 60)
    harness.wait_until(lambda: _queue(bakery)["messages"] == 0, 30, what="queue drained")
    assert _queue(bakery, ".dead")["messages"] == 0


def test_redelivery_while_holding_an_order_for_redis_is_not_lost(make_redis, make_bakery,
                                                                   rabbit_server):
    """A worker holds an order while Redis is down; the broker connection drops, so the message
    comes back to another worker of the same baker. That copy must not be acked while the
    first (whose ack can no longer land) still holds the order: on SIGTERM it is requeued."""
    redis = make_redis()
    bakery = make_bakery(redis, rabbit_server)
    reception = bakery.reception()
    key = bakery.place(reception)
    reception.stop()
    redis.stop()
    baker = bakery.baker(wait=False, BAKER_CONCURRENCY="2").wait_healthy()
    harness.wait_until(lambda: _queue(bakery)["messages_unacknowledged"] == 1, 30,
                       what="the baker holding the order")
    rabbit_server.ctl("close_all_connections", "test: a lost broker connection")
    harness.wait_until(lambda: _metric(baker, "baker_redeliveries_total") >= 1, 30,
                       what="the message redelivered on the new connection")
    time.sleep(1)
    assert _queue(bakery)["messages"] == 1  # the copy is not acked
    assert baker.terminate(timeout=10) == 0
    q = harness.wait_until(lambda: _queue(bakery), 10)
    assert q["messages"] == 1 and q["messages_unacknowledged"] == 0, q  # requeued
    redis.start()
    bakery.baker()
    bakery.wait_status(key, "finished", 30)
    assert _queue(bakery, ".dead")["messages"] == 0


def test_sigterm_with_a_broker_gone_silent_still_exits_in_time(make_bakery, redis_server,
                                                               make_rabbit):
    """The broker goes silent once the consumer is cancelled: the bakes are abandoned and
    requeued at 6 s, and closing the connection does not wait on the broker for seconds more
    (review 5d), so the whole stop stays within its budget (about 9 s)."""
    rabbit = make_rabbit()
    bakery = make_bakery(redis_server, rabbit)
    reception = bakery.reception()
    baker = bakery.baker(BAKER_CONCURRENCY="4", BAKE_TIME_SCALE="200")
    keys = [bakery.place(reception, f"c{i}", _pastry(80, 99, f"z{i}")) for i in range(4)]
    harness.wait_until(lambda: all(bakery.order(k)["status"] == "baking" for k in keys), 60,
                       what="4 orders baking")
    silence = threading.Timer(1.0, rabbit.proc.signal_group, (signal.SIGSTOP,))
    try:
        silence.start()
        t0 = time.monotonic()
        rc = baker.terminate(timeout=20)
        took = time.monotonic() - t0
    finally:
        silence.cancel()
        rabbit.proc.signal_group(signal.SIGCONT)
    assert rc == 0, f"exit {rc}:\n{baker.output()[-3000:]}"
    assert took < 9.5, f"stopped in {took:.1f} s:\n{baker.output()[-3000:]}"


class BakingReplyCut(harness.TcpProxy):
    """A TCP forwarder to Redis that lets the first command writing an order "baking" through,
    then cuts that connection before its reply and refuses new ones for DOWN_S: the write is
    applied, the baker never hears so, and its store's own immediate retry fails too (as when
    the Redis pod is deleted at that moment)."""

    DOWN_S = 2

    def __init__(self, target):
        super().__init__(target)
        self.cut = False

    def relay(self, conn, data, from_server):
        if not from_server and not self.cut and b"\r\nbaking\r\n" in data:
            conn["cut"] = self.cut = True
        elif from_server and conn.get("cut"):
            up, self.target = self.target, harness.free_port()  # nothing listens there
            threading.Timer(self.DOWN_S, lambda: setattr(self, "target", up)).start()
            raise OSError("reply cut")  # _pump closes both sides


def test_own_baking_write_with_its_reply_lost_is_still_baked(redis_server, make_bakery,
                                                             rabbit_server):
    """A first delivery whose "baking" write reached Redis but whose reply was lost retries,
    finds the order "baking", and knows that is its own write: the order is baked and
    finished. Before, it took it for another delivery's, acked the message and left the
    order baking for ever (the chaos flow lost an order that way)."""
    proxy = BakingReplyCut(redis_server.port)
    try:
        bakery = make_bakery(redis_server, rabbit_server)
        key = bakery.place(bakery.reception(), "cut", "reply")
        bakery.baker(DB_HOST=proxy.addr, BAKER_CONCURRENCY="1")
        bakery.wait_status([key], "finished", 30)
        assert proxy.cut
    finally:
        proxy.close()
