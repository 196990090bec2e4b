//! What both proxy-wasm contexts (`host.rs`, `host_upstream.rs`) read from
//! the host: Envoy's shared data and its clock.

use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;

use crate::limits::Store;

/// Envoy shared data: one store for every worker of this Envoy.
pub struct SharedData;

impl Store for SharedData {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
