"""Failover across APIs (issue 11, docs/routing.md), through real Envoy: a
model whose first deployment is OpenAI-shaped and second Anthropic (or the
reverse) fails over from one to the other; the upstream role translates the
request for the deployment the attempt got, and the listener filter
translates its answer back to the client's API and meters it in the shape
of the deployment that answered. Each deployment is a mock upstream of its
own (the mock speaks both APIs), started with the way it fails."""

from __future__ import annotations

import anthropic
import openai
import pytest

from .failover_fleet import Mock, model, provider, served_record, wait_routed
from .helpers import stackmod, tag

WORDS = "tok0 tok1 tok2 tok3 tok4"  # the mock's default answer
PRICE_IN, PRICE_OUT = 1.0, 2.0  # failover_fleet.model's pricing, per 1M


def anthropic_provider(stack, base_url: str) -> str:
    pid = f"fa-{tag()}"
    stack.must("POST", "/admin/providers", {"id": pid, "kind": "anthropic", "base_url": base_url,
                                           "api_key": f"sk-ant-{pid}"})
    return pid


@pytest.fixture(scope="module")
def fleet(stack):
    mocks = {
        "ok": Mock(stack, "ok"),
        "e503": Mock(stack, "e503", "x-mock-status=503"),
        "e400": Mock(stack, "e400", "x-mock-status=400"),
    }
    dead = f"http://127.0.0.1:{stackmod.free_port()}/v1"
    p = {
        "openai_ok": provider(stack, mocks["ok"].url + "/v1"),
        "openai_503": provider(stack, mocks["e503"].url + "/v1"),
        "openai_400": provider(stack, mocks["e400"].url + "/v1"),
        "openai_dead": provider(stack, dead),
        "anthropic_ok": anthropic_provider(stack, mocks["ok"].url + "/v1"),
        "anthropic_503": anthropic_provider(stack, mocks["e503"].url + "/v1"),
        "anthropic_400": anthropic_provider(stack, mocks["e400"].url + "/v1"),
    }
    models = {
        # An OpenAI-shaped first deployment that fails, an Anthropic second.
        "to_anthropic": model(stack, (p["openai_503"], "gpt-503", 0), (p["anthropic_ok"], "claude-ok", 1)),
        "refused_to_anthropic": model(stack, (p["openai_dead"], "gpt-dead", 0), (p["anthropic_ok"], "claude-ok", 1)),
        "to_anthropic_400": model(stack, (p["openai_503"], "gpt-503", 0), (p["anthropic_400"], "claude-400", 1)),
        # The reverse.
        "to_openai": model(stack, (p["anthropic_503"], "claude-503", 0), (p["openai_ok"], "gpt-ok", 1)),
        "to_openai_400": model(stack, (p["anthropic_503"], "claude-503", 0), (p["openai_400"], "gpt-400", 1)),
        # The same for an OpenAI client (its own model: a deployment's health
        # is per model, and a third failure in a row cools it down).
        "openai_after_anthropic": model(stack, (p["anthropic_503"], "claude-503", 0), (p["openai_ok"], "gpt-ok", 1)),
        "untranslatable": model(stack, (p["openai_503"], "gpt-503", 0), (p["anthropic_ok"], "claude-ok", 1)),
        # OpenAI, Anthropic, OpenAI again: the third attempt gets the body
        # the listener wrote, not the second attempt's translation.
        "there_and_back": model(stack, (p["openai_503"], "gpt-503", 0), (p["anthropic_503"], "claude-503", 1),
                                (p["openai_ok"], "gpt-ok", 2)),
    }
    wait_routed(stack, list(models.values()))
    yield {"mocks": mocks, "models": models, "providers": p}
    for m in mocks.values():
        m.stop()


def openai_sdk(stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.gateway}/v1", api_key=key, max_retries=0)


def claude_sdk(stack, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.gateway, api_key=key, max_retries=0)


