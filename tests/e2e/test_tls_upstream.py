"""Providers over TLS: the gateway's own TLS cluster (a dynamic forward proxy
in sub-cluster mode, with SNI and the certificate checked against the
provider's host name) reaches a provider whose certificate a CA it trusts
signed, and refuses one whose certificate does not name the host."""

from __future__ import annotations

import json

import pytest

from .helpers import chat_body, raw, stackmod, tag, wait_for_key
from .tlsfront import TlsFront


@pytest.fixture(scope="module")
def tls_front(stack, test_ca):
    front = TlsFront(test_ca["cert"], test_ca["key"], stack.mock_port)
    yield front
    front.close()


def _provider_model_and_key(stack, account: dict, base_url: str) -> tuple[str, str]:
    """A provider at `base_url`, a model on it, and a key of `account` allowed that model."""
    t = tag()
    provider, model = f"tls-{t}", f"tls-chat-{t}"
    stack.must("POST", "/admin/providers", {"id": provider, "name": "TLS mock", "kind": "openai",
                                            "base_url": base_url, "api_key": f"sk-{provider}"})
    stack.must("POST", "/admin/models", {
        "id": model, "name": model, "category": "chat", "context_window": 8192,
        "pricing": {"input_per_1m": 1.0, "output_per_1m": 2.0},
        "deployments": [{"provider": provider, "upstream_model": f"up-{model}"}]})
    key = stack.must("POST", "/admin/keys", {"name": f"tls {t}", "account_id": account["id"],
                                             "models": [model]})["key"]
    wait_for_key(stack, key, path=f"/v1/models/{model}")
    return model, key


def test_a_provider_over_tls_is_reached_with_its_certificate_checked(stack, account, tls_front, ledger):
    model, key = _provider_model_and_key(stack, account, f"https://localhost:{tls_front.port}/v1")
    status, headers, body = raw(stack, "POST", "/v1/chat/completions",
                                [("authorization", f"Bearer {key}"), ("content-type", "application/json")],
                                chat_body(model))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"]
    [entry] = ledger()
    assert entry["model"] == f"up-{model}"
    assert entry["authorization"] == f"Bearer sk-tls-{model.rsplit('-', 1)[1]}"
    assert headers["x-request-id"] == entry["x_request_id"]


def test_a_provider_whose_certificate_does_not_name_its_host_is_refused(stack, account, tls_front, ledger):
    # The certificate names localhost only: reached as 127.0.0.1 it must not verify.
    model, key = _provider_model_and_key(stack, account, f"https://127.0.0.1:{tls_front.port}/v1")
    failed_before = tls_front.handshakes_failed
    status, headers, body = raw(stack, "POST", "/v1/chat/completions",
                                [("authorization", f"Bearer {key}"), ("content-type", "application/json")],
                                chat_body(model))
    assert status == 502, body
    err = json.loads(body)["error"]
    assert err["code"] == "upstream_error" and err["type"] == "server_error", err
    assert ledger() == [], "nothing may reach a provider that failed verification"
    # The front counts the failed handshake on its own thread, which may come
    # a moment after Envoy has answered.
    stackmod.wait_until(lambda: tls_front.handshakes_failed > failed_before, timeout=5,
                        what="the failed handshake counted")
