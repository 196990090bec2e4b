//! What the whole Envoy process shares in the native host: one `Worker`
//! (configuration, one snapshot, request ids, usage outbox, poller) behind
//! a mutex, one store of counters, and the two threads that talk to the
//! control plane: the config long-poll, and a ticker for usage batches,
//! leases and health reports. Native code may do what proxy-wasm may not:
//! one snapshot for every Envoy worker instead of one per worker VM, and
//! blocking calls on threads of its own instead of Envoy's HTTP callouts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tollgate_filter::channel::{Call, Polled};
use tollgate_filter::config::{PluginConfig, Role};
use tollgate_filter::pipeline::Worker;

use crate::http;
use crate::metrics;
use crate::store::MemStore;

/// Hooks that panicked (each answered 500 when it still could).
pub static PANICS: AtomicU64 = AtomicU64::new(0);
static SHARED: OnceLock<Shared> = OnceLock::new();

pub struct Shared {
    worker: Mutex<Worker>,
    pub store: MemStore,
    started: OnceLock<()>,
}

impl Shared {
    /// The process's worker; a panic that poisoned the lock left it usable
    /// (every step leaves it consistent before it can panic).
    pub fn worker(&self) -> MutexGuard<'_, Worker> {
        self.worker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn shared() -> &'static Shared {
    SHARED.get_or_init(|| Shared {
        worker: Mutex::new(Worker::new(now_ms())),
        store: MemStore::default(),
        started: OnceLock::new(),
    })
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The module's configuration (`filter_config` in Envoy's): the filter's
/// own configuration, the same JSON as the wasm build's, and for the
/// listener role where the control plane listens. A failover cluster's
/// upstream filter (`"role": "upstream"`) needs no address: it reads the
/// listener's snapshot and marks the same store, in the same process.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeConfig {
    /// `host:port` of the control plane.
    #[serde(default)]
    pub control_plane_address: Option<String>,
    pub filter: serde_json::Value,
}

/// What one configuration of the module is for.
#[derive(Debug)]
enum Parsed {
    Upstream,
    Listener {
        config: PluginConfig,
        address: String,
    },
}

fn parse(raw: &[u8]) -> Result<Parsed, String> {
    let native: NativeConfig =
        serde_json::from_slice(raw).map_err(|e| format!("native module configuration: {e}"))?;
    let filter = serde_json::to_vec(&native.filter).map_err(|e| e.to_string())?;
    let config = PluginConfig::parse(&filter)?;
    if config.role == Role::Upstream {
        return Ok(Parsed::Upstream);
    }
    let address = native
        .control_plane_address
        .filter(|a| !a.trim().is_empty())
        .ok_or("native module configuration: control_plane_address is missing or empty")?;
    Ok(Parsed::Listener { config, address })
}

/// Parses the configuration; for the listener role puts it in place and
/// starts the threads once. Returns the configuration's role.
pub fn configure(raw: &[u8]) -> Result<Role, String> {
    let (config, address) = match parse(raw)? {
        Parsed::Upstream => return Ok(Role::Upstream),
        Parsed::Listener { config, address } => (config, address),
    };
    let shared = shared();
    let config = Arc::new(config);
    shared.worker().config = Some(Arc::clone(&config));
    if shared.started.set(()).is_ok() {
        let a = address.clone();
        spawn("tollgate-poll", move || poll_loop(shared, &a))?;
        spawn("tollgate-tick", move || tick_loop(shared, &address))?;
        spawn("tollgate-idle", move || idle_loop(shared))?;
    }
    Ok(Role::Downstream)
}

fn tick_ms(shared: &Shared) -> u64 {
    shared
        .worker()
        .config
        .as_ref()
        .map(|c| c.tick_ms)
        .unwrap_or(100)
}

/// The idle watch, once a tick (`idle.rs`), on a thread of its own so that
/// a slow control-plane call does not hold it up.
fn idle_loop(shared: &'static Shared) {
    loop {
        std::thread::sleep(Duration::from_millis(tick_ms(shared)));
        crate::idle::tick(now_ms());
    }
}

fn spawn(name: &str, run: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(run)
        .map(|_| ())
        .map_err(|e| format!("cannot start {name}: {e}"))
}

