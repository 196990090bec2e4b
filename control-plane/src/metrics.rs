//! `GET /metrics`: the control plane's own metrics in Prometheus' text
//! format (OpenMetrics, by the `prometheus-client` crate). Open like
//! `/api/status`: counts and durations, nothing secret.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `tollgate_ingest_records_total` | counter | `result` = `inserted`, `duplicate` | usage records the filters shipped |
//! | `tollgate_ingest_batch_seconds` | histogram | | one `POST /internal/usage`, parse to commit |
//! | `tollgate_usage_lag_seconds` | histogram | | a record's request start to its commit |
//! | `tollgate_snapshot_build_seconds` | histogram | | one snapshot rebuild |
//! | `tollgate_snapshot_bytes`, `tollgate_snapshot_keys` | gauge | | the snapshot being served |
//! | `tollgate_snapshot_version` | gauge | | its version (the filters' `tollgate_config_version` catches up to it) |
//! | `tollgate_snapshot_age_seconds` | gauge | | since it was published, read at scrape time |
//! | `tollgate_config_polls_held` | gauge | | filters' long polls waiting for a change |
//! | `tollgate_lease_tokens_granted_total` | counter | | tokens granted to leases (shared limits) |
//! | `tollgate_database_up`, `tollgate_limits_backend_up` | gauge | | 1 when reachable, read at scrape time |
//! | `tollgate_deployment_state` | gauge | `model`, `deployment`, `state` = `healthy`, `cooling`, `probing` | 1 for each deployment of a failover cluster, in the state the filters report (`deployment_health.rs`) |

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub result: &'static str,
}

/// A deployment of a failover model and its state (`deployment_health.rs`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentLabels {
    pub model: String,
    pub deployment: String,
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    deployment_state: Family<DeploymentLabels, Gauge>,
    pub ingest_records: Family<Outcome, Counter>,
    pub ingest_batch_seconds: Histogram,
    pub usage_lag_seconds: Histogram,
    pub snapshot_build_seconds: Histogram,
    pub snapshot_bytes: Gauge,
    pub snapshot_keys: Gauge,
    pub snapshot_version: Gauge,
    snapshot_age_seconds: Gauge<f64, AtomicU64>,
    pub polls_held: Gauge,
    pub lease_tokens: Counter<u64, AtomicU64>,
    database_up: Gauge,
    limits_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tollgate");
        let m = Metrics {
            registry: Registry::default(),
            deployment_state: Family::default(),
            ingest_records: Family::default(),
            // 1 ms to about 16 s.
            ingest_batch_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            // 10 ms to about 40 min: a record waits out a control-plane outage.
            usage_lag_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 18)),
            snapshot_build_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            snapshot_bytes: Gauge::default(),
            snapshot_keys: Gauge::default(),
            snapshot_version: Gauge::default(),
            snapshot_age_seconds: Gauge::default(),
            polls_held: Gauge::default(),
            lease_tokens: Counter::default(),
            database_up: Gauge::default(),
            limits_up: Gauge::default(),
        };
        let gauges = [
            (
                "snapshot_bytes",
                "Bytes of the snapshot being served",
                &m.snapshot_bytes,
            ),
            (
                "snapshot_keys",
                "Keys in the snapshot being served",
                &m.snapshot_keys,
            ),
            (
                "snapshot_version",
                "Version of the snapshot being served",
                &m.snapshot_version,
            ),
            (
                "config_polls_held",
                "Filter long polls waiting for a change",
                &m.polls_held,
            ),
            ("database_up", "1 when the database answers", &m.database_up),
            (
                "limits_backend_up",
                "1 when the shared-limits backend answers",
                &m.limits_up,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "snapshot_age_seconds",
            "Seconds since the snapshot being served was published",
            m.snapshot_age_seconds.clone(),
        );
        let histograms = [
            (
                "ingest_batch_seconds",
                "One usage batch, parse to commit",
                &m.ingest_batch_seconds,
            ),
            (
                "usage_lag_seconds",
                "A record's request start to its commit",
                &m.usage_lag_seconds,
            ),
            (
                "snapshot_build_seconds",
                "One config snapshot rebuild",
                &m.snapshot_build_seconds,
            ),
        ];
        for (name, help, histogram) in histograms {
            registry.register(name, help, histogram.clone());
        }
        registry.register(
            "ingest_records",
            "Usage records the filters shipped",
            m.ingest_records.clone(),
        );
        registry.register(
            "deployment_state",
            "1 for the state each deployment of a failover model is in, as the gateways report it",
            m.deployment_state.clone(),
        );
        registry.register(
            "lease_tokens_granted",
            "Tokens granted to leases of shared limits",
            m.lease_tokens.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// Holds a long poll in `tollgate_config_polls_held` while it lives.
pub struct Held<'a>(&'a Gauge);

impl<'a> Held<'a> {
    pub fn new(gauge: &'a Gauge) -> Held<'a> {
        gauge.inc();
        Held(gauge)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the caller reads at scrape time.
pub struct Scraped<'a> {
    pub database_up: bool,
    pub limits_up: bool,
    /// Seconds since the snapshot being served was published.
    pub snapshot_age_seconds: f64,
    /// Each deployment of a failover cluster, as the filters report it.
    pub deployments: &'a [crate::deployment_health::Shown],
}

/// The metrics as OpenMetrics text, with what was read at scrape time.
pub fn render(m: &Metrics, now: Scraped) -> String {
    m.deployment_state.clear();
    for d in now.deployments {
        m.deployment_state
            .get_or_create(&DeploymentLabels {
                model: d.model.clone(),
                deployment: d.deployment.to_string(),
                state: d.state.name(),
            })
            .set(1);
    }
    m.database_up.set(i64::from(now.database_up));
    m.limits_up.set(i64::from(now.limits_up));
    m.snapshot_age_seconds.set(now.snapshot_age_seconds);
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &m.registry) {
        tracing::error!(error = %e, "metrics not encoded");
    }
    text
}
