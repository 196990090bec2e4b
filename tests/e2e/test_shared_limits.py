"""Two Envoy processes share per-minute limits through leases from the
control plane, whose buckets live in Redis (127.0.0.1:6379)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from .helpers import new_account, new_key, post_chat, stackmod

REDIS = os.environ.get("TOLLGATE_E2E_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    s = stackmod.Stack(work_dir=tmp_path_factory.mktemp("shared-limits"), shared_limits=True, redis_url=REDIS)
    try:
        yield s.start(second_envoy=True)
    finally:
        s.stop()


def post(port: int, key: str) -> int:
    return post_chat(port, key)[0]


def test_two_envoys_share_an_rpm_limit_and_overshoot_by_at_most_one_request_each(pair, record):
    limit = 120  # 2 a second
    ports = [pair.gateway_port, pair.second_port]
    # The key is known on every worker of both Envoys.
    key = new_key(pair, new_account(pair, "shared")["id"], "shared", ports=ports, rpm=limit)["key"]
    counts = {p: {"ok": 0, "refused": 0, "other": 0} for p in ports}
    duration = 6.0
    start = time.monotonic()
    stop = start + duration

    def hammer(port: int) -> None:
        while time.monotonic() < stop:
            status = post(port, key)
            bucket = "ok" if status == 200 else "refused" if status == 429 else "other"
            counts[port][bucket] += 1

    threads = [threading.Thread(target=hammer, args=(p,)) for p in ports for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    admitted = sum(c["ok"] for c in counts.values())
    allowed = limit + int(elapsed * limit / 60)
    overshoot = admitted - allowed
    record("shared_rpm_overshoot_requests", overshoot, admitted=admitted, allowed=allowed,
           per_envoy=[c["ok"] for c in counts.values()], refused=sum(c["refused"] for c in counts.values()))
    assert all(c["other"] == 0 for c in counts.values()), counts
    assert all(c["ok"] > 0 for c in counts.values()), "both Envoys got a share"
    # The documented bound is one lease (limit / 10) of credit per Envoy, spent
    # only when a bucket is first used nearly empty; here the shared bucket was
    # full, so every credit was paid back and nothing overshoots but rounding.
    assert overshoot <= len(ports), f"admitted {admitted}, allowed {allowed}"
    # And not far under: unspent leases are at most a tenth of the limit per Envoy.
    assert admitted >= allowed - len(ports) * (limit // 10) - 2, f"admitted {admitted}, allowed {allowed}"


def test_the_lease_channel_refuses_strangers_and_bad_leases(pair):
    url = f"{pair.control_plane}/internal/leases"
    body = {"leases": [{"bucket": "k:x:rpm", "limit": 10, "want": 1}]}
    assert stackmod.http("POST", url, body)[0] == 401
    headers = {"x-tollgate-filter-secret": pair.filter_secret}
    for bad in ({"leases": [{"bucket": "zz", "limit": 10, "want": 1}]},
                {"leases": [{"bucket": "k:x:rpm", "limit": 0, "want": 1}]},
                {"leases": "no"}):
        status, _, answer = stackmod.http("POST", url, bad, headers)
        assert status == 400 and answer["error"]["code"] == "invalid_request", bad
    # A bucket never seen (Redis keeps buckets 2 minutes): full, so the whole
    # want is granted; the rest of the limit, then nothing.
    bucket = f"k:lease-probe-{time.monotonic_ns()}:rpm"
    granted = [stackmod.http("POST", url, {"leases": [{"bucket": bucket, "limit": 10, "want": want}]}, headers)[2]
               ["grants"][0]["granted"] for want in (4, 10, 10)]
    assert granted == [4, 6, 0]


def test_with_redis_down_the_envoys_fail_closed_and_the_status_says_so(tmp_path):
    import socket
    import subprocess

    port = stackmod.free_port()

    def start_redis() -> subprocess.Popen:
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stackmod.wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.2).close() or True,
                            what="redis-server")
        return proc

    redis = start_redis()
    s = stackmod.Stack(work_dir=tmp_path / "stack", shared_limits=True, redis_url=f"redis://127.0.0.1:{port}/0")
    try:
        s.start()
        limit = 600  # leases of 60
        key = new_key(s, new_account(s, "redis")["id"], "redis", rpm=limit)["key"]
        assert [post(s.gateway_port, key) for _ in range(10)].count(200) >= 8
        redis.kill()
        redis.wait()
        # Each worker of the Envoy leases on its own, and a lease that came
        # back before the kill may be spent after it: what is admitted now is
        # what Redis had granted, which its bucket (600, plus one lease of
        # credit and the refill of these seconds) bounds. Post until 20 in a
        # row are refused.
        after: list[int] = []
        while len(after) < limit + limit // 10 + 60 and after[-20:] != [429] * 20:
            after.append(post(s.gateway_port, key))
        assert set(after) <= {200, 429}, "never a 5xx on the data path"
        assert after[-20:] == [429] * 20, "closed: refused once the leases are spent"
        assert after.count(200) <= limit + limit // 10 + 20, "only what Redis granted before it went away"
        status = stackmod.http("GET", f"{s.gateway}/api/status")[2]
        assert status["limits"]["backend"] == "redis" and status["limits"]["status"].startswith("unavailable: failing closed")
        redis = start_redis()
        stackmod.wait_until(lambda: post(s.gateway_port, key) == 200, timeout=10, interval=0.1, what="service after Redis came back")
        assert stackmod.http("GET", f"{s.gateway}/api/status")[2]["limits"]["status"] == "ok"
    finally:
        s.stop()
        redis.kill()
