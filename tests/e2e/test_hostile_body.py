"""Hostile request bodies and upstream answers through real Envoy: each is
refused with a clear OpenAI error, in bounded work, and the gateway stays
healthy for everyone else."""

from __future__ import annotations

import json
import threading

from .helpers import chat_body, raw, stackmod


def post(stack, key: str, body: bytes, headers=()):
    return raw(stack, "POST", "/v1/chat/completions",
               [("authorization", f"Bearer {key}"), ("content-type", "application/json"), *headers], body)


def error_of(body: bytes) -> dict:
    return json.loads(body)["error"]


def many_keys(n: int) -> bytes:
    entries = {"model": "demo-chat", "messages": [{"role": "user", "content": "hi"}]}
    entries.update({f"{i:x}": 0 for i in range(n - 2)})
    return json.dumps(entries, separators=(",", ":")).encode()


def test_a_body_with_many_keys_is_refused_before_the_upstream_and_blocks_no_one(stack, key, ledger):
    # 400k keys, just under the 4 MiB limit: the quadratic duplicate check
    # took minutes per request here. Now the parse stops at the 257th key.
    body = many_keys(400_000)
    assert 3_000_000 < len(body) < 4 * 1024 * 1024
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(post(stack, key, body))) for _ in range(3)]
    for t in threads:
        t.start()
    # While they run, the gateway still answers others.
    status, _, _ = raw(stack, "GET", "/v1/models", [("authorization", f"Bearer {key}")])
    assert status == 200
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 3
    for status, headers, reply in results:
        assert status == 400
        assert headers["content-type"] == "application/json"
        assert "more than 256 top-level keys" in error_of(reply)["message"]
    # At the bound it passes.
    status, _, _ = post(stack, key, many_keys(256))
    assert status == 200
    assert len(ledger()) == 1


def test_nesting_beyond_the_bound_is_a_400(stack, key, ledger):
    deep = b'{"model":"demo-chat","messages":[],"x":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    status, _, reply = post(stack, key, deep)
    assert status == 400
    assert "more than 128 deep" in error_of(reply)["message"]
    assert ledger() == []


def test_an_upstream_status_that_is_not_http_reaches_the_client_as_a_502(stack, key):
    for bad in ("600", "999"):
        status, headers, reply = post(stack, key, chat_body(), [("x-mock-status", bad)])
        assert status == 502, (bad, reply)
        assert headers["content-type"] == "application/json"
        err = error_of(reply)
        assert err["code"] == "upstream_error" and bad in err["message"]
    # The next request on the same gateway is normal.
    status, _, _ = post(stack, key, chat_body())
    assert status == 200


def test_a_key_with_a_zero_limit_is_told_waiting_will_not_help(stack, account):
    created = stack.must("POST", "/admin/keys", {"name": "zero", "account_id": account["id"], "rpm": 0})
    def refused():
        status, headers, reply = post(stack, created["key"], chat_body())
        return (status, headers, reply) if status == 429 else None

    status, headers, reply = stackmod.wait_until(refused, what="the zero-rpm key on the gateway")
    assert "retry-after" not in headers
    assert "limit is 0" in error_of(reply)["message"]
