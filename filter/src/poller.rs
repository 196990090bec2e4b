//! The config poller's state machine: when to ask the control plane, what to
//! do with its answer. A long poll is held by the control plane until the
//! version changes, so a change reaches the filter as soon as it is written;
//! failures back off exponentially and never drop the snapshot in hand.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_contract::key::KeyHash;
use tollgate_contract::snapshot::{Key, KeyPage, Snapshot};

use crate::snapshot::{index_keys, Compiled};

const BACKOFF_MIN_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 5_000;

/// A paged snapshot being fetched: its head, and the keys of the pages in
/// so far. The snapshot in hand keeps serving until the last page is in.
#[derive(Debug)]
struct Pending {
    head: Snapshot,
    next_page: u32,
    keys: HashMap<KeyHash, Arc<Key>>,
}

#[derive(Debug, Default)]
pub struct Poller {
    version: Option<u64>,
    pending: Option<Pending>,
    in_flight: bool,
    next_at_ms: u64,
    failures: u32,
    /// When the last answer (200 or 304) came back.
    pub last_ok_ms: Option<u64>,
}

#[derive(Debug)]
pub enum PollOutcome {
    Updated(Box<Compiled>),
    Unchanged,
    /// A page of a paged snapshot is in; the next one is due at once.
    Paging,
    Failed(String),
}

impl Poller {
    pub fn due(&self, now_ms: u64) -> bool {
        !self.in_flight && now_ms >= self.next_at_ms
    }

    pub fn path(&self, wait_ms: u64) -> String {
        if let Some(p) = &self.pending {
            return format!(
                "/internal/config/keys?version={}&page={}",
                p.head.version, p.next_page
            );
        }
        match self.version {
            Some(v) => format!("/internal/config?version={v}&wait_ms={wait_ms}"),
            None => "/internal/config".to_string(),
        }
    }

    pub fn sent(&mut self) {
        self.in_flight = true;
    }

    /// The call could not even be dispatched.
    pub fn not_sent(&mut self, now_ms: u64) {
        self.in_flight = false;
        self.back_off(now_ms);
    }

    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// Whether the last answer is recent enough to call the config fresh.
    pub fn healthy(&self, now_ms: u64, wait_ms: u64) -> bool {
        self.last_ok_ms
            .is_some_and(|t| now_ms.saturating_sub(t) <= wait_ms + 10_000)
    }

    pub fn on_response(&mut self, now_ms: u64, status: Option<u16>, body: &[u8]) -> PollOutcome {
        self.in_flight = false;
        if let Some(pending) = self.pending.take() {
            return self.on_page(now_ms, pending, status, body);
        }
        match status {
            Some(200) => match serde_json::from_slice::<Snapshot>(body) {
                Ok(head) if head.key_pages > 0 => {
                    self.ok(now_ms);
                    self.pending = Some(Pending {
                        head,
                        next_page: 0,
                        keys: HashMap::new(),
                    });
                    PollOutcome::Paging
                }
                Ok(snapshot) => self.compiled(now_ms, Compiled::new(snapshot)),
                Err(e) => {
                    self.back_off(now_ms);
                    PollOutcome::Failed(format!("snapshot: {e}"))
                }
            },
            Some(304) => {
                self.ok(now_ms);
                PollOutcome::Unchanged
            }
            Some(other) => {
                self.back_off(now_ms);
                PollOutcome::Failed(format!("control plane answered {other}"))
            }
            None => {
                self.back_off(now_ms);
                PollOutcome::Failed("control plane call failed".to_string())
            }
        }
    }

    fn on_page(
        &mut self,
        now_ms: u64,
        mut pending: Pending,
        status: Option<u16>,
        body: &[u8],
    ) -> PollOutcome {
        let page = match (status, serde_json::from_slice::<KeyPage>(body)) {
            (Some(200), Ok(page)) => page,
            // 409: the version moved on while paging; the next poll brings
            // the new head. Anything else backs off the same way.
            (status, parsed) => {
                self.back_off(now_ms);
                let why = parsed.err().map(|e| e.to_string()).unwrap_or_default();
                return PollOutcome::Failed(format!(
                    "key page {} of version {}: {status:?} {why}",
                    pending.next_page, pending.head.version
                ));
            }
        };
        if let Err(e) = index_keys(&mut pending.keys, page.keys) {
            self.back_off(now_ms);
            return PollOutcome::Failed(e);
        }
        pending.next_page += 1;
        if pending.next_page < pending.head.key_pages {
            self.pending = Some(pending);
            return PollOutcome::Paging;
        }
        let Pending { head, keys, .. } = pending;
        self.compiled(now_ms, Compiled::with_keys(head, keys))
    }

    fn compiled(&mut self, now_ms: u64, compiled: Result<Compiled, String>) -> PollOutcome {
        match compiled {
            Ok(compiled) => {
                self.version = Some(compiled.version);
                self.ok(now_ms);
                PollOutcome::Updated(Box::new(compiled))
            }
            Err(e) => {
                self.back_off(now_ms);
                PollOutcome::Failed(e)
            }
        }
    }