def billed_once(stack, rid: str, call: dict, provider_id: str, upstream_model: str, attempts: int = 2) -> dict:
    """The one usage record of `rid`: the deployment that answered, the
    tokens the mock counted for that call, the model's price, the attempts."""
    record = served_record(stack, rid)
    assert (record["provider"], record["upstream_model"]) == (provider_id, upstream_model), record
    assert (record["input_tokens"], record["output_tokens"], record["estimated"]) == \
        (call["prompt_tokens"], call["completion_tokens"], False), (record, call)
    assert record["output_tokens"] == 5
    want = (call["prompt_tokens"] * PRICE_IN + call["completion_tokens"] * PRICE_OUT) / 1e6
    assert abs(record["cost_usd"] - want) < 1e-9, (record, want)
    assert record["attempts"] == attempts, record
    assert record["status"] == 200 and record["cut"] is False
    return record


@pytest.mark.parametrize("case", ["to_anthropic", "refused_to_anthropic"])
def test_an_openai_client_is_answered_by_the_anthropic_deployment_in_openai_format(stack, key, fleet, case):
    mid, mocks, p = fleet["models"][case], fleet["mocks"], fleet["providers"]
    client = openai_sdk(stack, key)
    raw = client.chat.completions.with_raw_response.create(
        model=mid, max_completion_tokens=64, messages=[{"role": "system", "content": "Be brief."},
                                                       {"role": "user", "content": "hello there"}])
    c = raw.parse()
    rid = raw.headers["x-request-id"]
    assert c.object == "chat.completion" and c.model == mid
    assert c.choices[0].message.content == WORDS and c.choices[0].finish_reason == "stop"
    calls = mocks["ok"].calls(rid)
    assert len(calls) == 1, calls
    up = calls[0]
    # Anthropic's request: its path, model, credential header and version.
    assert (up["path"], up["model"]) == ("/v1/messages", "claude-ok")
    assert up["headers"]["x-api-key"] == f"sk-ant-{p['anthropic_ok']}" and up["authorization"] is None
    assert up["headers"]["anthropic-version"] == "2023-06-01"
    assert up["body"]["system"] == [{"type": "text", "text": "Be brief."}]
    assert [m["role"] for m in up["body"]["messages"]] == ["user"]
    assert c.usage.prompt_tokens == up["prompt_tokens"] and c.usage.completion_tokens == 5
    if case == "to_anthropic":
        first = mocks["e503"].calls(rid)
        assert [e["path"] for e in first] == ["/v1/chat/completions"]
    billed_once(stack, rid, up, p["anthropic_ok"], "claude-ok")


