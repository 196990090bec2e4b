//! The provider credentials the gateways marked (issue 11, rule 5): each
//! filter's health report names the credentials benched (a 429) or
//! disabled (a 401/403) in its Envoy's shared data. A bench is shown while
//! it runs, from the reports kept in memory; a disable is written to the
//! provider's key pool in the database (`internal/health.rs`), which
//! republishes the snapshot without it, and stays until an admin changes
//! that credential.

use std::collections::HashMap;
use std::sync::Mutex;

use tollgate_contract::health::{CredentialHealth, CredentialState};

use crate::deployment_health::FRESH_MS;

/// Each reporter's last list of benched credentials.
#[derive(Default)]
pub struct Book {
    reports: Mutex<HashMap<String, (i64, Vec<CredentialHealth>)>>,
}

/// The most reporters kept, as for the deployments' health.
const MAX_REPORTERS: usize = 4096;

impl Book {
    pub fn record(&self, reporter: &str, report: &[CredentialHealth], now_ms: i64) {
        let Ok(mut reports) = self.reports.lock() else {
            return;
        };
        reports.retain(|_, (at, _)| now_ms - *at < FRESH_MS);
        if reports.len() >= MAX_REPORTERS && !reports.contains_key(reporter) {
            return;
        }
        let benched = report
            .iter()
            .filter(|c| c.state == CredentialState::Benched)
            .cloned()
            .collect();
        reports.insert(reporter.to_string(), (now_ms, benched));
    }

    /// Until when (Unix ms) a fresh report has this credential benched.
    pub fn benched_until(
        &self,
        provider: &str,
        id: &str,
        generation: u32,
        now_ms: i64,
    ) -> Option<i64> {
        let reports = self.reports.lock().ok()?;
        reports
            .values()
            .filter(|(at, _)| now_ms - *at < FRESH_MS)
            .flat_map(|(_, list)| list.iter())
            .filter(|c| c.provider == provider && c.credential == id && c.generation == generation)
            .map(|c| i64::try_from(c.until_ms).unwrap_or(i64::MAX))
            .filter(|&until| until > now_ms)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(state: CredentialState, until_ms: u64) -> CredentialHealth {
        CredentialHealth {
            provider: "p".into(),
            credential: "k1".into(),
            generation: 2,
            state,
            until_ms,
            status: 429,
        }
    }

    #[test]
    fn a_bench_is_shown_while_it_runs_for_its_generation_and_while_its_report_is_fresh() {
        let book = Book::default();
        book.record("w1", &[mark(CredentialState::Benched, 50_000)], 1_000);
        assert_eq!(book.benched_until("p", "k1", 2, 2_000), Some(50_000));
        // Another generation (an admin changed it since): not benched.
        assert_eq!(book.benched_until("p", "k1", 3, 2_000), None);
        assert_eq!(book.benched_until("p", "k2", 2, 2_000), None);
        // Over, or its report stale.
        assert_eq!(book.benched_until("p", "k1", 2, 50_000), None);
        assert_eq!(book.benched_until("p", "k1", 2, 1_000 + FRESH_MS), None);
        // The worker's next report replaces it; a disable is not a bench.
        book.record("w1", &[mark(CredentialState::Disabled, 0)], 3_000);
        assert_eq!(book.benched_until("p", "k1", 2, 4_000), None);
    }
}