/// One call to the control plane; `None` when it could not be made or
/// answered (a failure the channel backs off from).
fn send(shared: &Shared, address: &str, call: &Call) -> (Option<u16>, Vec<u8>) {
    let Some(config) = shared.worker().config.clone() else {
        return (None, Vec::new());
    };
    match http::call(
        address,
        &call.headers(&config),
        call.body.as_deref(),
        Duration::from_millis(call.timeout_ms),
    ) {
        Ok((status, body)) => (Some(status), body),
        Err(e) => {
            log::warn!("tollgate native: {} failed: {e}", call.path);
            (None, Vec::new())
        }
    }
}

fn poll_loop(shared: &'static Shared, address: &str) {
    loop {
        let call = {
            let mut worker = shared.worker();
            let call = worker.poll_call(now_ms());
            if call.is_some() {
                worker.poll_sent();
            }
            call
        };
        let Some(call) = call else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let (status, body) = send(shared, address, &call);
        let polled = shared.worker().poll_answered(now_ms(), status, &body);
        let answered = !matches!(polled, Polled::Failed(_));
        match polled {
            Polled::Applied {
                version,
                keys,
                models,
            } => {
                metrics::CONFIG_VERSION.store(version, Ordering::Relaxed);
                metrics::POLLED_AT.store(now_ms() / 1000, Ordering::Relaxed);
                log::info!(
                    "tollgate: config version {version} applied ({keys} keys, {models} models)"
                )
            }
            Polled::Unchanged => {
                metrics::POLLED_AT.store(now_ms() / 1000, Ordering::Relaxed);
            }
            Polled::Failed(reason) => {
                log::warn!("tollgate: config poll failed, serving the last snapshot: {reason}")
            }
        }
        if answered {
            // The gauges move now, as the wasm build's do at the poll.
            metrics::flush_soon(Default::default());
        }
    }
}

/// Usage batches (as many as are due), leases, health, and freeing a
/// replaced snapshot's keys, once a tick.
fn tick_loop(shared: &'static Shared, address: &str) {
    loop {
        std::thread::sleep(Duration::from_millis(tick_ms(shared)));
        for _ in 0..100 {
            let Some(call) = shared.worker().usage_call(now_ms()) else {
                break;
            };
            let (status, _) = send(shared, address, &call);
            let mut worker = shared.worker();
            metrics::shipped(worker.usage_answered(status, now_ms()));
            if status != Some(200) {
                break;
            }
        }
        // (Each call is taken in a statement of its own: the worker's lock
        // must be released before `send` takes it again.)
        // Leases wanted while one was in flight are asked for at once, as
        // the wasm host does.
        for _ in 0..10 {
            let lease = shared.worker().lease_call();
            let Some(call) = lease else {
                break;
            };
            let (status, body) = send(shared, address, &call);
            shared.worker().lease_answered(&shared.store, status, &body);
        }
        let health = shared.worker().health_call(&shared.store, now_ms());
        if let Some(call) = health {
            let _ = send(shared, address, &call);
        }
        let counts = {
            let mut worker = shared.worker();
            worker.drop_retired();
            worker.take_counts()
        };
        metrics::flush_soon(counts);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_configuration_needs_no_address_and_a_listener_one_does() {
        let upstream = br#"{"filter": {"role": "upstream", "control_plane_cluster": "cp", "filter_secret": "0123456789abcdef"}}"#;
        assert!(matches!(parse(upstream), Ok(Parsed::Upstream)));
        let listener =
            br#"{"filter": {"control_plane_cluster": "cp", "filter_secret": "0123456789abcdef"}}"#;
        let refused = parse(listener).unwrap_err();
        assert!(refused.contains("control_plane_address"), "{refused}");
        let empty = br#"{"control_plane_address": " ", "filter": {"control_plane_cluster": "cp", "filter_secret": "0123456789abcdef"}}"#;
        assert!(parse(empty).is_err());
        let ok = br#"{"control_plane_address": "127.0.0.1:1", "filter": {"control_plane_cluster": "cp", "filter_secret": "0123456789abcdef"}}"#;
        let Ok(Parsed::Listener { config, address }) = parse(ok) else {
            panic!("refused");
        };
        assert_eq!(
            (config.role, address.as_str()),
            (Role::Downstream, "127.0.0.1:1")
        );
    }
}
