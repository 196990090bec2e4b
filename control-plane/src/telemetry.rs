//! Logs and traces. Logs go to stderr (`RUST_LOG`, default `info`). Traces
//! are off unless `TOLLGATE_OTLP_ENDPOINT` names an OTLP/HTTP collector
//! (`http://otel-collector:4318`, the variable Envoy's tracer reads too,
//! `tools/tracing.py`): then every `tracing` span (one per HTTP request, the
//! snapshot builds) is exported to `<endpoint>/v1/traces` as protobuf, in
//! batches from a thread of its own, as service `tollgate-control-plane`.
//! A request that carries W3C `traceparent` (Envoy's tracer sets it on what
//! it forwards) gets its span as a child of the caller's, so a data-path
//! request to `/v1/models` is one trace through Envoy and the control plane.

use anyhow::{bail, Context};
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub const ENDPOINT_ENV: &str = "TOLLGATE_OTLP_ENDPOINT";
/// The share of traces kept, in percent (default 100), as for Envoy.
pub const SAMPLING_ENV: &str = "TOLLGATE_OTLP_SAMPLING";
const SERVICE: &str = "tollgate-control-plane";

/// Holds the exporter: dropping it sends what is still queued.
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("traces not all exported at exit: {e}");
            }
        }
    }
}

/// `<endpoint>/v1/traces` from an OTLP/HTTP base URL, or why not. Plain
/// `http` only: the exporter is built without TLS (a collector beside the
/// control plane, or a sidecar, is the usual place).
pub fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(endpoint)
        .with_context(|| format!("{ENDPOINT_ENV} must be a URL like http://otel-collector:4318"))?;
    if url.scheme() != "http" || url.host_str().is_none_or(str::is_empty) {
        bail!(
            "{ENDPOINT_ENV} must be a plain http:// OTLP/HTTP URL like http://otel-collector:4318, not {endpoint:?}"
        );
    }
    Ok(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
}

/// The sampling ratio (0..=1) from a percentage.
pub fn sampling(value: Option<&str>) -> anyhow::Result<f64> {
    let Some(value) = value else { return Ok(1.0) };
    match value.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => bail!("{SAMPLING_ENV} must be a percentage from 0 to 100, not {value:?}"),
    }
}

/// Sets up logging and, if asked, trace export; fails with what is wrong
/// in the settings.
pub fn init() -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let endpoint = std::env::var(ENDPOINT_ENV)
        .ok()
        .filter(|e| !e.trim().is_empty());
    let Some(endpoint) = endpoint else {
        tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .try_init()?;
        return Ok(Telemetry(None));
    };
    let url = traces_url(&endpoint)?;
    let ratio = sampling(std::env::var(SAMPLING_ENV).ok().as_deref())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.as_str())
        .with_timeout(std::time::Duration::from_secs(2))
        .build()
        .context("building the OTLP exporter")?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(SERVICE)
                .build(),
        )
        .build();
    let traces = tracing_opentelemetry::layer().with_tracer(provider.tracer(SERVICE));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()?;
    tracing::info!(endpoint = %url, "exporting traces");
    Ok(Telemetry(Some(provider)))
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span of one HTTP request, named `METHOD route` (the route's
/// template, never the path with its ids or query), carrying the
/// request id the gateway minted and the caller's trace as parent.
pub fn request_span(req: &Request) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let method = req.method().as_str();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        tollgate.request_id = request_id,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(req.headers()));
    let _ = span.set_parent(parent);
    span
}

/// Records the answer's status on the request's span; a 5xx is an error.
pub fn record_status(status: u16, span: &Span) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_and_sampling_are_checked() {
        assert_eq!(
            traces_url("http://otel:4318/").unwrap(),
            "http://otel:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://otel:4318/base").unwrap(),
            "http://otel:4318/base/v1/traces"
        );
        for bad in [
            "otel:4318",
            "https://otel:4318",
            "grpc://otel:4317",
            "http://",
        ] {
            let e = traces_url(bad).unwrap_err().to_string();
            assert!(e.contains(ENDPOINT_ENV), "{bad}: {e}");
        }
        assert_eq!(sampling(None).unwrap(), 1.0);
        assert_eq!(sampling(Some("25")).unwrap(), 0.25);
        for bad in ["-1", "101", "x", ""] {
            assert!(sampling(Some(bad)).is_err(), "{bad}");
        }
    }
}
