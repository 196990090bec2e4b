"""The Anthropic side of the gateway, through real Envoy with the official
SDKs: `/v1/messages` for Anthropic clients on an OpenAI-shaped provider and
on an Anthropic one, OpenAI clients on an Anthropic provider, Azure OpenAI's
paths and headers as the upstream sees them, errors in each client's shape,
and the usage records exact in every direction (the mock's ledger is the
provider's word)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import anthropic
import openai
import pytest

from .helpers import new_account, new_key, stackmod, tag

INPUT_PER_1M, OUTPUT_PER_1M = 3.0, 15.0
WORDS = "tok0 tok1 tok2 tok3 tok4"  # the mock's default answer
TOOLS = [{"name": "get_weather", "description": "Weather of a city.",
          "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
OPENAI_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
                                                  "parameters": {"type": "object",
                                                                 "properties": {"q": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def kinds(stack):
    """An Anthropic provider and an Azure one on the mock, a model on each,
    and a key that may use them and the demo model."""
    t = tag()
    mock = stack.mock
    stack.must("POST", "/admin/providers", {"id": f"anth-{t}", "name": "Anthropic (mock)", "kind": "anthropic",
                                           "base_url": f"{mock}/v1", "api_key": f"sk-ant-mock-{t}"})
    stack.must("POST", "/admin/providers", {"id": f"az-{t}", "name": "Azure (mock)", "kind": "azure_openai",
                                           "base_url": f"{mock}/openai", "api_key": f"az-mock-{t}"})
    models = {"claude": f"claude-{t}", "azure": f"azure-{t}"}
    for name, provider, upstream in (("claude", f"anth-{t}", "mock-claude"), ("azure", f"az-{t}", "my-deploy")):
        stack.must("POST", "/admin/models", {
            "id": models[name], "name": models[name], "category": "chat", "context_window": 200000,
            "pricing": {"input_per_1m": INPUT_PER_1M, "output_per_1m": OUTPUT_PER_1M},
            "deployments": [{"provider": provider, "upstream_model": upstream}]})
    return {**models, "anthropic_key": f"sk-ant-mock-{t}", "azure_key": f"az-mock-{t}"}


@pytest.fixture
def holder(stack, kinds, request):
    """A key of a fresh account, known on every worker, that sees the models."""
    account = new_account(stack, request.node.name[:200])
    key = new_key(stack, account["id"])["key"]
    stackmod.wait_until(lambda: {kinds["claude"], kinds["azure"]} <= {
        m["id"] for m in stackmod.http("GET", f"{stack.gateway}/v1/models",
                                       headers={"authorization": f"Bearer {key}"})[2]["data"]},
        what="the models of every kind")
    return key


def claude_sdk(stack, key: str, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.gateway, api_key=key, max_retries=0, **kw)


def openai_sdk(stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.gateway}/v1", api_key=key, max_retries=0)


def served(stack, path: str | None = None) -> list[dict]:
    entries = stackmod.http("GET", f"{stack.mock}/_mock/ledger")[2]["entries"]
    return [e for e in entries if path is None or e["path"] == path]


def exact(stack, n: int, cache_read: int = 0) -> list[dict]:
    """Every request the mock served (`n` of them) has one usage record with
    the mock's tokens, not estimated, at the catalog's price, `cache_read` of
    them from the prompt cache in the requests that asked for it; the
    records."""
    by_id = {e["x_request_id"]: e for e in served(stack)}
    assert len(by_id) == n, (len(by_id), n)

    def arrived():
        got = [r for r in stack.admin("GET", "/admin/usage?limit=100")[2]["data"] if r["request_id"] in by_id]
        return got if len(got) >= n else None

    got = stackmod.wait_until(arrived, timeout=15, what="the usage records")
    assert len(got) == n, "one record each"
    for r in got:
        e = by_id[r["request_id"]]
        assert (r["input_tokens"], r["output_tokens"], r["estimated"]) == \
            (e["prompt_tokens"], e["completion_tokens"], False), (r, e)
        price_in, price_out = (0.15, 0.60) if r["model"] == "demo-chat" else (INPUT_PER_1M, OUTPUT_PER_1M)
        want = (e["prompt_tokens"] * price_in + e["completion_tokens"] * price_out) / 1e6
        assert abs(r["cost_usd"] - want) < 1e-9, (r, want)
        asked = e["headers"].get("x-mock-cache-read") is not None
        assert (r["cache_read_tokens"], r["cache_creation_tokens"]) == ((cache_read if asked else 0), 0), (r, e)
    return got


# --------------------------------------------- Anthropic clients, OpenAI provider


def test_the_anthropic_sdk_on_an_openai_provider_non_stream_and_stream(stack, holder, ledger):
    client = claude_sdk(stack, holder)
    raw = client.messages.with_raw_response.create(
        model="demo-chat", max_tokens=64, system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}])
    msg = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "demo-chat"
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == WORDS
    assert msg.stop_reason == "end_turn"
    with client.messages.stream(model="demo-chat", max_tokens=64,
                                messages=[{"role": "user", "content": "hello there"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == WORDS and final.stop_reason == "end_turn"
    up = served(stack, "/v1/chat/completions")
    assert len(up) == 2
    for e in up:
        assert e["authorization"] == "Bearer sk-mock-provider-key", "the provider's key, not the client's"
        assert "x-api-key" not in e["headers"] and "anthropic-version" not in e["headers"]
        assert e["body"]["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": "hello there"}]}
    assert up[0]["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert up[1]["include_usage"], "the gateway asks for the stream's usage"
    assert msg.usage.input_tokens == up[0]["prompt_tokens"] and msg.usage.output_tokens == 5
    assert final.usage.input_tokens == up[1]["prompt_tokens"] and final.usage.output_tokens == 5
    exact(stack, 2)


def test_tool_use_through_a_translated_route_both_ways_of_answering(stack, holder, ledger):
    client = claude_sdk(stack, holder, default_headers={"x-mock-tool": "get_weather"})
    msg = client.messages.create(model="demo-chat", max_tokens=64, tools=TOOLS,
                                 messages=[{"role": "user", "content": "weather in Paris?"}])
    assert msg.stop_reason == "tool_use"
    (block,) = msg.content
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"q": "mock"})
    with client.messages.stream(model="demo-chat", max_tokens=64, tools=TOOLS,
                                messages=[{"role": "user", "content": "weather in Paris?"}]) as s:
        final = s.get_final_message()
    (block,) = final.content
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"q": "mock"})
    # The tool's result goes back as a tool message.
    client.messages.create(model="demo-chat", max_tokens=64, tools=TOOLS, extra_headers={"x-mock-tool": ""},
                           messages=[{"role": "user", "content": "weather in Paris?"},
                                     {"role": "assistant", "content": [block.model_dump()]},
                                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id,
                                                                   "content": "sunny"}]}])
    up = served(stack, "/v1/chat/completions")
    assert up[0]["body"]["tools"][0]["function"]["name"] == "get_weather"
    assert up[2]["body"]["messages"][-1] == {"role": "tool", "tool_call_id": block.id, "content": "sunny"}
    exact(stack, 3)


def test_anthropic_clients_get_anthropic_errors_and_exceptions(stack, holder, ledger):
    with pytest.raises(anthropic.AuthenticationError) as e:
        claude_sdk(stack, "tg-not-a-key").messages.create(model="demo-chat", max_tokens=5,
                                                          messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.RateLimitError) as e:
        claude_sdk(stack, holder, default_headers={"x-mock-status": "429"}).messages.create(
            model="demo-chat", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        claude_sdk(stack, holder).messages.create(model="demo-chat", max_tokens=5, top_k=3,
                                                  messages=[{"role": "user", "content": "x"}])
    assert "top_k" in e.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError):
        claude_sdk(stack, holder).messages.create(model="no-such-model", max_tokens=5,
                                                  messages=[{"role": "user", "content": "x"}])
    assert len(served(stack)) == 1, "only the scripted 429 reached the upstream"


def test_count_tokens_is_estimated_unless_the_provider_counts(stack, holder, kinds, ledger):
    client = claude_sdk(stack, holder)
    raw = client.messages.with_raw_response.count_tokens(
        model="demo-chat", messages=[{"role": "user", "content": "how many tokens are these words"}])
    assert raw.parse().input_tokens > 0 and raw.headers["x-tollgate-estimated"] == "true"
    assert served(stack) == [], "estimated here"
    counted = client.messages.count_tokens(model=kinds["claude"],
                                           messages=[{"role": "user", "content": "how many tokens are these"}])
    (e,) = served(stack, "/v1/messages/count_tokens")
    assert counted.input_tokens == e["prompt_tokens"] and e["headers"]["x-api-key"] == kinds["anthropic_key"]


# ------------------------------------------------- Anthropic clients, Anthropic


def test_an_anthropic_client_on_an_anthropic_provider_passes_its_headers_and_is_billed_with_cache(
        stack, holder, kinds, ledger):
    client = claude_sdk(stack, holder, default_headers={"anthropic-beta": "tools-2024-05-16", "x-mock-cache-read": "2"})
    msg = client.messages.create(model=kinds["claude"], max_tokens=64,
                                 messages=[{"role": "user", "content": "hello there"}])
    with client.messages.stream(model=kinds["claude"], max_tokens=64,
                                messages=[{"role": "user", "content": "hello there"}]) as s:
        text = "".join(s.text_stream)
    assert msg.content[0].text == WORDS == text
    (a, b) = served(stack, "/v1/messages")
    for e in (a, b):
        assert e["model"] == "mock-claude"
        assert e["headers"]["anthropic-beta"] == "tools-2024-05-16", "passed through unchanged"
        assert e["headers"]["anthropic-version"] == "2023-06-01"
        assert e["headers"]["x-api-key"] == kinds["anthropic_key"] and e["authorization"] is None
    assert msg.usage.cache_read_input_tokens == 2
    assert msg.usage.input_tokens + 2 == a["prompt_tokens"]
    exact(stack, 2, cache_read=2)


# ------------------------------------------------- OpenAI clients, Anthropic


def test_the_openai_sdk_on_an_anthropic_provider_non_stream_and_stream(stack, holder, kinds, ledger):
    client = openai_sdk(stack, holder)
    r = client.chat.completions.with_raw_response.create(
        model=kinds["claude"], max_completion_tokens=64, extra_headers={"x-mock-cache-read": "2"},
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}])
    c = r.parse()
    assert c.object == "chat.completion" and c.model == kinds["claude"]
    assert c.choices[0].message.content == WORDS and c.choices[0].finish_reason == "stop"
    chunks = list(client.chat.completions.create(model=kinds["claude"], stream=True,
                                                 stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "hello there"}]))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == WORDS
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    quiet = list(client.chat.completions.create(model=kinds["claude"], stream=True,
                                                messages=[{"role": "user", "content": "hello there"}]))
    assert all(ch.usage is None for ch in quiet), "no usage chunk the client did not ask for"
    up = served(stack, "/v1/messages")
    assert len(up) == 3
    for e in up:
        assert e["model"] == "mock-claude" and e["body"]["max_tokens"] > 0
        assert e["headers"]["x-api-key"] == kinds["anthropic_key"] and e["authorization"] is None
        assert e["headers"]["anthropic-version"] == "2023-06-01"
    assert up[0]["body"]["system"] == [{"type": "text", "text": "Be brief."}] and up[0]["body"]["max_tokens"] == 64
    assert c.usage.prompt_tokens == up[0]["prompt_tokens"] and c.usage.prompt_tokens_details.cached_tokens == 2
    assert chunks[-1].usage.prompt_tokens == up[1]["prompt_tokens"]
    exact(stack, 3, cache_read=2)


def test_openai_tool_calls_on_an_anthropic_provider(stack, holder, kinds, ledger):
    client = openai_sdk(stack, holder)
    c = client.chat.completions.create(model=kinds["claude"], tools=OPENAI_TOOLS, tool_choice="required",
                                       extra_headers={"x-mock-tool": "get_weather"},
                                       messages=[{"role": "user", "content": "weather in Paris?"}])
    (call,) = c.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments), c.choices[0].finish_reason) == \
        ("get_weather", {"q": "mock"}, "tool_calls")
    chunks = list(client.chat.completions.create(model=kinds["claude"], tools=OPENAI_TOOLS, stream=True,
                                                 extra_headers={"x-mock-tool": "get_weather"},
                                                 messages=[{"role": "user", "content": "weather in Paris?"}]))
    args = "".join(tc.function.arguments or "" for ch in chunks if ch.choices
                   for tc in (ch.choices[0].delta.tool_calls or []))
    assert json.loads(args) == {"q": "mock"}
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "tool_calls"
    up = served(stack, "/v1/messages")
    assert up[0]["body"]["tool_choice"] == {"type": "any"}
    assert up[0]["body"]["tools"][0]["input_schema"]["properties"] == {"q": {"type": "string"}}
    exact(stack, 2)


def test_openai_clients_get_openai_errors_from_an_anthropic_provider(stack, holder, kinds, ledger):
    client = openai_sdk(stack, holder)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=kinds["claude"], extra_headers={"x-mock-status": "429"},
                                       messages=[{"role": "user", "content": "x"}])
    assert e.value.body["code"] == "rate_limit_error" and e.value.body["message"] == "mock error 429"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=kinds["claude"], n=2, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=kinds["claude"], input="x")
    assert e.value.body["param"] == "model"


# ------------------------------------------------------------------------ Azure


def test_azure_deployments_get_their_path_api_version_and_api_key(stack, holder, kinds, ledger):
    c = openai_sdk(stack, holder).chat.completions.create(model=kinds["azure"],
                                                          messages=[{"role": "user", "content": "hello there"}])
    assert c.choices[0].message.content == WORDS
    (e,) = served(stack)
    assert e["uri"] == "/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21"
    assert e["headers"]["api-key"] == kinds["azure_key"] and e["authorization"] is None
    exact(stack, 1)


# ---------------------------------------------------------------- Node, once


def test_the_node_anthropic_sdk_once(stack, holder, ledger, tmp_path_factory):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("no Node.js on this machine")
    where = Path(__file__).resolve().parents[2] / "target" / "node-sdk"
    if not (where / "node_modules" / "@anthropic-ai" / "sdk").exists():
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(where),
                        "@anthropic-ai/sdk@0"], check=True, timeout=300)
    script = """
