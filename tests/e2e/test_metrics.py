"""The control plane's `/metrics` (Prometheus text) after real traffic
through the gateway: every series it documents is there, and the ones the
traffic moves have moved."""

from __future__ import annotations

import json
import re
import time
import urllib.request

from .helpers import chat_body, raw, stackmod, tag, wait_for_key


def scrape(stack) -> dict[str, float]:
    with urllib.request.urlopen(f"{stack.control_plane}/metrics", timeout=5) as resp:
        assert resp.status == 200 and resp.headers["content-type"].startswith("application/openmetrics-text")
        text = resp.read().decode()
    assert text.rstrip().endswith("# EOF")
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+|NaN)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_the_control_plane_metrics_move_with_traffic(stack, account, key):
    before = scrape(stack)
    for name in ("tollgate_ingest_batch_seconds_count", "tollgate_usage_lag_seconds_count",
                 "tollgate_snapshot_build_seconds_count", "tollgate_snapshot_bytes", "tollgate_snapshot_keys",
                 "tollgate_config_polls_held", "tollgate_lease_tokens_granted_total", "tollgate_database_up",
                 "tollgate_limits_backend_up", "tollgate_snapshot_version", "tollgate_snapshot_age_seconds"):
        assert name in before, (name, sorted(before))
    assert before["tollgate_database_up"] == 1 and before["tollgate_limits_backend_up"] == 1
    assert before["tollgate_snapshot_keys"] >= 1 and before["tollgate_snapshot_bytes"] > 0
    assert before["tollgate_config_polls_held"] >= 1, "the gateway's workers hold their polls"
    # The version served is the one the gateway's workers report having.
    versions = [v for k, v in envoy_prometheus(stack).items() if k.startswith("tollgate_config_version")]
    assert before["tollgate_snapshot_version"] >= 1 and versions, versions
    # The gateway heard from the control plane within one held poll (20 s).
    polled = envoy_prometheus(stack)["tollgate_config_polled_at_seconds{}"]
    assert time.time() - 25 <= polled <= time.time() + 1, polled
    assert before["tollgate_snapshot_age_seconds"] >= 0
    inserted = 'tollgate_ingest_records_total{result="inserted"}'
    for _ in range(5):
        assert raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")], chat_body())[0] == 200
    stackmod.wait_until(lambda: scrape(stack).get(inserted, 0) >= before.get(inserted, 0) + 5,
                        what="the five records counted")
    after = scrape(stack)
    assert after["tollgate_ingest_batch_seconds_count"] > before["tollgate_ingest_batch_seconds_count"]
    assert after["tollgate_usage_lag_seconds_count"] >= before["tollgate_usage_lag_seconds_count"] + 5
    assert 'tollgate_ingest_records_total{result="duplicate"}' in after
    # Age grows until the next change, and a change starts it again.
    assert after["tollgate_snapshot_age_seconds"] > before["tollgate_snapshot_age_seconds"]
    version = after["tollgate_snapshot_version"]
    started = time.monotonic()
    stack.must("POST", "/admin/keys", {"name": f"metrics-age-{tag()}", "account_id": account["id"]})
    changed = stackmod.wait_until(lambda: (lambda s: s if s["tollgate_snapshot_version"] != version else None)(scrape(stack)),
                                  what="a new snapshot version")
    assert changed["tollgate_snapshot_age_seconds"] <= time.monotonic() - started + 0.01


def envoy_prometheus(stack) -> dict[str, float]:
    """Envoy's /stats/prometheus as {series with labels: value}."""
    text = stack.envoy_prometheus()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+\{[^}]*\}) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_the_gateway_metrics_have_labels_per_model_and_move_exactly_with_traffic(stack, key):
    model = f"metrics-{tag()}"
    stack.must("POST", "/admin/models", {"id": model, "deployments": [{"provider": "mock", "upstream_model": "mock-gpt"}]})
    auth = [("authorization", f"Bearer {key}"), ("content-type", "application/json")]
    # On every worker (each has its own snapshot): one answer of one
    # connection is one worker's.
    wait_for_key(stack, key, path=f"/v1/models/{model}")
    before = envoy_prometheus(stack)
    refused = 'tollgate_replies{code="model_not_found"}'
    tokens_in = tokens_out = 0
    for stream in (False, False, False, True, True):
        body = chat_body(model, stream=stream, stream_options={"include_usage": True}) if stream else chat_body(model)
        status, _, answer = raw(stack, "POST", "/v1/chat/completions", auth, body)
        assert status == 200
        if stream:
            last = [line for line in answer.decode().splitlines() if line.startswith("data: {")][-1]
            usage = json.loads(last[6:])["usage"]
        else:
            usage = json.loads(answer)["usage"]
        tokens_in += usage["prompt_tokens"]
        tokens_out += usage["completion_tokens"]
    assert raw(stack, "POST", "/v1/chat/completions", auth, chat_body("no-such-model"))[0] == 404
    on = f'model="{model}",provider="mock"'
    requests = f'tollgate_requests{{{on},operation="chat_completions",status_class="2xx"}}'

    def moved():
        m = envoy_prometheus(stack)
        # Histograms reach the admin output at Envoy's stats flush (5 s).
        return m if m.get(f"tollgate_ttft_ms_count{{{on}}}", 0) >= 2 else None

    m = stackmod.wait_until(moved, timeout=15, interval=0.5, what="the histograms flushed")
    assert m[requests] == 5
    assert m[f'tollgate_tokens{{{on},type="input"}}'] == tokens_in
    assert m[f'tollgate_tokens{{{on},type="output"}}'] == tokens_out
    assert m[f"tollgate_request_duration_ms_count{{{on}}}"] == 5
    assert m[f'tollgate_request_duration_ms_bucket{{{on},le="81920"}}'] == 5, "GenAI buckets in ms"
    assert m[f"tollgate_ttft_ms_count{{{on}}}"] == 2
    assert m[f"tollgate_time_per_output_token_us_count{{{on}}}"] == 2
    assert m[refused] - before.get(refused, 0) >= 1


def labelled(m: dict[str, float], name: str, **labels: str) -> float:
    """The sample of `name` with exactly these labels, in whatever order
    Envoy writes them (0 when there is none)."""
    want = sorted(f'{k}="{v}"' for k, v in labels.items())
    for series, value in m.items():
        base, _, rest = series.partition("{")
        if base == name and sorted(rest.rstrip("}").split(",")) == want:
            return value
    return 0


def test_per_key_series_count_a_keys_requests_tokens_and_cost(stack, account):
    """The test stacks turn `metrics_per_key` on (it is off by default)."""
    from .helpers import new_key

    made = new_key(stack, account["id"], "per-key-metrics")
    auth = [("authorization", f"Bearer {made['key']}"), ("content-type", "application/json")]
    stackmod.wait_until(lambda: raw(stack, "GET", "/v1/models", auth)[0] == 200, what="the key on the gateway")
    tokens = 0
    for _ in range(3):
        status, _, answer = raw(stack, "POST", "/v1/chat/completions", auth, chat_body())
        assert status == 200
        usage = json.loads(answer)["usage"]
        tokens += usage["prompt_tokens"] + usage["completion_tokens"]
    key = made["id"]

    def counted():
        m = envoy_prometheus(stack)
        return m if labelled(m, "tollgate_key_requests", key=key, status_class="2xx") >= 3 else None

    m = stackmod.wait_until(counted, timeout=15, interval=0.5, what="the per-key series")
    assert labelled(m, "tollgate_key_requests", key=key, status_class="2xx") == 3
    got = (labelled(m, "tollgate_key_tokens", key=key, type="input")
           + labelled(m, "tollgate_key_tokens", key=key, type="output"))
    assert got == tokens
    records = stackmod.wait_until(
        lambda: (lambda d: d if len(d) == 3 else None)(stack.must("GET", f"/admin/usage?key_id={key}")["data"]),
        what="the key's records")
    cost = sum(round(r["cost_usd"] * 1e9) for r in records)
    assert abs(labelled(m, "tollgate_key_cost_nanos", key=key) - cost) <= 3, (cost, m)
