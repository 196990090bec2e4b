"""Timeouts per deployment (issue 11, rule 6; docs/routing.md), through
real Envoy: a deployment without response headers within its
`first_byte_timeout_ms` is left for the next; once a stream has started
that timeout no longer applies; a response silent past its deployment's
`idle_timeout_ms` is ended and recorded as cut; and no total-duration
timeout ends a healthy 40 s stream, through a failover cluster or the
forward proxy."""

from __future__ import annotations

import concurrent.futures
import re
import time

import pytest

from .failover_fleet import Mock, chat, model, provider, served_record, stream_whole, wait_routed
from .helpers import stackmod


@pytest.fixture(scope="module")
def fleet(stack):
    mocks = {
        "ok": Mock(stack, "ok"),
        "ok2": Mock(stack, "ok2"),
        # Headers after 3 s; a stream whose chunks come every 300 ms for ~3 s.
        "slow": Mock(stack, "slow", "x-mock-delay-ms=3000"),
        "paced": Mock(stack, "paced", "x-mock-chunk-delay-ms=300", "x-mock-words=10"),
        # A chunk a second for 40 s (issue 11: no total-duration cut).
        "long": Mock(stack, "long", "x-mock-chunk-delay-ms=1000", "x-mock-words=40"),
        # The first chunk at once, the next after 3 s: a stalled stream.
        "stall": Mock(stack, "stall", "x-mock-chunk-delay-ms=3000", "x-mock-words=3"),
    }
    try:
        p = {name: provider(stack, m.url + "/v1") for name, m in mocks.items()}
        p["slow_b"] = provider(stack, mocks["slow"].url + "/v1")
        models = {
            "slow": model(stack, (p["slow"], "up-slow", 0, 1000), (p["ok"], "up-ok", 1)),
            "all_slow": model(stack, (p["slow"], "up-slow", 0, 500), (p["slow_b"], "up-slow", 1, 500)),
            # Chunks every 300 ms: within its 1 s first-byte and idle timeouts.
            "paced": model(stack, (p["paced"], "up-paced", 0, 1000, 1000), (p["ok2"], "up-ok2", 1)),
            # Silent for 3 s between chunks, with a 1 s idle timeout: through
            # a failover cluster and through the forward proxy.
            "stall": model(stack, (p["stall"], "up-stall", 0, None, 1000), (p["ok2"], "up-ok2", 1)),
            "stall_single": model(stack, (p["stall"], "up-stall", 0, None, 1000)),
            # A chunk a second, with a 2 s first-byte and a 2.5 s idle timeout.
            "long": model(stack, (p["long"], "up-long", 0, 2000, 2500), (p["ok2"], "up-ok2", 1)),
            "long_single": model(stack, (p["long"], "up-long", 0, None, 2500)),
        }
        wait_routed(stack, [models[m] for m in ("slow", "all_slow", "paced", "stall", "long")])
        yield {"mocks": mocks, "models": models}
    finally:
        for m in mocks.values():
            m.stop()


def test_a_deployment_without_response_headers_in_its_first_byte_timeout_is_left_for_the_next(stack, key, fleet):
    t0 = time.monotonic()
    status, headers, body = chat(stack, key, fleet["models"]["slow"])
    took = time.monotonic() - t0
    assert status == 200, body
    assert len(fleet["mocks"]["ok"].calls(headers["x-request-id"])) == 1
    assert took < 2.9, f"answered after {took:.1f} s: the slow deployment was waited for"


def test_when_every_deployment_times_out_the_client_gets_a_504_in_the_openai_format(stack, key, fleet):
    status, _, body = chat(stack, key, fleet["models"]["all_slow"])
    assert status == 504, body
    assert body["error"]["code"] == "upstream_timeout"
    assert "2 deployments" in body["error"]["message"]


def test_the_first_byte_timeout_does_not_cut_a_stream_that_has_started(stack, key, fleet):
    status, rid, got, took = stream_whole(stack, key, fleet["models"]["paced"])
    assert status == 200
    assert got.rstrip().endswith(b"data: [DONE]"), got[-200:]
    assert took > 2.0, "the stream was paced over more than the timeout"
    assert len(fleet["mocks"]["paced"].calls(rid)) == 1
    assert fleet["mocks"]["ok2"].calls(rid) == []
    record = served_record(stack, rid)
    assert (record["cut"], record["attempts"]) == (False, 1), record


@pytest.mark.parametrize("name", ["stall", "stall_single"])
def test_a_stream_silent_past_its_deployments_idle_timeout_is_ended_and_recorded_as_cut(stack, key, fleet, name):
    status, rid, got, _ = stream_whole(stack, key, fleet["models"][name])
    assert status == 200
    # The first chunk came, then nothing for longer than the idle timeout:
    # the stream ends there, without [DONE], and is not sent again.
    assert b"data: " in got
    assert b"[DONE]" not in got, got[-200:]
    assert len(fleet["mocks"]["stall"].calls(rid)) == 1
    assert fleet["mocks"]["ok2"].calls(rid) == []
    record = served_record(stack, rid)
    assert (record["status"], record["cut"], record["attempts"]) == (200, True, 1), record
    # Counted as the idle watch's cut, once, under its model.
    series = f'tollgate_idle_cuts{{model="{fleet["models"][name]}"}}'
    assert stackmod.wait_until(lambda: idle_cuts(stack).get(series), timeout=10, what=series) == 1


def test_a_stream_that_ends_in_time_is_not_counted_as_an_idle_cut(stack, key, fleet):
    status, _, got, _ = stream_whole(stack, key, fleet["models"]["paced"])
    assert status == 200 and got.rstrip().endswith(b"data: [DONE]")
    assert f'tollgate_idle_cuts{{model="{fleet["models"]["paced"]}"}}' not in idle_cuts(stack)


def idle_cuts(stack) -> dict[str, float]:
    """The `tollgate_idle_cuts` series of Envoy's /stats/prometheus."""
    out = {}
    for line in stack.envoy_prometheus().splitlines():
        m = re.match(r"^(tollgate_idle_cuts\{[^}]*\}) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_a_40_s_stream_with_a_chunk_every_second_is_not_cut_on_either_route(stack, key, fleet):
    """No total-duration timeout ends a healthy stream: through a failover
    cluster (with a 2 s first-byte timeout) and through the forward proxy,
    at once, each with a 2.5 s idle timeout between chunks."""
    def stream(mid: str):
        return stream_whole(stack, key, fleet["models"][mid], timeout=90)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(stream, ["long", "long_single"]))
    for status, rid, got, took in answers:
        assert status == 200
        assert got.rstrip().endswith(b"data: [DONE]"), got[-200:]
        assert took >= 39, f"{took:.1f} s: the stream was not paced as asked"
        assert len(fleet["mocks"]["long"].calls(rid)) == 1
        assert fleet["mocks"]["ok2"].calls(rid) == []
        record = served_record(stack, rid)
        assert (record["status"], record["cut"], record["attempts"]) == (200, False, 1), record
