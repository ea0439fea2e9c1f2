"""Small helpers every module here uses: free_port, port_open, wait_until, _read, Closing."""

import socket
import time


def free_port():
    """Returns a TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(fn, timeout=30.0, interval=0.1, what=None):
    """Calls fn until it returns something truthy and returns that; exceptions count as not yet.

    Raises TimeoutError after timeout seconds, naming `what` (or fn) and the last result.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the thing polled is often not up yet
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for "
                               f"{what or getattr(fn, '__name__', fn)}; last: {last!r}")
        time.sleep(interval)



def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


class Closing:
    """`with X() as x:` closes x at the end (X has close())."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
