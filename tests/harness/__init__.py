"""Real servers and Bakery processes for tests: Redis, RabbitMQ, reception and baker.

Every test suite under tests/ (integration, tracing, e2e, k8s) imports this package (stdlib only;
conftest.py wires it into pytest fixtures). Nothing here is a mock: each class starts the real
program on free loopback ports in a private temporary directory and stops it again.

    from harness import RedisServer, RabbitServer, Bakery, wait_until, http_get

    with RedisServer() as redis, RabbitServer() as rabbit:       # started, stopped at exit
        bakery = Bakery(redis, rabbit, log_dir="/tmp/x")         # unique ORDERS_QUEUE
        reception = bakery.reception(BAKE_TIME_SCALE="0")         # started and /readyz 200
        baker = bakery.baker(BAKE_TIME_SCALE="0")
        r = reception.post("/orders", {"customer": "homer", "pastry": "la bombe"})
        key = r.json()["orderKey"]
        wait_until(lambda: redis.hget(f"order:{key}", "status") == "finished")
        bakery.close()                      # SIGTERM all, then asserts no sanitizer report

RedisServer      redis-server --port N --bind 127.0.0.1, data in a temp dir. stop() saves the
                 data (SHUTDOWN SAVE) so start() after stop() (or restart()) keeps the orders;
                 kill() is a crash. command()/hget()/hgetall()/keys() speak RESP directly, and
                 monitor() records every command the server executes.
RabbitServer     /usr/lib/rabbitmq/bin/rabbitmq-server run directly (the /usr/sbin wrapper su's
                 to the rabbitmq user), with a private node name, AMQP port, distribution port
                 and epmd (its own `epmd -port`, stopped at close), data in a temp dir that
                 survives stop()/start()/restart(), so durable queues and persistent messages do
                 too. ctl() runs rabbitmqctl against it; queues()/exchanges() list them;
                 publish() sends a message with amqp-publish (Debian's amqp-tools); get() takes
                 one message with amqp-get. Starting takes 5-20 s: share one per session.
Service          one reception or baker process: env, stdout/stderr captured to files, get()/
                 post()/request() against its HTTP port, wait_ready() (/readyz 200), kill()
                 (SIGKILL), terminate() (SIGTERM, returns the exit code), log_records() (its
                 JSON log lines), check_sanitizers() (fails on any ASan/UBSan/LSan report).
Bakery           launches services wired to one Redis and one RabbitMQ with a private queue
                 name, so tests sharing servers do not see each other's messages; place()
                 posts an order, order(key) reads it from Redis, wait_status(keys, status).
BUILD_DIR        where the binaries are: $BAKERY_BUILD, else build/san (ASan+UBSan) when it
                 holds both services, else build.
Helpers          wait_until(fn, timeout); free_port(); port_open(); http_request/http_get/
                 http_post (stdlib http.client) and raw_request (hand-made bytes) -> Response;
                 parse_prometheus(text); the contract's KEY_RE, RFC3339_UTC, RFC3339_NS,
                 assert_error(response, status); fnv1a32() and slow_pastry(min_ms), which pick
                 a pastry whose simulated bake takes at least min_ms x BAKE_TIME_SCALE;
                 TcpProxy(target), a forwarder that can freeze or (subclassed) delay.

Services get OTEL_SDK_DISABLED=true unless the caller passes OTEL_* variables (or
OTEL_SDK_DISABLED=None: a None value removes a variable). The caller's own Bakery variables
(DB_HOST, PORT, ...) and OTEL_* never leak into a service.

Modules: util (wait_until, free_port, port_open, Closing), contract (KEY_RE ...
parse_prometheus), proxy (TcpProxy), http (Response, http_*, raw_request), process (_Process,
_Server), resp (RedisError, _Resp, RedisMonitor, RedisCommands, command), redis (RedisServer),
rabbit (RabbitServer, and node_files, rabbitmqctl, list_queues, amqp_get, which
rabbit_cluster.py shares), services (Service, service_env, Bakery, BUILD_DIR, ROOT).
Everything a test used from harness.py is importable from `harness` itself.
"""

from .contract import (KEY_RE, RFC3339_NS, RFC3339_UTC, assert_error, fnv1a32,  # noqa: F401
                       parse_prometheus, slow_pastry)
from .http import Response, http_get, http_post, http_request, raw_request  # noqa: F401
from .process import _Process, _Server  # noqa: F401
from .proxy import TcpProxy  # noqa: F401
from .rabbit import RABBIT_BIN, RabbitServer  # noqa: F401
from .redis import RedisServer  # noqa: F401
from .resp import RedisError, RedisMonitor, _Resp  # noqa: F401
from .services import (BUILD_DIR, ROOT, SANITIZER_MARKERS, SERVICE_VARS, Bakery,  # noqa: F401
                       Service, service_env)
from .util import _read, free_port, port_open, wait_until  # noqa: F401
