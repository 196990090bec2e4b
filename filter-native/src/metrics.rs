//! The data path's metrics in the native host: the same series as the wasm
//! build (`tollgate_filter::metrics`), as stats of the module
//! (`dynamicmodulescustom.tollgate_*`). Where the wasm build bakes labels
//! into stat names for the bootstrap's `stats_tags` to take out again, the
//! module defines each family once with its label names, when Envoy creates
//! the filter configuration (stat creation is frozen afterwards), and Envoy
//! keeps the values as tags. A stat is written through a stream, so what the
//! module's own threads count (records shipped, the config version) waits in
//! `PENDING` for the next stream's end.

use std::sync::atomic::{AtomicU64, Ordering};

pub use tollgate_filter::metrics::Update;
use tollgate_filter::metrics::{self, Kind, FAMILIES, MAX_SERIES};
use tollgate_filter::pipeline::Worker;

use crate::abi::{self, ConfigEnvoyPtr, FilterEnvoyPtr, ModuleBuffer};

/// The ids Envoy gave one filter configuration's stats (`None`: Envoy
/// refused that one; it is then not written).
#[derive(Debug, Default)]
pub struct Ids {
    families: Vec<Option<usize>>,
    records: Option<usize>,
    estimated: Option<usize>,
    shipped: Option<usize>,
    dropped: Option<usize>,
    config_version: Option<usize>,
    polled_at: Option<usize>,
}

type Define = unsafe extern "C" fn(
    ConfigEnvoyPtr,
    ModuleBuffer,
    *const ModuleBuffer,
    usize,
    *mut usize,
) -> u32;

fn define(config: ConfigEnvoyPtr, how: Define, name: &str, labels: &[&str]) -> Option<usize> {
    let names: Vec<ModuleBuffer> = labels
        .iter()
        .map(|l| ModuleBuffer::of(l.as_bytes()))
        .collect();
    let mut id = 0usize;
    // SAFETY: `config` is Envoy's for the configuration hook this runs in;
    // every buffer is borrowed for the call only.
    let result = unsafe {
        how(
            config,
            ModuleBuffer::of(name.as_bytes()),
            names.as_ptr(),
            names.len(),
            &mut id,
        )
    };
    if result == abi::METRICS_SUCCESS {
        Some(id)
    } else {
        log::warn!("tollgate native: cannot define the metric {name} (result {result})");
        None
    }
}

impl Ids {
    /// Defines every stat on `config` (during `on_http_filter_config_new`).
    pub fn define(config: ConfigEnvoyPtr) -> Ids {
        let counter =
            abi::envoy_dynamic_module_callback_http_filter_config_define_counter as Define;
        let gauge = abi::envoy_dynamic_module_callback_http_filter_config_define_gauge as Define;
        let histogram =
            abi::envoy_dynamic_module_callback_http_filter_config_define_histogram as Define;
        let families = FAMILIES
            .iter()
            .map(|f| {
                let how = match f.kind {
                    Kind::Counter => counter,
                    Kind::Histogram => histogram,
                };
                define(config, how, f.name, f.labels)
            })
            .collect();
        Ids {
            families,
            records: define(config, counter, "tollgate_usage_records", &[]),
            estimated: define(config, counter, "tollgate_usage_estimated", &[]),
            shipped: define(config, counter, "tollgate_usage_shipped", &[]),
            dropped: define(config, counter, "tollgate_usage_dropped", &[]),
            config_version: define(config, gauge, "tollgate_config_version", &[]),
            polled_at: define(config, gauge, "tollgate_config_polled_at_seconds", &[]),
        }
    }
}

/// What the module's threads counted since a stream last wrote it.
pub struct Pending {
    records: AtomicU64,
    estimated: AtomicU64,
    shipped: AtomicU64,
    dropped: AtomicU64,
    /// The latest applied config version, and Unix seconds of the latest
    /// answered poll (0: none yet).
    pub config_version: AtomicU64,
    pub polled_at: AtomicU64,
}

