"""What the end-to-end tests share: requests to the gateway with headers as
raw bytes, the chat body they send, accounts and keys of a test's own that
every Envoy worker knows, the wait for a change to reach every worker, and
the ledger check of the fault tests (the mock's ledger against the usage
records).
Test modules import from here (and `stack`), never from each other."""

from __future__ import annotations

import http.client
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import stack as stackmod  # noqa: E402


def psql(sql: str) -> None:
    """One statement on the local PostgreSQL (its `test` database)."""
    subprocess.run(["psql", "-h", "127.0.0.1", "-d", "test", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


def raw(stack, method: str, path: str, headers: list[tuple[str, bytes | str]] = (), body: bytes | None = None):
    """A request with headers as raw bytes (for non-UTF-8 values); (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway_port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value if isinstance(value, bytes) else value.encode("latin-1"))
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def chat_body(model: str = "demo-chat", **extra) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}).encode()


def post_chat(port: int, key: str) -> tuple[int, bytes]:
    """A chat completion to the Envoy listening on `port`: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", chat_body(),
                     {"authorization": f"Bearer {key}", "content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def tag() -> str:
    """A short random tag for ids that must not meet another test's."""
    return secrets.token_hex(3)


def new_account(stack, name: str = "e2e", **fields) -> dict:
    return stack.must("POST", "/admin/accounts", {"name": name, **fields})


# Fresh connections in a row that must all see a change before it counts as
# on every worker: Envoy's workers take new connections at random (the
# kernel's reuse-port hashing), so 8 could all land on one worker about once
# in 128 runs (seen in CI: a key unknown to the other worker, a 401); 24 make
# that once in 8 million.
WORKER_PROBES = 24


def wait_for_key(stack, key: str, ports: list[int] | None = None, path: str = "/v1/models") -> None:
    """Until every worker of each Envoy (the stack's, or those on `ports`)
    knows `key`: `GET path` answered 200 on 8 fresh connections in a row
    (model lists are not rate limited; a model's path waits for the model too)."""
    ports = ports or [stack.gateway_port]
    stackmod.wait_until(
        lambda: all(stackmod.http("GET", f"http://127.0.0.1:{p}{path}",
                                  headers={"authorization": f"Bearer {key}"}, timeout=5)[0] == 200
                    for p in ports for _ in range(WORKER_PROBES)),
        what=f"{path} for the new key on every worker")


def new_key(stack, account_id: str, name: str = "e2e", ports: list[int] | None = None, **fields) -> dict:
    """A key of `account_id` (with `fields`: limits, models, ...), known on every worker."""
    created = stack.must("POST", "/admin/keys", {"name": name, "account_id": account_id, **fields})
    wait_for_key(stack, created["key"], ports)
    return created


def fresh_key(stack, name: str = "e2e") -> str:
    """The secret of a key of a new account of its own, known on every worker."""
    return new_key(stack, new_account(stack, name)["id"], name)["key"]


def until_every_worker(stack, key: str, want: int, path="/v1/chat/completions", body=None, timeout=5.0) -> float:
    """Seconds until `want` is answered by 12 fresh connections in a row
    (Envoy spreads new connections over its workers)."""
    start = time.monotonic()
    streak = 0
    while time.monotonic() - start < timeout:
        status, _, _ = raw(stack, "POST" if body is not None else "GET", path, [("authorization", f"Bearer {key}")], body)
        streak = streak + 1 if status == want else 0
        if streak == 12:
            return time.monotonic() - start
    raise AssertionError(f"not every worker answered {want} within {timeout} s")


def ingest(stack, key: dict, at_ms: int, **fields) -> str:
    """One usage record of `key` (as `/admin/keys` answered it) at `at_ms`,
    posted to the control plane as the filter would (with its secret): a
    record at a time or with a latency a test chose. Its request id."""
    request_id = f"ingest-{tag()}"
    record = {"request_id": request_id, "key_id": key["id"], "account_id": key["account_id"],
              "model": "demo-chat", "upstream_model": "mock-demo-chat", "provider": "mock", "status": 200,
              "input_tokens": 10, "output_tokens": 5, "estimated": False, "stream": False, "latency_ms": 10,
              "ttft_ms": None, "cost_nanos": 0, "created_at_ms": at_ms, **fields}
    status, _, answer = stackmod.http("POST", f"{stack.control_plane}/internal/usage", {"records": [record]},
                                      headers={"x-tollgate-filter-secret": stack.filter_secret})
    assert status == 200, answer
    return request_id


def records_of(stack, ids: set[str]) -> list[dict]:
    """The usage records (every page of `/admin/usage`) of the request ids."""
    got, after = [], None
    while True:
        query = "&after=" + after if after else ""
        _, _, page = stack.admin("GET", f"/admin/usage?limit=100{query}")
        got += [r for r in page["data"] if r["request_id"] in ids]
        if not page["has_more"]:
            return got
        after = page["data"][-1]["id"]


# The demo model's prices (`Stack.seed_demo`), per million tokens.
DEMO_PRICES = (0.15, 0.60)


def ledger_check(stack, key: str, ok: list[str], timeout: float = 60.0,
                 prices: tuple[float, float] = DEMO_PRICES) -> dict:
    """Every request the upstream served of `ok` (answered 200) has exactly
    one usage record with the upstream's tokens and the catalog's price
    (`prices`: input and output per million tokens; the demo model's by
    default)."""
    _, _, body = stackmod.http("GET", f"{stack.mock}/_mock/ledger")
    served = {e["x_request_id"]: e for e in body["entries"] if e["x_request_id"] in set(ok)}
    assert len(served) == len(ok), "the upstream served every request answered 200"

    def arrived():
        got = records_of(stack, set(served))
        return got if len({r["request_id"] for r in got}) >= len(served) else None

    got = stackmod.wait_until(arrived, timeout=timeout, interval=0.5, what="every record after the fault")
    ids = [r["request_id"] for r in got]
    lost, doubled = len(set(served) - set(ids)), len(ids) - len(set(ids))
    wrong = []
    for r in got:
        e = served[r["request_id"]]
        want_cost = (e["prompt_tokens"] * prices[0] + e["completion_tokens"] * prices[1]) / 1e6
        if (r["input_tokens"], r["output_tokens"]) != (e["prompt_tokens"], e["completion_tokens"]) \
                or abs(r["cost_usd"] - want_cost) > 1e-9 or r["estimated"]:
            wrong.append((r, e["prompt_tokens"], e["completion_tokens"]))
    return {"served": len(served), "lost": lost, "doubled": doubled, "wrong": wrong}
