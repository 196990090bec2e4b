"""A minimal HTTP/1.1 keep-alive client on raw sockets, for what the load
generator does not measure: time to the first body byte of a stream, total
stream time, and an open-loop steady load whose every request is kept with its
timestamps (so that a window of it can be looked at)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


class Conn:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.addr = (host, port)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""
        self.t_last = 0.0

    def _connect(self) -> None:
        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        if self.sock:
            self.sock.close()
            self.sock = None

    def _recv(self) -> None:
        assert self.sock
        data = self.sock.recv(262144)
        self.t_last = time.perf_counter()
        if not data:
            raise ConnectionError("connection closed by the server")
        self.buf += data

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            self._recv()

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._recv()

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> "Result":
        """Sends one request and reads the whole answer. Times are perf_counter
        seconds: sent (after sendall), first body byte, end."""
        if self.sock is None:
            self._connect()
        assert self.sock
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.addr[0]}:{self.addr[1]}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"content-length: {len(body)}\r\n\r\n"
        t0 = time.perf_counter()
        try:
            self.sock.sendall(head.encode() + body)
            return self._read(t0)
        except Exception:
            self.close()
            raise

    def _read(self, t0: float) -> "Result":
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        i = self.buf.index(b"\r\n\r\n")
        head, self.buf = self.buf[:i].decode("latin-1"), self.buf[i + 4:]
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        chunks: list[bytes] = []
        t_first = None
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers, then the empty line
                        pass
                    break
                self._fill(1)
                if t_first is None:
                    t_first = self.t_last
                self._fill(size + 2)
                chunks.append(self.buf[:size])
                self.buf = self.buf[size + 2:]
        else:
            n = int(hdrs.get("content-length", "0"))
            if n:
                self._fill(1)
                t_first = self.t_last
                self._fill(n)
            chunks.append(self.buf[:n])
            self.buf = self.buf[n:]
        t_end = time.perf_counter()
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return Result(status, t0, t_first if t_first is not None else t_end, t_end, b"".join(chunks))


@dataclass
class Result:
    status: int
    t_sent: float
    t_first: float
    t_end: float
    body: bytes

    @property
    def ttfb(self) -> float:
        return self.t_first - self.t_sent

    @property
    def total(self) -> float:
        return self.t_end - self.t_sent


def sequential(port: int, path: str, headers: dict, body: bytes, count: int, warmup: int = 20,
               check=None, deadline_s: float = 60.0) -> list[Result]:
    """`count` requests one after the other on one keep-alive connection."""
    conn = Conn(port)
    out = []
    stop_at = time.monotonic() + deadline_s
    try:
        for i in range(warmup + count):
            r = conn.request("POST", path, headers, body)
            if r.status != 200:
                raise RuntimeError(f"{path} answered {r.status}: {r.body[:300]!r}")
            if check:
                check(r)
            if i >= warmup:
                out.append(r)
            if time.monotonic() > stop_at:
                break
    finally:
        conn.close()
    return out


@dataclass
class Sample:
    scheduled: float
    end: float
    status: int

    @property
    def latency(self) -> float:
        """From the scheduled send time: a stall delays the requests queued
        behind it, and that wait counts (no coordinated omission)."""
        return self.end - self.scheduled


@dataclass
class SteadyLoad:
    """Open-loop load at `rate` requests/s spread over `threads` keep-alive
    connections, until stop() or `max_seconds`."""

    port: int
    path: str
    headers: dict
    body: bytes
    rate: float = 200.0
    threads: int = 4
    max_seconds: float = 60.0
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def start(self) -> "SteadyLoad":
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.t0 = time.perf_counter() + 0.05
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def _run(self, index: int) -> None:
        period = self.threads / self.rate
        next_at = self.t0 + index * (1.0 / self.rate)
        conn = Conn(self.port)
        end_by = self.t0 + self.max_seconds
        try:
            while not self._stop.is_set() and next_at < end_by:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                try:
                    r = conn.request("POST", self.path, self.headers, self.body)
                    status = r.status
                except Exception as e:  # noqa: BLE001 - counted, the load goes on
                    status = 0
                    with self._lock:
                        self.errors.append(repr(e))
                with self._lock:
                    self.samples.append(Sample(next_at, time.perf_counter(), status))
                next_at += period
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=15)

    def window(self, start: float, end: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if start <= s.scheduled < end]
