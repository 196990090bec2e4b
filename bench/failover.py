#!/usr/bin/env python3
"""The added latency of one failover (issue 11), p50 and p99.

    .venv/bin/python bench/failover.py [--models 40]

One gateway (tools/stack.py, SQLite, --concurrency 2) and mock upstreams:
one healthy, one answering 503, and a port nothing listens on. Three kinds
of two-deployment models, `--models` of each, made at once so that Envoy
fetches their failover clusters together:

- healthy:  (healthy, healthy): the failover cluster's healthy path;
- refused:  (refused, healthy): the first attempt's connection is refused;
- e503:     (503, healthy):     the first attempt is answered 503.

Each model takes at most two requests: a deployment cools down after 3
failures in a row (docs/routing.md, "Health") and is then nobody's first
choice, so only the first requests of a model fail over. Requests go one at
a time over a kept-alive connection; the figure is the client's time to the
whole answer. The added latency of a failover is its percentile minus the
healthy one's, measured in the same run."""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import stack as stk  # noqa: E402

BODY = {"messages": [{"role": "user", "content": "hello there"}]}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=40, help="models of each kind")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tollgate-failover-bench-"))
    s = stk.Stack(work)
    mocks = []
    try:
        s.start()
        ok = stk.Proc("mock-ok", [str(stk.binary("tollgate-mock-upstream")), "--listen",
                                  f"127.0.0.1:{(ok_port := stk.free_port())}"], work).start(ready="listening on")
        e503 = stk.Proc("mock-503", [str(stk.binary("tollgate-mock-upstream")), "--listen",
                                     f"127.0.0.1:{(e503_port := stk.free_port())}", "--steer",
                                     "x-mock-status=503"], work).start(ready="listening on")
        mocks = [ok, e503]
        urls = {"ok": f"http://127.0.0.1:{ok_port}/v1", "e503": f"http://127.0.0.1:{e503_port}/v1",
                "refused": f"http://127.0.0.1:{stk.free_port()}/v1"}
        for name, url in urls.items():
            s.must("POST", "/admin/providers", {"id": f"b-{name}", "kind": "openai", "base_url": url,
                                                "api_key": f"sk-{name}"})
        kinds = {"healthy": ("b-ok", "b-ok"), "refused": ("b-refused", "b-ok"), "e503": ("b-e503", "b-ok")}
        models: dict[str, list[str]] = {k: [] for k in kinds}
        for kind, (first, second) in kinds.items():
            for i in range(args.models):
                mid = f"fb-{kind}-{i}"
                s.must("POST", "/admin/models", {"id": mid, "deployments": [
                    {"provider": first, "upstream_model": "m", "priority": 0},
                    {"provider": second, "upstream_model": "m", "priority": 1}]})
                models[kind].append(mid)
        key = s.must("POST", "/admin/keys", {"name": "bench", "account_id": s.demo["account"]["id"]})["key"]
        # Every cluster in Envoy, then the filter's 3 s warm-up.
        want = len(kinds) * args.models * 2
        stk.wait_until(lambda: stk.http("GET", f"{s.envoy_admin}/clusters", timeout=5)[2].decode().count(
            "::default_priority::max_connections") >= want, timeout=60, what="the failover clusters")
        time.sleep(3.5)
        conn = http.client.HTTPConnection("127.0.0.1", s.gateway_port, timeout=30)
        took: dict[str, list[float]] = {k: [] for k in kinds}
        for round_ in range(2):
            for kind in kinds:
                for mid in models[kind]:
                    body = json.dumps({"model": mid, **BODY})
                    t0 = time.perf_counter()
                    conn.request("POST", "/v1/chat/completions", body=body, headers={
                        "authorization": f"Bearer {key}", "content-type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    took[kind].append((time.perf_counter() - t0) * 1000)
                    if resp.status != 200:
                        raise SystemExit(f"{mid}: {resp.status}")
        conn.close()
        base50, base99 = percentile(took["healthy"], 50), percentile(took["healthy"], 99)
        print(f"failover latency, {2 * args.models} requests of each kind, ms (client time to the whole answer)")
        print(f"{'kind':<10} {'p50':>8} {'p99':>8} {'+p50':>8} {'+p99':>8} {'mean':>8}")
        for kind in kinds:
            p50, p99 = percentile(took[kind], 50), percentile(took[kind], 99)
            print(f"{kind:<10} {p50:8.2f} {p99:8.2f} {p50 - base50:8.2f} {p99 - base99:8.2f} "
                  f"{statistics.mean(took[kind]):8.2f}")
        # The records say how many attempts each made.
        def records() -> dict:
            seen, after = {}, None
            while True:
                q = f"&after={after}" if after else ""
                page = s.must("GET", f"/admin/usage?limit=100{q}")
                for r in page["data"]:
                    seen.setdefault(r["model"], []).append(r["attempts"])
                if not page["has_more"]:
                    return seen
                after = page["data"][-1]["id"]
        total = sum(len(v) for v in took.values())
        seen = stk.wait_until(lambda: (lambda r: r if sum(len(v) for k, v in r.items() if k.startswith("fb-"))
                                       >= total else None)(records()), timeout=60, interval=1, what="the records")
        for kind in kinds:
            counts = [a for mid in models[kind] for a in seen.get(mid, [])]
            failed_over = sum(1 for a in counts if a > 1)
            print(f"{kind}: {len(counts)} records, {failed_over} with 2 attempts")
        return 0
    finally:
        for m in mocks:
            m.stop()
        s.stop()


if __name__ == "__main__":
    sys.exit(main())