    fn ok(&mut self, now_ms: u64) {
        self.failures = 0;
        self.next_at_ms = now_ms;
        self.last_ok_ms = Some(now_ms);
    }

    fn back_off(&mut self, now_ms: u64) {
        let shift = self.failures.min(10);
        self.failures = self.failures.saturating_add(1);
        let delay = BACKOFF_MIN_MS
            .saturating_mul(1 << shift)
            .min(BACKOFF_MAX_MS);
        self.next_at_ms = now_ms.saturating_add(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAP: &[u8] = br#"{"version":7,"keys":[],"models":[],"providers":[]}"#;

    fn page(ids: &[u8]) -> Vec<u8> {
        let keys: Vec<String> = ids
            .iter()
            .map(|i| format!(r#"{{"id":"k{i}","hash":"{:064x}","account_id":"a","models":null,"expires_at":null}}"#, i))
            .collect();
        format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
    }

    #[test]
    fn a_paged_snapshot_is_applied_once_its_last_page_is_in() {
        let mut p = Poller::default();
        p.sent();
        let _ = p.on_response(0, Some(200), SNAP);
        let head = br#"{"version":9,"keys":[],"models":[],"providers":[],"key_pages":2}"#;
        p.sent();
        assert!(matches!(
            p.on_response(1, Some(200), head),
            PollOutcome::Paging
        ));
        assert!(p.due(1));
        assert_eq!(p.path(20_000), "/internal/config/keys?version=9&page=0");
        p.sent();
        assert!(matches!(
            p.on_response(2, Some(200), &page(&[1, 2])),
            PollOutcome::Paging
        ));
        assert_eq!(p.path(20_000), "/internal/config/keys?version=9&page=1");
        assert_eq!(
            p.version(),
            Some(7),
            "the old snapshot serves until the last page"
        );
        p.sent();
        match p.on_response(3, Some(200), &page(&[3])) {
            PollOutcome::Updated(c) => {
                assert_eq!((c.version, c.keys.len()), (9, 3));
                let mut hash = [0u8; 32];
                hash[31] = 3;
                assert_eq!(
                    c.keys.get(&KeyHash(hash)).map(|k| k.id.as_str()),
                    Some("k3")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.path(20_000), "/internal/config?version=9&wait_ms=20000");
    }

    #[test]
    fn a_page_that_fails_drops_the_paging_and_keeps_the_old_snapshot() {
        let mut p = Poller::default();
        p.sent();
        let _ = p.on_response(0, Some(200), SNAP);
        p.sent();
        let head = br#"{"version":9,"keys":[],"models":[],"providers":[],"key_pages":3}"#;
        let _ = p.on_response(1, Some(200), head);
        p.sent();
        // The version moved on while paging (409), or a page is garbage.
        assert!(matches!(
            p.on_response(2, Some(409), b""),
            PollOutcome::Failed(_)
        ));
        assert_eq!(p.path(20_000), "/internal/config?version=7&wait_ms=20000");
        p.sent();
        let _ = p.on_response(3_000, Some(200), head);
        p.sent();
        assert!(matches!(
            p.on_response(3_001, Some(200), b"{\"keys\":5}"),
            PollOutcome::Failed(_)
        ));
        assert_eq!(p.version(), Some(7));
    }

    #[test]
    fn the_first_poll_asks_for_any_version_and_later_ones_name_theirs() {
        let mut p = Poller::default();
        assert!(p.due(0));
        assert_eq!(p.path(20_000), "/internal/config");
        p.sent();
        assert!(!p.due(0), "one poll in flight at a time");
        assert!(matches!(
            p.on_response(5, Some(200), SNAP),
            PollOutcome::Updated(_)
        ));
        assert_eq!(p.path(20_000), "/internal/config?version=7&wait_ms=20000");
        assert!(p.due(5), "a new poll goes out at once");
    }

    #[test]
    fn failures_back_off_exponentially_up_to_a_cap_and_keep_the_version() {
        let mut p = Poller::default();
        p.sent();
        let _ = p.on_response(0, Some(200), SNAP);
        let mut now = 0;
        let mut delays = Vec::new();
        for status in [
            Some(500),
            None,
            Some(401),
            Some(200),
            Some(503),
            Some(502),
            Some(500),
            Some(500),
            Some(500),
        ] {
            p.sent();
            let body: &[u8] = if status == Some(200) { b"garbage" } else { b"" };
            assert!(matches!(
                p.on_response(now, status, body),
                PollOutcome::Failed(_)
            ));
            let mut t = now;
            while !p.due(t) {
                t += 1;
            }
            delays.push(t - now);
            now = t;
        }
        assert_eq!(
            delays,
            vec![100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
        assert_eq!(p.version(), Some(7));
        p.sent();
        assert!(matches!(
            p.on_response(now, Some(304), b""),
            PollOutcome::Unchanged
        ));
        assert!(p.due(now));
        assert!(p.healthy(now, 20_000));
        assert!(!p.healthy(now + 31_000, 20_000));
    }
}
