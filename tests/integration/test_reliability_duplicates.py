"""A second delivery of the same order never bakes it twice (issue 9, item 2).

A publish retried after a lost confirm (mq_publisher_retry does that, with the same message id) or a
redelivery can put one order on the queue twice; the baker may then hold both deliveries at
once, on different workers.
"""

import json
import time

import harness
from harness import slow_pastry


def _bakes(baker, key):
    return [r for r in baker.log_records()
            if r.get("msg") == "baking order" and r.get("order_key") == key]


def test_duplicate_deliveries_in_flight_bake_once(bakery):
    reception = bakery.reception()
    key = bakery.place(reception, "homer", slow_pastry(60, "dup"))
    body = json.dumps({"orderKey": key, "timeEnqueued": "2024-01-01T00:00:00.000Z"})
    bakery.rabbit.publish(body, bakery.queue)  # the same order again, before any baker runs
    baker = bakery.baker(BAKE_TIME_SCALE="10", BAKER_CONCURRENCY="4")  # >= 0.6 s a round
    bakery.wait_status(key, "finished", 60)
    harness.wait_until(lambda: bakery.rabbit.queues()[bakery.queue]["messages"] == 0, 30,
                       what="both deliveries settled")
    assert len(_bakes(baker, key)) == 1, f"baked {len(_bakes(baker, key))} times"
    assert bakery.rabbit.queues()[bakery.queue + ".dead"]["messages"] == 0


def test_duplicate_delivery_after_finish_is_acked_unbaked(bakery):
    reception = bakery.reception()
    baker = bakery.baker()
    key = bakery.place(reception)
    bakery.wait_status(key, "finished", 30)
    body = json.dumps({"orderKey": key, "timeEnqueued": "2024-01-01T00:00:00.000Z"})
    bakery.rabbit.publish(body, bakery.queue)
    harness.wait_until(lambda: bakery.rabbit.queues()[bakery.queue]["messages"] == 0, 30,
                       what="the duplicate settled")
    assert len(_bakes(baker, key)) == 1
    assert bakery.order(key)["status"] == "finished"


def test_duplicate_delivery_to_another_baker_while_baking_is_acked_unbaked(bakery):
    """Two baker processes (the chart runs two): the copy that reaches the second while the
    first bakes is acked without baking; the first finishes the order."""
    reception = bakery.reception()
    key = bakery.place(reception, "homer", slow_pastry(80, "two"))
    first = bakery.baker(BAKE_TIME_SCALE="30", BAKER_CONCURRENCY="1")  # >= 2.4 s a round
    harness.wait_until(lambda: bakery.order(key).get("status") == "baking", 30,
                       what="the first baker baking")
    body = json.dumps({"orderKey": key, "timeEnqueued": "2024-01-01T00:00:00.000Z"})
    bakery.rabbit.publish(body, bakery.queue)
    second = bakery.baker()  # BAKE_TIME_SCALE=0: it would finish at once
    harness.wait_until(lambda: any(r.get("msg") == "order being baked by another delivery, "
                                   "not baking again" for r in second.log_records()), 30,
                       what="the second baker skipping the copy")
    bakery.wait_status(key, "finished", 60)
    assert len(_bakes(first, key)) == 1 and _bakes(second, key) == []
    metrics = harness.parse_prometheus(second.get("/metrics").text)
    counts = {n: v for (n, _), v in metrics.items()}
    assert counts.get("baker_orders_baking_elsewhere_total") == 1, counts  # said as such
    assert counts.get("baker_orders_already_finished_total") == 0, counts
    assert counts.get("baker_orders_baked_total") == 0, counts


def _finished(baker, key):
    return [r for r in baker.log_records()
            if r.get("msg") == "order finished" and r.get("order_key") == key]


def test_connection_lost_mid_bake_bakes_each_order_once(bakery):
    """The brokers' connections drop while two bakers bake: the broker redelivers every
    message, maybe to the other baker, which finds the order baking. The bakes of the lost
    connection are cancelled, so only the redelivered copies bake: once each."""
    reception = bakery.reception()
    keys = [bakery.place(reception, "homer", slow_pastry(80, f"lost{i}")) for i in range(6)]
    bakers = [bakery.baker(BAKE_TIME_SCALE="60", BAKER_CONCURRENCY="3") for _ in range(2)]
    harness.wait_until(lambda: all(bakery.order(k).get("status") == "baking" for k in keys), 30,
                       what="every order baking")  # >= 4.8 s a round
    bakery.rabbit.ctl("close_all_connections", "test: lost broker connections mid-bake")
    bakery.wait_status(keys, "finished", 120)
    harness.wait_until(lambda: bakery.rabbit.queues()[bakery.queue]["messages"] == 0, 30,
                       what="every delivery settled")
    time.sleep(1)  # a stale bake finishing late would show now
    counts = {k: sum(len(_finished(b, k)) for b in bakers) for k in keys}
    assert all(n == 1 for n in counts.values()), counts
    assert bakery.rabbit.queues()[bakery.queue + ".dead"]["messages"] == 0
