"""Usage accounting end to end: what the upstream reported is what
`/v1/usage` shows, exactly once; what it did not report is estimated and
flagged."""

from __future__ import annotations

import json
import socket
import time

import pytest
from openai import OpenAI

from .helpers import chat_body, fresh_key, new_account, new_key, raw, stackmod


@pytest.fixture
def client(stack, key) -> OpenAI:
    return OpenAI(base_url=f"{stack.gateway}/v1", api_key=key, max_retries=0, timeout=30)


def usage_records(stack, key: str, limit: int = 100) -> list[dict]:
    """Every record of the key's account, newest first, through the gateway."""
    out, after = [], None
    while True:
        path = f"/v1/usage?limit={limit}" + (f"&after={after}" if after else "")
        status, _, body = raw(stack, "GET", path, [("authorization", f"Bearer {key}")])
        assert status == 200, body
        page = json.loads(body)
        out += page["data"]
        if not page["has_more"]:
            return out
        after = page["data"][-1]["id"]


def record_for(stack, key: str, request_id: str, timeout: float = 10.0) -> dict:
    def find():
        return next((r for r in usage_records(stack, key) if r["request_id"] == request_id), None)

    return stackmod.wait_until(find, timeout=timeout, interval=0.1, what=f"usage record {request_id}")


CALLS = {
    "chat": lambda c, s: c.chat.completions.with_raw_response.create(
        model="demo-chat", messages=[{"role": "user", "content": "count these four words"}], stream=s),
    "completions": lambda c, s: c.completions.with_raw_response.create(model="demo-chat", prompt="three words here", stream=s),
    "responses": lambda c, s: c.responses.with_raw_response.create(model="demo-chat", input="two words", stream=s),
    "embeddings": lambda c, s: c.embeddings.with_raw_response.create(model="demo-embed", input=["one two", "three"]),
    "images": lambda c, s: c.images.with_raw_response.generate(model="demo-image", prompt="a red gate", n=1),
}


@pytest.mark.parametrize("endpoint,stream", [
    ("chat", False), ("chat", True), ("completions", False), ("completions", True),
    ("responses", False), ("responses", True), ("embeddings", False), ("images", False),
])
def test_usage_equals_what_the_upstream_reported(stack, key, client, ledger, endpoint, stream):
    resp = CALLS[endpoint](client, stream)
    request_id = resp.headers["x-request-id"]
    parsed = resp.parse()
    if stream:
        for _ in parsed:  # read the stream to its end
            pass
    [served] = ledger()
    rec = record_for(stack, key, request_id)
    assert rec["input_tokens"] == served["prompt_tokens"] > 0
    assert rec["output_tokens"] == served["completion_tokens"]
    assert rec["estimated"] is False
    assert rec["stream"] is stream and rec["status"] == 200
    assert rec["total_tokens"] == rec["input_tokens"] + rec["output_tokens"]
    want_cost = (rec["input_tokens"] * 0.15 + rec["output_tokens"] * 0.60) / 1e6
    assert rec["cost_usd"] == pytest.approx(want_cost, abs=1e-9)
    if stream:
        assert rec["ttft_ms"] is not None and rec["ttft_ms"] <= rec["latency_ms"]


def _access_log_entry(stack, request_id: str) -> dict:
    def find():
        if not stack.access_log.exists():
            return None
        for line in stack.access_log.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("request_id") == request_id:
                return entry
        return None

    # Envoy writes its access log out about once a second.
    return stackmod.wait_until(find, timeout=10, interval=0.1, what=f"access log line of {request_id}")


def _counter(stack, name: str) -> int:
    status, _, body = stackmod.http("GET", f"{stack.envoy_admin}/stats?filter=^{stack.stats_prefix}.{name}$&format=json")
    assert status == 200
    [stat] = body["stats"]
    return int(stat["value"])


def test_the_access_log_and_the_counters_carry_each_record(stack, key, client, ledger):
    before = _counter(stack, "tollgate_usage_records")
    resp = client.chat.completions.with_raw_response.create(
        model="demo-chat", messages=[{"role": "user", "content": "log me"}])
    request_id = resp.headers["x-request-id"]
    rec = record_for(stack, key, request_id)
    logged = json.loads(_access_log_entry(stack, request_id)["usage"])
    assert logged["request_id"] == request_id
    assert (logged["input_tokens"], logged["output_tokens"]) == (rec["input_tokens"], rec["output_tokens"])
    assert logged["cost_nanos"] == round(rec["cost_usd"] * 1e9)
    # Counters are added once a tick (100 ms), not once a request.
    stackmod.wait_until(lambda: _counter(stack, "tollgate_usage_records") > before, timeout=5,
                        what="tollgate_usage_records to count the request")
    assert _counter(stack, "tollgate_usage_dropped") == 0


