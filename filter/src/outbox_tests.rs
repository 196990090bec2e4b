use super::*;
use tollgate_contract::usage::{UsageBatch, UsageRecord};

fn record(n: u64) -> Vec<u8> {
    serde_json::to_vec(&UsageRecord {
        request_id: format!("req_{n}"),
        key_id: "k".into(),
        account_id: "a".into(),
        model: "m".into(),
        upstream_model: "u".into(),
        provider: "p".into(),
        status: 200,
        input_tokens: n,
        output_tokens: n,
        cache_read_tokens: 0,
        cache_creation_tokens: 0,
        estimated: false,
        stream: false,
        latency_ms: 1,
        ttft_ms: None,
        cost_nanos: 0,
        created_at_ms: 0,
        attempts: 1,
        cut: false,
    })
    .expect("json")
}

fn ids(batch: &[u8]) -> Vec<String> {
    let b: UsageBatch = serde_json::from_slice(batch).expect("json");
    b.records.into_iter().map(|r| r.request_id).collect()
}

#[test]
fn a_batch_goes_when_full_or_when_its_oldest_record_is_old_enough() {
    let mut o = Outbox::new(100, 3, 1_000);
    o.push(record(1), 0);
    assert!(!o.due(999));
    assert!(o.due(1_000));
    o.push(record(2), 10);
    o.push(record(3), 20);
    assert!(o.due(20), "full batch goes at once");
    assert_eq!(ids(&o.take_batch()), ["req_1", "req_2", "req_3"]);
    assert!(!o.due(5_000), "one batch in flight at a time");
}

#[test]
fn records_stay_until_acknowledged_and_a_retry_sends_the_same_batch() {
    let mut o = Outbox::new(100, 2, 0);
    for n in 1..=3 {
        o.push(record(n), 0);
    }
    let first = ids(&o.take_batch());
    o.on_result(false, 100);
    assert!(!o.due(299));
    assert!(o.due(300));
    assert_eq!(
        ids(&o.take_batch()),
        first,
        "the retry carries the same records"
    );
    o.on_result(true, 300);
    assert_eq!(o.len(), 1);
    assert!(o.due(300));
    assert_eq!(ids(&o.take_batch()), ["req_3"]);
    o.on_result(true, 301);
    assert!(o.is_empty());
    assert_eq!(o.shipped, 3);
}

#[test]
fn backoff_doubles_to_a_cap_and_resets_on_success() {
    let mut o = Outbox::new(100, 10, 0);
    o.push(record(1), 0);
    let mut now = 0;
    let mut delays = Vec::new();
    for _ in 0..8 {
        let _ = o.take_batch();
        o.on_result(false, now);
        let mut t = now;
        while !o.due(t) {
            t += 1;
        }
        delays.push(t - now);
        now = t;
    }
    assert_eq!(delays, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    let _ = o.take_batch();
    o.on_result(true, now);
    o.push(record(2), now);
    assert!(o.due(now));
}

#[test]
fn past_capacity_records_are_dropped_and_counted() {
    let mut o = Outbox::new(2, 10, 0);
    for n in 0..5 {
        o.push(record(n), 0);
    }
    assert_eq!((o.len(), o.dropped), (2, 3));
}
