//! The health of each deployment of a failover model, shared by every
//! worker of this Envoy through shared data (docs/routing.md, "Health").
//!
//! A mark per deployment holds two numbers: until when it cools down, and
//! how many attempts on it failed in a row (a 5xx, a reset, a refused
//! connection, no headers in time). It cools down for 30 s after
//! [`FAILURES_TO_COOL`] failures in a row, and after a 429 for 30 s or its
//! `Retry-After` when longer. When a cool-down from failures ends the
//! deployment is *probing*: one request claims it (for [`PROBE_MS`]) and
//! is sent to it first; a success clears the mark, a failure cools it
//! again. Meanwhile the others take its share. Envoy's outlier detection
//! still ejects a host within each cluster; this is what the listener
//! filter sees when it picks the first choice.

use tollgate_contract::health::{DeploymentHealth, State, MAX_REPORTED};

use crate::limits::Store;

pub const COOLDOWN_MS: u64 = 30_000;
/// A `Retry-After` longer than this is taken as this.
pub const MAX_COOLDOWN_MS: u64 = 3_600_000;
pub use tollgate_contract::health::FAILURES_TO_COOL;
/// How long a claimed probe keeps the deployment from other requests.
pub const PROBE_MS: u64 = 10_000;

/// A deployment as the listener filter sees it when choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Nobody's first choice until then (Unix ms).
    Cooling {
        until_ms: u64,
    },
    /// Its cool-down after failures is over: one request may try it.
    Probing,
}

/// The stored mark: `<until_ms>,<failures>` (an older `<until_ms>` reads
/// with no failures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    pub until_ms: u64,
    pub failures: u32,
}

impl Mark {
    fn parse(raw: &[u8]) -> Option<Mark> {
        let text = std::str::from_utf8(raw).ok()?;
        let (until, failures) = text.split_once(',').unwrap_or((text, "0"));
        Some(Mark {
            until_ms: until.trim().parse().ok()?,
            failures: failures.trim().parse().ok()?,
        })
    }

    fn encode(self) -> Vec<u8> {
        format!("{},{}", self.until_ms, self.failures).into_bytes()
    }

    pub fn health(self, now_ms: u64) -> Health {
        if self.until_ms > now_ms {
            Health::Cooling {
                until_ms: self.until_ms,
            }
        } else if self.failures >= FAILURES_TO_COOL {
            Health::Probing
        } else {
            Health::Healthy
        }
    }
}

pub fn key(model: &str, index: usize) -> String {
    format!("tollgate.cool.{index}.{model}")
}

/// Until when an attempt's answer cools its deployment: `Some` for a 429
/// (`Retry-After` in seconds, when longer than the default).
pub fn until(status: u16, retry_after: &[u8], now_ms: u64) -> Option<u64> {
    if status != 429 {
        return None;
    }
    let asked = std::str::from_utf8(retry_after)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(0, |s| s.saturating_mul(1000));
    Some(now_ms.saturating_add(asked.clamp(COOLDOWN_MS, MAX_COOLDOWN_MS)))
}

pub fn mark(store: &dyn Store, model: &str, index: usize) -> Mark {
    let (value, _) = store.get(&key(model, index));
    value.and_then(|v| Mark::parse(&v)).unwrap_or_default()
}

pub fn health(store: &dyn Store, model: &str, index: usize, now_ms: u64) -> Health {
    mark(store, model, index).health(now_ms)
}

/// Changes a deployment's mark with compare-and-swap; `change` returns
/// `None` to leave it. Returns whether a change was written.
fn change(
    store: &dyn Store,
    model: &str,
    index: usize,
    change: impl Fn(Mark) -> Option<Mark>,
) -> bool {
    let key = key(model, index);
    for _ in 0..4 {
        let (value, cas) = store.get(&key);
        let current = value.and_then(|v| Mark::parse(&v)).unwrap_or_default();
        let Some(next) = change(current) else {
            return false;
        };
        if store.set(&key, &next.encode(), cas) {
            return true;
        }
    }
    false
}

