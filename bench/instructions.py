"""Instructions per request: Envoy under valgrind's callgrind, which counts
the instructions every thread of Envoy executes (V8's generated code too).
Unlike CPU time, the count does not depend on what else the machine is doing:
the same build, config and requests give the same number to a fraction of a
percent, so a change of 1% shows. Requests go one at a time on one keep-alive
connection; counting starts after a warm-up and covers exactly those requests
(plus whatever timers fire meanwhile)."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import time
from pathlib import Path

import stack as stk


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def _totals(dump: Path) -> int:
    """The instruction count of a callgrind dump (its `totals:` or `summary:` line)."""
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def measure(envoy: Path, config: Path, port: int, admin_port: int, base_id: int, headers: dict, body: bytes,
            path: str, requests: int, warmup: int, work: Path, name: str, settle_s: float = 0.0,
            check=None, env: dict | None = None) -> dict:
    """Runs Envoy (`--concurrency 1`) under callgrind with `config`, sends
    `warmup` then `requests` requests, and returns the instructions counted
    for the latter. `settle_s`: a pause after the first 200 (a failover
    cluster is used 3 s after the filter first saw it); `check(admin_port,
    requests)`: raises if the run did not measure what it says; `env`: more
    environment for Envoy (where the native module is)."""
    out = work / f"callgrind-{name}.out"
    log = open(work / f"callgrind-{name}.log", "w")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={out}",
         str(envoy), "-c", str(config), "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn",
         "--base-id", str(base_id)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})
    try:
        stk.wait_until(lambda: stk.http("GET", f"http://127.0.0.1:{admin_port}/ready", timeout=5)[0] == 200,
                       timeout=600, interval=1, what=f"{name} under valgrind /ready")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def one() -> int:
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            r.read()
            return r.status

        # The first requests also wait for a snapshot (gateway) and for V8 to
        # compile; any non-200 after the warm-up fails the run.
        deadline = time.time() + 120
        while one() != 200:
            if time.time() > deadline:
                raise RuntimeError(f"{name}: no 200 under valgrind")
            time.sleep(0.5)
        time.sleep(settle_s)
        for _ in range(warmup):
            one()
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        t0 = time.perf_counter()
        statuses = [one() for _ in range(requests)]
        seconds = time.perf_counter() - t0
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        bad = [s for s in statuses if s != 200]
        if bad:
            raise RuntimeError(f"{name}: {len(bad)} of {requests} requests failed under valgrind: {bad[:5]}")
        if check:
            check(admin_port, requests)
        dumps = sorted(work.glob(f"callgrind-{name}.out.*"))
        if not dumps:
            raise RuntimeError(f"{name}: callgrind wrote no dump")
        total = _totals(dumps[-1])
        return {"total": total, "per_request": total / requests, "requests": requests, "seconds": seconds}
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
