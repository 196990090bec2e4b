//! The data path's metrics, as Envoy stats (`wasmcustom.tollgate_*`): what
//! each finished request adds, worked out here as plain values; the host
//! defines each stat once and writes it. Labels are baked into the stat
//! name as `.<label>.<value>` pairs, and the bootstrap's `stats_tags` take
//! them out again, so that Prometheus (`/stats/prometheus`) sees
//! `envoy_tollgate_requests{model="..",provider="..",operation="..",status_class=".."}`.
//! Durations are histograms in milliseconds (time per output token in
//! microseconds), with the OpenTelemetry GenAI buckets set in the bootstrap's
//! `histogram_bucket_settings`. docs/metrics.md lists every series.

use tollgate_contract::usage::UsageRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Histogram,
}

/// One write: add `value` to a counter, or record it in a histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub name: String,
    pub kind: Kind,
    pub value: u64,
}

/// The most distinct stat names one worker defines; past it, new label
/// values are counted under `other` (a bound on cardinality).
pub const MAX_SERIES: usize = 4_000;

/// A label value as a stat name can carry it: letters, digits, `-` and `_`
/// (a `.` would end the value), at most 64 bytes; empty is `none`.
pub fn label(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

/// The `status_class` label of a status.
fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

fn counter(name: String, value: u64) -> Update {
    Update {
        name,
        kind: Kind::Counter,
        value,
    }
}

fn histogram(name: String, value: u64) -> Update {
    Update {
        name,
        kind: Kind::Histogram,
        value,
    }
}

/// What one finished request adds per key (`metrics_per_key`): requests by
/// status class, tokens by type and cost in nano-dollars.
pub fn for_key(r: &UsageRecord) -> Vec<Update> {
    let key = label(&r.key_id);
    let class = status_class(r.status);
    let mut out = vec![counter(
        format!("tollgate_key_requests.key.{key}.status_class.{class}"),
        1,
    )];
    for (kind, n) in [("input", r.input_tokens), ("output", r.output_tokens)] {
        if n > 0 {
            out.push(counter(
                format!("tollgate_key_tokens.key.{key}.type.{kind}"),
                n,
            ));
        }
    }
    if r.cost_nanos > 0 {
        out.push(counter(
            format!("tollgate_key_cost_nanos.key.{key}"),
            r.cost_nanos,
        ));
    }
    out
}

/// What one finished request adds. `operation`: the client's endpoint
/// (`chat_completions`, `messages`, ...); `attempts`: how many deployments
/// it was sent to.
pub fn for_record(r: &UsageRecord, operation: &str, attempts: u32) -> Vec<Update> {
    let model = label(&r.model);
    let provider = label(&r.provider);
    let class = status_class(r.status);
    let on = format!("model.{model}.provider.{provider}");
    let mut out = vec![
        counter(
            format!(
                "tollgate_requests.{on}.operation.{}.status_class.{class}",
                label(operation)
            ),
            1,
        ),
        histogram(format!("tollgate_request_duration_ms.{on}"), r.latency_ms),
    ];
    if r.status >= 400 {
        out.push(counter(
            format!("tollgate_upstream_errors.model.{model}.status.{}", r.status),
            1,
        ));
    }
    let uncached = r.input_tokens.saturating_sub(r.cache_read_tokens);
    for (kind, n) in [
        ("input", uncached),
        ("cached", r.cache_read_tokens),
        ("output", r.output_tokens),
    ] {
        if n > 0 {
            out.push(counter(format!("tollgate_tokens.{on}.type.{kind}"), n));
        }
    }
    if r.estimated {
        out.push(counter(
            format!("tollgate_tokens_estimated.model.{model}"),
            1,
        ));
    }
    if let Some(ttft) = r.ttft_ms.filter(|_| r.stream) {
        out.push(histogram(format!("tollgate_ttft_ms.{on}"), ttft));
        if r.output_tokens > 1 {
            let per =
                r.latency_ms.saturating_sub(ttft).saturating_mul(1000) / (r.output_tokens - 1);
            out.push(histogram(
                format!("tollgate_time_per_output_token_us.{on}"),
                per,
            ));
        }
    }
    if attempts > 1 {
        out.push(counter(
            format!("tollgate_failover_retries.model.{model}"),
            u64::from(attempts - 1),
        ));
    }
    out
}

/// An answer the gateway made itself (a refusal: a bad key, a limit, a
/// budget, a bad body; or its own 502), by its error code.
pub fn for_reply(code: &str) -> Update {
    counter(format!("tollgate_replies.code.{}", label(code)), 1)
}

/// A response the idle watch ended (`idle.rs`): its deployment was silent
/// past its `idle_timeout_ms`.
pub fn for_idle_cut(model: &str) -> Update {
    counter(format!("tollgate_idle_cuts.model.{}", label(model)), 1)
}

/// A family of series: one metric name, its kind, and the labels its stat
/// names carry, in the order they carry them. A host that defines its
/// stats with labels up front (the native module) defines these.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

const fn family(name: &'static str, kind: Kind, labels: &'static [&'static str]) -> Family {
    Family { name, kind, labels }
}

const ON: &[&str] = &["model", "provider"];

/// Every family `for_record`, `for_key`, `for_reply` and `for_idle_cut` write.
pub const FAMILIES: &[Family] = &[
    family(
        "tollgate_requests",
        Kind::Counter,
        &["model", "provider", "operation", "status_class"],
    ),
    family("tollgate_request_duration_ms", Kind::Histogram, ON),
    family(
        "tollgate_upstream_errors",
        Kind::Counter,
        &["model", "status"],
    ),
    family(
        "tollgate_tokens",
        Kind::Counter,
        &["model", "provider", "type"],
    ),
    family("tollgate_tokens_estimated", Kind::Counter, &["model"]),
    family("tollgate_ttft_ms", Kind::Histogram, ON),
    family("tollgate_time_per_output_token_us", Kind::Histogram, ON),
    family("tollgate_failover_retries", Kind::Counter, &["model"]),
    family("tollgate_replies", Kind::Counter, &["code"]),
    family("tollgate_idle_cuts", Kind::Counter, &["model"]),
    family(
        "tollgate_key_requests",
        Kind::Counter,
        &["key", "status_class"],
    ),
    family("tollgate_key_tokens", Kind::Counter, &["key", "type"]),
    family("tollgate_key_cost_nanos", Kind::Counter, &["key"]),
];

/// A stat name split back into its family (by index in `FAMILIES`) and its
/// label values, when its label names are the family's, in its order.
pub fn family_of(name: &str) -> Option<(usize, Vec<&str>)> {
    let mut parts = name.split('.');
    let base = parts.next()?;
    let (index, family) = FAMILIES.iter().enumerate().find(|(_, f)| f.name == base)?;
    let mut values = Vec::with_capacity(family.labels.len());
    for label in family.labels {
        if parts.next()? != *label {
            return None;
        }
        values.push(parts.next()?);
    }
    parts.next().is_none().then_some((index, values))
}

/// The name a series is written under: its own while it is one of the
/// first `MAX_SERIES` a worker saw (`seen`, by name), past that with its
/// label values as `other` (`bounded`). Both hosts keep `seen`; the wasm
/// host's values are its stat ids.
pub fn series_name<'a, V>(
    name: &'a str,
    seen: &std::collections::HashMap<String, V>,
) -> std::borrow::Cow<'a, str> {
    if seen.contains_key(name) || seen.len() < MAX_SERIES {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(bounded(name))
    }
}

/// `name` with each label value past the cardinality bound as `other`.
pub fn bounded(name: &str) -> String {
    name.split('.')
        .enumerate()
        .map(|(i, part)| if i >= 2 && i % 2 == 0 { "other" } else { part })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
