//! Deployments cooling down after a 429, shared by every worker of this
//! Envoy through shared data (Envoy's outlier detection, which ejects on
//! connect failures and 5xx, does not count 429). The upstream role marks a
//! deployment when an attempt is answered 429, for 30 s or the
//! `Retry-After` when longer; the listener filter does not choose a cooling
//! deployment first while another is usable. When the time is up the
//! deployment takes its share again (a 429 then cools it again).

use crate::limits::Store;

pub const COOLDOWN_MS: u64 = 30_000;
/// A `Retry-After` longer than this is taken as this.
pub const MAX_COOLDOWN_MS: u64 = 3_600_000;

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

fn read(store: &dyn Store, key: &str) -> Option<u64> {
    let (value, _) = store.get(key);
    std::str::from_utf8(&value?).ok()?.parse().ok()
}

pub fn cooling(store: &dyn Store, model: &str, index: usize, now_ms: u64) -> bool {
    read(store, &key(model, index)).is_some_and(|until| until > now_ms)
}

/// Marks a deployment as cooling until `until` (a later mark is kept).
pub fn cool(store: &dyn Store, model: &str, index: usize, until: u64) {
    let key = key(model, index);
    for _ in 0..4 {
        let (value, cas) = store.get(&key);
        let current = value
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        if current >= until || store.set(&key, until.to_string().as_bytes(), cas) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Mem;

    #[test]
    fn a_429_cools_for_30_s_or_its_retry_after_and_nothing_else_does() {
        assert_eq!(until(429, b"", 1_000), Some(31_000));
        assert_eq!(until(429, b"5", 1_000), Some(31_000));
        assert_eq!(until(429, b" 120 ", 1_000), Some(121_000));
        assert_eq!(
            until(429, b"Wed, 21 Oct 2015 07:28:00 GMT", 0),
            Some(30_000)
        );
        assert_eq!(until(429, b"99999999999", 0), Some(MAX_COOLDOWN_MS));
        for status in [200, 400, 500, 503] {
            assert_eq!(until(status, b"60", 0), None);
        }
    }

    #[test]
    fn a_mark_is_seen_until_it_ends_and_a_shorter_one_does_not_shorten_it() {
        let store = Mem::default();
        assert!(!cooling(&store, "m", 1, 0));
        cool(&store, "m", 1, 50_000);
        assert!(cooling(&store, "m", 1, 49_999));
        assert!(!cooling(&store, "m", 1, 50_000));
        assert!(!cooling(&store, "m", 0, 10), "another deployment");
        assert!(!cooling(&store, "other", 1, 10), "another model");
        cool(&store, "m", 1, 40_000);
        assert!(cooling(&store, "m", 1, 45_000));
        store.lose.set(1);
        cool(&store, "m", 1, 90_000);
        assert!(
            cooling(&store, "m", 1, 80_000),
            "written on the retry after a lost race"
        );
    }
}
