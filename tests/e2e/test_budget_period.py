"""Budgets with a period and the admin's reset, through Envoy on both
databases: a key whose budget is used up (402) works again right after
midnight UTC on a control plane whose clock is set a few seconds before it
(no waiting for a day), and right after POST /admin/keys/{id}/reset-spend;
in each period the overspend stays within one request per worker."""

from __future__ import annotations

import json
import secrets
import threading
import time

import pytest

from .conftest import DATABASES, PG_BASE
from .helpers import chat_body, new_account, new_key, psql, raw, stackmod, tag

DAY_MS = 86_400_000
# How long after the private stack starts its control plane's clock passes
# midnight UTC: time to start and to use the budget up first.
BOUNDARY_IN_S = 14
COST = 0.008  # 3 + 5 tokens at $1000 per million


def _post(stack, key: str, body: bytes):
    return raw(stack, "POST", "/v1/chat/completions",
               [("authorization", f"Bearer {key}"), ("x-mock-words", "5")], body)


def _burst(stack, key: str, body: bytes, n: int) -> list[int]:
    out: list[int] = [0] * n

    def one(i: int) -> None:
        out[i] = _post(stack, key, body)[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _pricey(stack) -> bytes:
    model = f"pricey-{tag()}"
    stack.must("POST", "/admin/models", {"id": model, "pricing": {"input_per_1m": 1000, "output_per_1m": 1000},
                                        "deployments": [{"provider": "mock", "upstream_model": "mock-pricey"}]})
    return chat_body(model, max_tokens=5)


def _use_up(stack, created: dict, body: bytes, budget: float, before: int = 0) -> float:
    """A burst until the key is refused; the spend of the period once every
    admitted request (and the `before` ones admitted earlier in the period)
    is billed, checked against the bound (one request per worker)."""
    statuses = _burst(stack, created["key"], body, 20)
    assert 402 in statuses and statuses.count(200) + statuses.count(402) == 20, statuses
    admitted = statuses.count(200) + before
    spent = stackmod.wait_until(
        lambda: (k := stack.must("GET", f"/admin/keys/{created['id']}"))["spent_usd"] >= admitted * (COST - 1e-4)
        and k["spent_usd"], what="the spend of every admitted request")
    assert spent - budget <= stack.concurrency * COST + 1e-9, f"spent {spent} of {budget}"
    return spent


def _until_admitted(stack, key: str, body: bytes, timeout: float) -> tuple[float, int]:
    """Seconds until 4 requests in a row (each on a fresh connection) pass,
    and how many passed."""
    t0 = time.monotonic()
    passed = streak = 0
    while streak < 4:
        assert time.monotonic() - t0 < timeout, f"the key not admitted again within {timeout} s"
        ok = _post(stack, key, body)[0] == 200
        passed += ok
        streak = streak + 1 if ok else 0
        if not ok:
            time.sleep(0.02)
    return time.monotonic() - t0, passed


def test_reset_spend_lets_a_used_up_key_in_again_within_the_bound(stack, record):
    body = _pricey(stack)
    created = new_key(stack, new_account(stack, "reset")["id"], budget_usd=0.05)
    first = _use_up(stack, created, body, 0.05)
    if first < 0.05:
        # What the burst's reservations left of the budget goes to one more
        # (test_limits.py says why).
        assert _post(stack, created["key"], body)[0] == 200
        first += stackmod.wait_until(
            lambda: (k := stack.must("GET", f"/admin/keys/{created['id']}"))["spent_usd"] > first
            and k["spent_usd"] - first, what="the last request billed")
    assert _post(stack, created["key"], body)[0] == 402
    t0 = time.monotonic()
    reset = stack.must("POST", f"/admin/keys/{created['id']}/reset-spend")
    assert reset["spent_usd"] == 0 and reset["lifetime_spent_usd"] == pytest.approx(first)
    took, passed = _until_admitted(stack, created["key"], body, timeout=2.0)
    record("reset_spend_propagation_s", time.monotonic() - t0, db=stack.database_url or "sqlite")
    assert took < 2.0
    # The second round is held to the same bound.
    second = _use_up(stack, created, body, 0.05, before=passed)
    k = stack.must("GET", f"/admin/keys/{created['id']}")
    assert k["lifetime_spent_usd"] == pytest.approx(first + second, abs=1e-6)
    status, _, answer = stack.admin("POST", "/admin/keys/key_nope/reset-spend")
    assert status == 404, answer


@pytest.fixture(params=DATABASES)
def before_midnight(request, tmp_path):
    """A private stack whose control plane's clock passes the next midnight
    UTC `BOUNDARY_IN_S` seconds after it starts."""
    url = dbname = None
    if request.param == "postgres":
        dbname = f"tollgate_e2e_{secrets.token_hex(6)}"
        psql(f"CREATE DATABASE {dbname}")
        url = f"{PG_BASE}/{dbname}"
    now = int(time.time() * 1000)
    midnight = (now // DAY_MS + 1) * DAY_MS
    offset = midnight - now - BOUNDARY_IN_S * 1000
    s = stackmod.Stack(work_dir=tmp_path / "stack", database_url=url, clock_offset_ms=offset)
    s.boundary = time.monotonic() + BOUNDARY_IN_S
    try:
        with s.running():
            yield s
    finally:
        if dbname:
            psql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def test_a_daily_budget_resets_at_midnight_utc(before_midnight, record):
    s = before_midnight
    body = _pricey(s)
    account = new_account(s, "daily")["id"]
    daily = new_key(s, account, budget_usd=0.05, budget_period="daily")
    fixed = new_key(s, account, budget_usd=0.05)
    assert daily["budget_reset_at"] * 1000 % DAY_MS == 0
    spent = _use_up(s, daily, body, 0.05)
    _use_up(s, fixed, body, 0.05)
    assert time.monotonic() < s.boundary - 1, "the budget was used up before midnight"
    assert _post(s, daily["key"], body)[0] == 402
    time.sleep(max(0.0, s.boundary - time.monotonic()))
    # The control plane resets within a second of midnight; the snapshot
    # reaches the workers within the next.
    took, passed = _until_admitted(s, daily["key"], body, timeout=3.0)
    record("budget_period_reset_after_midnight_s", took, db=s.database_url or "sqlite")
    k = s.must("GET", f"/admin/keys/{daily['id']}")
    assert k["lifetime_spent_usd"] >= spent and k["spent_usd"] < 0.05
    assert k["budget_reset_at"] == daily["budget_reset_at"] + DAY_MS // 1000
    # The key without a period stays used up.
    assert _post(s, fixed["key"], body)[0] == 402
    again = _use_up(s, daily, body, 0.05, before=passed)  # the new period holds to the bound too
    assert json.loads(_post(s, daily["key"], body)[2])["error"]["code"] == "insufficient_balance"
    assert again > 0