def test_an_openai_stream_is_answered_by_the_anthropic_deployment_as_openai_chunks(stack, key, fleet):
    mid, mocks, p = fleet["models"]["to_anthropic"], fleet["mocks"], fleet["providers"]
    client = openai_sdk(stack, key)
    raw = client.chat.completions.with_raw_response.create(
        model=mid, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hello there"}])
    rid = raw.headers["x-request-id"]
    chunks = list(raw.parse())
    assert all(ch.object == "chat.completion.chunk" and ch.model == mid for ch in chunks)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == WORDS
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    usage = [ch.usage for ch in chunks if ch.usage]
    up = mocks["ok"].calls(rid)
    assert len(up) == 1 and up[0]["path"] == "/v1/messages" and up[0]["stream"] is True
    assert len(usage) == 1 and usage[0].completion_tokens == 5 and usage[0].prompt_tokens == up[0]["prompt_tokens"]
    assert len(mocks["e503"].calls(rid)) == 1
    billed_once(stack, rid, up[0], p["anthropic_ok"], "claude-ok")


def test_an_anthropic_client_is_answered_by_the_openai_deployment_in_anthropic_format(stack, key, fleet):
    mid, mocks, p = fleet["models"]["to_openai"], fleet["mocks"], fleet["providers"]
    client = claude_sdk(stack, key)
    raw = client.messages.with_raw_response.create(
        model=mid, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hello there"}])
    msg = raw.parse()
    rid = raw.headers["x-request-id"]
    assert msg.type == "message" and msg.role == "assistant" and msg.model == mid
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == WORDS
    assert msg.stop_reason == "end_turn"
    assert [e["path"] for e in mocks["e503"].calls(rid)] == ["/v1/messages"]
    calls = mocks["ok"].calls(rid)
    assert len(calls) == 1, calls
    up = calls[0]
    # OpenAI's request: its path, model and bearer; no Anthropic header.
    assert (up["path"], up["model"]) == ("/v1/chat/completions", "gpt-ok")
    assert up["authorization"] == f"Bearer sk-{p['openai_ok']}"
    assert "x-api-key" not in up["headers"] and "anthropic-version" not in up["headers"]
    assert up["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert msg.usage.input_tokens == up["prompt_tokens"] and msg.usage.output_tokens == 5
    billed_once(stack, rid, up, p["openai_ok"], "gpt-ok")


def test_an_anthropic_stream_is_answered_by_the_openai_deployment_as_messages_events(stack, key, fleet):
    mid, mocks, p = fleet["models"]["to_openai"], fleet["mocks"], fleet["providers"]
    client = claude_sdk(stack, key)
    with client.messages.stream(model=mid, max_tokens=64,
                                messages=[{"role": "user", "content": "hello there"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
        rid = s.response.headers["x-request-id"]
    assert text == WORDS and final.stop_reason == "end_turn" and final.model == mid
    up = mocks["ok"].calls(rid)
    assert len(up) == 1 and up[0]["path"] == "/v1/chat/completions" and up[0]["stream"] is True
    assert up[0]["include_usage"], "the gateway asks for the stream's usage"
    assert final.usage.input_tokens == up[0]["prompt_tokens"] and final.usage.output_tokens == 5
    billed_once(stack, rid, up[0], p["openai_ok"], "gpt-ok")


def test_an_openai_client_first_sent_to_anthropic_is_answered_by_openai_as_it_asked(stack, key, fleet):
    """The listener wrote the request for the Anthropic deployment; the
    OpenAI one gets it translated back, and its answer needs no translation
    (the stream's usage chunk, asked for by the gateway, is not shown to a
    client that did not ask)."""
    mid, mocks, p = fleet["models"]["openai_after_anthropic"], fleet["mocks"], fleet["providers"]
    client = openai_sdk(stack, key)
    raw = client.chat.completions.with_raw_response.create(model=mid, messages=[{"role": "user", "content": "hi"}])
    c = raw.parse()
    assert c.object == "chat.completion" and c.model == mid and c.choices[0].message.content == WORDS
    rid = raw.headers["x-request-id"]
    assert [e["path"] for e in mocks["e503"].calls(rid)] == ["/v1/messages"]
    up = mocks["ok"].calls(rid)
    assert len(up) == 1 and (up[0]["path"], up[0]["model"]) == ("/v1/chat/completions", "gpt-ok")
    billed_once(stack, rid, up[0], p["openai_ok"], "gpt-ok")
    raw = client.chat.completions.with_raw_response.create(
        model=mid, stream=True, messages=[{"role": "user", "content": "hi"}])
    rid = raw.headers["x-request-id"]
    chunks = list(raw.parse())
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == WORDS
    assert all(ch.model == mid for ch in chunks)
    assert [ch for ch in chunks if ch.usage] == [], "the client did not ask for the usage chunk"
    up = mocks["ok"].calls(rid)
    assert len(up) == 1 and up[0]["include_usage"], "the gateway asked for it, to bill"
    billed_once(stack, rid, up[0], p["openai_ok"], "gpt-ok")


def test_a_third_attempt_back_on_the_client_api_gets_the_listener_body_and_its_headers(stack, key, fleet):
    mid, mocks, p = fleet["models"]["there_and_back"], fleet["mocks"], fleet["providers"]
    client = openai_sdk(stack, key)
    raw = client.chat.completions.with_raw_response.create(
        model=mid, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    c = raw.parse()
    rid = raw.headers["x-request-id"]
    assert c.object == "chat.completion" and c.choices[0].message.content == WORDS
    failed = mocks["e503"].calls(rid)
    assert [(e["path"], e["model"]) for e in failed] == [("/v1/chat/completions", "gpt-503"),
                                                         ("/v1/messages", "claude-503")]
    assert failed[1]["body"]["system"] == [{"type": "text", "text": "Be brief."}]
    up = mocks["ok"].calls(rid)
    assert len(up) == 1 and (up[0]["path"], up[0]["model"]) == ("/v1/chat/completions", "gpt-ok")
    assert up[0]["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "anthropic-version" not in up[0]["headers"] and "x-api-key" not in up[0]["headers"]
    assert up[0]["authorization"] == f"Bearer sk-{p['openai_ok']}"
    billed_once(stack, rid, up[0], p["openai_ok"], "gpt-ok", attempts=3)


def test_a_request_the_other_api_cannot_take_is_not_sent_to_it(stack, key, fleet):
    """Anthropic's API takes a temperature up to 1: after the OpenAI
    deployment's 503, the attempt on the Anthropic one is refused before it
    is sent, and with no deployment left the client gets the gateway's 502;
    the refusal is the request's fault, not a failure of that deployment."""
    mid, mocks = fleet["models"]["untranslatable"], fleet["mocks"]
    client = openai_sdk(stack, key)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model=mid, temperature=1.5, messages=[{"role": "user", "content": "hi"}])
    e = err.value
    assert e.status_code == 502 and e.body["code"] == "upstream_error", e.body
    rid = e.response.headers["x-request-id"]
    assert len(mocks["e503"].calls(rid)) == 1
    assert mocks["ok"].calls(rid) == []
    record = served_record(stack, rid)
    assert (record["status"], record["output_tokens"]) == (502, 0), record

    def reported():
        _, _, status = stackmod.http("GET", f"{stack.control_plane}/api/status")
        got = {d["deployment"]: d for d in status["deployments"] if d["model"] == mid}
        return got if got.get(0, {}).get("failures", 0) >= 1 else None

    states = stackmod.wait_until(reported, timeout=15, interval=0.5, what="the 503's failure in /api/status")
    assert (states[1]["state"], states[1]["failures"]) == ("healthy", 0), states[1]


def test_a_client_error_of_the_other_api_reaches_an_openai_client_in_openai_format(stack, key, fleet):
    mid, mocks = fleet["models"]["to_anthropic_400"], fleet["mocks"]
    client = openai_sdk(stack, key)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=mid, messages=[{"role": "user", "content": "hi"}])
    e = err.value
    assert e.status_code == 400
    assert isinstance(e.body, dict) and "message" in e.body and "mock error 400" in e.body["message"], e.body
    rid = e.response.headers["x-request-id"]
    assert [c["path"] for c in mocks["e400"].calls(rid)] == ["/v1/messages"]
    record = served_record(stack, rid)
    assert (record["status"], record["attempts"], record["output_tokens"]) == (400, 2, 0), record


def test_a_client_error_of_the_other_api_reaches_an_anthropic_client_in_anthropic_format(stack, key, fleet):
    mid, mocks = fleet["models"]["to_openai_400"], fleet["mocks"]
    client = claude_sdk(stack, key)
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model=mid, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    e = err.value
    assert e.status_code == 400
    assert e.body["type"] == "error" and e.body["error"]["type"] == "invalid_request_error", e.body
    assert "mock error 400" in e.body["error"]["message"]
    rid = e.response.headers["x-request-id"]
    assert [c["path"] for c in mocks["e400"].calls(rid)] == ["/v1/chat/completions"]
    record = served_record(stack, rid)
    assert (record["status"], record["attempts"]) == (400, 2), record
