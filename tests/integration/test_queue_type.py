"""ORDERS_QUEUE_TYPE and ORDERS_DELIVERY_LIMIT against a real RabbitMQ: classic still works, a
queue of the other type is one clear error (baker: exit 2; reception: not ready), and nothing
normal burns the quorum queue's delivery limit (a baker crash loop, a Redis outage), while an
order redelivered past it is dead-lettered."""

import time

import pytest

from harness import slow_pastry, wait_until

SLOW = slow_pastry(90)  # ~90 ms x BAKE_TIME_SCALE per round


@pytest.fixture
def rabbit(rabbit_server):
    return rabbit_server


def _dead(bakery, rabbit):
    """Takes every dead letter of bakery's queue; returns their bodies."""
    bodies = []
    while (b := rabbit.get(f"{bakery.queue}.dead")) is not None:
        bodies.append(b)
    return bodies


def _mismatch_lines(svc):
    return [r for r in svc.log_records() if r.get("msg") == "cannot declare the orders queue"]


def test_classic_still_works(make_bakery, redis_server, rabbit):
    bakery = make_bakery(redis_server, rabbit)
    reception = bakery.reception(ORDERS_QUEUE_TYPE="classic")
    bakery.baker(ORDERS_QUEUE_TYPE="classic")
    keys = [bakery.place(reception) for _ in range(5)]
    bakery.wait_status(keys, "finished", 60)
    q = rabbit.queues()[bakery.queue]
    assert "x-queue-type" not in q["arguments"] and "x-delivery-limit" not in q["arguments"], q
    assert q["arguments"]["x-dead-letter-exchange"] == f"{bakery.queue}.dlx", q


def test_quorum_is_the_default_with_explicit_limit(make_bakery, redis_server, rabbit):
    bakery = make_bakery(redis_server, rabbit)
    reception = bakery.reception()
    bakery.baker()
    bakery.wait_status([bakery.place(reception)], "finished", 60)
    queues = rabbit.queues()
    args = queues[bakery.queue]["arguments"]
    assert args["x-queue-type"] == "quorum", args
    assert args["x-delivery-limit"] == 100, args
    assert args["x-dead-letter-strategy"] == "at-least-once", args
    assert args["x-overflow"] == "reject-publish", args
    assert queues[f"{bakery.queue}.dead"]["arguments"].get("x-queue-type") == "quorum"


def test_type_mismatch_is_one_error_line_and_exit_2(make_bakery, redis_server, rabbit):
    bakery = make_bakery(redis_server, rabbit)
    bakery.baker(ORDERS_QUEUE_TYPE="classic").terminate()  # the queue is classic now
    baker = bakery.baker(wait=False)  # quorum, the default
    assert baker.wait_exit(30) == 2
    lines = _mismatch_lines(baker)
    assert len(lines) == 1, baker.output()[-3000:]
    assert lines[0]["ORDERS_QUEUE_TYPE"] == "quorum" and lines[0]["queue"] == bakery.queue
    assert "ORDERS_QUEUE_TYPE" in lines[0]["error"] and "delete" in lines[0]["error"]
    errors = [r for r in baker.log_records() if r.get("level") == "error"]
    assert errors == lines, errors

    reception = bakery.reception(wait=False)
    time.sleep(6)  # a few probe rounds
    assert reception.alive() and reception.healthy() and not reception.ready()
    assert len(_mismatch_lines(reception)) == 1, reception.output()[-3000:]
    r = reception.post("/orders", {"customer": "homer", "pastry": "donut"})
    assert r.status == 503, r


def _hold_and_kill(bakery, keys, times, **env):
    """Starts a baker, waits until it is baking every order of keys (so it holds their
    deliveries), SIGKILLs it; `times` over."""
    for _ in range(times):
        baker = bakery.baker(**env)

        def baking():
            held = {r.get("order_key") for r in baker.log_records()
                    if r.get("msg") == "baking order"}
            return held >= set(keys)

        wait_until(baking, 30, what="the baker holding every order")
        baker.kill()


def test_baker_crash_loop_does_not_dead_letter(make_bakery, redis_server, rabbit):
    bakery = make_bakery(redis_server, rabbit)
    reception = bakery.reception()
    keys = [bakery.place(reception, pastry=SLOW) for _ in range(3)]
    env = dict(BAKE_TIME_SCALE="100", BAKER_CONCURRENCY="4")  # 9 s a round: held
    _hold_and_kill(bakery, keys, 6, **env)
    bakery.baker()  # BAKE_TIME_SCALE=0: bakes at once
    bakery.wait_status(keys, "finished", 60)
    assert _dead(bakery, rabbit) == []


def test_order_over_the_delivery_limit_is_dead_lettered(make_bakery, redis_server, rabbit):
    bakery = make_bakery(redis_server, rabbit)
    limit = dict(ORDERS_DELIVERY_LIMIT="1")
    reception = bakery.reception(**limit)
    key = bakery.place(reception, pastry=SLOW)
    env = dict(BAKE_TIME_SCALE="100", **limit)
    kills = 0
    while kills < 4:
        _hold_and_kill(bakery, [key], 1, **env)
        kills += 1
        time.sleep(1)
        dead = _dead(bakery, rabbit)
        if dead:
            break
    assert dead and key in dead[0], (kills, dead)
    assert kills == 2, kills  # returned once: still there; twice: over the limit of 1


def test_redis_outage_while_holding_burns_no_delivery(make_bakery, make_redis, rabbit):
    redis = make_redis()
    bakery = make_bakery(redis, rabbit)
    limit = dict(ORDERS_DELIVERY_LIMIT="1")  # one requeue more would dead-letter
    reception = bakery.reception(**limit)
    keys = [bakery.place(reception) for _ in range(6)]
    reception.stop()
    redis.stop()
    baker = bakery.baker(wait=False, BAKER_CONCURRENCY="2", **limit)
    wait_until(lambda: not baker.ready() and baker.healthy(), 30, what="baker up, not ready")
    time.sleep(12)  # holding: retrying without a nack
    redis.start()
    bakery.wait_status(keys, "finished", 90)
    assert _dead(bakery, rabbit) == []
    retries = [r for r in baker.log_records()
               if r.get("msg") == "redis unavailable, holding the order and retrying"]
    assert retries, "the baker never held an order for Redis"
