//! The idle timeout between pieces of a response body, per deployment
//! (issue 11, rule 6; docs/routing.md, "Timeouts"). Once a response's
//! headers came, a deployment with `idle_timeout_ms` may stay silent that
//! long between two pieces of its body; past that the listener filter ends
//! the response (a stream then stops without its last event, and its usage
//! record says `cut`). Envoy's timeouts for this are one per route
//! (`idle_timeout`, `retry_policy.per_try_idle_timeout`), not per
//! deployment, so each worker keeps its own watch of its open responses and
//! the root context looks at it every tick.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy)]
struct Stall {
    deadline_ms: u64,
    idle_ms: u64,
}

/// The watched responses of one worker, by HTTP context id.
#[derive(Debug, Default)]
pub struct Watch {
    streams: HashMap<u32, Stall>,
    /// Ended by `expired`, until `forget` says so (once, at their end).
    cut: HashSet<u32>,
}

impl Watch {
    /// Response headers came: silent from now on for `idle_ms`, it ends.
    pub fn arm(&mut self, id: u32, idle_ms: u64, now_ms: u64) {
        let deadline_ms = now_ms.saturating_add(idle_ms);
        self.streams.insert(
            id,
            Stall {
                deadline_ms,
                idle_ms,
            },
        );
    }

    /// A piece of the body came: the wait starts again.
    pub fn touch(&mut self, id: u32, now_ms: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.deadline_ms = now_ms.saturating_add(s.idle_ms);
        }
    }

    /// The response ended (or its stream went): no longer watched.
    /// Whether this watch ended it (`expired` gave it).
    pub fn forget(&mut self, id: u32) -> bool {
        self.streams.remove(&id);
        !self.cut.is_empty() && self.cut.remove(&id)
    }

    /// The responses silent past their timeout, no longer watched: each is
    /// to be ended once.
    pub fn expired(&mut self, now_ms: u64) -> Vec<u32> {
        if self.streams.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.deadline_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        out.sort_unstable();
        for id in &out {
            self.streams.remove(id);
            self.cut.insert(*id);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

#[cfg(test)]
#[path = "idle_tests.rs"]
mod tests;
