"""The admin API against the real control plane, on each database: auth,
pagination, validation, write-only secrets."""

from __future__ import annotations

import pytest

from .helpers import raw, stackmod, tag


def test_admin_routes_need_the_admin_token(stack, key):
    for headers in ({}, {"authorization": f"Bearer {key}"}, {"authorization": "Bearer wrong"}):
        status, _, body = stackmod.http("GET", f"{stack.control_plane}/admin/keys", headers=headers)
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
    # The gateway listener has no admin routes at all.
    status, _, _ = raw(stack, "GET", "/admin/keys", [("authorization", f"Bearer {stack.admin_token}")])
    assert status == 404


def test_lists_page_with_a_cursor(stack):
    ids = [stack.must("POST", "/admin/accounts", {"name": f"page {i}"})["id"] for i in range(5)]
    seen, after = [], None
    while True:
        page = stack.must("GET", "/admin/accounts?limit=2" + (f"&after={after}" if after else ""))
        assert len(page["data"]) <= 2
        seen += [a["id"] for a in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen == sorted(seen) and set(ids) <= set(seen)
    for bad in ("limit=0", "limit=101", "limit=x"):
        status, _, body = stack.admin("GET", f"/admin/accounts?{bad}")
        assert status == 400 and body["error"]["param"] == "limit"


def test_a_key_secret_is_shown_once_and_only_its_hash_is_kept(stack, account):
    created = stack.must("POST", "/admin/keys", {"name": "once", "account_id": account["id"]})
    secret = created["key"]
    assert secret.startswith("tg-") and created["prefix"] == secret[: len(created["prefix"])]
    again = stack.must("GET", f"/admin/keys/{created['id']}")
    assert "key" not in again and secret not in str(again)
    listed = stack.must("GET", f"/admin/keys?account_id={account['id']}&limit=100")
    assert secret not in str(listed)
    rotated = stack.must("POST", f"/admin/keys/{created['id']}/rotate")
    assert rotated["key"] != secret and rotated["id"] == created["id"]
    logs = stack.procs["control-plane"].log_path.read_text(errors="replace")
    assert secret not in logs and rotated["key"] not in logs and stack.admin_token not in logs


def test_provider_credentials_are_write_only(stack):
    provider = f"wo-{tag()}"
    p = stack.must("POST", "/admin/providers", {"id": provider, "base_url": "https://api.example.com/v1", "api_key": "sk-secret-123"})
    assert p["has_api_key"] is True and "api_key" not in p
    for doc in (stack.must("GET", f"/admin/providers/{provider}"), stack.must("GET", "/admin/providers?limit=100")):
        assert "sk-secret-123" not in str(doc)
    stack.must("DELETE", f"/admin/providers/{provider}")


@pytest.mark.parametrize("path,body,param", [
    ("/admin/accounts", {"name": "x", "spent_usd": 5}, "spent_usd"),
    ("/admin/accounts", {"name": "x", "balance_usd": -1}, "balance_usd"),
    ("/admin/accounts", {}, "name"),
    ("/admin/keys", {"account_id": "acct_nope"}, "account_id"),
    ("/admin/keys", {"account_id": "ACCOUNT", "models": ["no-such-model"]}, "models"),
    ("/admin/keys", {"account_id": "ACCOUNT", "revoked": False}, "revoked"),
    ("/admin/providers", {"id": "p1", "base_url": "http://169.254.169.254/latest"}, "base_url"),
    ("/admin/providers", {"id": "p1", "base_url": "ftp://example.com"}, "base_url"),
    ("/admin/providers", {"id": "p1", "base_url": "http://0xa9.0xfe.0xa9.0xfe/v1"}, "base_url"),
    ("/admin/providers", {"id": "bad id", "base_url": "https://example.com"}, "id"),
    ("/admin/models", {"id": "m1", "deployments": [{"provider": "nobody", "upstream_model": "x"}]}, "deployments"),
    ("/admin/models", {"id": "m1", "deployments": []}, "deployments"),
    ("/admin/models", {"id": "m1", "category": "  ", "deployments": [{"provider": "mock", "upstream_model": "x"}]}, "category"),
    ("/admin/models", {"id": "<script>", "deployments": [{"provider": "mock", "upstream_model": "x"}]}, "id"),
    ("/admin/models", {"id": "m1", "deployments": [{"provider": "mock", "upstream_model": "x",
                                                    "first_byte_timeout_ms": 50}]}, "deployments"),
    ("/admin/models", {"id": "m1", "deployments": [{"provider": "mock", "upstream_model": "x",
                                                    "first_byte_timeout_ms": 600001}]}, "deployments"),
    ("/admin/models", {"id": "m1", "deployments": [{"provider": "mock", "upstream_model": "x",
                                                    "idle_timeout_ms": 100}]}, "deployments"),
    ("/admin/models", {"id": "m1", "deployments": [{"provider": "mock", "upstream_model": "x",
                                                    "idle_timeout_ms": 120001}]}, "deployments"),
    ("/admin/models", {"id": "m1", "max_attempts": 0, "deployments": [{"provider": "mock", "upstream_model": "x"}]},
     "max_attempts"),
    ("/admin/models", {"id": "m1", "max_attempts": 6, "deployments": [{"provider": "mock", "upstream_model": "x"}]},
     "max_attempts"),
    ("/admin/models", {"id": "m1", "max_attempts": "three",
                       "deployments": [{"provider": "mock", "upstream_model": "x"}]}, "max_attempts"),
])
def test_bad_admin_input_is_a_400_that_names_the_field(stack, account, path, body, param):
    if body.get("account_id") == "ACCOUNT":
        body = {**body, "account_id": account["id"]}
    status, _, answer = stack.admin("POST", path, body)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_request" and answer["error"]["param"] == param


def test_malformed_admin_bodies_and_unknown_ids(stack):
    status, _, answer = stackmod.http("POST", f"{stack.control_plane}/admin/accounts", b"{not json",
                                      {"authorization": f"Bearer {stack.admin_token}"})
    assert status == 400 and answer["error"]["code"] == "invalid_request"
    for path in ("/admin/accounts/acct_nope", "/admin/keys/key_nope", "/admin/providers/nope", "/admin/models/nope"):
        status, _, answer = stack.admin("GET", path)
        assert status == 404 and answer["error"]["code"] == "not_found"
    status, _, answer = stack.admin("POST", "/admin/models", {"id": "demo-chat", "deployments": [{"provider": "mock", "upstream_model": "x"}]})
    assert status == 409 and answer["error"]["code"] == "conflict"
    status, _, answer = stack.admin("DELETE", "/admin/providers/mock")
    assert status == 409, "a provider that serves models stays"


def test_an_account_is_credited_in_one_step(stack):
    acct = stack.must("POST", "/admin/accounts", {"name": "credit", "balance_usd": 1.25})
    after = stack.must("POST", f"/admin/accounts/{acct['id']}/credit", {"amount_usd": 0.75})
    assert after["balance_usd"] == pytest.approx(2.0)
    status, _, _ = stack.admin("POST", f"/admin/accounts/{acct['id']}/credit", {"amount_usd": -5})
    assert status == 400


def test_the_openapi_document_describes_the_admin_api(stack):
    doc = stack.must("GET", "/admin/openapi.json")
    assert doc["openapi"].startswith("3.1")
    assert {"/admin/keys", "/admin/keys/{id}/rotate", "/admin/usage/summary"} <= set(doc["paths"])
    assert doc["components"]["schemas"]["NewProvider"]["properties"]["api_key"]["writeOnly"] is True
    assert stackmod.http("GET", f"{stack.control_plane}/admin/openapi.json")[0] == 401
