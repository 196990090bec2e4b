"""Rate limits, concurrency caps, budgets and balances, enforced by the filter
across Envoy's workers (the stack runs Envoy with --concurrency 2)."""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest
from openai import OpenAI

from .helpers import chat_body, new_account, new_key, raw, stackmod, tag

LIMIT_HEADERS = [f"x-ratelimit-{w}-{k}" for k in ("requests", "tokens") for w in ("limit", "remaining", "reset")]


def post(stack, key: str, body: bytes | None = None, headers=()):
    return raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}"), *headers], body or chat_body())


def burst(stack, key: str, n: int, body: bytes | None = None, headers=()) -> list:
    """`n` requests at once, each on its own connection (so both workers see them)."""
    results: list = [None] * n

    def one(i: int) -> None:
        results[i] = post(stack, key, body, headers)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_exactly_rpm_requests_are_admitted_and_the_rest_get_429_with_the_openai_headers(stack, account):
    key = new_key(stack, account["id"], rpm=5)["key"]
    results = burst(stack, key, 9)
    statuses = sorted(s for s, _, _ in results)
    assert statuses == [200] * 5 + [429] * 4
    ok = next(h for s, h, _ in results if s == 200)
    assert ok["x-ratelimit-limit-requests"] == "5"
    refused = [(h, json.loads(b)) for s, h, b in results if s == 429]
    for headers, body in refused:
        assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["param"] == "rpm"
        assert "requests per minute" in body["error"]["message"]
        assert int(headers["retry-after"]) == 12  # 5 per minute: one every 12 s
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert headers["x-request-id"].startswith("req_")
    sdk = OpenAI(base_url=f"{stack.gateway}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "x"}])


def test_the_window_refills_after_the_reset_time(stack, account):
    key = new_key(stack, account["id"], rpm=30)["key"]  # one request every 2 s
    t0 = time.monotonic()
    results = burst(stack, key, 33)
    refilled = int((time.monotonic() - t0) / 2)  # a slow machine's burst outlasts a refill
    assert sum(1 for s, _, _ in results if s == 200) == 30 + min(refilled, 3)
    status, headers, _ = post(stack, key)
    assert status == 429
    time.sleep(float(headers["retry-after"]) + 0.1)
    assert [post(stack, key)[0] for _ in range(3)] == [200, 429, 429]


def test_a_limit_change_applies_within_a_second_without_resetting_the_window(stack, account, record):
    created = new_key(stack, account["id"], rpm=3)
    key = created["key"]
    assert sorted(s for s, _, _ in burst(stack, key, 5)) == [200] * 3 + [429] * 2
    t0 = time.monotonic()
    stack.must("PATCH", f"/admin/keys/{created['id']}", {"rpm": 6})

    def applied():
        status, headers, _ = post(stack, key)
        assert status == 429, "a raised limit does not refill the window at once"
        return headers["x-ratelimit-limit-requests"] == "6"

    stackmod.wait_until(applied, timeout=1.0, interval=0.01, what="the new limit")
    record("limit_change_propagation_s", time.monotonic() - t0, db=stack.database_url or "sqlite")


def test_concurrent_streams_are_capped(stack, account):
    key = new_key(stack, account["id"], max_concurrent=2)["key"]
    slow = [("x-mock-chunk-delay-ms", "300"), ("x-mock-words", "4")]
    results = burst(stack, key, 5, chat_body(stream=True), slow)
    assert sorted(s for s, _, _ in results) == [200, 200, 429, 429, 429]
    refused = json.loads(next(b for s, _, b in results if s == 429))
    assert refused["error"]["param"] == "max_concurrent"
    # The slots come back when the streams end.
    assert sorted(s for s, _, _ in burst(stack, key, 3, chat_body(stream=True), slow)) == [200, 200, 429]
    assert post(stack, key)[0] == 200


def test_a_burst_of_streams_overruns_tpm_by_no_more_than_the_estimate_error(stack, account, ledger, record):
    tpm = 400
    key = new_key(stack, account["id"], tpm=tpm)["key"]
    body = chat_body(stream=True, max_tokens=40, messages=[{"role": "user", "content": "a short prompt of seven words"}])
    results = burst(stack, key, 15, body, [("x-mock-words", "40")])
    admitted = [h["x-request-id"] for s, h, _ in results if s == 200]
    assert 0 < len(admitted) < 15
    served = {e["x_request_id"]: e for e in ledger()}
    used = sum(served[r]["prompt_tokens"] + served[r]["completion_tokens"] for r in admitted)
    overshoot = max(0, used - tpm) / tpm
    record("tpm_burst_overshoot_ratio", overshoot, admitted=len(admitted), used=used, tpm=tpm)
    assert used <= tpm * 1.10, f"{used} tokens admitted against a limit of {tpm}"
    refused = json.loads(next(b for s, _, b in results if s == 429))
    assert refused["error"]["param"] == "tpm"


@pytest.fixture
def pricey(stack) -> str:
    """A model of the test's own at $1000 per million tokens: a request
    costs about a cent."""
    model = f"pricey-{tag()}"
    stack.must("POST", "/admin/models", {"id": model, "pricing": {"input_per_1m": 1000, "output_per_1m": 1000},
                                        "deployments": [{"provider": "mock", "upstream_model": "mock-pricey"}]})
    return model


def test_concurrent_requests_at_an_almost_empty_budget_overspend_by_at_most_one_per_worker(stack, account, pricey, record):
    created = new_key(stack, account["id"], budget_usd=0.05)
    body = chat_body(pricey, max_tokens=5)  # 3 + 5 tokens: $0.008 each
    results = burst(stack, created["key"], 20, body, [("x-mock-words", "5")])
    admitted = sum(1 for s, _, _ in results if s == 200)
    refused = [json.loads(b) for s, _, b in results if s == 402]
    assert admitted + len(refused) == 20 and refused
    assert refused[0]["error"]["code"] == "insufficient_balance"
    spent = stackmod.wait_until(
        lambda: (k := stack.must("GET", f"/admin/keys/{created['id']}"))["spent_usd"] >= admitted * 0.0079 and k["spent_usd"],
        what="the spend of every admitted request")
    overspend = spent - 0.05
    record("budget_overspend_usd", overspend, admitted=admitted, per_request=0.008, workers=stack.concurrency)
    assert overspend <= stack.concurrency * 0.008 + 1e-9, f"spent {spent} of 0.05"
    # A budget admits while anything is left: when the burst's reservations
    # (estimates above the real cost) stopped it short of the budget, what is
    # left goes to one more request (a fast gateway admits the whole burst
    # before any request settles, and stops one request early).
    if spent < 0.05:
        assert post(stack, created["key"], body)[0] == 200, f"spent {spent} of 0.05: some is left"
    assert post(stack, created["key"], body)[0] == 402, "and it stays used up"


def test_a_credit_restores_an_empty_account_within_a_second(stack, pricey, record):
    account = new_account(stack, "prepaid", balance_usd=0.01)
    key = new_key(stack, account["id"])["key"]
    body = chat_body(pricey, max_tokens=5)
    statuses = [post(stack, key, body)[0] for _ in range(4)]
    assert statuses[0] == 200 and statuses[-1] == 402
    t0 = time.monotonic()
    stack.must("POST", f"/admin/accounts/{account['id']}/credit", {"amount_usd": 1})
    stackmod.wait_until(lambda: all(post(stack, key, body)[0] == 200 for _ in range(4)), timeout=1.5, interval=0.01,
                        what="the credit on every worker")
    record("credit_propagation_s", time.monotonic() - t0, db=stack.database_url or "sqlite")
