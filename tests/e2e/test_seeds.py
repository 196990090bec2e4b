"""The seeds' documented examples not covered elsewhere, as written but for
the base URL and the key (docs/seeds.md has the table): seed 002's chat with
a system message and its documented parameters (tools, tool_choice,
reasoning_effort, max_completion_tokens: forwarded unchanged), seed 003's
ModelsLab body (top_p, presence_penalty, frequency_penalty, stream false)
and its OpenAI Python SDK snippet, streaming and not, on a model id with a
slash, and its Node snippet; seed 001's usage list, field by field, and its
Responses example; seed 000's `sv2-` keys (the operator's prefix)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from openai import OpenAI

from .helpers import raw, records_of, stackmod, tag, wait_for_key

SEED_003_MODEL = "Qwen/Qwen2.5-VL-72B-Instruct-together"
# What the mock answers (mock-upstream: five words unless steered).
MOCK_WORDS = "tok0 tok1 tok2 tok3 tok4"


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


def test_seed_001_responses_example_as_written(stack, key, ledger):
    """Seed 001's `POST /v1/responses` curl, and the same through the OpenAI
    SDK, whose `output_text` is what the seed's answer shows."""
    _model(stack, "deepseek-chat")
    wait_for_key(stack, key, path="/v1/models/deepseek-chat")
    body = {"model": "deepseek-chat", "input": "Summarize the latest API error for this account."}
    status, headers, answer = raw(stack, "POST", "/v1/responses",
                                  [("content-type", "application/json"), ("authorization", f"Bearer {key}")],
                                  json.dumps(body).encode())
    assert status == 200, answer
    answer = json.loads(answer)
    assert answer["object"] == "response" and answer["model"] == "deepseek-chat"
    assert isinstance(answer["id"], str) and answer["id"]
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] and usage["output_tokens"] > 0
    served = _served_body(ledger, headers["x-request-id"])
    assert served["input"] == body["input"] and served["model"] != "deepseek-chat"
    [record] = stackmod.wait_until(lambda: records_of(stack, {headers["x-request-id"]}) or None,
                                   what="the record of the responses call")
    assert (record["input_tokens"], record["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])
    assert record["model"] == "deepseek-chat" and record["estimated"] is False
    client = OpenAI(api_key=key, base_url=f"{stack.gateway}/v1")
    response = client.responses.create(model="deepseek-chat", input=body["input"])
    assert response.output_text == MOCK_WORDS and response.model == "deepseek-chat"


# Seed 003's Node snippet, as the seed prints it but for the key and the base URL.
SEED_003_NODE = """import OpenAI from 'openai';
const client = new OpenAI({
apiKey: 'YOUR_MODELSLAB_API_KEY',
baseURL: 'https://modelslab.com/api/v7/llm',
});
const response = await client.chat.completions.create({
model: 'Qwen/Qwen2.5-VL-72B-Instruct-together',
messages: [
{ role: 'system', content: 'You are a helpful assistant.' },
{ role: 'user', content: 'Hello!' },
],
});
console.log(response.choices[0].message.content);
"""


def test_seed_003_the_node_sdk_snippet_as_written(stack, key, ledger):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("no Node.js on this machine")
    where = Path(__file__).resolve().parents[2] / "target" / "node-sdk"
    if not (where / "node_modules" / "openai").exists():
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(where), "openai@4"],
                       check=True, timeout=300)
    _model(stack, SEED_003_MODEL)
    wait_for_key(stack, key, path=f"/v1/models/{SEED_003_MODEL}")
    script = (SEED_003_NODE.replace("YOUR_MODELSLAB_API_KEY", key)
              .replace("https://modelslab.com/api/v7/llm", f"{stack.gateway}/v1"))
    # An ES module resolves `openai` from its own folder's node_modules.
    path = where / f"seed-003-{tag()}.mjs"
    path.write_text(script)
    try:
        out = subprocess.run([node, str(path)], capture_output=True, text=True, timeout=60, check=True,
                             env={"PATH": os.path.dirname(node)})
    finally:
        path.unlink()
    assert out.stdout.strip() == MOCK_WORDS, out
    [served] = [e["body"] for e in ledger() if (e["body"].get("messages") or [{}])[-1].get("content") == "Hello!"]
    assert served["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}


def test_seed_000_keys_with_the_operators_prefix(tmp_path_factory):
    """Seed 000: "API keys start with sv2-". The prefix is the operator's
    setting (`TOLLGATE_KEY_PREFIX`); a key minted with it works as written."""
    stack = stackmod.Stack(work_dir=tmp_path_factory.mktemp("sv2"),
                           control_plane_extra_env={"TOLLGATE_KEY_PREFIX": "sv2-"})
    with stack.running() as s:
        account = s.must("POST", "/admin/accounts", {"name": "sv2"})
        made = s.must("POST", "/admin/keys", {"name": "sv2", "account_id": account["id"]})
        assert made["key"].startswith("sv2-")
        wait_for_key(s, made["key"])
        status, _, answer = raw(s, "POST", "/v1/chat/completions",
                                [("Content-Type", "application/json"), ("Authorization", f"Bearer {made['key']}")],
                                b'{ "model": "demo-chat", "messages": [{"role": "user", "content": "Hello!"}] }')
        assert status == 200 and json.loads(answer)["choices"][0]["message"]["content"] == MOCK_WORDS
        assert raw(s, "POST", "/v1/chat/completions", [("Authorization", "Bearer sv2-your-api-key")],
                   b'{"model": "demo-chat", "messages": []}')[0] == 401
