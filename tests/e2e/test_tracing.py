"""Envoy's traces (tools/tracing.py): off by default (the rendered config has
no tracer), on with an OTLP/HTTP endpoint; real Envoy accepts the config
(`--mode validate`, which also configures the filter), and a gateway with
traces on sends a collector spans that carry the request id the filter
minted and the model the provider was asked for."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading

import yaml

from .helpers import chat_body, stackmod

tracing = stackmod.tracing


def hcm(rendered: str) -> dict:
    config = yaml.safe_load(rendered)
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_traces_are_off_unless_an_endpoint_is_given():
    off = stackmod.render_compose()
    assert "tracing" not in hcm(off) and tracing.CLUSTER not in off
    on = hcm(stackmod.render_compose("http://otel-collector:4318"))
    assert on["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"
    tags = {t["tag"]: t for t in on["tracing"]["custom_tags"]}
    assert tags["tollgate.request_id"]["request_header"]["name"] == "x-request-id"
    assert tags["gen_ai.request.model"]["metadata"]["metadata_key"] == {"key": "tollgate", "path": [{"key": "model"}]}
    # After the filter: it refuses oversized bodies first and rewrites `model`.
    assert [f["name"] for f in on["http_filters"]][:2] == ["envoy.filters.http.wasm", "envoy.filters.http.json_to_metadata"]
    for bad in ("otel-collector:4318", "grpc://x:4317"):
        try:
            tracing.values(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} accepted")


def test_real_envoy_accepts_the_config_with_traces_on(tmp_path):
    for endpoint in ("http://otel-collector:4318", "https://otlp.example.com/otlp"):
        rendered = stackmod.render_compose(endpoint).replace(
            stackmod.COMPOSE_VALUES["WASM_PATH"], str(stackmod.WASM))
        path = tmp_path / "envoy.yaml"
        path.write_text(rendered)
        done = subprocess.run([str(stackmod.envoy_binary()), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
                              env={**os.environ, "TOLLGATE_FILTER_SECRET": "validate-only-secret-0123456789"},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "OK" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


def attribute(key: str, value: str) -> bytes:
    """An OTLP KeyValue with a string value, as protobuf bytes (key: field 1;
    value: field 2, an AnyValue whose string_value is its field 1), for
    strings under 128 bytes."""
    k, v = key.encode(), value.encode()
    return b"\n" + bytes([len(k)]) + k + b"\x12" + bytes([len(v) + 2]) + b"\n" + bytes([len(v)]) + v


class Collector:
    """An OTLP/HTTP receiver: keeps the body of every POST /v1/traces."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        bodies = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    data = b""
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    data = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/v1/traces":
                    bodies.append(data)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_gateway_with_traces_on_exports_spans_with_the_request_id_and_model(tmp_path):
    collector = Collector()
    stack = stackmod.Stack(work_dir=tmp_path / "traced", otlp_endpoint=collector.url)
    try:
        with stack.running():
            key = stack.demo["key"]["key"]
            ids = []
            for stream in (False, True):
                body = json.loads(chat_body())
                body["stream"] = stream
                status, headers, _ = stackmod.http("POST", f"{stack.gateway}/v1/chat/completions", body,
                                                   {"authorization": f"Bearer {key}"})
                assert status == 200
                ids.append(headers["x-request-id"])
            spans = stackmod.wait_until(lambda: b"".join(collector.bodies) if all(
                attribute("tollgate.request_id", i) in b"".join(collector.bodies) for i in ids) else None,
                timeout=20, interval=0.5, what="the spans at the collector")
            assert spans.count(attribute("gen_ai.request.model", "mock-demo-chat")) >= 2
            assert attribute("service.name", "tollgate-gateway") in spans
    finally:
        collector.close()


