//! The config poller's state machine: when to ask the control plane, what to
//! do with its answer. A long poll is held by the control plane until the
//! version changes, so a change reaches the filter as soon as it is written;
//! failures back off exponentially and never drop the snapshot in hand.

use crate::snapshot::Compiled;

const BACKOFF_MIN_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 5_000;

#[derive(Debug, Default)]
pub struct Poller {
    version: Option<u64>,
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
    Failed(String),
}

impl Poller {
    pub fn due(&self, now_ms: u64) -> bool {
        !self.in_flight && now_ms >= self.next_at_ms
    }

    pub fn path(&self, wait_ms: u64) -> String {
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
        match status {
            Some(200) => match Compiled::from_json(body) {
                Ok(compiled) => {
                    self.version = Some(compiled.version);
                    self.ok(now_ms);
                    PollOutcome::Updated(Box::new(compiled))
                }
                Err(e) => {
                    self.back_off(now_ms);
                    PollOutcome::Failed(e)
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
