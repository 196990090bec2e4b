"""A DNS server for one test: answers A queries from a table of names (any
other name, and every other query type, gets an empty NOERROR answer), on
UDP 127.0.0.1. Envoy's forward proxy is pointed at it (`Stack(dns_port=)`)
so that a provider's name can resolve to an address no test machine's DNS
would give, such as link-local. Standard library only."""

from __future__ import annotations

import socket
import struct
import threading


class DnsServer:
    def __init__(self, names: dict[str, str]) -> None:
        self.names = {k.lower().rstrip("."): v for k, v in names.items()}
        self.asked: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return
            answer = self.answer(query)
            if answer:
                self.sock.sendto(answer, peer)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        qid, _flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1:
            return None
        labels, i = [], 12
        while i < len(query) and query[i]:
            n = query[i]
            labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        question_end = i + 5
        if question_end > len(query):
            return None
        qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
        name = ".".join(labels).lower()
        self.asked.append(name)
        address = self.names.get(name) if qtype == 1 else None
        # Response, recursion desired/available copied, NOERROR.
        header = struct.pack("!HHHHHH", qid, 0x8180, 1, 1 if address else 0, 0, 0)
        out = header + query[12:question_end]
        if address:
            out += struct.pack("!HHHLH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(address)
        return out

    def close(self) -> None:
        self.sock.close()
