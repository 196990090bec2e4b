#!/usr/bin/env python3
"""Soak: a whole stack (mock, control plane, Envoy) under steady load with
the config changed every 5 s, for a bounded time; reports Envoy's and the
control plane's memory over time (the slope, MiB per hour, by least
squares) and every error seen.

    .venv/bin/python tools/soak.py                 # 10 minutes
    .venv/bin/python tools/soak.py --minutes 60    # longer
    .venv/bin/python tools/soak.py --minutes 1 --rps 50

Exits 1 when a request failed or a process died."""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack as stackmod  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 0.0 if var == 0 else sum((t - mt) * (v - mv) for t, v in samples) / var * 3600


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rps", type=float, default=100.0, help="requests per second (a third of them streams)")
    ap.add_argument("--push-every", type=float, default=5.0, help="seconds between config changes")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tollgate-soak-"))
    s = stackmod.Stack(work_dir=work)
    errors: list[str] = []
    counts = {"ok": 0, "pushes": 0}
    stop = threading.Event()
    try:
        key = s.start().demo["key"]["key"]
        stackmod.wait_until(lambda: stackmod.http("GET", f"{s.gateway}/v1/models",
                                                  headers={"authorization": f"Bearer {key}"})[0] == 200,
                            what="the demo key")

        def load() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", s.gateway_port, timeout=30)
            n = 0
            interval = 1.0 / args.rps
            next_at = time.monotonic()
            while not stop.is_set():
                n += 1
                body = {"model": "demo-chat", "messages": [{"role": "user", "content": "soak"}], "stream": n % 3 == 0}
                try:
                    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                                 {"authorization": f"Bearer {key}", "content-type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        counts["ok"] += 1
                    else:
                        errors.append(f"status {resp.status}")
                except (OSError, http.client.HTTPException) as e:
                    errors.append(repr(e))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", s.gateway_port, timeout=30)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

        def push() -> None:
            # A key created and one revoked, a model's price moved: every
            # push is a new snapshot on every worker.
            account = demo["account"]["id"]
            i = 0
            while not stop.wait(args.push_every):
                i += 1
                created = s.must("POST", "/admin/keys", {"name": f"soak-{i}", "account_id": account})
                s.must("DELETE", f"/admin/keys/{created['id']}")
                s.must("PATCH", "/admin/models/demo-chat",
                       {"pricing": {"input_per_1m": 0.15 + (i % 7) / 100, "output_per_1m": 0.60}})
                counts["pushes"] += 1

        threads = [threading.Thread(target=load), threading.Thread(target=push)]
        for t in threads:
            t.start()
        envoy_pid = s.procs["envoy"].popen.pid
        cp_pid = s.procs["control-plane"].popen.pid
        mem: dict[str, list[tuple[float, float]]] = {"envoy": [], "control plane": []}
        start = time.monotonic()
        end = start + args.minutes * 60
        while time.monotonic() < end:
            t = time.monotonic() - start
            for name, pid in (("envoy", envoy_pid), ("control plane", cp_pid)):
                try:
                    mem[name].append((t, rss_mib(pid)))
                except OSError:
                    errors.append(f"{name} died")
            if any(not p.alive() for p in s.procs.values()):
                errors.append("a process died")
                break
            time.sleep(5)
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop.set()
        s.stop()
    # The first minute is warm-up (V8 compiles, pools fill): the slope is read after it.
    print(f"soak: {args.minutes:g} min, {counts['ok']} requests answered 200, {counts['pushes']} config pushes, "
          f"{len(errors)} errors")
    for name, samples in mem.items():
        steady = [(t, v) for t, v in samples if t >= 60] or samples
        if samples:
            print(f"  {name}: RSS {samples[0][1]:.1f} -> {samples[-1][1]:.1f} MiB, "
                  f"slope after the first minute {slope_per_hour(steady):+.1f} MiB/h")
    for e in sorted(set(errors))[:20]:
        print(f"  error: {e} (x{errors.count(e)})")
    print(f"  logs in {work}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
