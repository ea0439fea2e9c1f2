"""A minimal RESP2 client: RedisError, _Resp (one connection), RedisMonitor (MONITOR)."""

import socket
import threading


class RedisError(Exception):
    """An error reply from Redis."""


class _Resp:
    """A minimal RESP2 client connection (enough for tests: commands, replies, MONITOR)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = self.sock.makefile("rb")

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def reply(self):
        line = self.buf.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)[:-2]
            return data.decode("utf-8", "surrogateescape")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError(f"bad reply {line!r}")

    def close(self):
        self.buf.close()
        self.sock.close()


class RedisMonitor:
    """Records every command Redis executes (MONITOR) until stop(); lines() returns them."""

    def __init__(self, port):
        self._conn = _Resp(port, timeout=None)
        self._conn.send("MONITOR")
        self._conn.reply()
        self._lines = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while True:
                self._lines.append(self._conn.reply())
        except Exception:
            pass

    def lines(self):
        return list(self._lines)

    def stop(self):
        try:
            self._conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        self._conn.close()
        return self.lines()


def command(port, *args, password=None, timeout=5.0):
    """Runs one command on a fresh connection (AUTH first when password); returns the reply."""
    c = _Resp(port, timeout=timeout)
    try:
        if password:
            c.send("AUTH", password)
            c.reply()
        c.send(*args)
        return c.reply()
    finally:
        c.close()


class RedisCommands:
    """hget(), hgetall() and keys() on top of a class's command()."""

    def hget(self, key, field):
        return self.command("HGET", key, field)

    def hgetall(self, key):
        flat = self.command("HGETALL", key) or []
        return dict(zip(flat[0::2], flat[1::2]))

    def keys(self, pattern="*"):
        return sorted(self.command("KEYS", pattern))
