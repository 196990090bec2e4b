"""Requests through real Envoy with the filter: the OpenAI SDK for the happy
paths, raw HTTP for every error the contract names."""

from __future__ import annotations

import json
import re
import time

import openai
import pytest
from openai import OpenAI

from .helpers import chat_body, raw, stackmod, tag, wait_for_key


@pytest.fixture
def client(stack, key) -> OpenAI:
    return OpenAI(base_url=f"{stack.gateway}/v1", api_key=key, max_retries=0, timeout=30)


def test_a_chat_completion_goes_through_with_the_model_and_credential_rewritten(stack, key, client, ledger):
    r = client.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "hello there"}])
    assert r.choices[0].message.content.startswith("tok0")
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens == 5
    [entry] = ledger()
    assert entry["model"] == "mock-demo-chat"
    assert entry["authorization"] == "Bearer sk-mock-provider-key"
    assert entry["body"]["messages"] == [{"role": "user", "content": "hello there"}]
    # The client's key never reaches the upstream, in any header.
    assert not any(key in str(v) for v in entry["headers"].values())
    assert not any(name.startswith("x-tollgate-") for name in entry["headers"])


def test_model_requests_go_through_the_plugin_configurations_upstream_cluster(stack, client):
    """The stack's own cluster, or under TOLLGATE_E2E_ISTIO=1 the one
    deploy/istio's WasmPlugin names (tools/istio.py), as Istio would."""
    cluster = stackmod.istio.plugin_config()["upstream_cluster"] if stack.istio else "tollgate_upstream"

    def sent() -> int:
        stats = stackmod.http("GET", f"{stack.envoy_admin}/stats?filter=upstream_rq_total", timeout=5)[2].decode()
        found = re.search(rf"^cluster\.{re.escape(cluster)}\.upstream_rq_total: (\d+)$", stats, re.M)
        return int(found.group(1)) if found else 0

    before = sent()
    client.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "hello"}])
    assert sent() == before + 1, cluster