pub static PENDING: Pending = Pending {
    records: AtomicU64::new(0),
    estimated: AtomicU64::new(0),
    shipped: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    config_version: AtomicU64::new(0),
    polled_at: AtomicU64::new(0),
};

impl Pending {
    /// The worker's counts (records made, estimated, dropped) are pending.
    pub fn take_counts(&self, worker: &mut Worker) {
        let counts = worker.take_counts();
        self.records.fetch_add(counts.records, Ordering::Relaxed);
        self.estimated
            .fetch_add(counts.estimated, Ordering::Relaxed);
        self.dropped.fetch_add(counts.dropped, Ordering::Relaxed);
    }

    pub fn shipped(&self, n: u64) {
        self.shipped.fetch_add(n, Ordering::Relaxed);
    }
}

/// The updates with every label value past the cardinality bound as
/// `other`; `seen` holds the series written so far (the worker's, shared by
/// the process in this host).
pub fn bound(updates: &mut [Update], seen: &mut std::collections::HashMap<String, u32>) {
    for update in updates {
        if seen.contains_key(&update.name) {
            continue;
        }
        if seen.len() >= MAX_SERIES {
            update.name = metrics::bounded(&update.name);
        } else {
            seen.insert(update.name.clone(), 0);
        }
    }
}

fn write_one(filter: FilterEnvoyPtr, kind: Kind, id: usize, values: &[&str], value: u64) {
    let values: Vec<ModuleBuffer> = values
        .iter()
        .map(|v| ModuleBuffer::of(v.as_bytes()))
        .collect();
    // SAFETY: the filter pointer is Envoy's for the hook this runs in; the
    // id is one its configuration defined with as many labels.
    let result = unsafe {
        match kind {
            Kind::Counter => abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                filter,
                id,
                values.as_ptr(),
                values.len(),
                value,
            ),
            Kind::Histogram => {
                abi::envoy_dynamic_module_callback_http_filter_record_histogram_value(
                    filter,
                    id,
                    values.as_ptr(),
                    values.len(),
                    value,
                )
            }
        }
    };
    if result != abi::METRICS_SUCCESS {
        log::debug!("tollgate native: a metric write failed (result {result})");
    }
}

fn set_gauge(filter: FilterEnvoyPtr, id: Option<usize>, value: u64) {
    if let Some(id) = id {
        // SAFETY: as for `write_one`; the gauge has no labels.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_set_gauge(
                filter,
                id,
                std::ptr::null(),
                0,
                value,
            );
        }
    }
}

fn add(filter: FilterEnvoyPtr, id: Option<usize>, pending: &AtomicU64) {
    let n = pending.swap(0, Ordering::Relaxed);
    if let (Some(id), true) = (id, n > 0) {
        write_one(filter, Kind::Counter, id, &[], n);
    }
}

/// Writes a stream's updates and what is pending, through that stream.
pub fn write(filter: FilterEnvoyPtr, ids: &Ids, updates: &[Update]) {
    for update in updates {
        let Some((index, values)) = metrics::family_of(&update.name) else {
            log::debug!("tollgate native: {} is in no metric family", update.name);
            continue;
        };
        if let Some(Some(id)) = ids.families.get(index) {
            write_one(filter, update.kind, *id, &values, update.value);
        }
    }
    add(filter, ids.records, &PENDING.records);
    add(filter, ids.estimated, &PENDING.estimated);
    add(filter, ids.shipped, &PENDING.shipped);
    add(filter, ids.dropped, &PENDING.dropped);
    let version = PENDING.config_version.load(Ordering::Relaxed);
    if version > 0 {
        set_gauge(filter, ids.config_version, version);
    }
    let polled = PENDING.polled_at.load(Ordering::Relaxed);
    if polled > 0 {
        set_gauge(filter, ids.polled_at, polled);
    }
}
