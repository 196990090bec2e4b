"""Failover across deployments (issue 11, docs/routing.md), through real
Envoy: a model with several deployments goes to a failover cluster the
control plane serves over CDS; a deployment that refuses, resets, answers
5xx or 429 is left for the next, before the first byte only (the timeouts
are in test_timeouts.py); a client error
is not failed over; a deployment that keeps failing is ejected on every
worker. Each deployment is a mock upstream of its own, started with the way
it fails (`--steer`)."""

from __future__ import annotations

import json
import time

import pytest

from .failover_fleet import Mock, chat, model, provider, records_of_all, served_record, stream_whole, wait_routed
from .helpers import stackmod, tag
from .tlsfront import TlsFront


@pytest.fixture(scope="module")
def fleet(stack, test_ca):
    """Deployments that fail each their own way, and the models made of
    them, created at once so that one wait covers every cluster."""
    mocks = {
        "ok": Mock(stack, "ok"),
        "ok2": Mock(stack, "ok2"),
        "e503": Mock(stack, "e503", "x-mock-status=503"),
        "e500": Mock(stack, "e500", "x-mock-status=500"),
        "e429": Mock(stack, "e429", "x-mock-status=429"),
        "e400": Mock(stack, "e400", "x-mock-status=400"),
        "cut": Mock(stack, "cut", "x-mock-cut-after=1", "x-mock-chunk-delay-ms=20"),
        # Headers after 150 ms: slower than "ok", not dead.
        "lag": Mock(stack, "lag", "x-mock-delay-ms=150"),
    }
    dead_port = stackmod.free_port()
    # Refuses until a test starts a mock on its port.
    flaky_port = stackmod.free_port()
    front = TlsFront(test_ca["cert"], test_ca["key"], mocks["ok"].port)
    providers = {name: provider(stack, m.url + "/v1") for name, m in mocks.items()}
    # Over TLS to the healthy mock: by the name its certificate has, and by
    # an address the certificate does not name.
    providers["tls"] = provider(stack, f"https://localhost:{front.port}/v1")
    providers["tls_bad_name"] = provider(stack, f"https://127.0.0.1:{front.port}/v1")
    providers["dead"] = provider(stack, f"http://127.0.0.1:{dead_port}/v1")
    providers["flaky"] = provider(stack, f"http://127.0.0.1:{flaky_port}/v1")
    p = providers
    models = {
        "refused": model(stack, (p["dead"], "up-dead", 0), (p["ok"], "up-ok", 1)),
        "e503": model(stack, (p["e503"], "up-503", 0), (p["ok"], "up-ok", 1)),
        "e500": model(stack, (p["e500"], "up-500", 0), (p["ok"], "up-ok", 1)),
        "e429": model(stack, (p["e429"], "up-429", 0), (p["ok"], "up-ok", 1)),
        "e400": model(stack, (p["e400"], "up-400", 0), (p["ok"], "up-ok", 1)),
        "all_fail": model(stack, (p["e503"], "up-503", 0), (p["e500"], "up-500", 1)),
        "cut": model(stack, (p["cut"], "up-cut", 0), (p["ok2"], "up-ok2", 1)),
        "eject": model(stack, (p["dead"], "up-dead", 0), (p["ok2"], "up-ok2", 1)),
        "tls": model(stack, (p["dead"], "up-dead", 0), (p["tls"], "up-ok", 1)),
        # Two of one priority, shared by weight: until one answers 429.
        "cool": model(stack, (p["e429"], "up-429", 0), (p["ok"], "up-ok", 0)),
        "tls_bad_name": model(stack, (p["dead"], "up-dead", 0), (p["tls_bad_name"], "up-ok", 1)),
        # Three failing before a healthy one: the model's own max_attempts
        # decides whether the healthy one is reached.
        "capped": model(stack, (p["e503"], "up-503", 0), (p["e500"], "up-500", 1), (p["ok"], "up-ok", 2),
                        max_attempts=2),
        "fastest": model(stack, (p["lag"], "up-lag", 0), (p["ok"], "up-ok", 0), strategy="least_latency"),
        "probe": model(stack, (p["flaky"], "up-flaky", 0), (p["ok2"], "up-ok2", 1)),
        # Four deployments, no max_attempts: the default 3 tries three.
        "default_cap": model(stack, (p["e503"], "up-503", 0), (p["e500"], "up-500", 1), (p["dead"], "up-dead", 2),
                             (p["ok"], "up-ok", 3)),
        "deep": model(stack, (p["e503"], "up-503", 0), (p["e500"], "up-500", 1), (p["e429"], "up-429", 2),
                      (p["ok"], "up-ok", 3), max_attempts=4),
    }
    wait_routed(stack, list(models.values()))
    yield {"mocks": mocks, "models": models, "providers": providers, "flaky_port": flaky_port}
    front.close()
    for m in mocks.values():
        m.stop()


