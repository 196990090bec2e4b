"""A fault proxy for the channel between Envoy and the control plane: HTTP/1.1,
one request per connection, passing everything through until told to fail
the requests whose path starts with a prefix, in one of these ways:

- `500`: answer 500 with an empty body;
- `garbage`: answer bytes that are not HTTP, then close;
- `hang`: read the request and never answer (until healed);
- `reset`: close the connection with a TCP RST.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading


class FaultProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.mode: str | None = None
        self.prefix = b"/internal/usage"
        self.faulted = 0
        self.passed = 0
        self.loop = asyncio.new_event_loop()
        self.healed = asyncio.Event()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = None
        self._sock = sock
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, sock=self._sock))
        self.loop.run_forever()

    def fail(self, mode: str, prefix: bytes = b"/internal/usage") -> None:
        self.prefix = prefix
        self.loop.call_soon_threadsafe(self.healed.clear)
        self.mode = mode

    def heal(self) -> None:
        self.mode = None
        self.loop.call_soon_threadsafe(self.healed.set)

    def stop(self) -> None:
        self.heal()
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _shutdown(self) -> None:
        if self.server:
            self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            mode = self.mode
            if mode and path.startswith(self.prefix):
                self.faulted += 1
                await self._fault(mode, writer)
                return
            self.passed += 1
            await self._forward(head, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the socket may be gone already
                pass

    async def _fault(self, mode: str, writer: asyncio.StreamWriter) -> None:
        if mode == "500":
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        elif mode == "garbage":
            writer.write(os.urandom(64) + b"\r\n\r\n")
            await writer.drain()
        elif mode == "hang":
            await self.healed.wait()
        elif mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            raise ValueError(mode)

    async def _forward(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        lines = [line for line in head.rstrip(b"\r\n").split(b"\r\n")
                 if not line.lower().startswith(b"connection:")]
        request = b"\r\n".join(lines) + b"\r\nconnection: close\r\n\r\n" + body
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(request)
            await up_writer.drain()
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()
