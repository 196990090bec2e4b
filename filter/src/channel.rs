//! The filter channel: what a worker sends the control plane and what it
//! does with the answers (usage batches, leases, the config poll). Each
//! call is a value (`Call`) that the host dispatches; each answer comes
//! back as a status and body.

use tollgate_contract::headers;
use tollgate_contract::health::HealthReport;
use tollgate_contract::lease::{Grants, LeaseRequest};

use crate::config::PluginConfig;
use crate::limits::{self, Store};
use crate::pipeline::Worker;
use crate::poller::PollOutcome;

const USAGE_PATH: &str = "/internal/usage";
const USAGE_TIMEOUT_MS: u64 = 10_000;
const HEALTH_PATH: &str = "/internal/health";
const HEALTH_TIMEOUT_MS: u64 = 5_000;
/// How often a worker reports the deployments' health.
pub const HEALTH_EVERY_MS: u64 = 5_000;
const LEASE_TIMEOUT_MS: u64 = 5_000;
/// How much longer than the control plane may hold a poll the filter waits.
const POLL_GRACE_MS: u64 = 5_000;

/// One call to the control plane: a JSON POST when it has a body, else a GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

impl Call {
    /// The call's headers, with the filter secret.
    pub fn headers<'a>(&'a self, config: &'a PluginConfig) -> Vec<(&'a str, &'a str)> {
        let method = if self.body.is_some() { "POST" } else { "GET" };
        let mut out = vec![
            (":method", method),
            (":path", self.path.as_str()),
            (":authority", config.control_plane_authority.as_str()),
        ];
        if self.body.is_some() {
            out.push(("content-type", "application/json"));
        }
        out.push((headers::FILTER_SECRET, config.filter_secret.as_str()));
        out
    }
}

/// What became of a config poll's answer, for the host to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    Applied {
        version: u64,
        keys: usize,
        models: usize,
    },
    Unchanged,
    Failed(String),
}

impl Worker {
    /// The next usage batch, when one is due.
    pub fn usage_call(&mut self, now_ms: u64) -> Option<Call> {
        self.config.as_ref()?;
        if !self.outbox.due(now_ms) {
            return None;
        }
        Some(Call {
            path: USAGE_PATH.to_string(),
            body: Some(self.outbox.take_batch()),
            timeout_ms: USAGE_TIMEOUT_MS,
        })
    }

    /// The deployments with a health mark in this Envoy's shared data, every
    /// [`HEALTH_EVERY_MS`] while there are any (and once more when there
    /// are none left, to clear them).
    pub fn health_call(&mut self, store: &dyn Store, now_ms: u64) -> Option<Call> {
        self.config.as_ref()?;
        if now_ms < self.health_due_ms {
            return None;
        }
        self.health_due_ms = now_ms.saturating_add(HEALTH_EVERY_MS);
        let snapshot = self.snapshot.clone()?;
        let deployments = crate::health::report(&mut snapshot.models.values(), store, now_ms);
        let credentials = crate::credentials::report(snapshot.upstreams.values(), store, now_ms);
        let marked = !deployments.is_empty() || !credentials.is_empty();
        if !marked && !self.health_reported {
            return None;
        }
        self.health_reported = marked;
        let body = serde_json::to_vec(&HealthReport {
            reporter: self.ids.reporter(),
            deployments,
            credentials,
        })
        .ok()?;
        Some(Call {
            path: HEALTH_PATH.to_string(),
            body: Some(body),
            timeout_ms: HEALTH_TIMEOUT_MS,
        })
    }

    /// The batch could not be sent or was refused: it is kept for a retry.
    /// Returns how many records the control plane acknowledged.
    pub fn usage_answered(&mut self, status: Option<u16>, now_ms: u64) -> u64 {
        let before = self.outbox.shipped;
        let ok = status == Some(200);
        if !ok {
            log::warn!("tollgate: usage batch refused ({status:?}); kept for a retry");
        }
        self.outbox.on_result(ok, now_ms);
        self.outbox.shipped - before
    }

    pub fn usage_not_sent(&mut self, now_ms: u64) {
        self.outbox.on_result(false, now_ms);
    }

    /// A lease request for every bucket that ran low since the last one.
    /// One not sent is not retried: the buckets are still low, and the next
    /// request asks again.
    pub fn lease_call(&mut self) -> Option<Call> {
        if self.lease_wants.is_empty() {
            return None;
        }
        self.config.as_ref()?;
        let wants = std::mem::take(&mut self.lease_wants);
        let request = LeaseRequest {
            leases: wants.into_values().collect(),
        };
        match serde_json::to_vec(&request) {
            Ok(body) => Some(Call {
                path: tollgate_contract::lease::PATH.to_string(),
                body: Some(body),
                timeout_ms: LEASE_TIMEOUT_MS,
            }),
            Err(e) => {
                log::warn!("tollgate: lease request not made: {e}");
                None
            }
        }
    }

    /// Adds what the control plane granted to this Envoy's leases.
    pub fn lease_answered(&mut self, store: &dyn Store, status: Option<u16>, body: &[u8]) {
        if status != Some(200) {
            log::warn!("tollgate: lease request refused ({status:?})");
            return;
        }
        match serde_json::from_slice::<Grants>(body) {
            Ok(grants) => {
                for g in grants.grants {
                    limits::grant(store, &g.bucket, g.granted);
                }
            }
            Err(e) => log::warn!("tollgate: bad lease answer: {e}"),
        }
    }

    /// The next config poll, when one is due.
    pub fn poll_call(&self, now_ms: u64) -> Option<Call> {
        let config = self.config.as_ref()?;
        if !self.poller.due(now_ms) {
            return None;
        }
        Some(Call {
            path: self.poller.path(config.poll_wait_ms),
            body: None,
            timeout_ms: config.poll_wait_ms + POLL_GRACE_MS,
        })
    }

    pub fn poll_sent(&mut self) {
        self.poller.sent();
    }

    pub fn poll_not_sent(&mut self, now_ms: u64) {
        self.poller.not_sent(now_ms);
    }

    /// A poll's answer; a new snapshot is put in place at once.
    pub fn poll_answered(&mut self, now_ms: u64, status: Option<u16>, body: &[u8]) -> Polled {
        match self.poller.on_response(now_ms, status, body) {
            PollOutcome::Updated(compiled) => {
                let polled = Polled::Applied {
                    version: compiled.version,
                    keys: compiled.keys.len(),
                    models: compiled.models.len(),
                };
                self.apply_snapshot(*compiled, now_ms);
                polled
            }
            PollOutcome::Unchanged | PollOutcome::Paging => Polled::Unchanged,
            PollOutcome::Failed(reason) => Polled::Failed(reason),
        }
    }
}
