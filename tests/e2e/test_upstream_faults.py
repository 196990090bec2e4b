"""Faults on the provider's side, each ending in a ledger check (issue 10):
an upstream that resets its connection before its answer's first byte or
in the middle of it, one that answers slowly, and one that never answers.
The provider is the mock behind a TCP proxy that cuts as told
(`tcpfault.py`), or the mock's own steering (`x-mock-*`).

The ledger check, per request: what the mock served (its ledger) against the
usage records. Every request has exactly one record, an error's too (0
lost, 0 doubled); an answer the client got whole is billed the mock's
tokens at the catalog's price, not estimated; one cut after its first byte
is marked cut; an error the client got (502, 504) is never billed: 0
tokens, no cost."""

from __future__ import annotations

import http.client
import json

import pytest

from .helpers import fresh_key, records_of, stackmod, tag
from .tcpfault import TcpFault

INPUT_PER_1M, OUTPUT_PER_1M = 1.0, 2.0
FIRST_BYTE_TIMEOUT_MS = 1500


@pytest.fixture(scope="module")
def upstream(stack):
    """For each way of failing, a proxy in front of the mock that fails
    that way on every connection (Envoy pools upstream connections: a mode
    changed under a pooled one would not apply), a provider through it and
    a model of one deployment on it, with a first-byte timeout."""
    models, proxies = {}, []
    key = fresh_key(stack, "upstream-faults")
    for mode in ("pass", "reset_before_headers", "reset_mid_answer", "silent"):
        proxy = TcpFault(stack.mock_port, clean_close=True)
        proxy.mode, proxy.cut_bytes = mode, 200
        proxies.append(proxy)
        pid = f"uf-{tag()}"
        stack.must("POST", "/admin/providers", {"id": pid, "kind": "openai", "api_key": f"sk-{pid}",
                                                "base_url": f"http://127.0.0.1:{proxy.port}/v1"})
        models[mode] = f"uf-{tag()}"
        stack.must("POST", "/admin/models", {
            "id": models[mode], "pricing": {"input_per_1m": INPUT_PER_1M, "output_per_1m": OUTPUT_PER_1M},
            "deployments": [{"provider": pid, "upstream_model": "up-faulty",
                             "first_byte_timeout_ms": FIRST_BYTE_TIMEOUT_MS}],
        })
    # Every model is in the same snapshot: once the healthy one serves on every worker, all are known.
    stackmod.wait_until(lambda: all(ask(stack, key, models["pass"], False)["status"] == 200 for _ in range(4)),
                        timeout=15, interval=0.3, what="the new models on every worker")
    yield models
    for proxy in proxies:
        proxy.stop()