def test_a_streamed_chat_completion_arrives_chunk_by_chunk(stack, client, ledger):
    arrivals = []
    text = ""
    with client.chat.completions.create(
        model="demo-chat",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        extra_headers={"x-mock-chunk-delay-ms": "250", "x-mock-words": "4"},
    ) as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic())
                text += chunk.choices[0].delta.content
    assert text.split() == ["tok0", "tok1", "tok2", "tok3"]
    # Not buffered: the first word arrived long before the last (3 gaps of 250 ms).
    assert arrivals[-1] - arrivals[0] > 0.5
    [entry] = ledger()
    assert entry["stream"] is True and entry["completed"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_every_model_endpoint_answers_through_the_gateway(stack, client, ledger, stream):
    if stream:
        words = [c.choices[0].text for c in client.completions.create(model="demo-chat", prompt="say it", stream=True) if c.choices]
        assert "".join(words).split()[:2] == ["tok0", "tok1"]
        events = [e.type for e in client.responses.create(model="demo-chat", input="hi there", stream=True)]
        assert events[0] == "response.created" and events[-1] == "response.completed"
        paths = [e["path"] for e in ledger()]
        assert paths == ["/v1/completions", "/v1/responses"]
        return
    c = client.completions.create(model="demo-chat", prompt="say it")
    assert c.choices[0].text.split()[0] == "tok0"
    r = client.responses.create(model="demo-chat", input="hi there")
    assert r.output_text.split()[0] == "tok0"
    assert r.usage.input_tokens > 0
    e = client.embeddings.create(model="demo-embed", input=["one two", "three"])
    assert len(e.data) == 2 and e.usage.prompt_tokens == 3
    i = client.images.generate(model="demo-image", prompt="a gate", n=2)
    assert len(i.data) == 2
    entries = ledger()
    assert [x["path"] for x in entries] == ["/v1/completions", "/v1/responses", "/v1/embeddings", "/v1/images/generations"]
    assert [x["model"] for x in entries] == ["mock-demo-chat", "mock-demo-chat", "mock-demo-embed", "mock-demo-image"]


def _error(status_headers_body):
    status, headers, body = status_headers_body
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert headers.get("x-request-id", "").startswith("req_"), headers
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    return status, err["code"], err["param"]


def test_every_bad_request_gets_its_openai_error(stack, key, ledger):
    auth = ("authorization", f"Bearer {key}")
    wrong_sum = key[:-1] + ("A" if key[-1] != "A" else "B")
    cases = [
        ("no key", [], chat_body(), (401, "invalid_api_key", None)),
        ("empty authorization", [("authorization", "")], chat_body(), (401, "invalid_api_key", None)),
        ("garbage key", [("authorization", "Bearer garbage")], chat_body(), (401, "invalid_api_key", None)),
        ("non-UTF-8 key", [("authorization", b"Bearer \xff\xfe")], chat_body(), (401, "invalid_api_key", None)),
        ("wrong checksum", [("authorization", f"Bearer {wrong_sum}")], chat_body(), (401, "invalid_api_key", None)),
        ("sql injection", [("authorization", "Bearer ' OR 1=1 --")], chat_body(), (401, "invalid_api_key", None)),
        ("malformed JSON", [auth], b'{"model":', (400, "invalid_request", None)),
        ("not an object", [auth], b'["demo-chat"]', (400, "invalid_request", None)),
        ("empty body", [auth], b"", (400, "invalid_request", None)),
        ("invalid UTF-8", [auth], b'{"model":"demo-chat","x":"\xff"}', (400, "invalid_request", None)),
        ("BOM", [auth], b"\xef\xbb\xbf" + chat_body(), (400, "invalid_request", None)),
        ("missing model", [auth], b'{"messages":[]}', (400, "invalid_request", "model")),
        ("model of the wrong type", [auth], b'{"model":5}', (400, "invalid_request", "model")),
        ("stream of the wrong type", [auth], chat_body(stream="true"), (400, "invalid_request", "stream")),
        ("duplicate model", [auth], b'{"model":"demo-chat","model":"demo-embed"}', (400, "invalid_request", "model")),
        ("unknown model", [auth], chat_body("no-such-model"), (404, "model_not_found", "model")),
        ("key in the query", [auth], chat_body(), (400, "invalid_request", "api_key")),
        ("10 MiB body", [auth], b'{"model":"demo-chat","x":"' + b"a" * (10 * 1024 * 1024) + b'"}', (413, "request_too_large", None)),
    ]
    for name, headers, body, want in cases:
        path = "/v1/chat/completions?api_key=x" if name == "key in the query" else "/v1/chat/completions"
        got = _error(raw(stack, "POST", path, [("content-type", "application/json"), *headers], body))
        assert got == want, name
    assert ledger() == [], "no bad request reached the upstream"


def test_a_key_may_only_use_the_models_it_is_allowed(stack, account, ledger):
    limited = stack.must("POST", "/admin/keys", {"name": "chat only", "account_id": account["id"], "models": ["demo-chat"]})
    auth = [("authorization", f"Bearer {limited['key']}")]
    stackmod.wait_until(lambda: all(raw(stack, "GET", "/v1/models", auth)[0] == 200 for _ in range(8)),
                        what="the new key on every worker")
    assert _error(raw(stack, "POST", "/v1/embeddings", auth, b'{"model":"demo-embed","input":"x"}')) == (403, "model_not_allowed", "model")
    status, _, _ = raw(stack, "POST", "/v1/chat/completions", auth, chat_body())
    assert status == 200
    status, _, body = raw(stack, "GET", "/v1/models", auth)
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == ["demo-chat"]
    assert _error(raw(stack, "GET", "/v1/models/demo-embed", auth))[:2] == (404, "model_not_found")
    assert [e["model"] for e in ledger()] == ["mock-demo-chat"]


def test_gateway_headers_from_clients_are_stripped_and_the_request_id_is_minted(stack, key, ledger):
    status, headers, _ = raw(
        stack, "POST", "/v1/chat/completions",
        [("authorization", f"Bearer {key}"), ("x-tollgate-key-id", "key_forged"),
         ("x-tollgate-cluster", "tollgate_control_plane"), ("x-request-id", "client-chosen"),
         ("user-agent", b"caf\xe9")],
        chat_body(),
    )
    assert status == 200
    assert headers["x-request-id"].startswith("req_") and headers["x-request-id"] != "client-chosen"
    [entry] = ledger()
    assert entry["x_request_id"] == headers["x-request-id"]
    assert not any(n.startswith("x-tollgate-") for n in entry["headers"])


def catalog_of_its_own(stack) -> tuple[str, list[str]]:
    """A provider (the mock) and three models on it, named with a tag of
    their own: (provider id, model ids)."""
    provider = f"cat-{tag()}"
    stack.must("POST", "/admin/providers", {"id": provider, "name": "Catalog mock", "kind": "openai",
                                            "base_url": f"{stack.mock}/v1", "api_key": "sk-catalog"})
    models = [f"{provider}-{c}" for c in ("chat", "embed", "image")]
    for model, category in zip(models, ("chat", "embedding", "image")):
        stack.must("POST", "/admin/models", {
            "id": model, "name": model, "category": category, "context_window": 8192,
            "pricing": {"input_per_1m": 0.15, "output_per_1m": 0.60},
            "deployments": [{"provider": provider, "upstream_model": f"up-{model}"}]})
    return provider, models


def test_the_catalog_and_status_answer_through_the_gateway(stack, key):
    provider, models = catalog_of_its_own(stack)
    auth = [("authorization", f"Bearer {key}")]
    for model in models:
        wait_for_key(stack, key, path=f"/v1/models/{model}")
    status, _, body = raw(stack, "GET", "/v1/models", auth)
    assert status == 200
    assert set(models) <= {m["id"] for m in json.loads(body)["data"]}
    status, _, body = raw(stack, "GET", f"/v1/models/catalog?search={models[1]}", auth)
    assert status == 200
    [entry] = json.loads(body)["data"]
    assert entry["id"] == models[1] and entry["pricing"] == {"input_per_1m": 0.15, "output_per_1m": 0.6}
    status, _, body = raw(stack, "GET", f"/v1/models/catalog?provider={provider}", auth)
    assert status == 200 and sorted(m["id"] for m in json.loads(body)["data"]) == models
    status, _, body = raw(stack, "GET", "/v1/models/catalog?provider=nobody", auth)
    assert status == 200 and json.loads(body)["data"] == []
    status, _, body = raw(stack, "GET", f"/v1/models/{models[0]}", auth)
    assert status == 200 and json.loads(body)["id"] == models[0]
    assert _error(raw(stack, "GET", "/v1/models", []))[:2] == (401, "invalid_api_key")
    status, headers, body = raw(stack, "GET", "/api/status", [])
    assert status == 200 and headers["x-request-id"].startswith("req_")
    assert json.loads(body)["control_plane"]["status"] == "ok"


def test_the_catalog_takes_the_seeds_labels_and_names_the_provider(stack, key):
    """Seed 000 labels models Language, Code, Vision; seed 001 answers a
    `provider` display name and filters on it; `owned_by` is the operator's
    own name for who serves the model."""
    t = tag()
    stack.must("POST", "/admin/providers", {"id": f"ds-{t}", "name": f"DeepSeek {t}", "kind": "openai",
                                            "base_url": f"{stack.mock}/v1", "api_key": "sk-ds"})
    models = {f"ds-{t}-{c.lower()}": c for c in ("Language", "Code", "Vision")}
    for model, category in models.items():
        stack.must("POST", "/admin/models", {
            "id": model, "name": model, "category": category, "context_window": 64000,
            "pricing": {"input_per_1m": 0.27, "output_per_1m": 1.1},
            "deployments": [{"provider": f"ds-{t}", "upstream_model": "deepseek-chat"}]})
    auth = [("authorization", f"Bearer {key}")]
    for model in models:
        wait_for_key(stack, key, path=f"/v1/models/{model}")
    status, _, body = raw(stack, "GET", "/v1/models", auth)
    owned = {m["id"]: m["owned_by"] for m in json.loads(body)["data"]}
    assert all(owned[m] == f"DeepSeek {t}" for m in models), owned
    for query in (f"provider=DeepSeek%20{t}", f"provider=deepseek%20{t.upper()}", f"provider=ds-{t}"):
        status, _, body = raw(stack, "GET", f"/v1/models/catalog?{query}", auth)
        data = json.loads(body)["data"]
        assert status == 200 and sorted(e["id"] for e in data) == sorted(models), (query, data)
    for e in data:
        assert (e["provider"], e["providers"], e["category"], e["context_window"]) == \
            (f"DeepSeek {t}", [f"ds-{t}"], models[e["id"]], 64000)
        assert e["pricing"] == {"input_per_1m": 0.27, "output_per_1m": 1.1}
    # A category is a label of the operator's: one line, not blank, short.
    for bad in ("", "  ", "two\nlines", "x" * 65):
        status, _, err = stack.admin("POST", "/admin/models", {
            "id": f"bad-{t}", "category": bad, "deployments": [{"provider": f"ds-{t}", "upstream_model": "x"}]})
        assert status == 400 and err["error"]["param"] == "category", (bad, err)


def test_internal_endpoints_are_not_reachable_through_the_gateway(stack, key):
    for path in ("/internal/config", "/internal/usage"):
        for method in ("GET", "POST"):
            status, _, body = raw(stack, method, path, [("authorization", f"Bearer {key}"),
                                                        ("x-tollgate-filter-secret", stack.filter_secret)], b"{}")
            assert status == 404, (method, path)
            assert b"version" not in body


def test_an_unreachable_provider_is_a_502_in_the_openai_format(stack, key):
    provider = f"dead-{tag()}"
    model = f"{provider}-model"
    stack.must("POST", "/admin/providers", {"id": provider, "kind": "openai",
                                            "base_url": f"http://127.0.0.1:{stackmod.free_port()}/v1", "api_key": "sk-dead"})
    stack.must("POST", "/admin/models", {"id": model, "deployments": [{"provider": provider, "upstream_model": "x"}]})
    try:
        got = stackmod.wait_until(
            lambda: (e := _error(raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")],
                                    chat_body(model))))[1] != "model_not_found" and e,
            what="the new model on the gateway")
        assert got[:2] == (502, "upstream_error")
    finally:
        stack.must("DELETE", f"/admin/models/{model}")
        stack.must("DELETE", f"/admin/providers/{provider}")


def test_the_sdk_sees_typed_errors(stack, key):
    bad = OpenAI(base_url=f"{stack.gateway}/v1", api_key="tg-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "invalid_api_key"
    good = OpenAI(base_url=f"{stack.gateway}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as e:
        good.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"


@pytest.mark.parametrize("header", ["api-key", "x-api-key"])
def test_a_key_in_the_other_headers_works_and_never_reaches_the_upstream(stack, key, ledger, header):
    status, _, _ = raw(stack, "POST", "/v1/chat/completions", [(header, key)], chat_body())
    assert status == 200
    [entry] = ledger()
    assert header not in entry["headers"] and not any(key in str(v) for v in entry["headers"].values())
    assert entry["authorization"] == "Bearer sk-mock-provider-key"
