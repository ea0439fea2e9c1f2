"""reception's civetweb worker threads keep half their 100 KiB stack free (issue 9, item 10).

Debian's civetweb 1.15 gives its worker threads 102400-byte stacks (compile-time USE_STACK_SIZE;
no run-time option). After the heaviest request paths (traced POSTs carrying the largest
traceparent/tracestate/baggage, AMQP reconnects that resolve a host name, reads and 404s), the
deepest byte any worker touched, read from /proc/<pid>/mem (a thread stack is zero-filled
memory, so untouched bytes are still zero), is under half the stack.
"""

import time

WORKER_STACK = 102400


def _worker_stack_use(pid):
    """Bytes touched in each 102400-byte stack mapping (a guard page right below it)."""
    used, guard_end = [], None
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read().splitlines()
    for line in maps:
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if fields[1].startswith("---p"):
            guard_end = hi
            continue
        if (fields[1].startswith("rw-p") and hi - lo == WORKER_STACK and guard_end == lo
                and len(fields) == 5):
            with open(f"/proc/{pid}/mem", "rb") as mem:
                mem.seek(lo)
                data = mem.read(hi - lo)
            first = next((i for i, b in enumerate(data) if b), len(data))
            used.append(len(data) - first)
        guard_end = None
    return used


def test_heaviest_paths_use_under_half_the_worker_stack(bakery):
    port = bakery.rabbit.addr.rsplit(":", 1)[1]
    reception = bakery.reception(RABBIT_HOST=f"localhost:{port}",  # getaddrinfo on reconnect
                                 OTEL_SDK_DISABLED="false", OTEL_TRACES_SAMPLER="always_on",
                                 OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": ",".join(f"k{i:02d}=" + "v" * 11 for i in range(32)),
        "baggage": ",".join(f"key{i}=" + "x" * 200 for i in range(40))[:8192],
    }
    order = {"customer": "homer", "pastry": "la bombe"}
    for _ in range(40):
        assert reception.post("/orders", order, headers=headers).status == 202
    bakery.rabbit.ctl("close_all_connections", "test")  # every worker reconnects
    time.sleep(1)
    for _ in range(40):
        reception.post("/orders", order, headers=headers)
    for _ in range(20):
        reception.get("/orders/0123456789abcdef0123456789abcdef", headers=headers)
        reception.get("/nope", headers=headers)
    used = _worker_stack_use(reception.pid)
    assert len(used) >= 16, f"found {len(used)} worker stacks of {WORKER_STACK} bytes"
    assert max(used) < WORKER_STACK // 2, sorted(used)
