"""Instructions per request: Envoy under valgrind's callgrind, which counts
the instructions every thread of Envoy executes (V8's generated code too).
Requests go one at a time on one keep-alive connection; counting starts after
a warm-up and covers exactly those requests, plus whatever timed work runs
meanwhile: the filter's tick, the native module's threads, the config poll,
Envoy's own timers. That part grows with the window's wall time, and under
callgrind on a loaded machine the window lasts longer: the raw count per
request moved 20% between runs of one build. So the same Envoy is then
counted for an idle window (no requests), and its instructions per second,
times the request window's seconds, are taken out: `per_request` is what the
requests themselves cost (including the batches they cause, such as usage
shipping), `raw_per_request` the whole window's count."""

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


# Seconds of the idle window (no requests) counted after the requests.
IDLE_S = 15.0


def _totals(dump: Path) -> int:
    """The instruction count of a callgrind dump (its `totals:` or `summary:` line)."""
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def _thread(dump: Path) -> str:
    """The thread a dump counted: with `--separate-threads=yes` a dump is one
    file per thread, `<out>.<dump>-<thread>` (valgrind's thread number:
    01 is Envoy's main thread)."""
    part = dump.name.rsplit(".", 1)[-1]
    return part.split("-", 1)[1] if "-" in part else "all"


def _window(work: Path, name: str, pid: int, seen: set) -> dict:
    """Dumps the counters now (`callgrind_control -d`) and returns the new
    dumps' totals by thread (one file per thread)."""
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    new = [d for d in work.glob(f"callgrind-{name}.out.*") if d not in seen]
    if not new:
        raise RuntimeError(f"{name}: callgrind wrote no dump")
    seen.update(new)
    return {_thread(d): _totals(d) for d in sorted(new)}


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
        ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", "--separate-threads=yes",
         f"--callgrind-out-file={out}",
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
        seen = set(work.glob(f"callgrind-{name}.out.*"))
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        t0 = time.perf_counter()
        statuses = [one() for _ in range(requests)]
        seconds = time.perf_counter() - t0
        busy = _window(work, name, proc.pid, seen)
        bad = [s for s in statuses if s != 200]
        if bad:
            raise RuntimeError(f"{name}: {len(bad)} of {requests} requests failed under valgrind: {bad[:5]}")
        if check:
            check(admin_port, requests)
        # The idle window: the same Envoy, no requests (the connection stays
        # open and idle, as it is between two requests).
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        t1 = time.perf_counter()
        time.sleep(IDLE_S)
        idle = _window(work, name, proc.pid, seen)
        idle_seconds = time.perf_counter() - t1
        total, idle_total = sum(busy.values()), sum(idle.values())
        idle_rate = idle_total / idle_seconds
        net = total - idle_rate * seconds
        # Envoy's worker (the thread that counted most) runs every filter
        # callback; net of its own idle rate it holds none of the main
        # thread's timed work (a 1 s CDS poll in the wasm stacks counts
        # whole: one poll more or less in a window moves the total).
        worker = max(busy, key=lambda t: busy[t])
        worker_net = busy[worker] - idle.get(worker, 0) / idle_seconds * seconds
        return {"total": total, "per_request": net / requests, "raw_per_request": total / requests,
                "worker_per_request": worker_net / requests,
                "idle_per_s": idle_rate, "timed_share": idle_rate * seconds / total, "requests": requests,
                "seconds": seconds, "threads": busy, "idle_threads": idle, "idle_seconds": idle_seconds}
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
