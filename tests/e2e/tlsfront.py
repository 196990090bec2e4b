"""A TLS provider for the tests: a test CA, a certificate for `localhost`
(made with openssl), and a TLS front that passes the decrypted bytes to the
mock upstream, so that a provider reached over TLS is the same mock with the
same ledger."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path


def make_ca(directory: Path, system_bundle: str) -> dict[str, Path]:
    """A CA, a server certificate for DNS:localhost signed by it, and a CA
    bundle of the system's CAs plus this one (what Envoy is given)."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Tollgate test CA",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", str(d / "ext.cnf"), "-out", str(d / "server.pem"))
    bundle = d / "bundle.pem"
    system = Path(system_bundle).read_text() if Path(system_bundle).exists() else ""
    bundle.write_text(system + "\n" + (d / "ca.pem").read_text())
    return {"bundle": bundle, "cert": d / "server.pem", "key": d / "server.key"}


class TlsFront:
    """Accepts TLS on 127.0.0.1 and relays each connection to `target_port`."""

    def __init__(self, cert: Path, key: Path, target_port: int):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.handshakes_failed = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            tls = self.ctx.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._pump, args=(upstream, tls), daemon=True).start()
        self._pump(tls, upstream)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.sock.close()