def ask(stack, key: str, model: str, stream: bool, headers: dict | None = None) -> dict:
    """One chat: its status, request id, body (what arrived) and whether it
    arrived whole."""
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], "stream": stream}
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway_port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                     headers={"authorization": f"Bearer {key}", "content-type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        whole = True
        try:
            got = resp.read()
        except (http.client.IncompleteRead, ConnectionError) as cut:
            got, whole = getattr(cut, "partial", b""), False
        if stream and resp.status == 200:
            whole = whole and got.rstrip().endswith(b"data: [DONE]")
        return {"status": resp.status, "id": resp.getheader("x-request-id"), "body": got, "whole": whole}
    finally:
        conn.close()


def ledger_check(stack, answers: list[dict]) -> dict:
    """The mock's ledger against the usage records for `answers`."""
    ids = {a["id"] for a in answers}
    _, _, ledger = stackmod.http("GET", f"{stack.mock}/_mock/ledger")
    served = {}
    for e in ledger["entries"]:
        if e["x_request_id"] in ids:
            served.setdefault(e["x_request_id"], []).append(e)

    def arrived():
        got = records_of(stack, ids)
        return got if {r["request_id"] for r in got} >= ids else None

    # Every forwarded request has its record, an error's too (README, "Usage accounting").
    got = stackmod.wait_until(arrived, timeout=30, interval=0.5, what="the usage records")
    by_id: dict[str, list[dict]] = {}
    for r in got:
        by_id.setdefault(r["request_id"], []).append(r)
    out = {"requests": len(answers), "served": sum(len(v) for v in served.values()), "records": len(got),
           "lost": 0, "doubled": 0, "billed_errors": 0, "wrong": []}
    for a in answers:
        records, entries = by_id.get(a["id"], []), served.get(a["id"], [])
        out["doubled"] += max(0, len(records) - 1)
        if not records:
            out["lost"] += 1
            continue
        if a["status"] != 200:
            out["billed_errors"] += sum(1 for r in records if r["cost_usd"] > 0 or r["output_tokens"] > 0)
            continue
        r = records[0]
        if a["whole"]:
            e = entries[0] if len(entries) == 1 else None
            want = e and (e["prompt_tokens"] * INPUT_PER_1M + e["completion_tokens"] * OUTPUT_PER_1M) / 1e6
            if e is None or (r["input_tokens"], r["output_tokens"]) != (e["prompt_tokens"], e["completion_tokens"]) \
                    or abs(r["cost_usd"] - want) > 1e-9 or r["estimated"] or r["cut"]:
                out["wrong"].append((a["id"], r, entries))
        elif not r["cut"]:
            out["wrong"].append((a["id"], r, "a cut answer's record is not marked cut"))
    return out


def check(record, stack, answers: list[dict], fault: str) -> dict:
    result = ledger_check(stack, answers)
    for name in ("requests", "served", "records", "lost", "doubled", "billed_errors"):
        record(f"upstream_fault_{name}", result[name], fault=fault)
    assert (result["lost"], result["doubled"], result["billed_errors"], result["wrong"]) == (0, 0, 0, []), result
    return result


def openai_error(answer: dict) -> dict:
    err = json.loads(answer["body"])["error"]
    assert set(err) >= {"message", "type", "code"}, err
    return err


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_slow_upstream_is_answered_whole_and_billed_once_exactly(stack, key, upstream, record, stream):
    # Headers after 0.8 s (inside the 1.5 s first-byte timeout), then a chunk every 150 ms.
    slow = {"x-mock-delay-ms": "800", "x-mock-chunk-delay-ms": "150", "x-mock-words": "12"}
    answers = [ask(stack, key, upstream["pass"], stream, slow) for _ in range(4)]
    assert [(a["status"], a["whole"]) for a in answers] == [(200, True)] * 4, answers
    result = check(record, stack, answers, f"upstream slow ({'stream' if stream else 'whole'})")
    assert result["records"] == result["served"] == 4


def test_an_upstream_reset_before_its_answer_is_a_502_and_nothing_is_billed(stack, key, upstream, record):
    answers = [ask(stack, key, upstream["reset_before_headers"], stream) for stream in (False, True, False, True)]
    assert [a["status"] for a in answers] == [502] * 4, answers
    assert {openai_error(a)["code"] for a in answers} == {"upstream_error"}
    result = check(record, stack, answers, "upstream reset before headers")
    # The upstream did the work: the provider may bill it, the key is not.
    assert result["served"] == 4


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_upstream_reset_mid_answer_is_billed_once_and_marked_cut(stack, key, upstream, record, stream):
    if stream:
        # The mock's own cut: the stream reset after its second event.
        answers = [ask(stack, key, upstream["pass"], True, {"x-mock-cut-after": "2", "x-mock-words": "8"})
                   for _ in range(4)]
    else:
        # The proxy's: the answer's headers and part of its body, then a reset.
        answers = [ask(stack, key, upstream["reset_mid_answer"], False) for _ in range(4)]
        # The headers (200) had gone to the client: it gets a cut answer, not an error.
    assert [(a["status"], a["whole"]) for a in answers] == [(200, False)] * 4, answers
    check(record, stack, answers, f"upstream reset mid-answer ({'stream' if stream else 'whole'})")


def test_a_silent_upstream_is_a_504_in_the_openai_format_and_nothing_is_billed(stack, key, upstream, record):
    answers = [ask(stack, key, upstream["silent"], stream) for stream in (False, True)]
    assert [a["status"] for a in answers] == [504] * 2, answers
    assert {openai_error(a)["code"] for a in answers} == {"upstream_timeout"}
    result = check(record, stack, answers, "upstream silent")
    assert result["served"] == 0
