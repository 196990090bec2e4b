#!/usr/bin/env python3
"""Tollgate's benchmark (issue 5, and the usage numbers of issue 3).

    .venv/bin/python bench/run.py           # the full run (about 5 minutes)
    .venv/bin/python bench/run.py --quick   # a smoke run (about a minute)

Starts the mock upstream, a plain Envoy (bench/envoy-plain.template.yaml: no
filter) and the gateway (Envoy + filter + control plane, tools/stack.py),
drives both with the same load, prints the table and, after a full run, writes
it to bench/results/latest.txt. See bench/README.md for what each number
means. Standard library only, apart from the load generator (oha)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(BENCH))

import httpclient  # noqa: E402
import instructions  # noqa: E402
import loadgen  # noqa: E402
import procstat  # noqa: E402
import proxy_table  # noqa: E402
import stack as stk  # noqa: E402
import usagebench  # noqa: E402
from proxy_table import pct  # noqa: E402

ORIGINAL_BINARY = stk.binary

ENVOY_CPU = "0"
CLIENT_CPU = 1
CHAT = "/v1/chat/completions"
BODY = b'{"model":"demo-chat","messages":[{"role":"user","content":"hello there"}]}'
STREAM_BODY = b'{"model":"demo-chat","stream":true,"messages":[{"role":"user","content":"hello there"}]}'
# The same stream from a model whose provider is Anthropic-shaped (the mock's
# /v1/messages): the gateway translates it event by event (issue 15).
CLAUDE_STREAM_BODY = STREAM_BODY.replace(b'"demo-chat"', b'"demo-claude"')
# The filter adds stream_options.include_usage to every stream it forwards, so
# the plain Envoy is sent the same, and the mock answers both byte for byte alike.
PLAIN_STREAM_BODY = (b'{"model":"demo-chat","stream":true,"stream_options":{"include_usage":true},'
                     b'"messages":[{"role":"user","content":"hello there"}]}')


@dataclass
class Plan:
    warmup_s: float
    conc_s: float
    rate_s: float
    stream_s: float
    sse200_s: float
    ttfb_n: int
    sse200_n: int
    key_steps: list[int]
    ingest_s: float
    usage_records: int
    instr_requests: int
    connections: int = 32
    rate: int = 500


FULL = Plan(2, 15, 15, 15, 10, 300, 200, [10_000, 100_000], 10, 1_000_000, 300)
QUICK = Plan(1, 4, 4, 4, 3, 60, 30, [10_000], 3, 100_000, 100)
EMPTY_FILTER = ROOT / "target" / "wasm32-wasip1" / "release" / "tollgate_bench_empty_filter.wasm"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    def __init__(self, plan: Plan, work: Path):
        self.plan = plan
        # --before: a control plane built at an earlier commit, run beside
        # this one in the ingestion and usage-query runs.
        self.before: Path | None = None
        self.work = work
        self.tool = "oha"
        self.results: dict = {}
        self.stacks: list[stk.Stack] = []
        # The instruction runs to make (their modes; all when empty).
        self.only: list[str] = []
        self.plain: stk.Proc | None = None
        self.native: stk.Proc | None = None
        self.two_workers: dict[str, stk.Proc] = {}
        self.two_worker_ports: dict[str, int] = {}
        self.pg_db: str | None = None

    # ---------------------------------------------------------------- setup
    def prepare(self, load_generator: bool = True) -> None:
        rel = BENCH / ".target" / "release"
        if all((rel / n).exists() for n in ("tollgate-control-plane", "tollgate-mock-upstream")):
            stk.TARGET, stk.PROFILE = BENCH / ".target", "release"
            self.build = "release (bench/.target)"
        else:
            self.build = "DEBUG (target/debug): build release ones, see bench/README.md"
        # The filter as built now, copied so that a rebuild during the run changes nothing.
        wasm = self.work / "tollgate_filter.wasm"
        shutil.copy2(stk.WASM, wasm)
        digest = hashlib.sha256(wasm.read_bytes()).hexdigest()[:12]
        built = datetime.fromtimestamp(stk.WASM.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        self.wasm_info = f"{stk.WASM.relative_to(ROOT)} sha256 {digest}…, built {built}"
        stk.WASM = wasm
        # Envoy through taskset: stack.py runs whatever TOLLGATE_ENVOY names.
        self.envoy = stk.envoy_binary()
        wrapper = self.work / "envoy-cpu0.sh"
        wrapper.write_text(f'#!/bin/sh\nexec taskset -c {ENVOY_CPU} "{self.envoy}" "$@"\n')
        wrapper.chmod(0o755)
        os.environ["TOLLGATE_ENVOY"] = str(wrapper)
        self.tool = loadgen.find_tool() if load_generator else None

    def start_gateway(self) -> None:
        st = stk.Stack(work_dir=self.work / "gateway", concurrency=1)
        self.stacks.append(st)
        st.start_mock()
        st.start_control_plane()
        self.demo = st.seed_demo()
        st.must("POST", "/admin/providers", {"id": "mock-anthropic", "name": "Mock, Anthropic-shaped",
                                              "kind": "anthropic", "base_url": f"{st.mock}/v1",
                                              "api_key": "sk-mock-anthropic"})
        st.must("POST", "/admin/models", {"id": "demo-claude", "name": "demo-claude", "category": "chat",
                                           "pricing": {"input_per_1m": 0.15, "output_per_1m": 0.60},
                                           "deployments": [{"provider": "mock-anthropic",
                                                            "upstream_model": "mock-claude"}]})
        st.start_envoy()
        st.wait_config()
        self.st = st
        # Every Envoy the bench starts itself (under callgrind too) hands the
        # filter its secret from the environment, as the stack's does.
        os.environ["TOLLGATE_FILTER_SECRET"] = st.filter_secret
        self.key = self.demo["key"]["key"]
        # A key with every per-key limit, set far above what the load reaches
        # (the control plane takes limits up to 1e9):
        # what the limit check itself costs (issue 4).
        limited = st.must("POST", "/admin/keys", {
            "name": "bench limits", "account_id": self.demo["account"]["id"],
            "rpm": 1_000_000_000, "tpm": 1_000_000_000, "max_concurrent": 100_000})
        self.limited_key = limited["key"]
        stk.wait_until(lambda: stk.http("GET", f"{st.gateway}/v1/models",
                                        headers={"authorization": f"Bearer {self.limited_key}"})[0] == 200,
                       what="the limited key on the gateway")
        self.pids = {
            "envoy": st.procs["envoy"].popen.pid,
            "mock": st.procs["mock"].popen.pid,
            "cp": st.procs["control-plane"].popen.pid,
        }

    def start_native(self) -> None:
        """A second gateway Envoy on the same control plane and CPU 0, with the
        native module (filter-native) in place of the wasm filter."""
        if not stk.NATIVE.exists():
            subprocess.run(["cargo", "build", "--quiet", "--profile", "native", "-p", "tollgate-native"],
                           cwd=ROOT, check=True)
        st = self.st
        self.native_port, admin = stk.free_port(), stk.free_port()
        cfg = st.envoy_config(self.native_port, admin, "envoy-native")
        cfg.write_text(stk.native_envoy(cfg.read_text(), st.control_plane_port))
        self.native = stk.Proc("envoy-native", [
            "taskset", "-c", ENVOY_CPU, str(self.envoy), "-c", str(cfg), "--concurrency", "1",
            "--base-id", str(st.base_id + 8), "--disable-hot-restart", "--log-level", "info",
        ], self.work, env={"TOLLGATE_FILTER_SECRET": st.filter_secret,
                           "ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(stk.NATIVE.parent)}).start()
        headers = {"authorization": f"Bearer {self.key}", "content-type": "application/json"}
        stk.wait_until(lambda: stk.http("POST", f"http://127.0.0.1:{self.native_port}{CHAT}", BODY,
                                        headers=headers, timeout=2)[0] == 200,
                       timeout=30, what="the native gateway answering the demo key")
        self.native_pid = self.native.popen.pid

    def start_two_worker_envoys(self) -> None:
        """A wasm and a native gateway Envoy with --concurrency 2 on the same
        control plane, for the memory of a snapshot per worker (wasm: one
        VM, so one copy, per worker) against one per process (native)."""
        st = self.st
        self.two_workers: dict[str, stk.Proc] = {}
        for i, (name, native) in enumerate((("wasm, 2 workers", False), ("native, 2 workers", True))):
            port, admin = stk.free_port(), stk.free_port()
            cfg = st.envoy_config(port, admin, f"envoy-2w-{i}")
            env = {"TOLLGATE_FILTER_SECRET": st.filter_secret}
            if native:
                cfg.write_text(stk.native_envoy(cfg.read_text(), st.control_plane_port))
                env["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = str(stk.NATIVE.parent)
            proc = stk.Proc(f"envoy-2w-{i}", [
                "taskset", "-c", ENVOY_CPU, str(self.envoy), "-c", str(cfg), "--concurrency", "2",
                "--base-id", str(st.base_id + 10 + i), "--disable-hot-restart", "--log-level", "info",
            ], self.work, env=env).start()
            headers = {"authorization": f"Bearer {self.key}", "content-type": "application/json"}
            stk.wait_until(lambda: stk.http("POST", f"http://127.0.0.1:{port}{CHAT}", BODY,
                                            headers=headers, timeout=2)[0] == 200,
                           timeout=30, what=f"the {name} gateway answering the demo key")
            self.two_workers[name] = proc
            self.two_worker_ports[name] = port

    def start_plain(self) -> None:
        st = self.st
        self.plain_port, self.plain_admin = stk.free_port(), stk.free_port()
        cfg = self.plain_config("plain", self.plain_port, self.plain_admin)
        self.plain = stk.Proc("envoy-plain", [
            "taskset", "-c", ENVOY_CPU, str(self.envoy), "-c", str(cfg), "--concurrency", "1",
            "--base-id", str(st.base_id + 7), "--disable-hot-restart", "--log-level", "info",
        ], self.work).start()
        stk.wait_until(lambda: stk.http("GET", f"http://127.0.0.1:{self.plain_admin}/ready", timeout=1)[0] == 200,
                       timeout=30, what="plain envoy /ready")
        self.plain_pid = self.plain.popen.pid

    def plain_config(self, name: str, port: int, admin: int, wasm_mode: str | None = None) -> Path:
        """The baseline Envoy's config; with `wasm_mode`, the bench's empty
        filter (bench/empty-filter) in front of the router, in that mode."""
        text = (BENCH / "envoy-plain.template.yaml").read_text()
        if wasm_mode:
            wasm_filter = (
                "          - name: envoy.filters.http.wasm\n"
                "            typed_config:\n"
                '              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\n'
                "              config:\n"
                "                name: floor\n"
                "                root_id: floor\n"
                "                vm_config:\n"
                "                  vm_id: floor\n"
                "                  runtime: envoy.wasm.runtime.v8\n"
                f"                  code: {{ local: {{ filename: {self.work / 'empty-filter.wasm'} }} }}\n"
                "                configuration:\n"
                '                  "@type": type.googleapis.com/google.protobuf.StringValue\n'
                f"                  value: {wasm_mode}\n"
                "                allow_on_headers_stop_iteration: true\n"
            )
            marker = "          http_filters:\n"
            if marker not in text:
                raise RuntimeError("envoy-plain.template.yaml: no http_filters to put the empty filter in")
            text = text.replace(marker, marker + wasm_filter, 1)
        cfg = self.work / f"envoy-{name}.yaml"
        cfg.write_text(stk.render_envoy_text(text, {
            "ADMIN_PORT": str(admin), "LISTEN_PORT": str(port),
            "BUFFER_LIMIT_BYTES": str(8 * 1024 * 1024), "ACCESS_LOG_PATH": str(self.work / f"{name}-access.log"),
            "MOCK_PORT": str(self.st.mock_port),
        }))
        return cfg

    def instructions(self) -> None:
        """Instructions per request under callgrind: plain Envoy, plain Envoy
        with the empty filter (both modes), and the gateway."""
        if not instructions.available():
            log("valgrind not found: no instruction counts (apt-get install -y valgrind)")
            return
        if not EMPTY_FILTER.exists():
            subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1",
                            "-p", "tollgate-bench-empty-filter"], cwd=ROOT, check=True)
        shutil.copy2(EMPTY_FILTER, self.work / "empty-filter.wasm")
        plain_h = {"content-type": "application/json"}
        gw_h = {**plain_h, "authorization": f"Bearer {self.key}"}
        runs = [("plain", None, plain_h), ("empty wasm filter", "empty", plain_h),
                ("filter reading the body", "read-body", plain_h), ("gateway", "gateway", gw_h),
                ("gateway, no access-log copy", "gateway-no-alog", gw_h),
                ("gateway, metrics off", "gateway-no-metrics", gw_h),
                ("gateway, failover cluster", "gateway-failover", gw_h),
                ("native gateway", "gateway-native", gw_h),
                ("native, failover cluster", "gateway-native-failover", gw_h)]
        if not stk.NATIVE.exists():
            subprocess.run(["cargo", "build", "--quiet", "--profile", "native", "-p", "tollgate-native"],
                           cwd=ROOT, check=True)
        if self.only:
            runs = [r for r in runs if (r[1] or "plain") in self.only]
        failover_body = self.failover_model()
        out = []
        for i, (label, mode, headers) in enumerate(runs):
            port, admin = stk.free_port(), stk.free_port()
            name = "callgrind-" + (mode or "plain")
            if mode and mode.startswith("gateway"):
                cfg = self.st.envoy_config(port, admin, name)
                option = {"gateway-no-alog": '"usage_in_access_log":false',
                          "gateway-no-metrics": '"metrics":false'}.get(mode)
                if option:
                    # One of the filter's options, off.
                    text = cfg.read_text()
                    plugin = '"failover":true,'
                    if plugin not in text:
                        raise RuntimeError("the gateway's plugin configuration has changed: update bench/run.py")
                    cfg.write_text(text.replace(plugin, plugin + option + ',', 1))
                if mode.startswith("gateway-native"):
                    cfg.write_text(stk.native_envoy(cfg.read_text(), self.st.control_plane_port))
            else:
                cfg = self.plain_config(name, port, admin, mode)
            failover = bool(mode) and mode.endswith("-failover")
            r = instructions.measure(self.envoy, cfg, port, admin, self.st.base_id + 20 + i, headers,
                                     failover_body if failover else BODY, CHAT,
                                     self.plan.instr_requests, 50, self.work, name,
                                     settle_s=4.0 if failover else 0.0,
                                     check=routed_through_failover if failover else None,
                                     env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(stk.NATIVE.parent)})
            out.append((label, r))
            threads = ", ".join(f"{t}: {n / r['requests']:.0f}" for t, n in r["threads"].items())
            idle = ", ".join(f"{t}: {n / r['idle_seconds']:.0f}" for t, n in r["idle_threads"].items())
            log(f"instructions {label:24s} {r['per_request']:10.0f} per request net of the idle rate "
                f"(worker {r['worker_per_request']:.0f}), "
                f"{r['raw_per_request']:.0f} raw ({r['requests']} requests in {r['seconds']:.1f} s; "
                f"idle {r['idle_per_s']:.0f}/s = {100 * r['timed_share']:.1f}% of the window); "
                f"per request by thread: {threads}; idle per second by thread: {idle}")
        self.results["instructions"] = out

    def failover_model(self) -> bytes:
        """A model with two deployments (the mock, as two providers): its
        requests go through a failover cluster, healthy path. Its body."""
        self.st.must("POST", "/admin/providers", {"id": "bench-mock-2", "kind": "openai",
                                                  "base_url": f"http://127.0.0.1:{self.st.mock_port}/v1",
                                                  "api_key": "sk-bench-2"})
        self.st.must("POST", "/admin/models", {"id": "bench-failover", "deployments": [
            {"provider": "mock", "upstream_model": "mock-gpt", "priority": 0},
            {"provider": "bench-mock-2", "upstream_model": "mock-gpt", "priority": 1}]})
        return BODY.replace(b'"demo-chat"', b'"bench-failover"')

    def targets(self):
        """(name, port, envoy pid, headers, non-stream body, stream body)."""
        auth = {"authorization": f"Bearer {self.key}", "content-type": "application/json"}
        plain = {"content-type": "application/json"}
        return [
            ("plain", self.plain_port, self.plain_pid, plain, BODY, PLAIN_STREAM_BODY),
            ("gateway", self.st.gateway_port, self.pids["envoy"], auth, BODY, STREAM_BODY),
        ] + ([("native", self.native_port, self.native_pid, auth, BODY, STREAM_BODY)] if self.native else [])

    def same_core(self) -> None:
        """Mode a again with the control plane pinned to CPU 0 beside Envoy:
        the gateway's whole cost on one core (plain Envoy has none to add)."""
        cp = self.pids["cp"]
        procstat.pin_all_threads(cp, {int(ENVOY_CPU)})
        try:
            self.load("e.samecore", self.plan.conc_s, targets=self.targets()[1:])
        finally:
            procstat.pin_all_threads(cp, {CLIENT_CPU})
        self.results[("e.samecore", "plain")] = self.results[("a.conc", "plain")]

    def limited_targets(self):
        auth = {"authorization": f"Bearer {self.limited_key}", "content-type": "application/json"}
        return [("gateway+limits", self.st.gateway_port, self.pids["envoy"], auth, BODY, STREAM_BODY)]

    def translated_targets(self):
        auth = {"authorization": f"Bearer {self.key}", "content-type": "application/json"}
        return [("gateway+anthropic", self.st.gateway_port, self.pids["envoy"], auth, BODY, CLAUDE_STREAM_BODY)]

    def check_answers(self) -> None:
        """One request of each kind to each target, checked, before any load."""
        for name, port, _, headers, body, sbody in self.targets():
            conn = httpclient.Conn(port)
            try:
                r = conn.request("POST", CHAT, headers, body)
                if r.status != 200 or b'"choices"' not in r.body:
                    raise RuntimeError(f"{name}: {r.status} {r.body[:300]!r}")
                for words, events in ((48, 50), (198, 200)):
                    r = conn.request("POST", CHAT, {**headers, "x-mock-words": str(words)}, sbody)
                    n = r.body.count(b"data: ") - r.body.count(b"data: [DONE]")
                    usage = r.body.count(b'"usage":{')
                    if r.status != 200 or not r.body.rstrip().endswith(b"data: [DONE]") or n - usage != events:
                        raise RuntimeError(f"{name} stream: {r.status}, {n} events: {r.body[-300:]!r}")
                    self.results.setdefault("events", {})[(name, words)] = n
            finally:
                conn.close()

    def clear_ledger(self) -> None:
        stk.http("DELETE", f"{self.st.mock}/_mock/ledger")

    # ---------------------------------------------------------------- load
    def load(self, mode: str, seconds: float, extra_headers: dict | None = None, stream: bool = False,
             rate: int | None = None, targets=None) -> None:
        for name, port, epid, headers, body, sbody in targets or self.targets():
            url = f"http://127.0.0.1:{port}{CHAT}"
            hdrs = {**headers, **(extra_headers or {})}
            b = sbody if stream else body
            self.clear_ledger()
            if rate and self.tool != "oha":
                res, cpu = self.python_rate(port, hdrs, b, rate, seconds, epid)
            else:
                loadgen.run(self.tool, url, hdrs, b, self.plan.connections, self.plan.warmup_s, rate)
                meter = procstat.CpuMeter({"envoy": epid, "mock": self.pids["mock"], "cp": self.pids["cp"]}).start()
                res = loadgen.run(self.tool, url, hdrs, b, self.plan.connections, seconds, rate)
                cpu = meter.stop()
            rss = procstat.rss_mib(epid)
            self.results[(mode, name)] = {"res": res, "cpu": cpu, "rss": rss}
            log(f"{mode:10s} {name:8s} {res.rps:8.0f} req/s  p50 {res.p50_ms:6.2f} ms  p99 {res.p99_ms:6.2f} ms  "
                f"non-200 {res.other}  envoy cpu {cpu['envoy']:.2f}s mock {cpu['mock']:.2f}s cp {cpu['cp']:.2f}s "
                f"loadgen {cpu['loadgen']:.2f}s  cpu0 {cpu.get('cpu0%', 0):.0f}% cpu1 {cpu.get('cpu1%', 0):.0f}%  "
                f"rss {rss:.1f} MiB")
            if res.ok == 0 or res.other > res.ok * 0.001:
                raise RuntimeError(f"{mode} {name}: {res.other} failed requests of {res.ok + res.other}")

    def python_rate(self, port, headers, body, rate, seconds, epid):
        """The fixed-rate run when the load generator is wrk (no rate mode)."""
        meter = procstat.CpuMeter({"envoy": epid, "mock": self.pids["mock"], "cp": self.pids["cp"]}).start()
        sl = httpclient.SteadyLoad(port, CHAT, headers, body, rate=rate, threads=8, max_seconds=seconds).start()
        time.sleep(seconds + 0.2)
        sl.stop()
        cpu = meter.stop()
        lat = [s.latency * 1000 for s in sl.samples if s.status == 200]
        ok = len(lat)
        res = loadgen.LoadResult(ok, len(sl.samples) - ok, seconds, ok / seconds, pct(lat, 50), pct(lat, 99), "python")
        return res, cpu

    def ttfb(self, words: int, count: int, label: str) -> None:
        for name, port, epid, headers, _, sbody in self.targets():
            self.clear_ledger()
            before = procstat.cpu_seconds(epid)
            rs = httpclient.sequential(port, CHAT, {**headers, "x-mock-words": str(words)}, sbody, count)
            cpu = procstat.cpu_seconds(epid) - before
            self.results[(label, name)] = {
                "ttfb": [r.ttfb * 1000 for r in rs], "total": [r.total * 1000 for r in rs],
                "cpu_per": cpu / len(rs) * 1000, "n": len(rs)}
            t = self.results[(label, name)]
            log(f"{label:10s} {name:8s} ttfb p50 {pct(t['ttfb'], 50):.3f} p99 {pct(t['ttfb'], 99):.3f} ms  "
                f"total p50 {pct(t['total'], 50):.3f} ms  ({len(rs)} sequential)")

    # ---------------------------------------------------------------- keys at scale
    def keys_at_scale(self) -> None:
        st = self.st
        db = st.work_dir / "data" / "tollgate.db"
        account = self.demo["account"]["id"]
        epid = self.pids["envoy"]
        base_rss = procstat.rss_mib(epid)
        # The control plane shares CPU 1 with the load client and the mock; at
        # nice 19 its snapshot rebuild cannot delay them (it still gets the idle CPU).
        procstat.renice_all_threads(self.pids["cp"], 19)
        have = 0
        self.results["keys_base_rss"] = base_rss
        # The native gateway gets the same snapshots: its memory is read beside.
        # The other gateway Envoys on this control plane get the same
        # snapshots; they are stopped (SIGSTOP) while the gateway's latency
        # is measured, so that their parsing does not take CPU 0 from it, and
        # their memory is read once they have applied the snapshot too.
        bystanders = {name: (proc.popen.pid, self.two_worker_ports[name]) for name, proc in self.two_workers.items()}
        if self.native:
            bystanders["native"] = (self.native_pid, self.native_port)
        rss_base = {name: procstat.rss_mib(pid) for name, (pid, _) in bystanders.items()}
        headers = {"authorization": f"Bearer {self.key}", "content-type": "application/json"}
        for target in self.plan.key_steps:
            # Inserted revoked, so that the control plane's periodic refresh
            # (every 5 s) cannot publish them before the admin write does; made
            # live by one UPDATE right before it.
            now = int(time.time() * 1000)
            con = sqlite3.connect(db, timeout=30)
            try:
                con.executemany(
                    "INSERT INTO api_keys (id, name, account_id, hash, prefix, models, spent_nanos, "
                    "revoked_at_ms, created_at_ms) VALUES (?, ?, ?, ?, 'tg-bench', NULL, 0, 1, ?)",
                    ((f"key_bench_{i:06d}", f"bench {i}", account,
                      hashlib.sha256(f"tollgate-bench-secret-{i}".encode()).hexdigest(), now)
                     for i in range(have + 1, target + 1)))
                con.commit()
            finally:
                con.close()
            have = target
            self.clear_ledger()
            rss_before = procstat.rss_mib(epid)
            for pid, _ in bystanders.values():
                os.kill(pid, signal.SIGSTOP)
            load = httpclient.SteadyLoad(st.gateway_port, CHAT, headers, BODY, rate=200, threads=4,
                                         max_seconds=60).start()
            try:
                time.sleep(2.0)
                con = sqlite3.connect(db, timeout=30)
                try:
                    con.execute("UPDATE api_keys SET revoked_at_ms = NULL WHERE id LIKE 'key_bench_%'")
                    con.commit()
                finally:
                    con.close()
                t_trigger = time.perf_counter()
                new = st.must("POST", "/admin/keys", {"name": f"bench trigger {target}", "account_id": account})
                t_answered = time.perf_counter()
                poll = httpclient.Conn(st.gateway_port)
                new_headers = {"authorization": f"Bearer {new['key']}", "content-type": "application/json"}
                t_applied = None
                try:
                    while time.perf_counter() - t_trigger < 30:
                        r = poll.request("POST", CHAT, new_headers, BODY)
                        if r.status == 200:
                            t_applied = r.t_end
                            break
                        time.sleep(0.005)
                finally:
                    poll.close()
                if t_applied is None:
                    raise RuntimeError(f"{target} keys: the new key was not accepted within 30 s")
                time.sleep(1.0)
            finally:
                load.stop()
                for pid, _ in bystanders.values():
                    os.kill(pid, signal.SIGCONT)
            window = load.window(t_trigger, t_applied + 1.0)
            before = load.window(load.t0 + 0.5, t_trigger - 0.3)
            bad = [s for s in window + before if s.status != 200]
            if bad:
                raise RuntimeError(f"{target} keys: {len(bad)} failed requests during the load: {load.errors[:3]}")
            time.sleep(0.5)
            rss_after = procstat.rss_mib(epid)
            w = [s.latency * 1000 for s in window]
            b = [s.latency * 1000 for s in before]
            self.results[("keys", target)] = {
                "rss_before": rss_before, "rss_after": rss_after, "extra": rss_after - base_rss,
                "rebuild_ms": (t_answered - t_trigger) * 1000, "apply_ms": (t_applied - t_trigger) * 1000,
                "p50": pct(w, 50), "p99": pct(w, 99), "max": max(w), "n": len(w),
                "base_p50": pct(b, 50), "base_p99": pct(b, 99), "base_max": max(b),
            }
            self.results[("keys", target)]["snapshot_mb"] = snapshot_bytes(st, target) / 2**20
            for name, (_, port) in bystanders.items():
                stk.wait_until(lambda: stk.http("POST", f"http://127.0.0.1:{port}{CHAT}", BODY,
                                                headers=new_headers, timeout=5)[0] == 200,
                               timeout=60, what=f"the {name} gateway applying {target} keys")
            time.sleep(0.5)
            self.results[("keys", target)]["others"] = {
                name: procstat.rss_mib(pid) - rss_base[name] for name, (pid, _) in bystanders.items()}
            k = self.results[("keys", target)]
            log(f"keys {target:>7}: rss {rss_before:.1f} -> {rss_after:.1f} MiB, admin write {k['rebuild_ms']:.0f} ms, "
                f"applied after {k['apply_ms']:.0f} ms; window p50 {k['p50']:.2f} p99 {k['p99']:.2f} "
                f"max {k['max']:.2f} ms ({k['n']} req); before p99 {k['base_p99']:.2f} ms")
        procstat.renice_all_threads(self.pids["cp"], 0)

    def stop_perf(self) -> None:
        for proc in (self.plain, self.native, *self.two_workers.values()):
            if proc:
                proc.stop()
        for st in self.stacks:
            st.stop()
        self.stacks.clear()

    # ---------------------------------------------------------------- usage (issue 3)
    def control_plane_only(self, name: str, database_url: str | None = None) -> stk.Stack:
        st = stk.Stack(work_dir=self.work / name, database_url=database_url)
        self.stacks.append(st)
        st.start_control_plane()
        # The process under test on CPU 0, its clients on CPU 1.
        procstat.pin_all_threads(st.procs["control-plane"].popen.pid, {int(ENVOY_CPU)})
        return st

    def versions(self) -> list[tuple[str, Path | None]]:
        """("before", its binary) then ("after", None: this build), or only
        this build without --before."""
        return ([("before", self.before)] if self.before else []) + [("after", None)]

    def control_plane_binary(self, path: Path | None):
        """Makes the stacks started next run `path` (None: this build)."""
        stk.binary = (lambda name: path) if path else ORIGINAL_BINARY

    def ingestion(self) -> None:
        for backend in ("sqlite", "postgres"):
            for version, path in self.versions():
                self.control_plane_binary(path)
                try:
                    self.ingest_on(backend, version)
                finally:
                    self.control_plane_binary(None)

    def ingest_on(self, backend: str, version: str) -> None:
        url = None
        if backend == "postgres":
            self.pg_db = f"tollgate_bench_{os.getpid()}"
            psql(f"CREATE DATABASE {self.pg_db}")
            url = f"postgres://127.0.0.1:5432/{self.pg_db}"
        st = self.control_plane_only(f"ingest-{backend}-{version}", url)
        try:
            account = st.must("POST", "/admin/accounts", {"name": "bench"})
            key = st.must("POST", "/admin/keys", {"name": "bench", "account_id": account["id"]})
            cpid = st.procs["control-plane"].popen.pid
            before = procstat.cpu_seconds(cpid)
            r = usagebench.ingest(st.control_plane, st.filter_secret, key["id"], account["id"],
                                  self.plan.ingest_s)
            r["cp_cpu"] = procstat.cpu_seconds(cpid) - before
            # Exact: the summary (which first drains the rollup's queue)
            # counts every record acknowledged.
            total = st.must("GET", "/admin/usage/summary?group_by=model")["total"]["requests"]
            r["summary_total"] = total
            if total != r["records"]:
                message = f"ingest {backend} {version}: summary has {total} of {r['records']} records"
                if version == "after":
                    raise RuntimeError(message)
                log(message + " (an earlier build: reported, not stopped for)")
            self.results[("ingest", backend) if version == "after" else ("ingest", backend, version)] = r
            log(f"ingest {backend:8s} {version}: {r['per_s']:.0f} records/s ({r['records']} in {r['seconds']:.1f} s, "
                f"control plane cpu {r['cp_cpu']:.1f} s, {r['cp_cpu'] / max(r['records'], 1) * 1e6:.1f} us/record; "
                f"summary total {total})")
        finally:
            st.stop()
            self.stacks.remove(st)
            if backend == "postgres":
                psql(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")
                self.pg_db = None

    def usage_queries(self, backends=("sqlite", "postgres")) -> None:
        for backend in backends:
            self.usage_queries_on(backend)

    def usage_queries_on(self, backend: str) -> None:
        n = self.plan.usage_records
        url = None
        if backend == "postgres":
            self.pg_db = f"tollgate_bench_usage_{os.getpid()}"
            psql(f"CREATE DATABASE {self.pg_db}")
            url = f"postgres://127.0.0.1:5432/{self.pg_db}"
        # With --before, the earlier build makes the schema and answers first;
        # then this one migrates the same data (0010's backfill, timed) and
        # answers the same queries.
        self.control_plane_binary(self.before)
        st = self.control_plane_only(f"usage-{backend}", url)
        try:
            st.procs["control-plane"].stop()
            # The per-key hourly rows (0010) only where the schema has them
            # (a --before binary built earlier may not).
            if backend == "postgres":
                hours = psql_has_table(self.pg_db, "usage_rollup_key_hour")
            else:
                hours = usagebench.sqlite_has_table(st.work_dir / "data" / "tollgate.db", "usage_rollup_key_hour")
            if backend == "postgres":
                secs, rollup_s = usagebench.fill_postgres(self.pg_db, n, hours)
            else:
                secs, rollup_s = usagebench.fill(st.work_dir / "data" / "tollgate.db", n, hours)
            log(f"usage {backend}: {n} records inserted in {secs:.1f} s, rolled up in {rollup_s:.1f} s")
            now = int(time.time())  # the same ranges for both builds
            for version, _ in self.versions():
                if version == "after" and self.before:
                    st.procs["control-plane"].stop()
                    self.control_plane_binary(None)
                    t0 = time.monotonic()
                    st.start_control_plane()
                    log(f"usage {backend}: this build started (migrated) in {time.monotonic() - t0:.1f} s")
                else:
                    st.start_control_plane()
                procstat.pin_all_threads(st.procs["control-plane"].popen.pid, {int(ENVOY_CPU)})
                self.usage_queries_now(st, backend, version, now)
            self.results[("fill", backend)] = (secs, rollup_s)
        finally:
            self.control_plane_binary(None)
            st.stop()
            self.stacks.remove(st)
            if backend == "postgres":
                psql(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")
                self.pg_db = None

    def usage_queries_now(self, st: stk.Stack, backend: str, version: str, now: int) -> None:
        def get(path: str, timeout: float):
            status, _, data = stk.http("GET", f"{st.control_plane}{path}",
                                       headers={"authorization": f"Bearer {st.admin_token}"}, timeout=timeout)
            return status, data

        day = f"&since={now - 2 * 86400}&until={now - 86400}"
        month = f"&since={now - 30 * 86400 + 123}&until={now - 77}"
        queries = []
        for g in ("model", "day", "key", "account"):
            queries.append((f"summary group_by={g}, 30 days", f"/admin/usage/summary?group_by={g}"))
            queries.append((f"summary group_by={g}, 30 days cut mid-hour", f"/admin/usage/summary?group_by={g}{month}"))
            queries.append((f"summary group_by={g}, 1 day", f"/admin/usage/summary?group_by={g}{day}"))
        queries += [("summary group_by=key model=model-03, 30 days",
                     "/admin/usage/summary?group_by=key&model=model-03"),
                    ("summary group_by=key model=model-03, 30 days cut mid-hour",
                     f"/admin/usage/summary?group_by=key&model=model-03{month}"),
                    ("summary group_by=model key_id=key_0042, 30 days",
                     "/admin/usage/summary?group_by=model&key_id=key_0042"),
                    ("summary group_by=model key_id=key_0042, 30 days cut mid-hour",
                     f"/admin/usage/summary?group_by=model&key_id=key_0042{month}"),
                    ("list model=model-03&limit=100", "/admin/usage?model=model-03&limit=100"),
                    ("list key_id=key_0042", "/admin/usage?key_id=key_0042")]
        if self.plan.usage_records <= 2_000_000:
            # From the records, not the rollup: 34 s each at 10M on SQLite.
            queries += [("streams (first token, estimated), 30 days", f"/admin/usage/streams?{month[1:]}"),
                        ("streams (first token, estimated), 1 day", f"/admin/usage/streams?{day[1:]}")]
        key = ("queries", backend) if version == "after" else ("queries", backend, version)
        self.results[key] = usagebench.time_queries(get, queries)
        for label, ms, rows in self.results[key]:
            log(f"usage query {backend} {version} {label:46s} {ms:9.1f} ms ({rows} rows)")

    # ---------------------------------------------------------------- the whole run
    def run(self, proxy_only: bool = False) -> None:
        p = self.plan
        self.prepare()
        log(f"load generator: {self.tool}; control plane and mock: {self.build}")
        self.start_gateway()
        self.start_plain()
        self.start_native()
        self.check_answers()
        log("every target answers; measuring")
        self.load("a.conc", p.conc_s)
        self.same_core()
        self.load("b.rate", p.rate_s, rate=p.rate)
        if not proxy_only:
            self.load("a.conc", p.conc_s, targets=self.limited_targets())
            self.load("b.rate", p.rate_s, rate=p.rate, targets=self.limited_targets())
        self.load("c.stream", p.stream_s, {"x-mock-words": "48"}, stream=True)
        if not proxy_only:
            self.load("c.stream", p.stream_s, {"x-mock-words": "48"}, stream=True,
                      targets=self.translated_targets())
        self.ttfb(48, p.ttfb_n, "c.ttfb")
        self.load("d.sse200", p.sse200_s, {"x-mock-words": "198"}, stream=True)
        self.ttfb(198, p.sse200_n, "d.seq")
        if proxy_only:
            return
        self.instructions()
        self.start_two_worker_envoys()
        self.keys_at_scale()
        self.stop_perf()
        self.ingestion()
        self.usage_queries()

    def cleanup(self) -> None:
        for st in self.stacks:
            try:
                st.stop()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        for proc in (self.plain, self.native, *self.two_workers.values()):
            if proc:
                proc.stop()
        if self.pg_db:
            try:
                psql(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")
            except Exception:  # noqa: BLE001
                pass


def snapshot_bytes(st: stk.Stack, min_keys: int) -> int:
    """Size of the last snapshot with at least `min_keys` keys, from the
    control plane's "config published" log line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", st.procs["control-plane"].log_path.read_text(errors="replace"))
    size = 0
    for m in re.finditer(r"config published .*?keys=(\d+).*?bytes=(\d+)", text):
        if int(m.group(1)) >= min_keys:
            size = int(m.group(2))
    return size


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-d", "test", "-v", "ON_ERROR_STOP=1", "-qc", sql],
                   check=True, timeout=60)


def psql_has_table(dbname: str, table: str) -> bool:
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-d", dbname, "-tAc",
                          f"SELECT 1 FROM pg_tables WHERE tablename = '{table}'"],
                         check=True, timeout=60, capture_output=True, text=True).stdout
    return out.strip() == "1"


# -------------------------------------------------------------------- report
def keys_section(R, p, w) -> None:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    w("keys at scale (gateway; steady 200 rps of demo-key requests while the new snapshot is applied)")
    w(f"  Envoy RSS with the demo snapshot: {R['keys_base_rss']:.1f} MiB")
    w(f"  {'keys':>8s} {'snapshot':>9s} {'RSS MiB':>8s} {'extra':>7s} {'admin write':>12s} {'applied':>9s} "
      f"{'window p50':>11s} {'p99':>7s} {'max':>7s} {'n':>4s} {'before p99':>11s}")
    last = None
    for target in p.key_steps:
        k = R[("keys", target)]
        last = k
        w(f"  {target:>8d} {k['snapshot_mb']:>6.1f} MB {k['rss_after']:>8.1f} {k['extra']:>7.1f} {k['rebuild_ms']:>9.0f} ms "
          f"{k['apply_ms']:>6.0f} ms {k['p50']:>8.2f} ms {k['p99']:>7.2f} {k['max']:>7.2f} {k['n']:>4d} "
          f"{k['base_p99']:>8.2f} ms")
    top = p.key_steps[-1]
    w(f"  {verdict(last['extra'] <= 64)}  <= 64 MiB extra Envoy memory at {top} keys: {last['extra']:.1f} MiB"
      + ("" if top == 100_000 else "  (quick run: not 100k)"))
    others = last.get("others", {})
    if "native" in others:
        w(f"  {verdict(others['native'] <= 64)}  native gateway (same snapshots, no load): <= 64 MiB extra at"
          f" {top} keys: {others['native']:.1f} MiB")
    for name, extra in others.items():
        if name != "native":
            w(f"  {name:18s} (same snapshots, no load): {extra:.1f} MiB extra at {top} keys")
    worst = max(R[("keys", t)]["p99"] for t in p.key_steps)
    w(f"  {verdict(worst <= 5)}  no p99 latency spike over 5 ms while applying: worst window p99 {worst:.2f} ms")
    w("  (admin write: POST /admin/keys until its answer, i.e. the rebuild of the snapshot; applied: from that")
    w("   POST until the gateway first answers 200 for the new key, polled every 5 ms)")
    w("")



def routed_through_failover(admin_port: int, requests: int) -> None:
    """The measured requests went to a failover cluster (not the forward proxy)."""
    _, _, text = stk.http("GET", f"http://127.0.0.1:{admin_port}/stats?filter=^cluster\\.tg_.*\\.upstream_rq_total$")
    total = sum(int(line.rsplit(":", 1)[1]) for line in text.decode().splitlines() if ":" in line)
    if total < requests:
        raise RuntimeError(f"failover run: only {total} requests went to a failover cluster")


def instructions_section(R, p, w) -> None:
    rows = R.get("instructions")
    if not rows:
        w("instructions per request: not measured (valgrind missing)")
        w("")
        return
    base = rows[0][1]["per_request"]
    w(f"instructions per request (callgrind; Envoy --concurrency 1, {p.instr_requests} sequential non-stream requests"
      " on one connection after 50; every thread, V8's code too)")
    w(f"  {'target':28s}{'instructions':>14s}{'/ plain':>10s}{'plain / it':>12s}{'raw':>12s}{'timed':>8s}"
      f"{'worker':>10s}")
    for label, r in rows:
        w(f"  {label:28s}{r['per_request']:14.0f}{r['per_request'] / base:9.2f}x{100 * base / r['per_request']:11.1f}%"
          f"{r['raw_per_request']:12.0f}{100 * r['timed_share']:7.1f}%{r['worker_per_request']:10.0f}")
    w("  'instructions': the window's count less the same Envoy's idle instructions per second times the window's")
    w("  seconds (timers, polls, the native module's ticks), per request; 'raw': the whole window's count per")
    w("  request; 'timed': the share taken out; 'worker': Envoy's worker thread alone, net of its own idle rate")
    w("  (every filter callback runs there; the native module's threads and Envoy's main thread are not in it).")
    w("  'plain / it' is the throughput one Envoy core would keep if instructions were all that counted;")
    w("  the empty filter and the filter that only reads the body are the floor of any proxy-wasm filter in V8;")
    w("  'no access-log copy' is the gateway with usage_in_access_log false (the record is not put in filter state).")
    worker_base = rows[0][1]["worker_per_request"]
    by = {label: (r["worker_per_request"] / worker_base, r["per_request"] / base) for label, r in rows}
    for label, want in (("gateway", 1.8), ("native gateway", 1.15)):
        if label in by and rows[0][0] == "plain":
            worker, net = by[label]
            w(f"  {'PASS' if worker <= want else 'MISS'}  {label} <= {want}x plain (issue 13), on the worker thread:"
              f" {worker:.2f}x (all threads, net: {net:.2f}x)")
    w("")


def report(b: Bench, quick: bool, started: str, load_avg: str) -> str:
    R, p = b.results, b.plan
    out: list[str] = []
    w = out.append
    w(f"Tollgate benchmark, {'QUICK smoke run' if quick else 'full run'}, {started}")
    w(f"machine: {os.cpu_count()} cores, load average at start {load_avg}. Each Envoy: --concurrency 1, pinned to CPU 0")
    w(f"  (taskset -c 0). The load generator ({b.tool}), the mock upstream, the control plane and the Python")
    w("  clients share CPU 1 (in mode e the control plane is on CPU 0 too). Only one target is driven at a time.")
    w("  wasm: the gateway with the proxy-wasm filter; native: the gateway with the dynamic module, the same")
    w("  control plane and configuration.")
    w(f"builds: control plane + mock {b.build}; filter {b.wasm_info}")
    w("")

    proxy_table.modes_table(R, p, w)
    proxy_table.targets_section(R, p, w)
    instructions_section(R, p, w)
    keys_section(R, p, w)
    w("limit check (issue 4): the gateway with a key that has rpm, tpm and max_concurrent (never reached)")
    w("  against the demo key (no limits), same runs as modes a and b")
    for mode, label in (("a.conc", "a. 32 conns"), ("b.rate", f"b. {p.rate} rps")):
        base, lim = R[(mode, "gateway")], R[(mode, "gateway+limits")]
        cpu_b = base["cpu"]["envoy"] / base["res"].ok * 1e6
        cpu_l = lim["cpu"]["envoy"] / lim["res"].ok * 1e6
        w(f"  {label:14s} req/s {base['res'].rps:8.0f} -> {lim['res'].rps:8.0f}   p50 {base['res'].p50_ms:.3f} -> "
          f"{lim['res'].p50_ms:.3f} ms   p99 {base['res'].p99_ms:.3f} -> {lim['res'].p99_ms:.3f} ms   "
          f"Envoy CPU {cpu_b:.0f} -> {cpu_l:.0f} us/req ({cpu_l - cpu_b:+.0f})")
    w("")

    base, tr = R[("c.stream", "gateway")], R[("c.stream", "gateway+anthropic")]
    cpu_b = base["cpu"]["envoy"] / base["res"].ok * 1000
    cpu_t = tr["cpu"]["envoy"] / tr["res"].ok * 1000
    w("translated streams (issue 15): an OpenAI client, 50-chunk streams from an Anthropic-shaped provider")
    w("  (the mock's /v1/messages, translated event by event) against the same streams untranslated, mode c")
    w(f"  req/s {base['res'].rps:8.0f} -> {tr['res'].rps:8.0f}   p50 {base['res'].p50_ms:.3f} -> {tr['res'].p50_ms:.3f} ms"
      f"   Envoy CPU per stream {cpu_b:.3f} -> {cpu_t:.3f} ms ({cpu_t / cpu_b:.2f}x)")
    w("")
    w("SSE counting overhead (issue 3), 200-chunk streams: see mode d above")
    sp = pct(R[("d.seq", "plain")]["total"], 50)
    sg = pct(R[("d.seq", "gateway")]["total"], 50)
    cp = R[("d.sse200", "plain")]["cpu"]["envoy"] / R[("d.sse200", "plain")]["res"].ok * 1000
    cg = R[("d.sse200", "gateway")]["cpu"]["envoy"] / R[("d.sse200", "gateway")]["res"].ok * 1000
    w(f"  total stream time p50 {sp:.3f} -> {sg:.3f} ms ({sg - sp:+.3f} ms); Envoy CPU per stream "
      f"{cp:.3f} -> {cg:.3f} ms ({cg - cp:+.3f} ms, {(cg - cp) / 200 * 1000:.2f} us per event)")
    w("")
    w(f"usage ingestion (POST /internal/usage, batches of 200, 4 Python threads, {p.ingest_s:g} s;"
      " control plane on CPU 0)")
    for backend in ("sqlite", "postgres"):
        r = R[("ingest", backend)]
        us = r['cp_cpu'] / max(r['records'], 1) * 1e6
        w(f"  {backend:9s} {r['per_s']:8.0f} records/s   ({r['records']} records, {r['batches']} batches; "
          f"control plane CPU {r['cp_cpu']:.1f} s in {r['seconds']:.1f} s: {us:.1f} us/record)")
    w("")
    usage_section(R, p, w)
    return "\n".join(out) + "\n"


def usage_section(R: dict, p, w) -> None:
    for backend in ("sqlite", "postgres"):
        if ("queries", backend) not in R:
            continue
        secs, rollup_s = R[("fill", backend)]
        w(f"admin usage queries over {p.usage_records:,} records on {backend} (50 models, 1000 keys, 100 accounts,"
          f" 30 days; inserted in {secs:.0f} s, rolled up in {rollup_s:.0f} s), median of 3")
        before = {label: ms for label, ms, _ in R.get(("queries", backend, "before"), [])}
        if before:
            w(f"  {'':48s} {'before':>9s}    {'after':>9s}")
        for label, ms, rows in R[("queries", backend)]:
            was = f"{before[label]:9.1f} ms -> " if label in before else ""
            w(f"  {label:48s} {was}{ms:9.1f} ms   ({rows} rows)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a ~1 minute smoke run with short durations")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    ap.add_argument("--keys-only", action="store_true",
                    help="only the keys-at-scale part (10k and 100k keys), against the gateway")
    ap.add_argument("--ingest-only", action="store_true",
                    help="only usage ingestion into the control plane, SQLite and PostgreSQL")
    ap.add_argument("--usage-only", action="store_true",
                    help="only the usage summaries over --usage-records records, SQLite and PostgreSQL")
    ap.add_argument("--usage-records", type=int, default=None, help="records for the usage summaries")
    ap.add_argument("--usage-on", default="sqlite,postgres",
                    help="the databases of --usage-only, comma-separated (default both)")
    ap.add_argument("--before", type=Path, default=None,
                    help="a control plane binary built earlier: ingestion and usage queries run it too, before this build")
    ap.add_argument("--proxy-only", action="store_true",
                    help="only modes a-e (plain, wasm and native side by side) and the sequential TTFB runs")
    ap.add_argument("--instructions-only", action="store_true",
                    help="only instructions per request under callgrind (plain, empty filter, gateway)")
    ap.add_argument("--instructions-targets", default="",
                    help="with --instructions-only, only these runs, e.g. plain,gateway,gateway-native")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    if args.usage_records:
        plan = dataclasses.replace(plan, usage_records=args.usage_records)

    # This process and everything it starts run on CPU 1, except Envoy (taskset -c 0).
    os.sched_setaffinity(0, {CLIENT_CPU})

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_avg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    work = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    bench = Bench(plan, work)
    bench.before = args.before.resolve() if args.before else None
    bench.only = [t for t in args.instructions_targets.split(",") if t]
    log(f"work directory {work}")
    ok = False
    try:
        if args.keys_only:
            bench.prepare()
            bench.start_gateway()
            bench.start_native()
            bench.start_two_worker_envoys()
            bench.keys_at_scale()
        elif args.ingest_only:
            bench.prepare(load_generator=False)
            bench.ingestion()
        elif args.usage_only:
            bench.prepare(load_generator=False)
            bench.usage_queries(tuple(args.usage_on.split(",")))
        elif args.proxy_only:
            bench.run(proxy_only=True)
        elif args.instructions_only:
            # Requests go one at a time from the benchmark itself: no load generator.
            bench.prepare(load_generator=False)
            bench.start_gateway()
            bench.instructions()
        else:
            bench.run()
        ok = True
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        bench.cleanup()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"logs and databases kept in {work}")
    if args.keys_only:
        lines: list[str] = [f"Tollgate benchmark, keys at scale only, {started}; load average at start {load_avg}"]
        keys_section(bench.results, plan, lines.append)
        print("\n".join(lines))
        return 0
    if args.instructions_only:
        lines = [f"Tollgate benchmark, instructions only, {started}; filter {bench.wasm_info}"]
        instructions_section(bench.results, plan, lines.append)
        print("\n".join(lines))
        return 0
    if args.usage_only:
        lines = [f"Tollgate benchmark, usage summaries only, {started}; load average at start {load_avg}"]
        usage_section(bench.results, plan, lines.append)
        print("\n".join(lines))
        return 0
    if args.ingest_only:
        for backend in ("sqlite", "postgres"):
            for version, _ in bench.versions():
                r = bench.results[("ingest", backend) if version == "after" else ("ingest", backend, version)]
                us = r['cp_cpu'] / max(r['records'], 1) * 1e6
                print(f"ingest {backend:9s} {version:6s} {r['per_s']:8.0f} records/s   ({r['records']} records; "
                      f"control plane CPU {r['cp_cpu']:.1f} s in {r['seconds']:.1f} s: {us:.1f} us/record, "
                      f"{1e6 / max(us, 1e-9):,.0f} records/s per core of it)")
        return 0
    if args.proxy_only:
        lines = [f"Tollgate benchmark, proxying only, {started}; load average at start {load_avg}; "
                 f"filter {bench.wasm_info}; native {stk.NATIVE.relative_to(ROOT)}"]
        proxy_table.modes_table(bench.results, plan, lines.append)
        proxy_table.targets_section(bench.results, plan, lines.append)
        print("\n".join(lines))
        return 0
    table = report(bench, args.quick, started, load_avg)
    print("\n" + table, end="")
    out = BENCH / "results" / ("quick.txt" if args.quick else "latest.txt")
    out.parent.mkdir(exist_ok=True)
    out.write_text(table)
    log(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
