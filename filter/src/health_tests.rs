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
    let h = |i, now| health(&store, "m", i, now);
    assert_eq!(h(1, 0), Health::Healthy);
    cool(&store, "m", 1, 50_000);
    assert_eq!(h(1, 49_999), Health::Cooling { until_ms: 50_000 });
    assert_eq!(h(1, 50_000), Health::Healthy, "a 429 needs no probe");
    assert_eq!(h(0, 10), Health::Healthy, "another deployment");
    assert_eq!(health(&store, "other", 1, 10), Health::Healthy);
    cool(&store, "m", 1, 40_000);
    assert_eq!(h(1, 45_000), Health::Cooling { until_ms: 50_000 });
    store.lose.set(1);
    cool(&store, "m", 1, 90_000);
    assert_eq!(
        h(1, 80_000),
        Health::Cooling { until_ms: 90_000 },
        "written on the retry after a lost race"
    );
}

#[test]
fn three_failures_in_a_row_cool_it_a_success_between_them_starts_again() {
    let store = Mem::default();
    failed(&store, "m", 0, 1_000);
    failed(&store, "m", 0, 2_000);
    assert_eq!(health(&store, "m", 0, 2_000), Health::Healthy);
    recovered(&store, "m", 0);
    assert_eq!(mark(&store, "m", 0), Mark::default());
    failed(&store, "m", 0, 3_000);
    failed(&store, "m", 0, 4_000);
    failed(&store, "m", 0, 5_000);
    assert_eq!(
        health(&store, "m", 0, 5_000),
        Health::Cooling {
            until_ms: 5_000 + COOLDOWN_MS
        }
    );
}

#[test]
fn after_the_cool_down_one_request_probes_and_its_answer_decides() {
    let store = Mem::default();
    for t in 0..3 {
        failed(&store, "m", 2, t);
    }
    let over = 3 + COOLDOWN_MS;
    assert_eq!(health(&store, "m", 2, over), Health::Probing);
    assert!(claim_probe(&store, "m", 2, over), "the first claims it");
    assert!(!claim_probe(&store, "m", 2, over + 1), "only one probe");
    assert_eq!(
        health(&store, "m", 2, over + 1),
        Health::Cooling {
            until_ms: over + PROBE_MS
        }
    );
    // A failed probe cools it again at once.
    failed(&store, "m", 2, over + 100);
    assert_eq!(
        health(&store, "m", 2, over + 200),
        Health::Cooling {
            until_ms: over + 100 + COOLDOWN_MS
        }
    );
    // A probe that succeeds clears the mark.
    let later = over + 100 + COOLDOWN_MS;
    assert!(claim_probe(&store, "m", 2, later));
    recovered(&store, "m", 2);
    assert_eq!(health(&store, "m", 2, later), Health::Healthy);
    assert_eq!(mark(&store, "m", 2), Mark::default());
}

#[test]
fn a_success_keeps_a_429s_cool_down_and_an_old_mark_still_reads() {
    let store = Mem::default();
    failed(&store, "m", 0, 0);
    cool(&store, "m", 0, 60_000);
    recovered(&store, "m", 0);
    assert_eq!(
        mark(&store, "m", 0),
        Mark {
            until_ms: 60_000,
            failures: 0
        }
    );
    // A mark as the filter wrote it before failures were counted.
    store.set(&key("m", 1), b"70000", None);
    assert_eq!(
        health(&store, "m", 1, 0),
        Health::Cooling { until_ms: 70_000 }
    );
    store.set(&key("m", 1), b"garbage", None);
    assert_eq!(health(&store, "m", 1, 0), Health::Healthy);
}
