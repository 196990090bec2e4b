"""The load generator: oha (installed into bench/.tools by `cargo install`),
or wrk from Debian when oha cannot be had. Every run is pinned to CPU 1 and
bounded in time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OHA = BENCH / ".tools" / "bin" / "oha"
LOADGEN_CPU = "1"


@dataclass
class LoadResult:
    ok: int            # answers with status 200
    other: int         # other statuses and errors
    seconds: float
    rps: float         # 200s per second
    p50_ms: float
    p99_ms: float
    tool: str
    fb_p50_ms: float | None = None   # first byte of the answer (oha only)
    fb_p99_ms: float | None = None


def find_tool(install: bool = True) -> str:
    """'oha' or 'wrk'; installs oha into bench/.tools if neither is there."""
    if OHA.exists():
        return "oha"
    if install and shutil.which("cargo"):
        print("installing oha into bench/.tools (cargo install --locked oha; several minutes)...", flush=True)
        done = subprocess.run(
            ["cargo", "install", "--locked", "oha", "--root", str(BENCH / ".tools")],
            timeout=3600, check=False,
        )
        if done.returncode == 0 and OHA.exists():
            return "oha"
    if shutil.which("wrk"):
        return "wrk"
    raise RuntimeError("no load generator: cargo install --locked oha --root bench/.tools, or apt-get install -y wrk")


def _run(args: list[str], timeout: float) -> str:
    """Runs a pinned load generator; kills it if it outlives `timeout` or we are interrupted."""
    proc = subprocess.Popen(["taskset", "-c", LOADGEN_CPU, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if proc.returncode != 0 or (not out.strip() and err.strip()):
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return out.decode()


def oha(url: str, headers: dict, body: bytes, connections: int, seconds: float,
        rate: float | None = None) -> LoadResult:
    args = [str(OHA), "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(connections),
            "-m", "POST", "-d", body.decode()]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if rate:
        # Open loop: latency counted from when each request was due.
        args += ["-q", str(rate), "--latency-correction"]
    data = json.loads(_run(args + [url], timeout=seconds + 60))
    codes = {int(k): v for k, v in (data.get("statusCodeDistribution") or {}).items()}
    ok = codes.get(200, 0)
    errors = sum((data.get("errorDistribution") or {}).values())
    # Requests cut by the deadline are reported as errors; they are not failures.
    cut = sum(v for k, v in (data.get("errorDistribution") or {}).items() if "deadline" in k.lower())
    elapsed = data["summary"]["total"]
    pct = data["latencyPercentiles"]
    fb = data.get("firstBytePercentiles") or {}
    return LoadResult(ok, sum(codes.values()) - ok + errors - cut, elapsed, ok / elapsed,
                      (pct.get("p50") or 0) * 1000, (pct.get("p99") or 0) * 1000, "oha",
                      fb["p50"] * 1000 if fb.get("p50") is not None else None,
                      fb["p99"] * 1000 if fb.get("p99") is not None else None)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk(url: str, headers: dict, body: bytes, connections: int, seconds: float) -> LoadResult:
    def lua(s: str) -> str:
        return "[==[" + s + "]==]"

    script = WRK_SCRIPT.format(
        body=lua(body.decode()),
        headers="\n".join(f"wrk.headers[ {lua(k)} ] = {lua(v)}" for k, v in headers.items()),
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = _run(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "-s", f.name, url],
                   timeout=seconds + 60)
    finally:
        os.unlink(f.name)
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    total, dur_us, p50, p99, errors = (int(x) for x in line.split()[1:])
    ok = total - errors
    return LoadResult(ok, errors, dur_us / 1e6, ok / (dur_us / 1e6), p50 / 1000, p99 / 1000, "wrk")


def run(tool: str, url: str, headers: dict, body: bytes, connections: int, seconds: float,
        rate: float | None = None) -> LoadResult:
    if tool == "oha":
        return oha(url, headers, body, connections, seconds, rate)
    if rate:
        raise ValueError("wrk has no fixed-rate mode; run.py uses its own open-loop client instead")
    return wrk(url, headers, body, connections, seconds)
