//! Writes the metric updates the pipeline left in the worker (`metrics.rs`)
//! to Envoy's stats: each stat is defined once per worker and its id kept.
//! Histograms are recorded as they come; counters are added up here and
//! written once a tick (`flush`): each write is a host call, so one per
//! series per tick instead of four or more per request.

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::metrics::{self, Kind};
use crate::pipeline::Counts;
use crate::worker::Worker;

fn id_of(worker: &mut Worker, name: &str, kind: Kind) -> Option<u32> {
    let name = metrics::series_name(name, &worker.metric_ids);
    if let Some(id) = worker.metric_ids.get(name.as_ref()) {
        return Some(*id);
    }
    let name = name.into_owned();
    let host_kind = match kind {
        Kind::Counter => MetricType::Counter,
        Kind::Histogram => MetricType::Histogram,
    };
    match hostcalls::define_metric(host_kind, &name) {
        Ok(id) => {
            worker.metric_ids.insert(name, id);
            Some(id)
        }
        Err(status) => {
            log::warn!("tollgate: cannot define the metric {name}: {status:?}");
            None
        }
    }
}

thread_local! {
    /// Counter deltas waiting for the next tick, by stat id (a VM runs on
    /// one thread: this is the worker's).
    static PENDING: RefCell<HashMap<u32, u64>> = RefCell::new(HashMap::new());
}

pub fn write(worker: &mut Worker) {
    if worker.metric_updates.is_empty() {
        return;
    }
    for update in std::mem::take(&mut worker.metric_updates) {
        let Some(id) = id_of(worker, &update.name, update.kind) else {
            continue;
        };
        match update.kind {
            Kind::Counter => PENDING.with(|p| {
                let mut pending = p.borrow_mut();
                let n = pending.entry(id).or_insert(0);
                *n = n.saturating_add(update.value);
            }),
            Kind::Histogram => {
                let _ = hostcalls::record_metric(id, update.value);
            }
        }
    }
}

/// Writes the counters added up since the last flush (once a tick).
pub fn flush() {
    PENDING.with(|p| {
        let mut pending = p.borrow_mut();
        for (id, n) in pending.drain() {
            Metrics::add(Some(id), n);
        }
    });
}

/// Counters in Envoy's stats (`wasmcustom.tollgate_*`), summed over workers.
#[derive(Default, Clone, Copy)]
pub struct Metrics {
    pub shipped: Option<u32>,
    records: Option<u32>,
    estimated: Option<u32>,
    dropped: Option<u32>,
    config_version: Option<u32>,
    /// Unix seconds of the last poll the control plane answered (a change
    /// or the end of a held poll): how long this Envoy has not heard from it.
    config_polled_at: Option<u32>,
}

impl Metrics {
    pub fn define() -> Metrics {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            records: counter("tollgate_usage_records"),
            estimated: counter("tollgate_usage_estimated"),
            shipped: counter("tollgate_usage_shipped"),
            dropped: counter("tollgate_usage_dropped"),
            config_version: hostcalls::define_metric(MetricType::Gauge, "tollgate_config_version")
                .ok(),
            config_polled_at: hostcalls::define_metric(
                MetricType::Gauge,
                "tollgate_config_polled_at_seconds",
            )
            .ok(),
        }
    }

    pub fn add(id: Option<u32>, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// A snapshot applied: its version, and the control plane answered.
    pub fn applied(self, version: u64, now_ms: u64) {
        if let Some(id) = self.config_version {
            let _ = hostcalls::record_metric(id, version);
        }
        self.polled(now_ms);
    }

    /// The control plane answered a poll.
    pub fn polled(self, now_ms: u64) {
        if let Some(id) = self.config_polled_at {
            let _ = hostcalls::record_metric(id, now_ms / 1000);
        }
    }

    pub fn add_counts(self, counts: Counts) {
        Metrics::add(self.records, counts.records);
        Metrics::add(self.estimated, counts.estimated);
        Metrics::add(self.dropped, counts.dropped);
    }
}
