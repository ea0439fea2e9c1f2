"""baker against real servers: health port, dead letters, redelivery, SIGKILL and SIGTERM."""

import json
import time

import harness
from harness import slow_pastry

UNKNOWN_KEY = "0123456789abcdef0123456789abcdef"


def _queue(bakery, suffix=""):
    return bakery.rabbit.queues()[bakery.queue + suffix]


def test_health_port(bakery):
    baker = bakery.baker()
    assert baker.get("/healthz").status == 200
    assert baker.get("/readyz").status == 200
    r = baker.get("/metrics")
    assert r.status == 200 and r.header("Content-Type", "").startswith("text/plain"), r
    assert harness.parse_prometheus(r.text), "no series"
    r = baker.get("/nope")
    assert r.status == 404 and "error" in r.json(), r


def test_baker_metrics_count_baked_orders(bakery):
    reception, baker = bakery.reception(), bakery.baker()

    def total():
        s = harness.parse_prometheus(baker.get("/metrics").text)
        return sum(v for (n, _), v in s.items() if "bake" in n and n.endswith("_total"))

    before = total()
    bakery.wait_status([bakery.place(reception) for _ in range(3)])
    harness.wait_until(lambda: total() >= before + 3, 10, what="bake counters")


def test_malformed_messages_are_dead_lettered_and_consuming_goes_on(bakery):
    reception = bakery.reception()
    bakery.baker()
    bad = ["not json", "", "[]", '{"orderKey":12}', '{"timeEnqueued":"x"}',
           json.dumps({"orderKey": UNKNOWN_KEY, "timeEnqueued": "2024-01-01T00:00:00.000000000Z"}),
           json.dumps({"orderKey": "../../etc", "timeEnqueued": "x"}), '{"orderKey":"' + "a" * 5000]
    for body in bad:
        bakery.rabbit.publish(body, bakery.queue)
    harness.wait_until(lambda: _queue(bakery, ".dead")["messages"] == len(bad), 30,
                       what="all bad messages dead-lettered")
    assert _queue(bakery)["messages"] == 0
    key = bakery.place(reception)
    bakery.wait_status(key, "finished", 30)
    assert _queue(bakery, ".dead")["messages"] == len(bad)  # and nothing requeued forever


def test_redelivered_finished_order_is_acked_without_baking(bakery):
    reception = bakery.reception()
    bakery.baker()
    key = bakery.place(reception)
    before = bakery.wait_status(key)[key]

    monitor = bakery.redis.monitor()
    try:
        body = json.dumps({"orderKey": key, "timeEnqueued": "2024-01-01T00:00:00.000000000Z"})
        for _ in range(3):
            bakery.rabbit.publish(body, bakery.queue)
        harness.wait_until(lambda: _queue(bakery)["messages"] == 0, 30, what="queue drained")
        time.sleep(0.5)
    finally:
        commands = monitor.stop()
    writes = [c for c in commands if key in c and "baking" in c]
    assert writes == [], f"a finished order was baked again: {writes}"
    assert any(key in c for c in commands), "baker never looked the order up"
    assert bakery.order(key) == before
    assert _queue(bakery, ".dead")["messages"] == 0


def test_sigkill_mid_order_loses_nothing(bakery):
    reception = bakery.reception()
    slow = bakery.baker(BAKE_TIME_SCALE="40", BAKER_CONCURRENCY="2")  # >= 2 s per round
    keys = [bakery.place(reception, f"c{i}", slow_pastry(50, f"p{i}")) for i in range(6)]
    harness.wait_until(lambda: any(bakery.order(k)["status"] == "baking" for k in keys), 30,
                       what="an order baking")
    assert slow.kill() == -9
    assert any(bakery.order(k)["status"] == "baking" for k in keys)  # killed mid-order
    bakery.baker()  # BAKE_TIME_SCALE=0
    bakery.wait_status(keys, "finished", 60)
    harness.wait_until(lambda: _queue(bakery)["messages"] == 0, 30, what="queue drained")
    assert _queue(bakery, ".dead")["messages"] == 0


def test_sigterm_finishes_in_flight_orders_and_exits_0(bakery):
    reception = bakery.reception()
    baker = bakery.baker(BAKE_TIME_SCALE="15", BAKER_CONCURRENCY="2")  # 0.9-1.5 s per round
    keys = [bakery.place(reception, f"c{i}", slow_pastry(60, f"q{i}")) for i in range(5)]
    harness.wait_until(lambda: any(bakery.order(k)["status"] == "baking" for k in keys), 30,
                       what="an order baking")
    baking = [k for k in keys if bakery.order(k)["status"] == "baking"]
    t0 = time.monotonic()
    rc = baker.terminate(timeout=10)
    assert rc == 0, f"exit {rc} after {time.monotonic() - t0:.1f}s:\n{baker.output()[-3000:]}"

    orders = {k: bakery.order(k) for k in keys}
    assert all(orders[k]["status"] == "finished" for k in baking), orders
    assert all(o["status"] in ("pending", "finished") for o in orders.values()), orders
    waiting = [k for k, o in orders.items() if o["status"] == "pending"]
    q = harness.wait_until(lambda: _queue(bakery), 10)
    assert q["messages_unacknowledged"] == 0 and q["messages"] == len(waiting), (q, orders)

    bakery.baker()
    bakery.wait_status(keys, "finished", 60)


def test_redis_briefly_down_is_retried(make_redis, make_bakery, rabbit_server):
    redis = make_redis()
    bakery = make_bakery(redis, rabbit_server)
    reception = bakery.reception()
    key = bakery.place(reception)
    redis.stop()  # saves: the order survives
    baker = bakery.baker(wait=False)
    baker.wait_healthy()
    time.sleep(2)
    redis.start()
    bakery.wait_status(key, "finished", 60)
    baker.wait_ready()
    assert _queue(bakery, ".dead")["messages"] == 0
