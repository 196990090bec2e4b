//! The deployments' health as the gateways see it: each Envoy's filter
//! reports the deployments of failover models that have a health mark in
//! its shared data (`POST /internal/health`, every 5 s while there are
//! any); `/api/status` and `/metrics` show them. A deployment no report has
//! named for [`FRESH_MS`] is healthy again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use tollgate_contract::health::{DeploymentHealth, State, FAILURES_TO_COOL};

use crate::cds::ClusterSpec;

/// How long a report stands without a new one from its reporter (three
/// report periods).
pub const FRESH_MS: i64 = 15_000;

/// A deployment of a failover model, with its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub model: String,
    pub deployment: u32,
    pub state: State,
    pub until_ms: u64,
    pub failures: u32,
}

/// Each reporter's last report: a worker's report replaces its previous
/// one, so an empty report clears what it had said.
#[derive(Default)]
pub struct Book {
    reports: Mutex<HashMap<String, (i64, Vec<DeploymentHealth>)>>,
}

/// The worse of two views of one deployment: the worse state, then the
/// later cool-down.
fn rank(d: &DeploymentHealth) -> (u8, u64) {
    let state = match d.state {
        State::Healthy => 0,
        State::Probing => 1,
        State::Cooling => 2,
    };
    (state, d.until_ms)
}

/// The most reporters kept (workers of every Envoy); the stalest go first.
const MAX_REPORTERS: usize = 4096;

impl Book {
    pub fn record(&self, reporter: &str, report: Vec<DeploymentHealth>, now_ms: i64) {
        let Ok(mut reports) = self.reports.lock() else {
            return;
        };
        reports.retain(|_, (at, _)| now_ms - *at < FRESH_MS);
        if reports.len() >= MAX_REPORTERS && !reports.contains_key(reporter) {
            return;
        }
        reports.insert(reporter.to_string(), (now_ms, report));
    }

    /// The worst fresh view of each deployment any reporter named.
    fn seen(&self, now_ms: i64) -> BTreeMap<(String, u32), DeploymentHealth> {
        let mut seen: BTreeMap<(String, u32), DeploymentHealth> = BTreeMap::new();
        let Ok(reports) = self.reports.lock() else {
            return seen;
        };
        for (_, list) in reports.values().filter(|(at, _)| now_ms - *at < FRESH_MS) {
            for d in list {
                let slot = seen
                    .entry((d.model.clone(), d.deployment))
                    .or_insert_with(|| d.clone());
                if rank(d) > rank(slot) {
                    *slot = d.clone();
                }
            }
        }
        seen
    }

    /// Every deployment the clusters hold, with its health as of `now_ms`.
    pub fn show(&self, clusters: &[ClusterSpec], now_ms: i64) -> Vec<Shown> {
        let tracked: BTreeSet<(String, u32)> = clusters
            .iter()
            .flat_map(|c| c.members.iter())
            .map(|m| (m.model.clone(), m.deployment))
            .collect();
        let seen = self.seen(now_ms);
        tracked
            .into_iter()
            .map(|(model, deployment)| {
                let (state, until_ms, failures) = match seen.get(&(model.clone(), deployment)) {
                    // A cool-down that ended since the report: probing
                    // after failures, healthy after a 429.
                    Some(s) if s.state == State::Cooling && (s.until_ms as i64) <= now_ms => {
                        if s.failures >= FAILURES_TO_COOL {
                            (State::Probing, 0, s.failures)
                        } else {
                            (State::Healthy, 0, s.failures)
                        }
                    }
                    Some(s) => (s.state, s.until_ms, s.failures),
                    None => (State::Healthy, 0, 0),
                };
                Shown {
                    model,
                    deployment,
                    state,
                    until_ms,
                    failures,
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "deployment_health_tests.rs"]
mod tests;