def test_a_client_that_did_not_ask_for_usage_does_not_get_the_usage_chunk(stack, key, ledger):
    body = chat_body(stream=True)
    status, headers, data = raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")], body)
    assert status == 200
    events = [line[6:] for line in data.decode().split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["choices"] for c in chunks), "no usage-only chunk reached the client"
    [served] = ledger()
    assert served["include_usage"] is True, "the gateway asked the upstream for usage"
    rec = record_for(stack, key, headers["x-request-id"])
    assert (rec["input_tokens"], rec["output_tokens"], rec["estimated"]) == (served["prompt_tokens"], 5, False)


@pytest.mark.parametrize("stream", [False, True])
def test_usage_the_upstream_omits_is_estimated_and_flagged(stack, key, ledger, stream):
    words = 40
    body = chat_body(stream=stream, messages=[{"role": "user", "content": "estimate " * 30}])
    status, headers, _ = raw(stack, "POST", "/v1/chat/completions",
                             [("authorization", f"Bearer {key}"), ("x-mock-no-usage", "1"), ("x-mock-words", str(words))], body)
    assert status == 200
    [served] = ledger()
    rec = record_for(stack, key, headers["x-request-id"])
    assert rec["estimated"] is True
    # chars/4 on "tokN " words: within a factor of two of the real counts, never 0.
    assert served["completion_tokens"] / 2 <= rec["output_tokens"] <= served["completion_tokens"] * 2
    assert served["prompt_tokens"] / 2 <= rec["input_tokens"] <= served["prompt_tokens"] * 3


