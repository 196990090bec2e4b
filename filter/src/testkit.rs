//! What the native tests of several modules share: Envoy's shared data as
//! a map, and a snapshot key with no limits.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use tollgate_contract::snapshot::Key;

use crate::limits::Store;

/// Envoy's shared data semantics: a version per key, bumped on every write;
/// a write with a stale version is refused, and a write to a missing key
/// lands whatever the version (proxy-wasm-cpp-host's `SharedData::set`).
#[derive(Default)]
pub struct Mem {
    pub map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    /// Makes the next `n` conditional writes lose a race (another worker
    /// wrote in between), to exercise the retry.
    pub lose: Cell<u32>,
}

impl Store for Mem {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.map.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut map = self.map.borrow_mut();
        let current = map.get(key).map(|(_, c)| *c);
        if self.lose.get() > 0 {
            self.lose.set(self.lose.get() - 1);
            // Someone else wrote: the version moves on, the value stays.
            if let Some(entry) = map.get_mut(key) {
                entry.1 += 1;
                return false;
            }
        }
        if current.is_some() && cas.is_some_and(|c| Some(c) != current) {
            return false;
        }
        let next = current.unwrap_or(0) + 1;
        map.insert(key.to_string(), (value.to_vec(), next));
        true
    }
}

/// A key of account `acct` for `secret`, with no models list, expiry,
/// limits or budget.
pub fn key(id: &str, secret: &str, account_id: &str) -> Key {
    Key {
        id: id.into(),
        hash: tollgate_contract::key::hash(secret),
        account_id: account_id.into(),
        models: None,
        expires_at: None,
        rpm: None,
        tpm: None,
        max_concurrent: None,
        budget_nanos: None,
        spent_nanos: 0,
        group: None,
    }
}