/// A 429: cooling until `until` (a later mark is kept).
pub fn cool(store: &dyn Store, model: &str, index: usize, until: u64) {
    change(store, model, index, |m| {
        (m.until_ms < until).then_some(Mark {
            until_ms: until,
            ..m
        })
    });
}

/// An attempt on it failed: one more in a row, and a cool-down from the
/// [`FAILURES_TO_COOL`]th on (a failed probe cools it again at once).
pub fn failed(store: &dyn Store, model: &str, index: usize, now_ms: u64) {
    change(store, model, index, |m| {
        let failures = m.failures.saturating_add(1);
        let until_ms = if failures >= FAILURES_TO_COOL {
            m.until_ms.max(now_ms.saturating_add(COOLDOWN_MS))
        } else {
            m.until_ms
        };
        Some(Mark { until_ms, failures })
    });
}

/// It answered (not a 5xx, not a 429): no failures in a row any more, and
/// no cool-down that failures (or a probe) set; a 429's keeps running.
pub fn recovered(store: &dyn Store, model: &str, index: usize) {
    change(store, model, index, |m| {
        (m.failures > 0).then_some(Mark {
            until_ms: if m.failures >= FAILURES_TO_COOL {
                0
            } else {
                m.until_ms
            },
            failures: 0,
        })
    });
}

/// Claims the probe of a deployment in [`Health::Probing`]: `true` for the
/// one request that gets it (the others see it cooling for [`PROBE_MS`]).
pub fn claim_probe(store: &dyn Store, model: &str, index: usize, now_ms: u64) -> bool {
    change(store, model, index, |m| {
        (m.health(now_ms) == Health::Probing).then_some(Mark {
            until_ms: now_ms.saturating_add(PROBE_MS),
            ..m
        })
    })
}

/// What the listener filter asks when it chooses a deployment.
pub trait View {
    fn mark(&self, model: &str, index: usize) -> Mark;
    /// Moving average of time to response headers (`latency.rs`); 0: none.
    fn latency_us(&self, model: &str, index: usize) -> u64;
    fn now_ms(&self) -> u64;
    fn claim_probe(&self, model: &str, index: usize) -> bool;
}

/// Every deployment healthy (the forward proxy, tests).
pub struct AllHealthy;

impl View for AllHealthy {
    fn mark(&self, _: &str, _: usize) -> Mark {
        Mark::default()
    }
    fn latency_us(&self, _: &str, _: usize) -> u64 {
        0
    }
    fn now_ms(&self) -> u64 {
        0
    }
    fn claim_probe(&self, _: &str, _: usize) -> bool {
        true
    }
}

/// The shared marks, as of `now_ms`.
pub struct Shared<'a> {
    pub store: &'a dyn Store,
    pub now_ms: u64,
}

impl View for Shared<'_> {
    fn mark(&self, model: &str, index: usize) -> Mark {
        mark(self.store, model, index)
    }
    fn latency_us(&self, model: &str, index: usize) -> u64 {
        crate::latency::average_us(self.store, model, index)
    }
    fn now_ms(&self) -> u64 {
        self.now_ms
    }
    fn claim_probe(&self, model: &str, index: usize) -> bool {
        claim_probe(self.store, model, index, self.now_ms)
    }
}

/// The marked deployments of every failover model, as a report for the
/// control plane (at most [`MAX_REPORTED`]).
pub fn report(
    models: &mut dyn Iterator<Item = &tollgate_contract::snapshot::Model>,
    store: &dyn Store,
    now_ms: u64,
) -> Vec<DeploymentHealth> {
    let mut out = Vec::new();
    for model in models.filter(|m| !m.routes.is_empty()) {
        for index in 0..model.deployments.len() {
            let m = mark(store, &model.id, index);
            if m == Mark::default() {
                continue;
            }
            let state = match m.health(now_ms) {
                Health::Healthy => State::Healthy,
                Health::Cooling { .. } => State::Cooling,
                Health::Probing => State::Probing,
            };
            out.push(DeploymentHealth {
                model: model.id.clone(),
                deployment: index as u32,
                state,
                until_ms: if state == State::Cooling {
                    m.until_ms
                } else {
                    0
                },
                failures: m.failures,
            });
            if out.len() == MAX_REPORTED {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