def test_a_client_that_leaves_mid_stream_is_billed_for_what_was_delivered(stack, key, ledger):
    body = chat_body(stream=True)
    sock = socket.create_connection(("127.0.0.1", stack.gateway_port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {key}\r\nx-mock-words: 50\r\nx-mock-chunk-delay-ms: 50\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    got = b""
    while got.count(b"data: ") < 6:
        got += sock.recv(65536)
    request_id = next(line.split(b": ", 1)[1].strip().decode() for line in got.split(b"\r\n") if line.lower().startswith(b"x-request-id"))
    sock.close()
    rec = record_for(stack, key, request_id)
    assert rec["estimated"] is True
    [served] = stackmod.wait_until(lambda: [e for e in ledger() if "completed" in e and e["completion_tokens"]], what="ledger")
    assert served["completed"] is False
    assert 1 <= rec["output_tokens"] < 50
    assert len([r for r in usage_records(stack, key) if r["request_id"] == request_id]) == 1


def test_a_batch_sent_again_is_counted_once(stack, account):
    created = stack.must("POST", "/admin/keys", {"name": "redelivery", "account_id": account["id"]})
    record = {
        "request_id": f"req_redelivery_{time.monotonic_ns()}", "key_id": created["id"], "account_id": account["id"],
        "model": "demo-chat", "upstream_model": "mock-demo-chat", "provider": "mock", "status": 200,
        "input_tokens": 1000, "output_tokens": 2000, "estimated": False, "stream": False,
        "latency_ms": 5, "ttft_ms": None, "cost_nanos": 1_350_000, "created_at_ms": int(time.time() * 1000),
    }
    headers = {"x-tollgate-filter-secret": stack.filter_secret}
    answers = [stackmod.http("POST", f"{stack.control_plane}/internal/usage", {"records": [record]}, headers)
               for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 200]
    assert [a[2]["accepted"] for a in answers] == [1, 0, 0]
    assert stack.must("GET", f"/admin/keys/{created['id']}")["spent_usd"] == pytest.approx(0.00135)
    # The same request id twice in one batch, beside a new one: each counts once.
    twin = {**record, "request_id": record["request_id"] + "_twin"}
    status, _, answer = stackmod.http("POST", f"{stack.control_plane}/internal/usage",
                                      {"records": [twin, twin, record]}, headers)
    assert status == 200 and (answer["accepted"], answer["duplicates"]) == (1, 2)
    assert stack.must("GET", f"/admin/keys/{created['id']}")["spent_usd"] == pytest.approx(0.0027)
    # Without the secret the control plane takes nothing.
    assert stackmod.http("POST", f"{stack.control_plane}/internal/usage", {"records": [record]})[0] == 401


OUTAGE_S = float(__import__("os").environ.get("TOLLGATE_E2E_OUTAGE_S", "30"))


def test_no_record_is_lost_or_doubled_while_the_control_plane_is_down(stack, ledger, record):
    """Steady load; the control plane is SIGKILLed for 30 s in the middle.
    Every request the upstream served appears in the usage records exactly once."""
    import signal
    import threading

    key = fresh_key(stack, "outage")
    sent: list[str] = []
    failures: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            status, headers, _ = raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")], chat_body())
            (sent if status == 200 else failures).append(headers.get("x-request-id") if status == 200 else status)
            time.sleep(0.05)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(3)
        stack.procs["control-plane"].stop(sig=signal.SIGKILL)
        time.sleep(OUTAGE_S)
        stack.start_control_plane()
        time.sleep(3)
    finally:
        stop.set()
        worker.join()
        if not stack.procs["control-plane"].alive():
            stack.start_control_plane()
    assert failures == [], "the data path kept serving while the control plane was away"
    served = {e["x_request_id"] for e in ledger() if e["authorization"]}
    assert set(sent) <= served and len(sent) > OUTAGE_S * 5

    def all_arrived():
        recs = usage_records(stack, key)
        return recs if len({r["request_id"] for r in recs}) >= len(served) else None

    recs = stackmod.wait_until(all_arrived, timeout=30, interval=0.5, what="every record after the outage")
    ids = [r["request_id"] for r in recs]
    lost = len(served - set(ids))
    doubled = len(ids) - len(set(ids))
    db = stack.database_url or "sqlite"
    record("outage_requests", len(sent), db=db, outage_s=OUTAGE_S)
    record("outage_records_lost", lost, db=db)
    record("outage_records_doubled", doubled, db=db)
    assert (lost, doubled) == (0, 0)
    assert set(ids) == served


def test_each_account_sees_only_its_own_usage_and_admins_see_all(stack, key, ledger):
    other = new_account(stack, "other")
    other_key = new_key(stack, other["id"], "other")
    mine = raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")], chat_body())[1]["x-request-id"]
    theirs = [raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {other_key['key']}"), ("x-mock-delay-ms", str(d))],
                  chat_body())[1]["x-request-id"] for d in (0, 0, 30)]
    failed = raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {other_key['key']}"), ("x-mock-status", "500")],
                 chat_body())[1]["x-request-id"]
    record_for(stack, key, mine)
    for request_id in (*theirs, failed):  # workers ship their own batches
        record_for(stack, other_key["key"], request_id)
    assert {r["request_id"] for r in usage_records(stack, other_key["key"])} == {*theirs, failed}
    assert not {*theirs, failed} & {r["request_id"] for r in usage_records(stack, key)}

    listed = stack.must("GET", f"/admin/usage?key_id={other_key['id']}&limit=2")
    assert len(listed["data"]) == 2 and listed["has_more"] is True
    assert listed["data"][0]["account_id"] == other["id"] and listed["data"][0]["provider"] == "mock"
    rest = stack.must("GET", f"/admin/usage?key_id={other_key['id']}&after={listed['data'][-1]['id']}")
    assert {r["request_id"] for r in listed["data"] + rest["data"]} == {*theirs, failed}

    summary = stack.must("GET", f"/admin/usage/summary?group_by=account&account_id={other['id']}")
    [row] = summary["data"]
    assert row["group"] == other["id"] and row["requests"] == 4 and row["errors"] == 1
    assert row["latency_p95_ms"] >= 30 > row["latency_p50_ms"]
    by_day = stack.must("GET", f"/admin/usage/summary?group_by=day&account_id={other['id']}")
    assert by_day["data"][0]["group"] == time.strftime("%Y-%m-%d", time.gmtime())
    future = int(time.time()) + 3600
    assert stack.must("GET", f"/admin/usage/summary?since={future}")["data"] == []
    for bad in ("group_by=week", "after=nope", "since=abc"):
        status, _, body = stack.admin("GET", f"/admin/usage/summary?{bad}" if "group" in bad else f"/admin/usage?{bad}")
        assert status == 400 and body["error"]["code"] == "invalid_request", (bad, body)


def test_a_reused_client_request_id_is_still_billed_twice(stack, key, ledger):
    headers = [("authorization", f"Bearer {key}"), ("x-request-id", "client-reused-id")]
    ids = [raw(stack, "POST", "/v1/chat/completions", headers, chat_body())[1]["x-request-id"] for _ in range(2)]
    assert ids[0] != ids[1]
    assert all(record_for(stack, key, i)["request_id"] == i for i in ids)
    assert [e["x_request_id"] for e in ledger()] == ids