@pytest.mark.parametrize("case", ["refused", "e503", "e500", "e429", "tls"])
def test_a_failing_first_deployment_is_answered_by_the_next_and_billed_once(stack, key, fleet, case):
    mocks = fleet["mocks"]
    status, headers, body = chat(stack, key, fleet["models"][case])
    if case == "tls":
        provider_id = fleet["providers"]["tls"]
    else:
        provider_id = fleet["providers"]["ok"]
    assert status == 200, body
    rid = headers["x-request-id"]
    # The healthy deployment got the request, with its own upstream model
    # and credential in place of the first one's.
    calls = mocks["ok"].calls(rid)
    assert len(calls) == 1, calls
    assert calls[0]["model"] == "up-ok"
    assert calls[0]["authorization"] == f"Bearer sk-{provider_id}"
    if case not in ("refused", "tls"):
        assert len(mocks[case].calls(rid)) == 1
    record = served_record(stack, rid)
    assert record["status"] == 200
    assert record["provider"] == provider_id
    assert record["upstream_model"] == "up-ok"
    assert record["output_tokens"] > 0
    # The first deployment's attempt shows in the record (a refused
    # connection and a TLS handshake to the wrong name are attempts too).
    assert record["attempts"] == 2, record
    assert record["cut"] is False


def test_a_tls_deployment_whose_certificate_does_not_name_its_host_is_not_reached(stack, key, fleet):
    status, headers, body = chat(stack, key, fleet["models"]["tls_bad_name"])
    assert status == 502, body
    assert fleet["mocks"]["ok"].calls(headers["x-request-id"]) == []


def test_a_client_error_from_the_upstream_is_not_failed_over(stack, key, fleet):
    status, headers, body = chat(stack, key, fleet["models"]["e400"])
    assert status == 400, body
    assert "error" in body
    rid = headers["x-request-id"]
    assert len(fleet["mocks"]["e400"].calls(rid)) == 1
    assert fleet["mocks"]["ok"].calls(rid) == []


def test_when_every_deployment_fails_the_client_gets_one_502_in_the_openai_format(stack, key, fleet):
    status, headers, body = chat(stack, key, fleet["models"]["all_fail"])
    assert status == 502, body
    err = body["error"]
    assert err["code"] == "upstream_error"
    assert err["type"] == "server_error"
    assert "2 deployments" in err["message"], err
    text = json.dumps(body)
    assert "127.0.0.1" not in text and "sk-" not in text
    rid = headers["x-request-id"]
    assert len(fleet["mocks"]["e503"].calls(rid)) == 1
    assert len(fleet["mocks"]["e500"].calls(rid)) == 1


