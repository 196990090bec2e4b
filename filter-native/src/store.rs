//! The counters every worker shares (limits, budgets, leases, health), in
//! process memory: the native host's stand-in for proxy-wasm shared data,
//! with the same compare-and-swap contract (`limits::Store`).

use std::collections::HashMap;
use std::sync::Mutex;

use tollgate_filter::limits::Store;

#[derive(Default)]
pub struct MemStore {
    map: Mutex<HashMap<String, (Vec<u8>, u32)>>,
}

impl Store for MemStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    /// Like Envoy's shared data: a write with a `cas` that no longer
    /// matches the entry's version fails; a key's first version is 1.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let current = map.get(key).map(|(_, c)| *c);
        if current.is_some() && cas.is_some_and(|c| Some(c) != current) {
            return false;
        }
        let next = current.unwrap_or(0).wrapping_add(1).max(1);
        map.insert(key.to_string(), (value.to_vec(), next));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_version_loses_and_the_current_one_wins() {
        let s = MemStore::default();
        assert_eq!(s.get("k"), (None, None));
        assert!(s.set("k", b"1", Some(u32::MAX)), "first write");
        let (v, cas) = s.get("k");
        assert_eq!((v.as_deref(), cas), (Some(&b"1"[..]), Some(1)));
        assert!(s.set("k", b"2", Some(1)));
        assert!(!s.set("k", b"3", Some(1)), "version 1 is gone");
        assert_eq!(s.get("k").0.as_deref(), Some(&b"2"[..]));
        assert!(s.set("k", b"4", None), "unconditional");
    }
}
