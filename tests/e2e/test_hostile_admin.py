"""Hostile input to the admin API, on each database: money and limits that
would overflow, keys born expired, errors that must stay OpenAI JSON, model
ids with a slash."""

from __future__ import annotations

import time

import pytest

from .helpers import chat_body, raw, stackmod, tag


def _bad(stack, method: str, path: str, body, param: str | None):
    status, _, answer = stack.admin(method, path, body)
    assert status == 400, (path, body, status, answer)
    assert answer["error"]["code"] == "invalid_request"
    if param is not None:
        assert answer["error"]["param"] == param, answer


def test_credits_cannot_overflow_and_publishing_goes_on(stack, account):
    rich = stack.must("POST", "/admin/accounts", {"name": "rich", "balance_usd": 1e6})
    for _ in range(12):
        status, _, answer = stack.admin("POST", f"/admin/accounts/{rich['id']}/credit", {"amount_usd": 1e6})
        assert status in (200, 400), (status, answer)
        if status == 400:
            assert answer["error"]["param"] == "amount_usd"
    _bad(stack, "POST", f"/admin/accounts/{rich['id']}/credit", {"amount_usd": 1e9}, "amount_usd")
    # The account is still readable, patchable and deletable.
    got = stack.must("GET", f"/admin/accounts/{rich['id']}")
    assert got["balance_usd"] <= 1e9
    stack.must("PATCH", f"/admin/accounts/{rich['id']}", {"name": "still rich"})
    # A revocation still reaches Envoy.
    created = stack.must("POST", "/admin/keys", {"name": "after overflow", "account_id": account["id"]})

    def status_within_5s(want: int) -> int:
        """The key's status once it is `want`, or the last one after 5 s."""
        deadline = time.time() + 5
        while True:
            status, _, _ = raw(stack, "POST", "/v1/chat/completions",
                               [("authorization", f"Bearer {created['key']}"), ("content-type", "application/json")],
                               chat_body())
            if status == want or time.time() >= deadline:
                return status
            time.sleep(0.1)

    assert status_within_5s(200) == 200
    stack.must("DELETE", f"/admin/keys/{created['id']}")
    assert status_within_5s(401) == 401
    stack.must("DELETE", f"/admin/accounts/{rich['id']}")


@pytest.mark.parametrize("field", ["balance_usd"])
@pytest.mark.parametrize("value", [1e9, 1e7, -1, 1e300])
def test_huge_account_money_is_refused(stack, field, value):
    _bad(stack, "POST", "/admin/accounts", {"name": "x", field: value}, field)


@pytest.mark.parametrize("field,value", [
    ("rpm", 1_000_000_001), ("rpm", 4_000_000_000), ("tpm", 4_294_967_295), ("max_concurrent", 2_000_000_000),
])
def test_limits_are_bounded(stack, account, field, value):
    _bad(stack, "POST", "/admin/accounts", {"name": "x", field: value}, field)
    _bad(stack, "POST", "/admin/keys", {"account_id": account["id"], field: value}, field)


def test_key_money_and_expiry(stack, account):
    _bad(stack, "POST", "/admin/keys", {"account_id": account["id"], "budget_usd": 1e9}, "budget_usd")
    _bad(stack, "POST", "/admin/keys", {"account_id": account["id"], "expires_at": int(time.time()) - 10}, "expires_at")
    _bad(stack, "POST", "/admin/keys", {"account_id": account["id"], "expires_at": 1}, "expires_at")


def _is_openai_error(status: int, headers, body) -> None:
    assert 400 <= status < 500, status
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/v1/models/%ff", None),
    ("GET", "/admin/accounts/%ff", None),
    ("GET", "/admin/models/%ff%fe", None),
    ("GET", "/no/such/route", None),
    ("PUT", "/admin/accounts", None),
    ("DELETE", "/admin/accounts", None),
    ("POST", "/admin/accounts", b"x" * (3 << 20)),
    ("POST", "/admin/accounts", b"{not json"),
    ("POST", "/admin/accounts", b""),
    ("POST", "/admin/accounts", b"[]"),
    ("POST", "/admin/accounts", b'{"name": 5}'),
    ("PATCH", "/admin/keys/nope", b"{}"),
])
def test_errors_on_the_control_plane_are_openai_json(stack, method, path, body):
    headers = {"authorization": f"Bearer {stack.admin_token}", "content-type": "application/json"}
    status, got_headers, answer = stackmod.http(method, f"{stack.control_plane}{path}", body=body, headers=headers)
    _is_openai_error(status, got_headers, answer)


