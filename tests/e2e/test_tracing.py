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
