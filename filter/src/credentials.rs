//! Provider key pools (issue 11, rule 5; docs/routing.md, "Key pools"):
//! requests rotate over a provider's credentials, round-robin on each
//! worker, one counter per pool. A credential answered 429 is benched for its `Retry-After` (or
//! the cooldown), one answered 401/403 is disabled; both marks live in
//! Envoy's shared data, so every worker of this Envoy leaves it out at once.
//! A disabled one is reported to the control plane, which keeps it
//! disabled (in its database, then in the snapshot) until an admin changes
//! it; a change raises its generation, which the marks are keyed by.

use std::cell::RefCell;
use std::collections::HashMap;

use tollgate_contract::health::{CredentialHealth, CredentialState, MAX_REPORTED};

use crate::limits::Store;
use crate::snapshot::{PoolKey, Upstream};

/// What shared data holds for one credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Usable,
    /// Answered 429: left out until then (Unix ms).
    Benched {
        until_ms: u64,
        status: u16,
    },
    /// Answered 401/403.
    Disabled {
        status: u16,
    },
}

pub fn key(provider: &str, k: &PoolKey) -> String {
    format!("tollgate.cred.{}.{}.{provider}", k.generation, k.id)
}

impl Mark {
    /// `b<until_ms>,<status>` or `d<status>`.
    fn parse(raw: &[u8]) -> Mark {
        let text = std::str::from_utf8(raw).unwrap_or_default();
        if let Some(rest) = text.strip_prefix('d') {
            return Mark::Disabled {
                status: rest.trim().parse().unwrap_or(401),
            };
        }
        let Some((until, status)) = text.strip_prefix('b').and_then(|r| r.split_once(',')) else {
            return Mark::Usable;
        };
        match (until.trim().parse().ok(), status.trim().parse().ok()) {
            (Some(until_ms), Some(status)) => Mark::Benched { until_ms, status },
            _ => Mark::Usable,
        }
    }

    fn encode(self) -> Vec<u8> {
        match self {
            Mark::Usable => Vec::new(),
            Mark::Benched { until_ms, status } => format!("b{until_ms},{status}").into_bytes(),
            Mark::Disabled { status } => format!("d{status}").into_bytes(),
        }
    }

    pub fn usable(self, now_ms: u64) -> bool {
        match self {
            Mark::Usable => true,
            Mark::Benched { until_ms, .. } => until_ms <= now_ms,
            Mark::Disabled { .. } => false,
        }
    }
}

pub fn mark(store: &dyn Store, provider: &str, k: &PoolKey) -> Mark {
    match store.get(&key(provider, k)).0 {
        Some(raw) if !raw.is_empty() => Mark::parse(&raw),
        _ => Mark::Usable,
    }
}

/// A 429: benched until `until_ms` (a later bench, or a disable, is kept).
pub fn bench(store: &dyn Store, provider: &str, k: &PoolKey, until_ms: u64, status: u16) {
    let key = key(provider, k);
    for _ in 0..4 {
        let (value, cas) = store.get(&key);
        let current = value.map_or(Mark::Usable, |v| Mark::parse(&v));
        let keep = match current {
            Mark::Disabled { .. } => true,
            Mark::Benched { until_ms: u, .. } => u >= until_ms,
            Mark::Usable => false,
        };
        if keep || store.set(&key, &Mark::Benched { until_ms, status }.encode(), cas) {
            return;
        }
    }
}

/// A 401/403: disabled until an admin changes it (a new generation).
pub fn disable(store: &dyn Store, provider: &str, k: &PoolKey, status: u16) {
    store.set(&key(provider, k), &Mark::Disabled { status }.encode(), None);
}

thread_local! {
    /// Where this worker's rotation of each pool is, by provider id: one
    /// step a request of that pool, so that one pool's traffic does not
    /// move another's.
    static NEXT: RefCell<HashMap<String, usize>> = RefCell::new(HashMap::new());
}

/// The next start of this worker's round-robin over `provider`'s pool.
pub fn next_start(provider: &str) -> usize {
    NEXT.with(|next| {
        let mut next = next.borrow_mut();
        if let Some(at) = next.get_mut(provider) {
            let start = *at;
            *at = at.wrapping_add(1);
            return start;
        }
        next.insert(provider.to_string(), 1);
        0
    })
}

/// The credential of `upstream`'s pool to use, from `start` round the pool:
/// the first usable one not in `tried`; `None` when there is none. A pool
/// of one is not looked up (its credential is the only one to send).
pub fn choose<'a>(
    store: &dyn Store,
    upstream: &'a Upstream,
    start: usize,
    tried: &[&str],
    now_ms: u64,
) -> Option<&'a PoolKey> {
    let pool = &upstream.pool;
    if pool.len() == 1 {
        return pool.first().filter(|k| !tried.contains(&k.id.as_str()));
    }
    (0..pool.len())
        .filter_map(|i| pool.get((start + i) % pool.len()))
        .filter(|k| !tried.contains(&k.id.as_str()))
        .find(|k| mark(store, &upstream.id, k).usable(now_ms))
}

/// Whether any credential of the pool is usable now (a pool of none, a
/// provider without a pool, counts as usable).
pub fn any_usable(store: &dyn Store, upstream: &Upstream, now_ms: u64) -> bool {
    upstream.pool.is_empty()
        || upstream
            .pool
            .iter()
            .any(|k| mark(store, &upstream.id, k).usable(now_ms))
}

/// The benched and disabled credentials of every provider, for the
/// control plane (at most [`MAX_REPORTED`]).
pub fn report<'a>(
    upstreams: impl Iterator<Item = &'a Upstream>,
    store: &dyn Store,
    now_ms: u64,
) -> Vec<CredentialHealth> {
    let mut out = Vec::new();
    for u in upstreams {
        for k in &u.pool {
            let (state, until_ms, status) = match mark(store, &u.id, k) {
                Mark::Usable => continue,
                Mark::Benched { until_ms, .. } if until_ms <= now_ms => continue,
                Mark::Benched { until_ms, status } => (CredentialState::Benched, until_ms, status),
                Mark::Disabled { status } => (CredentialState::Disabled, 0, status),
            };
            out.push(CredentialHealth {
                provider: u.id.clone(),
                credential: k.id.clone(),
                generation: k.generation,
                state,
                until_ms,
                status,
            });
            if out.len() == MAX_REPORTED {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
