"""The order flow through real Redis and RabbitMQ: what is stored, what is queued, in what order."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

from harness import KEY_RE, RFC3339_NS, RFC3339_UTC, fnv1a32, slow_pastry


def test_fnv1a32_matches_the_original():
    assert fnv1a32("") == 0x811C9DC5 and fnv1a32("a") == 0xE40C292C


def test_order_is_stored_pending_and_queued_durably(bakery):
    reception = bakery.reception()  # no baker: the message stays in the queue
    key = bakery.place(reception, "marge", "donut")

    order = bakery.order(key)
    assert set(order) >= {"customer", "pastry", "orderTime", "status"}, order
    assert (order["customer"], order["pastry"], order["status"]) == ("marge", "donut", "pending")
    assert RFC3339_UTC.match(order["orderTime"]), order
    assert reception.get(f"/orders/{key}").json()["status"] == "pending"

    q = bakery.queue
    queues = bakery.rabbit.queues()
    assert queues[q]["durable"] is True, queues[q]
    assert queues[q]["arguments"].get("x-dead-letter-exchange") == f"{q}.dlx", queues[q]
    assert queues[q]["messages"] == 1 and queues[q]["messages_persistent"] == 1, queues[q]
    assert queues[f"{q}.dead"]["durable"] is True
    exchanges = bakery.rabbit.exchanges()
    assert exchanges[f"{q}.dlx"]["durable"] is True, exchanges.get(f"{q}.dlx")

    msg = json.loads(bakery.rabbit.get(q))
    assert msg["orderKey"] == key, msg
    assert RFC3339_NS.match(msg["timeEnqueued"]), msg


def test_order_goes_pending_baking_finished(bakery):
    reception = bakery.reception()
    pastry = slow_pastry(60)
    key = bakery.place(reception, "bart", pastry)
    time.sleep(0.5)
    assert bakery.order(key)["status"] == "pending"  # nobody bakes yet

    seen = ["pending"]
    bakery.baker(BAKE_TIME_SCALE="25")  # one round: >= 1.5 s
    deadline = time.monotonic() + 60
    while seen[-1] != "finished" and time.monotonic() < deadline:
        status = reception.get(f"/orders/{key}").json()["status"]
        if status != seen[-1]:
            seen.append(status)
        time.sleep(0.05)
    assert seen == ["pending", "baking", "finished"], seen


def test_logs_are_json_lines(bakery):
    reception = bakery.reception()
    baker = bakery.baker()
    key = bakery.place(reception)
    bakery.wait_status(key)
    for svc in (reception, baker):
        records = svc.log_records()
        assert records, f"{svc.name} logged nothing"
        for rec in records:
            assert {"time", "level", "service"} <= set(rec), rec
            assert "msg" in rec or "message" in rec, rec
            assert rec["service"] == svc.name, rec
            assert RFC3339_UTC.match(rec["time"]) or re.match(r"^\d{4}-\d\d-\d\dT", rec["time"])
        assert any(rec.get("order_key") == key for rec in records), \
            f"{svc.name} never logged order_key {key}"


def test_many_orders_all_finish(bakery):
    reception = bakery.reception()
    bakery.baker(BAKER_CONCURRENCY="3")
    keys = [bakery.place(reception, f"c{i}", f"p{i}") for i in range(40)]
    assert all(KEY_RE.match(k) for k in keys)
    bakery.wait_status(keys, "finished", 60)
    q = bakery.rabbit.queues()
    assert q[bakery.queue]["messages"] == 0 and q[f"{bakery.queue}.dead"]["messages"] == 0


def test_concurrent_orders_are_stored_through_one_connection(bakery):
    """Issue 10's pipeline: reception's requests hand their orders to one thread, which stores
    them (HSET) over one Redis connection, many per round trip, before publishing them; each
    request waits once, for its own confirm. Before, each request stored its own order on its
    worker's connection: 64 orders at once came over dozens of connections."""
    reception = bakery.reception()
    bakery.baker()
    monitor = bakery.redis.monitor()
    try:
        with ThreadPoolExecutor(64) as pool:
            keys = list(pool.map(lambda i: bakery.place(reception, f"c{i}", f"p{i}"), range(64)))
    finally:
        commands = monitor.stop()
    hsets = [c for c in commands if '"HSET"' in c and '"pending"' in c]
    assert len(hsets) == 64, hsets[:3]
    clients = {re.search(r"\[\d+ ([^\]]+)\]", c).group(1) for c in hsets}
    assert len(clients) == 1, f"orders stored over {len(clients)} connections"
    bakery.wait_status(keys, "finished", 60)