def test_a_model_tries_no_more_deployments_than_its_max_attempts(stack, key, fleet):
    mocks = fleet["mocks"]
    status, headers, body = chat(stack, key, fleet["models"]["capped"])
    assert status == 502, body
    assert "2 deployments" in body["error"]["message"], body
    rid = headers["x-request-id"]
    assert (len(mocks["e503"].calls(rid)), len(mocks["e500"].calls(rid))) == (1, 1)
    assert mocks["ok"].calls(rid) == [], "the third deployment is past max_attempts"
    # No max_attempts: three, the default.
    status, headers, body = chat(stack, key, fleet["models"]["default_cap"])
    assert status == 502, body
    assert "3 deployments" in body["error"]["message"], body
    rid = headers["x-request-id"]
    assert [len(mocks[m].calls(rid)) for m in ("e503", "e500", "ok")] == [1, 1, 0]
    # Four attempts, more than the default three: the fourth answers.
    status, headers, body = chat(stack, key, fleet["models"]["deep"])
    assert status == 200, body
    rid = headers["x-request-id"]
    assert [len(mocks[m].calls(rid)) for m in ("e503", "e500", "e429", "ok")] == [1, 1, 1, 1]
    assert served_record(stack, rid)["attempts"] == 4


def test_a_stream_cut_after_its_first_chunk_is_not_sent_again_anywhere(stack, key, fleet):
    status, rid, got, _ = stream_whole(stack, key, fleet["models"]["cut"])
    assert status == 200
    # The client got the first chunk and then the end of the stream, without
    # [DONE]: a failure after the first byte ends that response.
    assert b"data: " in got
    assert b"[DONE]" not in got
    assert len(fleet["mocks"]["cut"].calls(rid)) == 1
    assert fleet["mocks"]["ok2"].calls(rid) == []
    # The usage record says the answer stopped short, after one attempt.
    record = served_record(stack, rid)
    assert (record["status"], record["cut"], record["attempts"]) == (200, True, 1), record


def test_a_deployment_that_answers_429_is_not_chosen_first_while_it_cools_down(stack, key, fleet):
    mid, limited, ok = fleet["models"]["cool"], fleet["mocks"]["e429"], fleet["mocks"]["ok"]
    ids = []
    # Half of the requests choose the rate-limited deployment first, until
    # one of them is answered 429 (and failed over to the other).
    for _ in range(40):
        status, headers, body = chat(stack, key, mid)
        assert status == 200, body
        ids.append(headers["x-request-id"])
        if limited.calls(ids[-1]):
            break
    else:
        pytest.fail("the weighted choice never chose the rate-limited deployment")
    # For the next 30 s it is nobody's first choice, on any worker.
    after = []
    for _ in range(12):
        status, headers, body = chat(stack, key, mid)
        assert status == 200, body
        after.append(headers["x-request-id"])
    assert [rid for rid in after if limited.calls(rid)] == []
    assert all(len(ok.calls(rid)) == 1 for rid in after)


def stat(stack, name: str) -> int:
    text = stackmod.http("GET", f"{stack.envoy_admin}/stats?filter={name}", timeout=5)[2]
    total = 0
    for line in text.decode().splitlines():
        if ":" in line:
            total += int(line.rsplit(":", 1)[1].strip() or 0)
    return total


def test_a_deployment_that_keeps_refusing_is_ejected_for_every_worker(stack, key, fleet):
    mid = fleet["models"]["eject"]
    for _ in range(6):
        status, _, body = chat(stack, key, mid)
        assert status == 200, body
    # Three refusals in a row eject the dead deployment (on each worker's
    # view of the one cluster); after that, requests go to the healthy one
    # on their first attempt: the cluster's retries stop growing.
    stackmod.wait_until(lambda: stat(stack, "outlier_detection.ejections_active") >= 1, timeout=10,
                        what="an ejection")
    retries = stat(stack, "upstream_rq_retry$")
    for _ in range(10):
        status, _, body = chat(stack, key, mid)
        assert status == 200, body
    assert stat(stack, "upstream_rq_retry$") == retries


def deployment_state(stack, mid: str, index: int) -> dict:
    _, _, status = stackmod.http("GET", f"{stack.control_plane}/api/status")
    got = [d for d in status["deployments"] if d["model"] == mid and d["deployment"] == index]
    assert len(got) == 1, status["deployments"]
    return got[0]


