"""A TCP proxy that can be taken down and brought back: for a database
between the control plane and PostgreSQL. `down()` resets every open
connection and refuses new ones (accepted, then reset at once), as a stopped
or unreachable server looks to a client; `up()` passes connections through
again."""

from __future__ import annotations

import socket
import struct
import threading


class TcpFault:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.is_down = False
        self.refused = 0
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.is_down:
                self.refused += 1
                self._reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open.discard(src)
                self.open.discard(dst)
            self._reset(src)
            self._reset(dst)

    def down(self) -> None:
        self.is_down = True
        with self.lock:
            socks, self.open = list(self.open), set()
        for s in socks:
            self._reset(s)

    def up(self) -> None:
        self.is_down = False

    def stop(self) -> None:
        self.stopped = True
        self.down()
        self.listener.close()
