"""Faults: Redis or RabbitMQ down, restarted, or not up yet; both services must ride them out."""

import threading
import time

import harness
from harness import assert_error

GOOD = {"customer": "homer", "pastry": "la bombe"}


def _not_ready(svc):
    return svc.get("/readyz").status == 503


def _burst(n, fn):
    """Runs fn() n times at once (so many server worker threads take part); returns results."""
    results = [None] * n

    def run(i):
        try:
            results[i] = fn()
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_redis_down_is_503_and_recovers(make_redis, make_bakery, rabbit_server):
    redis = make_redis()
    bakery = make_bakery(redis, rabbit_server)
    reception, baker = bakery.reception(), bakery.baker()
    key = bakery.place(reception)
    bakery.wait_status(key)
    # Many reception workers now hold a Redis connection that the restart will break.
    assert all(r.status == 200 for r in _burst(16, lambda: reception.get(f"/orders/{key}")))

    redis.stop()
    for svc in (reception, baker):
        harness.wait_until(lambda: _not_ready(svc), 30, what=f"{svc.name} /readyz 503")
        assert svc.get("/healthz").status == 200  # alive, just not ready
    for r in (reception.post("/orders", GOOD), reception.get(f"/orders/{key}")):
        assert_error(r, 503)
        assert r.header("Retry-After"), r.headers

    redis.start()
    reception.wait_ready(60)
    baker.wait_ready(60)
    r = reception.get(f"/orders/{key}")
    assert r.status == 200 and r.json()["status"] == "finished", r  # saved across the restart
    # Ready means ready: every request now succeeds, whichever worker thread serves it.
    answers = _burst(16, lambda: reception.post("/orders", GOOD))
    failed = [r for r in answers if getattr(r, "status", None) != 202]
    assert not failed, f"{len(failed)} of 16 orders refused after /readyz said 200: {failed[:3]}"
    bakery.wait_status([r.json()["orderKey"] for r in answers], "finished", 30)


def test_rabbitmq_down_and_restarted_while_orders_flow(make_redis, make_rabbit, make_bakery):
    redis, rabbit = make_redis(), make_rabbit()
    bakery = make_bakery(redis, rabbit)
    reception = bakery.reception()
    baker = bakery.baker(BAKE_TIME_SCALE="0.02")
    accepted, refused, errors = [], [], []
    stop = threading.Event()

    def client():  # one client posting orders back to back the whole time
        while not stop.is_set():
            try:
                r = reception.post("/orders", GOOD, timeout=30)
                if r.status == 202:
                    accepted.append(r.json()["orderKey"])
                elif r.status == 503 and r.header("Retry-After") and "error" in r.json():
                    refused.append(r)
                else:
                    errors.append(r)
            except Exception as e:
                errors.append(e)
            time.sleep(0.02)

    t = threading.Thread(target=client)
    t.start()
    try:
        harness.wait_until(lambda: len(accepted) >= 10, 30, what="orders flowing")
        rabbit.stop()
        for svc in (reception, baker):
            harness.wait_until(lambda: _not_ready(svc), 30, what=f"{svc.name} /readyz 503")
        r = reception.post("/orders", GOOD, timeout=30)
        assert_error(r, 503)
        assert r.header("Retry-After"), r.headers
        n = len(accepted)
        rabbit.start()
        reception.wait_ready(90)
        baker.wait_ready(90)
        harness.wait_until(lambda: len(accepted) >= n + 10, 30, what="orders flowing again")
        answers = _burst(16, lambda: reception.post("/orders", GOOD, timeout=30))
        late = [r for r in answers if getattr(r, "status", None) != 202]
        accepted.extend(r.json()["orderKey"] for r in answers if r not in late)
        assert not late, f"{len(late)} of 16 orders refused after /readyz said 200: {late[:3]}"
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors[:5]
    assert refused, "no order was refused while RabbitMQ was down"
    bakery.wait_status(accepted, "finished", 90)

    # No order is left pending: every stored order ends finished or failed.
    def settled():
        statuses = {k: redis.hget(k, "status") for k in redis.keys("order:*")}
        stuck = {k: s for k, s in statuses.items() if s not in ("finished", "failed")}
        assert not stuck, stuck
        return statuses

    statuses = harness.wait_until(settled, 60, what="every order finished or failed")
    assert set(f"order:{k}" for k in accepted) <= set(statuses)

    samples = harness.parse_prometheus(reception.get("/metrics").text)
    failures = sum(v for (n, _), v in samples.items() if "publish_fail" in n)
    assert failures >= 1, "publish failures not counted"


def test_services_start_before_redis_and_rabbitmq(make_redis, make_rabbit, make_bakery):
    redis, rabbit = make_redis(start=False), make_rabbit(start=False)
    bakery = make_bakery(redis, rabbit)
    reception = bakery.reception(wait=False).wait_healthy()
    baker = bakery.baker(wait=False).wait_healthy()
    assert _not_ready(reception) and _not_ready(baker)
    r = reception.post("/orders", GOOD, timeout=30)
    assert_error(r, 503)
    assert r.header("Retry-After"), r.headers

    redis.start()
    rabbit.start()
    reception.wait_ready(90)
    baker.wait_ready(90)
    bakery.wait_status(bakery.place(reception), "finished", 30)
