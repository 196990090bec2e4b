"""The seeds' documented examples not covered elsewhere, as written but for
the base URL and the key (docs/seeds.md has the table): seed 002's chat with
a system message and its documented parameters (tools, tool_choice,
reasoning_effort, max_completion_tokens: forwarded unchanged), seed 003's
ModelsLab body (top_p, presence_penalty, frequency_penalty, stream false)
and its OpenAI Python SDK snippet, streaming and not, on a model id with a
slash, and seed 001's usage list, field by field."""

from __future__ import annotations

import json

from openai import OpenAI

from .helpers import raw, stackmod, tag, wait_for_key

SEED_003_MODEL = "Qwen/Qwen2.5-VL-72B-Instruct-together"


def _model(stack, model: str) -> None:
    status, _, _ = stack.admin("GET", f"/admin/models/{model}")
    if status == 404:
        stack.must("POST", "/admin/models", {"id": model, "name": model, "category": "Language",
                                            "deployments": [{"provider": "mock", "upstream_model": f"mock-{tag()}"}]})


def _served_body(ledger, request_id: str) -> dict:
    [entry] = [e for e in ledger() if e["x_request_id"] == request_id]
    return entry["body"]


def test_seed_002_chat_with_tools_and_reasoning_parameters_is_forwarded(stack, key, ledger):
    _model(stack, "gpt-5.4-mini")
    wait_for_key(stack, key, path="/v1/models/gpt-5.4-mini")
    body = {
        "model": "gpt-5.4-mini",
        "messages": [{"role": "system", "content": "You are a concise assistant."},
                     {"role": "user", "content": "Hello!"}],
        "max_completion_tokens": 64, "reasoning_effort": "low", "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "get_weather",
                                                     "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    status, headers, answer = raw(stack, "POST", "/v1/chat/completions",
                                  [("authorization", f"Bearer {key}"), ("content-type", "application/json")],
                                  json.dumps(body).encode())
    assert status == 200, answer
    answer = json.loads(answer)
    served = _served_body(ledger, headers["x-request-id"])
    # The public id, as the seed shows, not the provider's (filter/src/rename.rs).
    assert served["model"] != body["model"]
    assert answer["object"] == "chat.completion" and answer["model"] == body["model"]
    assert isinstance(answer["id"], str) and isinstance(answer["choices"][0]["message"]["content"], str)
    assert answer["choices"][0]["index"] == 0 and answer["choices"][0]["finish_reason"]
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # Every documented parameter reaches the provider as sent; only the model
    # is the deployment's.
    for field in ("messages", "max_completion_tokens", "reasoning_effort", "temperature", "tools", "tool_choice"):
        assert served[field] == body[field], field
    assert served["model"].startswith("mock-")


def test_seed_003_modelslab_body_and_the_python_sdk_snippet(stack, key, ledger):
    _model(stack, SEED_003_MODEL)
    wait_for_key(stack, key, path=f"/v1/models/{SEED_003_MODEL}")
    body = {
        "model": SEED_003_MODEL,
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 1000, "temperature": 0.7, "top_p": 1, "stream": False,
        "presence_penalty": 0, "frequency_penalty": 0,
    }
    status, headers, answer = raw(stack, "POST", "/v1/chat/completions",
                                  [("authorization", f"Bearer {key}"), ("content-type", "application/json")],
                                  json.dumps(body).encode())
    assert status == 200, answer
    answer = json.loads(answer)
    served = _served_body(ledger, headers["x-request-id"])
    assert answer["object"] == "chat.completion" and answer["model"] == SEED_003_MODEL != served["model"]
    assert isinstance(answer["created"], int) and answer["choices"][0]["message"]["role"] == "assistant"
    for field in ("max_tokens", "temperature", "top_p", "stream", "presence_penalty", "frequency_penalty"):
        assert served[field] == body[field], field

    # The snippet as written, with base_url and api_key swapped.
    client = OpenAI(api_key=key, base_url=f"{stack.gateway}/v1")
    response = client.chat.completions.create(
        model=SEED_003_MODEL,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Explain quantum computing in simple terms"},
        ],
        max_tokens=1000,
    )
    assert response.choices[0].message.content and response.model == SEED_003_MODEL
    stream = client.chat.completions.create(
        model=SEED_003_MODEL,
        messages=[{"role": "user", "content": "Write a story"}],
        stream=True,
    )
    text = ""
    for chunk in stream:
        assert chunk.model == SEED_003_MODEL, "every chunk names the public id"
        if chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert text


def test_seed_001_usage_list_has_every_documented_field(stack, key):
    """`curl "$BASE/v1/usage?limit=10" -H "Authorization: Bearer $KEY"`: the
    documented record's fields, types and `source`, and the list's shape."""
    status, _, body = raw(stack, "POST", "/v1/chat/completions",
                          [("authorization", f"Bearer {key}"), ("content-type", "application/json")],
                          json.dumps({"model": "demo-chat", "messages": [{"role": "user", "content": "hi"}]}).encode())
    assert status == 200, body

    def listed():
        status, _, answer = raw(stack, "GET", "/v1/usage?limit=10", [("authorization", f"Bearer {key}")])
        assert status == 200, answer
        page = json.loads(answer)
        return page if page["data"] else None

    page = stackmod.wait_until(listed, timeout=15, interval=0.3, what="a usage record")
    assert page["object"] == "list" and isinstance(page["has_more"], bool)
    record = page["data"][0]
    types = {"id": str, "object": str, "model": str, "source": str, "input_tokens": int,
             "output_tokens": int, "total_tokens": int, "created_at": int, "cost_usd": (int, float)}
    for field, kind in types.items():
        assert isinstance(record.get(field), kind), (field, record)
    assert record["id"].startswith("usage_") and record["object"] == "usage_record"
    assert record["source"] == "api_key"
    assert record["total_tokens"] == record["input_tokens"] + record["output_tokens"]
