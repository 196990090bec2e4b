"""Hostile HTTP on the gateway's listener, through raw sockets: every request
gets exactly one answer, in time, as an OpenAI error body; paths are
normalised before the filter classifies them; providers on refused addresses
are not connected to. Each read has a timeout, so a hang fails the test."""

from __future__ import annotations

import json
import socket
import time

import pytest

from .helpers import fresh_key, stackmod

BODY = json.dumps({"model": "demo-chat", "messages": [{"role": "user", "content": "hello there"}]}).encode()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A stack of its own, with short request timeouts."""
    s = stackmod.Stack(work_dir=tmp_path_factory.mktemp("hostile"),
                       request_headers_timeout="1s", request_timeout="2s")
    with s.running():
        yield s


@pytest.fixture
def key(hostile) -> str:
    """A key of the test's own account on the hostile stack."""
    return fresh_key(hostile)


def exchange(port: int, data: bytes, wait: float = 6.0) -> tuple[bytes, float, bool]:
    """Sends data, reads until the server closes or `wait` passes: (bytes, seconds, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.settimeout(wait)
        s.sendall(data)
        out, t0 = b"", time.monotonic()
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out, time.monotonic() - t0, True
                out += chunk
        except socket.timeout:
            return out, time.monotonic() - t0, False


def responses(raw: bytes) -> list[tuple[int, dict, bytes]]:
    """Splits HTTP/1.1 responses with content-length or chunked bodies (a
    renamed answer is chunked, filter/src/rename.rs)."""
    found = []
    while raw.startswith(b"HTTP/1.1 "):
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower().decode(): v.strip().decode("latin-1")
                   for k, _, v in (ln.partition(b":") for ln in lines[1:])}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0] or b"0", 16)
                body, rest = body + rest[:size], rest[size + 2:]
                if size == 0:
                    break
            found.append((status, headers, body))
            raw = rest
            continue
        n = int(headers.get("content-length", "0"))
        found.append((status, headers, rest[:n]))
        raw = rest[n:]
    return found


def one_openai_error(raw: bytes, status: int | None = None) -> dict:
    got = responses(raw)
    assert len(got) == 1, raw[:500]
    code, headers, body = got[0]
    if status is not None:
        assert code == status, raw[:500]
    assert headers["content-type"] == "application/json", raw[:500]
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["param"] in (None, "model")
    assert isinstance(err["message"], str) and isinstance(err["code"], str)
    return err


def req(method: str, path: str, key: str | None = None, body: bytes | None = None, extra: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: gw\r\n".encode()
    if key:
        head += f"Authorization: Bearer {key}\r\n".encode()
    if body is not None:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return head + extra + b"\r\n" + (body or b"")


# 1. Requests that never got an answer

def test_connect_is_a_405(hostile):
    out, dt, _ = exchange(hostile.gateway_port, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert one_openai_error(out, 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize("case", ["valid_key_short_body", "bad_key_stalled_body", "partial_headers"])
def test_stalled_requests_get_a_408_in_time(hostile, key, case):
    data = {
        "valid_key_short_body": req("POST", "/v1/chat/completions", key, extra=b"Content-Type: application/json\r\nContent-Length: 99999999\r\n") + BODY,
        "bad_key_stalled_body": req("POST", "/v1/chat/completions", "tg-nope", extra=b"Content-Length: 5000\r\n") + b"{",
        "partial_headers": b"GET /v1/models HTTP/1.1\r\nHost: gw\r\n",
    }[case]
    out, dt, _ = exchange(hostile.gateway_port, data, wait=8)
    err = one_openai_error(out)
    code = responses(out)[0][0]
    if case == "bad_key_stalled_body":
        # The filter may answer its 401 or Envoy its 408: an answer in time.
        assert code in (401, 408), out
    else:
        assert code == 408 and err["code"] == "request_timeout", out
    assert dt < 5, dt


def test_long_stream_survives_request_timeout(hostile, key):
    """request_timeout (2 s here) never cuts a response that has started."""
    body = json.dumps({"model": "demo-chat", "stream": True,
                       "messages": [{"role": "user", "content": "hello there"}]}).encode()
    out, dt, _ = exchange(hostile.gateway_port, req("POST", "/v1/chat/completions", key, body,
                          extra=b"x-mock-delay-ms: 300\r\nx-mock-tokens: 12\r\nConnection: close\r\n"), wait=15)
    assert out.startswith(b"HTTP/1.1 200"), out[:300]
    assert b"[DONE]" in out, out[-300:]


# 2. Envoy's own replies are OpenAI JSON

MALFORMED = {
    "garbage": (b"GARBAGE\r\n\r\n", 400),
    "two_transfer_encodings": (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "fragment": (b"GET /v1/models#frag HTTP/1.1\r\nHost: gw\r\n\r\n", 400),
    "missing_host": (b"GET /v1/models HTTP/1.1\r\n\r\n", 400),
    "http_2_0_text": (b"GET /v1/models HTTP/2.0\r\nHost: gw\r\n\r\n", 426),
    "websocket": (b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 400),
    "huge_headers": (b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    "no_route": (b"GET /nowhere HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", 404),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_envoy_replies_are_openai_errors(hostile, name):
    data, status = MALFORMED[name]
    out, _, _ = exchange(hostile.gateway_port, data)
    one_openai_error(out, status)


def test_filter_replies_are_unchanged(hostile):
    out, _, _ = exchange(hostile.gateway_port, req("GET", "/v1/models", "tg-nope", extra=b"Connection: close\r\n"))
    # The filter's own body, byte for byte (its key order, not the mappers').
    assert responses(out)[0][2] == (b'{"error":{"message":"Incorrect API key provided.","type":"authentication_error",'
                                    b'"param":null,"code":"invalid_api_key"}}')


# 3. Paths are normalised

@pytest.mark.parametrize("path", [
    "/v1/models/../../internal/config", "/v1/models/%2e%2e/%2e%2e/internal/config",
    "/v1/models/..%2F..%2Finternal%2Fconfig", "//internal/config", "/v1//../internal/config",
    "/v1/models/..%5C..%5Cinternal%5Cconfig", "/INTERNAL/config", "/Internal/config?version=0",
    "/v1/models/%2E%2E/%2E%2E/internal/config", "/v1/%2e%2e/internal/config/keys",
])
def test_internal_is_never_reachable(hostile, key, path):
    out, _, _ = exchange(hostile.gateway_port, req("GET", path, key, extra=b"Connection: close\r\n"))
    got = responses(out)
    assert len(got) == 1, out[:300]
    status, _, body = got[0]
    assert status in (400, 404), out[:300]
    assert b"snapshot" not in body and b"version" not in body.lower().replace(b"http", b"")
    one_openai_error(out)


@pytest.mark.parametrize("path", [
    "/v1/models/Qwen%2FQwen2.5-VL-72B-Instruct",
    "/v1/models/Qwen/Qwen2.5-VL-72B-Instruct",
])
def test_model_ids_with_slashes(hostile, key, path):
    # Created once for both cases (the second POST is a conflict).
    hostile.admin("POST", "/admin/models", {
        "id": "Qwen/Qwen2.5-VL-72B-Instruct", "name": "qwen", "description": "slash id", "category": "chat",
        "context_window": 8192, "pricing": {"input_per_1m": 0.1, "output_per_1m": 0.1},
        "deployments": [{"provider": "mock", "upstream_model": "mock-qwen"}]})
    status, _, body = stackmod.wait_until(
        lambda p=path: (r := stackmod.http("GET", hostile.gateway + p, headers={"authorization": f"Bearer {key}"})) and r[0] == 200 and r,
        timeout=3, what=path)
    assert status == 200 and body["id"] == "Qwen/Qwen2.5-VL-72B-Instruct", (path, status, body)


# 4. Pipelining

def _pipelined(hostile, reqs: list[bytes]) -> list[int]:
    out, _, _ = exchange(hostile.gateway_port, b"".join(reqs), wait=6)
    return [r[0] for r in responses(out)]


def test_pipelined_models(hostile, key):
    assert _pipelined(hostile, [req("GET", "/v1/models", key)] * 10) == [200] * 10


def test_pipelined_mixed(hostile, key):
    """Finding 7: a refusal answered inside Envoy's parse of a pipelined read
    ended the connection (codec_error:Too_many_responses_queued) with the
    next request unanswered; refusals now go out on the next turn of the
    event loop (filter/src/host/deferred.rs)."""
    three = [req("POST", "/v1/chat/completions", key, BODY), req("POST", "/v1/chat/completions", "tg-nope", BODY),
             req("GET", "/v1/models", key)]
    assert _pipelined(hostile, three) == [200, 401, 200]
    assert _pipelined(hostile, (three * 4)[:10]) == ([200, 401, 200] * 4)[:10]


def test_pipelined_refusals_at_headers_and_in_a_row(hostile, key):
    """Both hosts send request-side replies a turn later: the wasm host
    through a shared queue, the native one through Envoy's filter scheduler
    (filter-native/src/deferred.rs)."""
    # Refused at headers time (no body), after a proxied answer...
    bad_get = req("GET", "/v1/models", "tg-nope")
    assert _pipelined(hostile, [req("POST", "/v1/chat/completions", key, BODY), bad_get,
                                req("GET", "/v1/models", key)]) == [200, 401, 200]
    # ...and nothing but refusals: Envoy's bound is two answers queued.
    assert _pipelined(hostile, [bad_get] * 5 + [req("POST", "/v1/chat/completions", "tg-nope", BODY)] * 3) \
        == [401] * 8


# 5. SSRF at connect time

def test_a_name_that_resolves_to_link_local_is_refused_at_connect_time(tmp_path_factory):
    """A provider stored by name (the control plane cannot know where a name
    will resolve) whose name resolves to 169.254.169.254 when Envoy connects
    is refused with 502 `upstream_refused` and never connected to; through
    the same DNS server a name that resolves to the mock is served."""
    from .dnsserver import DnsServer

    dns = DnsServer({"metadata-lookalike.example.com": "169.254.169.254", "good.example.com": "127.0.0.1"})
    s = stackmod.Stack(work_dir=tmp_path_factory.mktemp("dns"), dns_port=dns.port)
    try:
        with s.running():
            account = s.must("POST", "/admin/accounts", {"name": "dns"})["id"]
            mock_port = int(s.mock.rsplit(":", 1)[1])
            for name in ("metadata-lookalike", "good"):
                s.must("POST", "/admin/providers", {"id": f"p-{name}", "base_url": f"http://{name}.example.com:{mock_port}/v1",
                                                    "api_key": "sk-x"})
                s.must("POST", "/admin/models", {"id": f"m-{name}", "deployments": [{"provider": f"p-{name}", "upstream_model": "mock-x"}]})
            key = s.must("POST", "/admin/keys", {"account_id": account, "name": "dns"})["key"]
            stackmod.http("DELETE", f"{s.mock}/_mock/ledger")

            def chat(model: str) -> bytes:
                body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
                out, _, _ = exchange(s.gateway_port, req("POST", "/v1/chat/completions", key, body, extra=b"Connection: close\r\n"))
                return out

            stackmod.wait_until(lambda: responses(chat("m-good"))[0][0] == 200, timeout=10, what="the good name served")
            assert "good.example.com" in dns.asked
            err = one_openai_error(chat("m-metadata-lookalike"), 502)
            assert err["code"] == "upstream_refused", err
            assert "metadata-lookalike.example.com" in dns.asked
            _, _, ledger = stackmod.http("GET", f"{s.mock}/_mock/ledger")
            assert all(e["model"] == "mock-x" for e in ledger["entries"])
            hosts = {e["headers"].get("host") for e in ledger["entries"]}
            assert not any(h and h.startswith("metadata-lookalike") for h in hosts), hosts
    finally:
        dns.close()


def test_refused_upstream_address_is_not_connected(tmp_path_factory):
    """With private upstreams refused in Envoy, the mock on 127.0.0.1 (a
    provider the control plane was allowed to store) is never connected to."""
    s = stackmod.Stack(work_dir=tmp_path_factory.mktemp("refuse"), refuse_private_upstreams=True)
    with s.running():
        stackmod.http("DELETE", f"{s.mock}/_mock/ledger")
        key = s.demo["key"]["key"]
        out, _, _ = exchange(s.gateway_port, req("POST", "/v1/chat/completions", key, BODY, extra=b"Connection: close\r\n"))
        err = one_openai_error(out, 502)
        assert err["code"] == "upstream_refused"
        _, _, ledger = stackmod.http("GET", f"{s.mock}/_mock/ledger")
        assert ledger["entries"] == []
