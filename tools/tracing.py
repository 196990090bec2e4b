"""Envoy's traces, for envoy/envoy.template.yaml: off unless an OTLP/HTTP
endpoint is given (TOLLGATE_OTLP_ENDPOINT, e.g. http://otel-collector:4318).
On, the connection manager gets Envoy's OpenTelemetry tracer exporting to
`<endpoint>/v1/traces`, the span carries the request id the filter minted and
the GenAI attributes, and a json_to_metadata filter after the wasm filter
copies the rewritten body's `model` (the model the provider is asked for)
into dynamic metadata for the span (the wasm filter cannot set dynamic
metadata Envoy reads, ENVOY-NOTES.md). After it, not before: the filter
answers an oversized body itself first, and reads the body once.
Standard library only."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

ENV = "TOLLGATE_OTLP_ENDPOINT"
# Of the requests, the share traced (percent), TOLLGATE_OTLP_SAMPLING.
SAMPLING_ENV = "TOLLGATE_OTLP_SAMPLING"
CLUSTER = "tollgate_otlp"

OFF = {"TRACING": "", "TRACING_FILTERS": "", "TRACING_CLUSTERS": ""}


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(f"\n{pad}{line}" if line else "\n" for line in text.strip("\n").splitlines())


def values(endpoint: str | None = None, sampling: float | None = None, service: str = "tollgate-gateway") -> dict[str, str]:
    """The template's TRACING, TRACING_FILTERS and TRACING_CLUSTERS, from the
    arguments or else the environment; all empty when no endpoint is set."""
    endpoint = endpoint if endpoint is not None else os.environ.get(ENV, "")
    if not endpoint:
        return dict(OFF)
    if sampling is None:
        sampling = float(os.environ.get(SAMPLING_ENV, "100"))
    if not 0 <= sampling <= 100:
        raise ValueError(f"{SAMPLING_ENV} must be a percentage, not {sampling}")
    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{ENV} must be an OTLP/HTTP URL like http://otel-collector:4318, not {endpoint!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    path = url.path.rstrip("/") + "/v1/traces"
    tracing = f"""
tracing:
  random_sampling: {{ value: {sampling} }}
  # The filter mints x-request-id after the connection manager looked at
  # it: sampling does not depend on it, and it is never rewritten.
  provider:
    name: envoy.tracers.opentelemetry
    typed_config:
      "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
      service_name: {service}
      http_service:
        http_uri:
          uri: "{url.scheme}://{url.netloc}{path}"
          cluster: {CLUSTER}
          timeout: 2s
  # Read when the span ends, so what the filter set on the request counts.
  custom_tags:
  - tag: tollgate.request_id
    request_header: {{ name: x-request-id }}
  - tag: gen_ai.request.model
    metadata:
      kind: {{ request: {{}} }}
      metadata_key: {{ key: tollgate, path: [{{ key: model }}] }}
  - tag: gen_ai.operation.path
    request_header: {{ name: ":path" }}
  - tag: server.address
    request_header: {{ name: ":authority" }}
request_id_extension:
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig
    pack_trace_reason: false
    use_request_id_for_trace_sampling: false
"""
    filters = """
# Traces only: the model of the body the filter rewrote (the provider's
# model) into dynamic metadata (tollgate.model) for gen_ai.request.model.
- name: envoy.filters.http.json_to_metadata
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.json_to_metadata.v3.JsonToMetadata
    request_rules:
      rules:
      - selectors: [{ key: model }]
        on_present: { metadata_namespace: tollgate, key: model, type: STRING }
"""
    tls = ""
    if url.scheme == "https":
        tls = f"""
  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
      sni: {url.hostname}"""
    clusters = f"""
# The OpenTelemetry collector (traces only).
- name: {CLUSTER}
  type: STRICT_DNS
  connect_timeout: 1s
  load_assignment:
    cluster_name: {CLUSTER}
    endpoints:
    - lb_endpoints:
      - endpoint:
          address:
            socket_address: {{ address: {url.hostname}, port_value: {port} }}{tls}
"""
    return {
        "TRACING": _indent(tracing, 10),
        "TRACING_FILTERS": _indent(filters, 10),
        "TRACING_CLUSTERS": _indent(clusters, 2),
    }
