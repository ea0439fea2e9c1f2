"""TcpProxy: a TCP forwarder on loopback that can freeze or (subclassed) delay."""

import select
import socket
import threading


class TcpProxy:
    """A TCP forwarder on a free loopback port, like the address of a failover pair (a VIP, a
    Service): each new connection goes to the current `target` port; connections already made
    stay where they were. While `frozen`, it forwards nothing (a silent network). A subclass
    may delay chunks in `relay` (a slow network)."""

    def __init__(self, target):
        self.target = target
        self.frozen = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.closed = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def relay(self, conn, data, from_server):
        """Called before each chunk is forwarded; conn is a dict of this connection's own."""

    def _pump(self, client, server):
        peer = {client: server, server: client}
        conn = {}
        try:
            while not self.closed:
                ready, _, _ = select.select([client, server], [], [], 0.1)
                if self.frozen:
                    continue
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    self.relay(conn, data, s is server)
                    peer[s].sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            server.close()

    def close(self):
        self.closed = True
        self.sock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass
