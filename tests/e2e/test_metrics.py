"""The control plane's `/metrics` (Prometheus text) after real traffic
through the gateway: every series it documents is there, and the ones the
traffic moves have moved."""

from __future__ import annotations

import re
import urllib.request

from .helpers import chat_body, raw, stackmod


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


def test_the_control_plane_metrics_move_with_traffic(stack, key):
    before = scrape(stack)
    for name in ("tollgate_ingest_batch_seconds_count", "tollgate_usage_lag_seconds_count",
                 "tollgate_snapshot_build_seconds_count", "tollgate_snapshot_bytes", "tollgate_snapshot_keys",
                 "tollgate_config_polls_held", "tollgate_lease_tokens_granted_total", "tollgate_database_up",
                 "tollgate_limits_backend_up"):
        assert name in before, (name, sorted(before))
    assert before["tollgate_database_up"] == 1 and before["tollgate_limits_backend_up"] == 1
    assert before["tollgate_snapshot_keys"] >= 1 and before["tollgate_snapshot_bytes"] > 0
    assert before["tollgate_config_polls_held"] >= 1, "the gateway's workers hold their polls"
    inserted = 'tollgate_ingest_records_total{result="inserted"}'
    for _ in range(5):
        assert raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")], chat_body())[0] == 200
    stackmod.wait_until(lambda: scrape(stack).get(inserted, 0) >= before.get(inserted, 0) + 5,
                        what="the five records counted")
    after = scrape(stack)
    assert after["tollgate_ingest_batch_seconds_count"] > before["tollgate_ingest_batch_seconds_count"]
    assert after["tollgate_usage_lag_seconds_count"] >= before["tollgate_usage_lag_seconds_count"] + 5
    assert 'tollgate_ingest_records_total{result="duplicate"}' in after