def test_a_model_id_with_a_slash(stack, key):
    model_id = f"Qwen/Qwen2.5-VL-72B-Instruct-{tag()}"
    stack.must("POST", "/admin/models", {
        "id": model_id, "deployments": [{"provider": "mock", "upstream_model": "mock-qwen"}]})
    try:
        assert stack.must("GET", f"/admin/models/{model_id}")["id"] == model_id
        assert stack.must("PATCH", f"/admin/models/{model_id}", {"name": "Qwen VL"})["name"] == "Qwen VL"
        # Through Envoy, as the OpenAI SDKs send it (the slash as it is).
        deadline, status = time.time() + 5, None
        while time.time() < deadline:
            status, _, answer = raw(stack, "GET", f"/v1/models/{model_id}", [("authorization", f"Bearer {key}")])
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, answer
    finally:
        status, _, _ = stack.admin("DELETE", f"/admin/models/{model_id}")
    assert status == 204
    status, _, answer = stack.admin("GET", f"/admin/models/{model_id}")
    assert status == 404


@pytest.mark.parametrize("url", [
    "http://169.254.169.254./v1", "http://169.254.169.254.:80/v1", "http://169.254.169.254::80/v1",
    "http://[::169.254.169.254]/v1", "http://[64:ff9b::a9fe:a9fe]/v1", "http://[::ffff:0:a9fe:a9fe]/v1",
    "http://[2002:a9fe:a9fe::1]/v1", "http://[2001:0000:4136:e378:8000:63bf:5601:5601]/v1",
    "http://metadata.google.internal/v1", "http://metadata.google.internal./v1",
    "http://:80/v1", "http://h:0/v1", "http://h:-1/v1", "http://h:99999/v1", "http://user@h/v1",
    "http:///v1", "http://h /v1", "http:\\\\h\\v1", "gopher://h/", "http://h/v1?q=1", "http://h/v1#f",
])
def test_provider_urls_that_reach_metadata_or_are_malformed_are_refused(stack, url):
    _bad(stack, "POST", "/admin/providers", {"base_url": url}, "base_url")
    _bad(stack, "PATCH", "/admin/providers/mock", {"base_url": url}, "base_url")


def test_provider_url_is_stored_normalised(stack):
    p = stack.must("POST", "/admin/providers", {"base_url": "https://API.Example.COM./v1/"})
    try:
        assert p["base_url"] == "https://api.example.com/v1"
    finally:
        stack.admin("DELETE", f"/admin/providers/{p['id']}")


def test_huge_usage_costs_cannot_overflow_spend(stack):
    account = stack.must("POST", "/admin/accounts", {"name": "spender", "balance_usd": 10})
    k = stack.must("POST", "/admin/keys", {"name": "spender", "account_id": account["id"], "budget_usd": 10})
    records = [{
        "request_id": f"huge-{k['id']}-{i}", "key_id": k["id"], "account_id": account["id"],
        "model": "demo-chat", "upstream_model": "mock-demo-chat", "provider": "mock", "status": 200,
        "input_tokens": 1, "output_tokens": 1, "estimated": False, "stream": False, "latency_ms": 1,
        "ttft_ms": None, "cost_nanos": 2**64 - 1, "created_at_ms": int(time.time() * 1000),
    } for i in range(3)]
    for _ in range(2):
        records = [dict(r, request_id=r["request_id"] + "x") for r in records]
        status, _, answer = stackmod.http("POST", f"{stack.control_plane}/internal/usage", {"records": records},
                                          headers={"x-tollgate-filter-secret": stack.filter_secret})
        assert status == 200, answer
    got = stack.must("GET", f"/admin/accounts/{account['id']}")
    assert 0 < got["spent_usd"] <= 1e9 and got["balance_usd"] >= -1e9
    assert stack.must("GET", f"/admin/keys/{k['id']}")["spent_usd"] <= 1e9
    # Publishing goes on: a revocation still reaches Envoy.
    stack.must("DELETE", f"/admin/keys/{k['id']}")
    status, _, snapshot = stackmod.http("GET", f"{stack.control_plane}/internal/config",
                                        headers={"x-tollgate-filter-secret": stack.filter_secret})
    assert status == 200 and all(key["id"] != k["id"] for key in snapshot["keys"])
