"""A TCP proxy that can be taken down and brought back: for a database
between the control plane and PostgreSQL. `down()` resets every open
connection and refuses new ones (accepted, then reset at once), as a stopped
or unreachable server looks to a client; `up()` passes connections through
again.

In front of an upstream (a provider's address), `mode` says what a new
connection gets: "pass"; "reset_before_headers" (the request reaches the
upstream, its whole answer is read and dropped, and the client's connection
is reset: an answer lost before its first byte); "reset_mid_answer" (the
first `cut_bytes` of the answer, then a reset both ways); "silent" (the
request is read and never answered, until `stop`)."""

from __future__ import annotations

import socket
import struct
import threading


class TcpFault:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", clean_close: bool = False):
        self.clean_close = clean_close
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
        self.mode = "pass"
        self.cut_bytes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Wakes a thread blocked reading it (nothing goes on the wire), so
            # that close() releases the socket now, with a reset.
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        try:
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
            if self.mode == "silent":
                with self.lock:
                    self.open.add(client)  # held, read by nobody, until stop()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)  # 5 s to connect, then as long as either side keeps it
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.open.update((client, server))
            if self.mode != "pass":
                threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
                threading.Thread(target=self._answer_then_reset, args=(server, client, self.mode, self.cut_bytes),
                                 daemon=True).start()
                continue
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            if self.clean_close:
                # The end passed on as an end (FIN, not RST): a pooled
                # connection the upstream closed is seen closed, not reset.
                dst.shutdown(socket.SHUT_WR)
                return
        except OSError:
            pass
        with self.lock:
            self.open.discard(src)
            self.open.discard(dst)
        self._reset(src)
        self._reset(dst)

    def _answer_then_reset(self, server: socket.socket, client: socket.socket, mode: str, cut: int) -> None:
        """The upstream's answer to the client, cut as `mode` says: the first
        `cut` bytes (reset_mid_answer), or none once the upstream has sent
        its answer (reset_before_headers: until it is quiet for 0.5 s)."""
        sent = 0
        try:
            server.settimeout(10)
            while sent < cut or mode == "reset_before_headers":
                data = server.recv(65536)
                if not data:
                    break
                if mode == "reset_before_headers":
                    server.settimeout(0.5)
                    continue
                part = data[: cut - sent]
                client.sendall(part)
                sent += len(part)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open.discard(server)
                self.open.discard(client)
            self._reset(client)
            self._reset(server)

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
