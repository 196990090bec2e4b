//! The data path's metrics in the native host: the same series as the wasm
//! build (`tollgate_filter::metrics`), as stats of the module
//! (`dynamicmodulescustom.tollgate_*`). Where the wasm build bakes labels
//! into stat names for the bootstrap's `stats_tags` to take out again, the
//! module defines each family once with its label names, when Envoy creates
//! the filter configuration (stat creation is frozen afterwards), and Envoy
//! keeps the values as tags.
//!
//! Histograms are recorded through the stream that measured them. Counters
//! are added up here (`BATCH`, `PENDING`) and written once a tick on Envoy's
//! main thread, which the module's tick thread asks for through the
//! configuration's scheduler (`flush_soon`, then `flush`): a labelled write
//! costs Envoy a stat lookup by name, so one per series per tick instead of
//! five or more per request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

pub use tollgate_filter::metrics::Update;
use tollgate_filter::metrics::{self, Kind, FAMILIES};
use tollgate_filter::pipeline::Counts;

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

/// The configuration whose stats are flushed, and the scheduler of Envoy's
/// main thread made for it (Envoy's stats may be written from Envoy's own
/// threads only: a write from the module's thread faults in the stats
/// store's thread-local cache).
struct Target {
    ids: usize,
    scheduler: usize,
}

static TARGET: Mutex<Option<Target>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stats of `config` (just defined, `ids`) are the ones flushed.
pub fn adopt(config: ConfigEnvoyPtr, ids: &Ids) {
    // SAFETY: `config` is Envoy's for the configuration hook this runs in.
    let scheduler =
        unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(config) };
    let old = lock(&TARGET).replace(Target {
        ids: ids as *const Ids as usize,
        scheduler: scheduler as usize,
    });
    if let Some(old) = old {
        delete(old.scheduler);
    }
}

fn delete(scheduler: usize) {
    if scheduler != 0 {
        // SAFETY: made by Envoy for a configuration, deleted once.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
                scheduler as abi::SchedulerPtr,
            )
        }
    }
}

/// The configuration of `ids` is going (on the main thread): no flush is
/// asked of it any more.
pub fn release(ids: &Ids) {
    let mut target = lock(&TARGET);
    if target
        .as_ref()
        .is_some_and(|t| t.ids == ids as *const Ids as usize)
    {
        if let Some(old) = target.take() {
            delete(old.scheduler);
        }
    }
}

/// From the module's thread, once a tick: the worker's record counts are
/// pending, and Envoy's main thread is asked to flush
/// (`envoy_dynamic_module_on_http_filter_config_scheduled`).
pub fn flush_soon(counts: Counts) {
    PENDING[0].fetch_add(counts.records, Ordering::Relaxed);
    PENDING[1].fetch_add(counts.estimated, Ordering::Relaxed);
    PENDING[2].fetch_add(counts.dropped, Ordering::Relaxed);
    if let Some(t) = lock(&TARGET).as_ref().filter(|t| t.scheduler != 0) {
        // SAFETY: the scheduler is live while TARGET holds it (`release`
        // takes it out under the same lock before deleting it).
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
                t.scheduler as abi::SchedulerPtr,
                0,
            )
        }
    }
}

/// Records, estimated, dropped and shipped since the last flush.
static PENDING: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// Counter deltas waiting for the next flush, by series name.
static BATCH: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
/// The latest applied config version and Unix seconds of the latest
/// answered poll (0: none).
pub static CONFIG_VERSION: AtomicU64 = AtomicU64::new(0);
pub static POLLED_AT: AtomicU64 = AtomicU64::new(0);

/// Records shipped to the control plane (from the module's tick thread).
pub fn shipped(n: u64) {
    PENDING[3].fetch_add(n, Ordering::Relaxed);
}

/// A stream's updates, bounded in cardinality (`seen` holds the series so
/// far): the counters join the batch, the histograms are returned for the
/// stream to record.
pub fn take(mut updates: Vec<Update>, seen: &mut HashMap<String, u32>) -> Vec<Update> {
    for update in &mut updates {
        // A series seen before keeps its name (one lookup on this path).
        if seen.contains_key(&update.name) {
            continue;
        }
        if let Cow::Owned(bounded) = metrics::series_name(&update.name, seen) {
            update.name = bounded;
        }
        if !seen.contains_key(&update.name) {
            seen.insert(update.name.clone(), 0);
        }
    }
    if updates.iter().any(|u| u.kind == Kind::Counter) {
        let mut batch = lock(&BATCH);
        let batch = batch.get_or_insert_with(HashMap::new);
        // The counters join the batch (a series already in it is added to
        // in place); the histograms stay.
        updates.retain_mut(|u| {
            if u.kind != Kind::Counter {
                return true;
            }
            match batch.get_mut(&u.name) {
                Some(n) => *n += u.value,
                None => {
                    batch.insert(std::mem::take(&mut u.name), u.value);
                }
            }
            false
        });
    }
    updates
}

fn labelled(values: &[&str]) -> Vec<ModuleBuffer> {
    values
        .iter()
        .map(|v| ModuleBuffer::of(v.as_bytes()))
        .collect()
}

/// Records a stream's histograms through that stream.
pub fn record(filter: FilterEnvoyPtr, ids: &Ids, histograms: &[Update]) {
    for update in histograms {
        let Some((index, values)) = metrics::family_of(&update.name) else {
            continue;
        };
        if let Some(Some(id)) = ids.families.get(index) {
            let values = labelled(&values);
            // SAFETY: the filter pointer is Envoy's for the hook this runs
            // in; the id is one its configuration defined with as many labels.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_record_histogram_value(
                    filter,
                    *id,
                    values.as_ptr(),
                    values.len(),
                    update.value,
                );
            }
        }
    }
}

fn add(config: ConfigEnvoyPtr, id: Option<usize>, values: &[&str], n: u64) {
    if let (Some(id), true) = (id, n > 0) {
        let values = labelled(values);
        // SAFETY: `config` is Envoy's for the main-thread hook this runs
        // in; the id is one it defined with as many labels.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                config,
                id,
                values.as_ptr(),
                values.len(),
                n,
            );
        }
    }
}

fn set(config: ConfigEnvoyPtr, id: Option<usize>, value: u64) {
    if let (Some(id), true) = (id, value > 0) {
        // SAFETY: as for `add`; the gauge has no labels.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_set_gauge(
                config,
                id,
                std::ptr::null(),
                0,
                value,
            );
        }
    }
}

/// Writes what was counted since the last flush: the batch and what is
/// pending, on Envoy's main thread, through `config` (the configuration
/// whose stats `ids` are).
pub fn flush(config: ConfigEnvoyPtr, ids: &Ids) {
    let batch = lock(&BATCH).take().unwrap_or_default();
    for (name, n) in &batch {
        if let Some((index, values)) = metrics::family_of(name) {
            add(
                config,
                ids.families.get(index).copied().flatten(),
                &values,
                *n,
            );
        }
    }
    let [records, estimated, dropped, shipped] = &PENDING;
    add(config, ids.records, &[], records.swap(0, Ordering::Relaxed));
    add(
        config,
        ids.estimated,
        &[],
        estimated.swap(0, Ordering::Relaxed),
    );
    add(config, ids.dropped, &[], dropped.swap(0, Ordering::Relaxed));
    add(config, ids.shipped, &[], shipped.swap(0, Ordering::Relaxed));
    set(
        config,
        ids.config_version,
        CONFIG_VERSION.load(Ordering::Relaxed),
    );
    set(config, ids.polled_at, POLLED_AT.load(Ordering::Relaxed));
}
