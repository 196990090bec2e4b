//! The per-key views' coarse histogram against the fine one.

use super::*;

#[test]
fn a_coarse_bucket_is_at_most_about_twice_its_latencies() {
    assert_eq!(COARSE_COUNT * COARSE_WIDTH, BUCKET_COUNT);
    for latency in (0..2_000).chain((2_000..900_000).step_by(997)) {
        let top = edge(coarse_top(bucket(latency) / COARSE_WIDTH));
        assert!(
            top >= latency.min(edge(BUCKET_COUNT - 1)),
            "{latency} -> {top}"
        );
        if latency <= edge(BUCKET_COUNT - 1) {
            assert!(top <= 2 * latency + 1, "{latency} -> {top}");
        }
    }
}