const Anthropic = require('@anthropic-ai/sdk');
const client = new Anthropic({ baseURL: process.env.BASE, apiKey: process.env.KEY, maxRetries: 0 });
(async () => {
  const msg = await client.messages.create({ model: 'demo-chat', max_tokens: 32,
    messages: [{ role: 'user', content: 'hello there' }] });
  const stream = client.messages.stream({ model: 'demo-chat', max_tokens: 32,
    messages: [{ role: 'user', content: 'hello there' }] });
  let text = '';
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  let status = 0;
  try { await new Anthropic({ baseURL: process.env.BASE, apiKey: 'nope', maxRetries: 0 })
          .messages.create({ model: 'demo-chat', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }); }
  catch (e) { status = e instanceof Anthropic.AuthenticationError ? e.status : -1; }
  console.log(JSON.stringify({ text: msg.content[0].text, streamed: text, out: final.usage.output_tokens, status }));
})().catch((e) => { console.error(e); process.exit(1); });
"""
    out = subprocess.run([node, "-e", script], env={"BASE": stack.gateway, "KEY": holder,
                                                    "NODE_PATH": str(where / "node_modules"), "PATH": ""},
                         capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(out.stdout)
    assert got == {"text": WORDS, "streamed": WORDS, "out": 5, "status": 401}
    exact(stack, 2)


# ----------------------------------------------------------- Envoy's own errors


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    """A private stack that waits 1 s for a request's body."""
    with stackmod.Stack(work_dir=tmp_path_factory.mktemp("impatient"), request_timeout="1s").running() as s:
        yield s


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
