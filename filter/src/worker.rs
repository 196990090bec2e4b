//! What one Envoy worker's requests share (`Worker`): the configuration and
//! snapshot, the request ids, the usage outbox, the leases wanted and the
//! config poller; and the counts a host turns into metrics. The pipeline
//! (`pipeline.rs`) and the filter channel (`channel.rs`) work on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tollgate_contract::key::KeyHash;
use tollgate_contract::snapshot::Key;

use crate::config::PluginConfig;
use crate::ids::RequestIds;
use crate::limits::LeaseWant;
use crate::outbox::Outbox;
use crate::poller::Poller;
use crate::snapshot::Compiled;

/// Usage records kept while the control plane is away (about 400 bytes each).
const OUTBOX_CAPACITY: usize = 20_000;
const OUTBOX_BATCH: usize = 200;
const OUTBOX_MAX_AGE_MS: u64 = 500;
/// Keys of a replaced snapshot freed per tick.
const RETIRE_PER_TICK: usize = 2_000;
/// How long after a snapshot first names a failover cluster the filter
/// starts sending to it: Envoy polls the control plane's CDS once a second,
/// so by then it has the cluster (before, the request takes the forward
/// proxy to its one deployment, rather than a 503 for a cluster Envoy does
/// not know yet).
pub const CLUSTER_WARMUP_MS: u64 = 3_000;

/// Counts for the host's metrics, taken once a tick rather than added once
/// a request (each metric write is a host call).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub records: u64,
    pub estimated: u64,
    pub dropped: u64,
}

/// What one worker's requests share: the configuration and snapshot, the
/// request ids, the usage outbox, the leases wanted and the config poller.
pub struct Worker {
    pub config: Option<Arc<PluginConfig>>,
    pub snapshot: Option<Arc<Compiled>>,
    /// Leased buckets running low on this worker, by bucket name.
    pub(crate) lease_wants: BTreeMap<String, LeaseWant>,
    pub(crate) ids: RequestIds,
    pub(crate) outbox: Outbox,
    pub(crate) poller: Poller,
    pub(crate) counts: Counts,
    /// The keys of a replaced snapshot, freed a slice per tick: freeing 100k
    /// keys at once would stall the requests of this worker.
    retired: Option<std::collections::hash_map::IntoIter<KeyHash, Arc<Key>>>,
    /// When this worker first saw each failover cluster the snapshot names.
    clusters_seen: HashMap<String, u64>,
    /// Metric writes the host has yet to make (`metrics.rs`).
    pub metric_updates: Vec<crate::metrics::Update>,
    /// The host's id of each stat defined so far, by name.
    pub metric_ids: HashMap<String, u32>,
    /// When the next health report is due, and whether the last one named
    /// any deployment (an empty one is sent once, to clear it).
    pub(crate) health_due_ms: u64,
    pub(crate) health_reported: bool,
    /// This worker's responses with an idle timeout (`idle.rs`).
    pub idle: crate::idle::Watch,
}

impl Worker {
    /// `seed` is mixed into the request ids (the host's clock at start).
    pub fn new(seed: u64) -> Worker {
        Worker {
            config: None,
            snapshot: None,
            lease_wants: BTreeMap::new(),
            ids: RequestIds::new(seed),
            outbox: Outbox::new(OUTBOX_CAPACITY, OUTBOX_BATCH, OUTBOX_MAX_AGE_MS),
            poller: Poller::default(),
            counts: Counts::default(),
            retired: None,
            clusters_seen: HashMap::new(),
            metric_updates: Vec::new(),
            metric_ids: HashMap::new(),
            health_due_ms: 0,
            health_reported: false,
            idle: crate::idle::Watch::default(),
        }
    }

    /// Puts a new snapshot in place. The old one's keys are freed a slice
    /// per `drop_retired`; one still held by a request in flight is freed by
    /// that request.
    pub fn apply_snapshot(&mut self, compiled: Compiled, now_ms: u64) {
        let mut seen = HashMap::new();
        for route in compiled.models.values().flat_map(|m| m.routes.iter()) {
            if !route.cluster.is_empty() {
                let at = self
                    .clusters_seen
                    .get(&route.cluster)
                    .copied()
                    .unwrap_or(now_ms);
                seen.insert(route.cluster.clone(), at);
            }
        }
        self.clusters_seen = seen;
        let old = self.snapshot.replace(Arc::new(compiled));
        if let Some(old) = old.and_then(|o| Arc::try_unwrap(o).ok()) {
            // Whatever was still retiring goes now: snapshots rarely come that fast.
            self.retired = None;
            self.retired = Some(old.keys.into_iter());
        }
    }

    /// Whether Envoy has had time to fetch this failover cluster.
    pub fn cluster_ready(&self, name: &str, now_ms: u64) -> bool {
        self.clusters_seen
            .get(name)
            .is_some_and(|&at| now_ms.saturating_sub(at) >= CLUSTER_WARMUP_MS)
    }

    pub fn drop_retired(&mut self) {
        if let Some(rest) = self.retired.as_mut() {
            if rest.by_ref().take(RETIRE_PER_TICK).count() < RETIRE_PER_TICK {
                self.retired = None;
            }
        }
    }

    /// A reply the gateway made itself (a refusal, its own 502) is counted
    /// by its error code, when metrics are on.
    pub fn count_reply(&mut self, reply: &crate::reply::Reply) {
        if let Some(code) = reply.code {
            if self.config.as_ref().is_some_and(|c| c.metrics) {
                self.metric_updates
                    .push(crate::metrics::for_reply(code.code()));
            }
        }
    }

    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }

    pub(crate) fn want_leases(&mut self, wants: Vec<LeaseWant>) {
        for w in wants {
            self.lease_wants.insert(w.bucket.clone(), w);
        }
    }
}
