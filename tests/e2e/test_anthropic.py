"""The Anthropic side of the gateway (`/v1/messages`): errors in Anthropic's
shape, so that the Anthropic SDKs raise their own exception classes."""

from __future__ import annotations

import json
import socket

import pytest

from .helpers import stackmod


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    """A private stack that waits 1 s for a request's body."""
    s = stackmod.Stack(work_dir=tmp_path_factory.mktemp("impatient"), request_timeout="1s")
    try:
        s.start()
        yield s
    finally:
        s.stop()


def exchange(port: int, request: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(request)
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("path, shape", [("/v1/messages", "anthropic"), ("/v1/chat/completions", "openai")])
def test_envoys_own_errors_take_the_shape_of_the_path(impatient, path, shape):
    # A body promised and never sent: Envoy's request_timeout answers.
    status, body = exchange(impatient.gateway_port,
                            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n".encode())
    assert status == 408
    if shape == "anthropic":
        assert body == {"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": "The request was not received in time."}}
    else:
        assert body["error"]["code"] == "request_timeout" and "type" not in body