def test_a_failing_deployment_cools_down_for_every_worker_and_one_probe_restores_it(stack, key, fleet, ui):
    mid, ok2 = fleet["models"]["probe"], fleet["mocks"]["ok2"]
    assert deployment_state(stack, mid, 0)["state"] == "healthy"
    # Three refused attempts in a row cool the first deployment down.
    for _ in range(3):
        status, _, body = chat(stack, key, mid)
        assert status == 200, body
    cooling = stackmod.wait_until(
        lambda: (lambda d: d if d["state"] == "cooling" else None)(deployment_state(stack, mid, 0)),
        timeout=10, interval=0.5, what="the deployment cooling in /api/status")
    assert cooling["failures"] >= 3 and cooling["provider"] == fleet["providers"]["flaky"]
    assert cooling["cooling_until"] > time.time() + 20
    metrics = stackmod.http("GET", f"{stack.control_plane}/metrics")[2].decode()
    assert f'tollgate_deployment_state{{model="{mid}",deployment="0",state="cooling"}} 1' in metrics
    # The operators' status page shows it too.
    ui.sign_in(stack.admin_token)
    ui.open("status")
    row = ui.page.locator("tr", has_text=mid).filter(has_text="up-flaky")
    stackmod.wait_until(lambda: "cooling" in row.inner_text(), timeout=8, interval=0.3,
                        what="the status page's cooling deployment")
    assert "up-flaky" in row.inner_text()
    # Meanwhile every request, on whichever worker, goes to the healthy one
    # on its first attempt.
    ids = []
    for _ in range(8):
        status, headers, body = chat(stack, key, mid)
        assert status == 200, body
        ids.append(headers["x-request-id"])
    assert all(len(ok2.calls(rid)) == 1 for rid in ids)
    assert [r["attempts"] for r in records_of_all(stack, ids)] == [1] * len(ids)
    # The deployment comes back; once its cool-down is over one request
    # probes it, and its answer makes it healthy again.
    flaky = Mock(stack, "flaky", port=fleet["flaky_port"])
    try:
        stackmod.wait_until(lambda: deployment_state(stack, mid, 0)["state"] == "probing",
                            timeout=45, interval=1, what="the cool-down to end")

        def probed():
            status, headers, body = chat(stack, key, mid)
            assert status == 200, body
            return flaky.calls(headers["x-request-id"])
        # Envoy's own ejection of the host (30 s from the same failures)
        # may send the first probes on; the next probe, 10 s on, reaches it.
        stackmod.wait_until(probed, timeout=30, interval=1, what="a probe to reach the deployment")
        stackmod.wait_until(lambda: deployment_state(stack, mid, 0)["state"] == "healthy",
                            timeout=15, interval=0.5, what="the deployment healthy again")
    finally:
        flaky.stop()


def test_least_latency_sends_most_requests_to_the_faster_deployment_and_still_measures_the_other(stack, key, fleet):
    lag, ok = fleet["mocks"]["lag"], fleet["mocks"]["ok"]
    to = {"lag": 0, "ok": 0}
    for _ in range(30):
        status, headers, body = chat(stack, key, fleet["models"]["fastest"])
        assert status == 200, body
        rid = headers["x-request-id"]
        to["lag"] += len(lag.calls(rid))
        to["ok"] += len(ok.calls(rid))
    assert to["lag"] + to["ok"] == 30, to
    # Each worker measures both first; then 9 in 10 go to the faster one.
    assert to["ok"] >= 22, to
    assert to["lag"] >= 1, to


def test_a_bad_strategy_is_a_400_naming_it(stack):
    status, _, body = stack.admin("POST", "/admin/models", {
        "id": f"fo-{tag()}", "strategy": "fastest",
        "deployments": [{"provider": "mock", "upstream_model": "x"}]})
    assert status == 400, body
    assert body["error"]["param"] == "strategy"