def fields(data: bytes):
    """The (field number, value) pairs of a protobuf message: varints as
    ints, length-delimited fields as bytes (fixed-width ones skipped)."""
    i = 0
    while i < len(data):
        tag, i = varint(data, i)
        number, kind = tag >> 3, tag & 7
        if kind == 0:
            value, i = varint(data, i)
        elif kind == 2:
            size, i = varint(data, i)
            value, i = data[i:i + size], i + size
        elif kind in (1, 5):
            value, i = None, i + (8 if kind == 1 else 4)
        else:
            raise ValueError(f"wire type {kind}")
        yield number, value


def varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def string_attributes(message: bytes, number: int) -> dict[str, str]:
    out = {}
    for n, kv in fields(message):
        if n == number:
            kv = dict(fields(kv))
            value = dict(fields(kv.get(2, b"")))
            out[kv[1].decode()] = value.get(1, b"").decode() if isinstance(value.get(1), bytes) else value.get(3)
    return out


def spans_of(bodies: list[bytes]) -> list[dict]:
    """Every span in OTLP ExportTraceServiceRequest bodies: its service,
    name, trace and parent ids and string attributes."""
    out = []
    for body in bodies:
        for n, resource_spans in fields(body):
            if n != 1:
                continue
            parts = list(fields(resource_spans))
            resource = next((v for k, v in parts if k == 1), b"")
            service = string_attributes(resource, 1).get("service.name")
            for scope_spans in (v for k, v in parts if k == 2):
                for span in (v for k, v in fields(scope_spans) if k == 2):
                    f = list(fields(span))
                    one = dict(f)
                    out.append({"service": service, "name": one.get(5, b"").decode(), "trace": one.get(1, b"").hex(),
                                "span": one.get(2, b"").hex(), "parent": one.get(4, b"").hex(),
                                "attributes": string_attributes(span, 9)})
    return out


def test_the_control_plane_exports_its_spans_in_the_gateway_trace(tmp_path):
    """With TOLLGATE_OTLP_ENDPOINT the control plane exports a span per
    request (named by method and route, never the raw path), and a keyed
    request that came through Envoy is a child in Envoy's trace; a bad
    endpoint stops the control plane at start with a message naming it."""
    collector = Collector()
    stack = stackmod.Stack(work_dir=tmp_path / "traced", otlp_endpoint=collector.url,
                           control_plane_extra_env={"TOLLGATE_OTLP_ENDPOINT": collector.url})
    try:
        with stack.running():
            key = stack.demo["key"]["key"]
            status, headers, _ = stackmod.http("GET", f"{stack.gateway}/v1/models", None, {"authorization": f"Bearer {key}"})
            assert status == 200
            rid = headers["x-request-id"]
            assert stack.admin("GET", "/admin/accounts?limit=1")[0] == 200

            def both():
                spans = spans_of(collector.bodies)
                mine = [s for s in spans if s["attributes"].get("tollgate.request_id") == rid]
                services = {s["service"] for s in mine}
                return mine if {"tollgate-gateway", "tollgate-control-plane"} <= services else None

            mine = stackmod.wait_until(both, timeout=20, interval=0.5, what="both services' spans of one request")
            cp = next(s for s in mine if s["service"] == "tollgate-control-plane")
            gw = next(s for s in mine if s["service"] == "tollgate-gateway")
            assert cp["name"] == "GET /v1/models" and cp["attributes"]["http.route"] == "/v1/models"
            assert cp["trace"] == gw["trace"] and cp["parent"], "the control plane's span is in Envoy's trace"
            admin = stackmod.wait_until(
                lambda: [s for s in spans_of(collector.bodies) if s["name"] == "GET /admin/accounts"] or None,
                timeout=20, interval=0.5, what="the admin request's span")
            assert admin[0]["service"] == "tollgate-control-plane"
            assert all("?" not in s["name"] for s in spans_of(collector.bodies)), "no query in a span name"
    finally:
        collector.close()
    bad = subprocess.run([str(stackmod.binary("tollgate-control-plane"))], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "TOLLGATE_OTLP_ENDPOINT": "https://otel:4318"})
    assert bad.returncode != 0 and "TOLLGATE_OTLP_ENDPOINT" in bad.stderr, bad.stderr[-2000:]
