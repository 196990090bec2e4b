//! Writes the metric updates the pipeline left in the worker (`metrics.rs`)
//! to Envoy's stats: each stat is defined once per worker and its id kept.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::metrics::{self, Kind, MAX_SERIES};
use crate::worker::Worker;

fn id_of(worker: &mut Worker, name: &str, kind: Kind) -> Option<u32> {
    if let Some(id) = worker.metric_ids.get(name) {
        return Some(*id);
    }
    let name = if worker.metric_ids.len() >= MAX_SERIES {
        metrics::bounded(name)
    } else {
        name.to_string()
    };
    if let Some(id) = worker.metric_ids.get(&name) {
        return Some(*id);
    }
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

pub fn write(worker: &mut Worker) {
    if worker.metric_updates.is_empty() {
        return;
    }
    for update in std::mem::take(&mut worker.metric_updates) {
        let Some(id) = id_of(worker, &update.name, update.kind) else {
            continue;
        };
        let _ = match update.kind {
            Kind::Counter => {
                hostcalls::increment_metric(id, i64::try_from(update.value).unwrap_or(i64::MAX))
            }
            Kind::Histogram => hostcalls::record_metric(id, update.value),
        };
    }
}
