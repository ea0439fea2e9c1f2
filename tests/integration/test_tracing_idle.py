"""An idle reception with OTEL_BSP_SCHEDULE_DELAY=0 sleeps (issue 9, item 9).

The batch span processor's export thread used to spin when the schedule delay was 0 (0.89 s of
CPU per idle second). Measured from /proc/<pid>/stat (utime + stime) over three idle seconds.
"""

import os
import time

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def test_zero_schedule_delay_idles(bakery):
    reception = bakery.reception(OTEL_SDK_DISABLED="false", OTEL_BSP_SCHEDULE_DELAY="0",
                                 OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    # No request: an empty queue (a failed export would keep the thread in its backoff).
    cpu0, t0 = _cpu_seconds(reception.pid), time.monotonic()
    time.sleep(3)
    per_second = (_cpu_seconds(reception.pid) - cpu0) / (time.monotonic() - t0)
    assert per_second < 0.2, f"{per_second:.2f} s of CPU per idle second"
