//! Each deployment's moving average of time to the response headers, for
//! models whose `strategy` is `least_latency`, in Envoy shared data (so
//! every worker of an Envoy steers by the same figures).

use crate::limits::Store;

/// The weight of a new sample, in fifths (an exponential moving average
/// that forgets a sample's weight by 20% a request).
const NEW_FIFTHS: u64 = 1;

pub fn key(model: &str, index: usize) -> String {
    format!("tollgate.lat.{index}.{model}")
}

/// The average in microseconds; 0 when never measured (such a deployment is
/// tried first, so that it gets measured).
pub fn average_us(store: &dyn Store, model: &str, index: usize) -> u64 {
    let (value, _) = store.get(&key(model, index));
    value
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
        .unwrap_or(0)
}

/// Adds one sample. A lost race drops it: the next request measures again.
pub fn record(store: &dyn Store, model: &str, index: usize, sample_us: u64) {
    let key = key(model, index);
    let (value, cas) = store.get(&key);
    let old: u64 = value
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
        .unwrap_or(0);
    let sample = sample_us.max(1);
    let new = if old == 0 {
        sample
    } else {
        (old.saturating_mul(5 - NEW_FIFTHS) + sample.saturating_mul(NEW_FIFTHS)) / 5
    };
    store.set(&key, new.to_string().as_bytes(), cas);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Mem;

    #[test]
    fn the_average_starts_at_the_first_sample_and_moves_a_fifth_of_the_way() {
        let store = Mem::default();
        assert_eq!(average_us(&store, "m", 0), 0);
        record(&store, "m", 0, 1_000);
        assert_eq!(average_us(&store, "m", 0), 1_000);
        record(&store, "m", 0, 6_000);
        assert_eq!(average_us(&store, "m", 0), 2_000);
        assert_eq!(average_us(&store, "m", 1), 0, "another deployment");
        record(&store, "m", 1, 0);
        assert_eq!(
            average_us(&store, "m", 1),
            1,
            "a 0 sample still counts as measured"
        );
    }
}
