use std::cell::RefCell;

use super::*;
use crate::testkit::Mem;

/// A store in which another worker acts between this worker's first read
/// and its write: `between` runs once, right after the first `get`.
struct Interleaved<'a> {
    inner: &'a Mem,
    between: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
}

impl Store for Interleaved<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        let seen = self.inner.get(key);
        if let Some(other_worker) = self.between.borrow_mut().take() {
            other_worker();
        }
        seen
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.inner.set(key, value, cas)
    }
}

fn key(rpm: Option<u32>, tpm: Option<u64>, max_concurrent: Option<u32>) -> Key {
    Key {
        id: "k1".into(),
        hash: String::new(),
        account_id: "a1".into(),
        models: None,
        expires_at: None,
        rpm,
        tpm,
        max_concurrent,
        budget_nanos: None,
        spent_nanos: 0,
        group: None,
    }
}

fn account(rpm: Option<u32>, tpm: Option<u64>, max_concurrent: Option<u32>) -> Account {
    Account {
        id: "a1".into(),
        balance_nanos: None,
        spent_nanos: 0,
        rpm,
        tpm,
        max_concurrent,
    }
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn exactly_rpm_requests_pass_in_a_burst_then_one_per_refill_interval() {
    let store = Mem::default();
    let plan = Plan::new(&key(Some(10), None, None), None);
    let t0 = 1_000_000;
    let admitted = (0..15)
        .filter(|_| admit(&store, &plan, 0, 0, t0, &mut Vec::new()).is_ok())
        .count();
    assert_eq!(admitted, 10);
    let refused = admit(&store, &plan, 0, 0, t0, &mut Vec::new()).expect_err("over the limit");
    assert_eq!(refused.status, 429);
    // 10 per minute: one request comes back every 6 s.
    assert_eq!(header(&refused.headers, "retry-after"), Some("6"));
    assert_eq!(
        header(&refused.headers, "x-ratelimit-remaining-requests"),
        Some("0")
    );
    assert!(admit(&store, &plan, 0, 0, t0 + 5_999, &mut Vec::new()).is_err());
    assert!(admit(&store, &plan, 0, 0, t0 + 6_000, &mut Vec::new()).is_ok());
    assert!(admit(&store, &plan, 0, 0, t0 + 6_001, &mut Vec::new()).is_err());
    // After a whole minute the bucket is full again, never fuller.
    let later = t0 + 10 * 60_000;
    assert_eq!(
        (0..15)
            .filter(|_| admit(&store, &plan, 0, 0, later, &mut Vec::new()).is_ok())
            .count(),
        10
    );
}

#[test]
fn lost_races_are_retried_so_no_admission_is_miscounted() {
    let store = Mem::default();
    let plan = Plan::new(&key(Some(5), None, None), None);
    assert!(admit(&store, &plan, 0, 0, 0, &mut Vec::new()).is_ok()); // creates the counter
    store.lose.set(3);
    assert!(admit(&store, &plan, 0, 0, 0, &mut Vec::new()).is_ok());
    let admitted = 2
        + (0..10)
            .filter(|_| admit(&store, &plan, 0, 0, 0, &mut Vec::new()).is_ok())
            .count();
    assert_eq!(admitted, 5, "the retried admission was counted once");
}

#[test]
fn token_reservations_are_settled_with_the_real_count() {
    let store = Mem::default();
    let plan = Plan::new(&key(None, Some(1000), None), None);
    let a = admit(&store, &plan, 600, 0, 0, &mut Vec::new()).expect("600 of 1000");
    assert_eq!(
        header(&a.headers, "x-ratelimit-remaining-tokens"),
        Some("400")
    );
    assert!(
        admit(&store, &plan, 600, 0, 0, &mut Vec::new()).is_err(),
        "only 400 left"
    );
    // The request used 100: 500 come back.
    release(
        &store,
        &a,
        Some(Used {
            tokens: 100,
            nanos: 0,
        }),
        0,
    );
    let b = admit(&store, &plan, 800, 0, 0, &mut Vec::new()).expect("900 left");
    assert_eq!(
        header(&b.headers, "x-ratelimit-remaining-tokens"),
        Some("100")
    );
    // It used 1500, more than reserved: the bucket goes into debt...
    release(
        &store,
        &b,
        Some(Used {
            tokens: 1500,
            nanos: 0,
        }),
        0,
    );
    let refused = admit(&store, &plan, 1, 0, 0, &mut Vec::new()).expect_err("in debt");
    assert_eq!(
        header(&refused.headers, "x-ratelimit-remaining-tokens"),
        Some("0")
    );
    // ... 600 below zero: 601 tokens at 1000/min take 36.06 s.
    assert_eq!(header(&refused.headers, "retry-after"), Some("37"));
    assert!(admit(&store, &plan, 1, 0, 36_060, &mut Vec::new()).is_ok());
}

#[test]
fn a_request_bigger_than_the_bucket_waits_for_a_full_one() {
    let store = Mem::default();
    let plan = Plan::new(&key(None, Some(100), None), None);
    assert!(
        admit(&store, &plan, 5000, 0, 0, &mut Vec::new()).is_ok(),
        "a full bucket admits it"
    );
    assert!(admit(&store, &plan, 5000, 0, 1000, &mut Vec::new()).is_err());
}

#[test]
fn concurrency_slots_are_held_until_released() {
    let store = Mem::default();
    let plan = Plan::new(&key(None, None, Some(2)), None);
    let a = admit(&store, &plan, 0, 0, 0, &mut Vec::new()).expect("1");
    let _b = admit(&store, &plan, 0, 0, 0, &mut Vec::new()).expect("2");
    let refused = admit(&store, &plan, 0, 0, 0, &mut Vec::new()).expect_err("3rd");
    assert_eq!(refused.code, Some(ErrorCode::RateLimitExceeded));
    assert!(String::from_utf8_lossy(&refused.body).contains("concurrent"));
    release(
        &store,
        &a,
        Some(Used {
            tokens: 10,
            nanos: 0,
        }),
        0,
    );
    assert!(admit(&store, &plan, 0, 0, 0, &mut Vec::new()).is_ok());
}

#[test]
fn a_refusal_gives_back_what_was_already_taken() {
    let store = Mem::default();
    // The key allows 10 rpm, the account's concurrency is full.
    let plan = Plan::new(
        &key(Some(10), Some(1000), None),
        Some(&account(None, None, Some(1))),
    );
    let held = admit(&store, &plan, 100, 0, 0, &mut Vec::new()).expect("first");
    for _ in 0..5 {
        let refused =
            admit(&store, &plan, 100, 0, 0, &mut Vec::new()).expect_err("account slot taken");
        assert!(String::from_utf8_lossy(&refused.body).contains("account"));
    }
    // Only the first request counted against the key's buckets.
    let (raw, _) = store.get("tollgate:k:k1:rpm");
    assert_eq!(Bucket::decode(raw.as_deref(), 10, 0).remaining(), 9);
    let (raw, _) = store.get("tollgate:k:k1:tpm");
    assert_eq!(Bucket::decode(raw.as_deref(), 1000, 0).remaining(), 900);
    release(&store, &held, None, 0);
    let (raw, _) = store.get("tollgate:k:k1:rpm");
    assert_eq!(
        Bucket::decode(raw.as_deref(), 10, 0).remaining(),
        10,
        "never sent: given back"
    );
}

#[test]
fn account_limits_apply_over_all_its_keys() {
    let store = Mem::default();
    let acct = account(Some(3), None, None);
    let mut k2 = key(None, None, None);
    k2.id = "k2".into();
    let plans = [
        Plan::new(&key(None, None, None), Some(&acct)),
        Plan::new(&k2, Some(&acct)),
    ];
    let admitted = (0..8)
        .filter(|i| admit(&store, &plans[i % 2], 0, 0, 0, &mut Vec::new()).is_ok())
        .count();
    assert_eq!(admitted, 3);
}

#[test]
fn changing_a_limit_keeps_the_window() {
    let store = Mem::default();
    for _ in 0..8 {
        admit(
            &store,
            &Plan::new(&key(Some(10), None, None), None),
            0,
            0,
            0,
            &mut Vec::new(),
        )
        .expect("under 10");
    }
    // Raised to 20: still 2 + 0 refill left of the current level, not 20.
    let raised = Plan::new(&key(Some(20), None, None), None);
    assert_eq!(
        (0..30)
            .filter(|_| admit(&store, &raised, 0, 0, 0, &mut Vec::new()).is_ok())
            .count(),
        2
    );
}

#[test]
fn reset_durations_read_like_openai() {
    assert_eq!(duration(0), "0ms");
    assert_eq!(duration(20), "20ms");
    assert_eq!(duration(1000), "1s");
    assert_eq!(duration(1450), "1.5s");
    assert_eq!(duration(6000), "6s");
    assert_eq!(duration(360_000), "6m0s");
    assert_eq!(duration(61_500), "1m2s");
}

#[test]
fn no_limits_no_counters() {
    let store = Mem::default();
    let plan = Plan::new(&key(None, None, None), Some(&account(None, None, None)));
    assert!(plan.is_empty());
    let a = admit(&store, &plan, 100, 0, 0, &mut Vec::new()).expect("nothing to check");
    assert!(a.headers.is_empty());
    assert!(store.map.borrow().is_empty());
}

fn budget_key(budget: u64, spent: u64) -> Key {
    Key {
        budget_nanos: Some(budget),
        spent_nanos: spent,
        ..key(None, None, None)
    }
}

#[test]
fn concurrent_requests_at_an_almost_empty_budget_overspend_by_at_most_one() {
    let store = Mem::default();
    // $1.00 budget, 50 requests reserving up to $0.10 each, all in flight at once.
    let plan = Plan::new(&budget_key(1_000_000_000, 0), None);
    let held: Vec<_> = (0..50)
        .filter_map(|_| admit(&store, &plan, 0, 100_000_000, 0, &mut Vec::new()).ok())
        .collect();
    assert_eq!(held.len(), 10);
    let refused = admit(&store, &plan, 0, 100_000_000, 0, &mut Vec::new()).expect_err("used up");
    assert_eq!(
        (refused.status, refused.code.unwrap()),
        (402, ErrorCode::InsufficientBalance)
    );
    // They cost $0.03 each in the end: $0.70 comes back, 23 more fit.
    for h in &held {
        release(
            &store,
            h,
            Some(Used {
                tokens: 0,
                nanos: 30_000_000,
            }),
            0,
        );
    }
    let more = (0..50)
        .filter(|_| admit(&store, &plan, 0, 30_000_000, 0, &mut Vec::new()).is_ok())
        .count();
    assert_eq!(
        more, 24,
        "0.70 / 0.03 = 23.3: the 24th is the last one admitted"
    );
}

#[test]
fn a_new_snapshot_takes_over_what_it_counts_and_keeps_the_rest_local() {
    let store = Mem::default();
    let plan = Plan::new(&budget_key(1000, 0), None);
    let a = admit(&store, &plan, 0, 300, 0, &mut Vec::new()).expect("a");
    release(
        &store,
        &a,
        Some(Used {
            tokens: 0,
            nanos: 300,
        }),
        0,
    );
    let b = admit(&store, &plan, 0, 300, 0, &mut Vec::new()).expect("b");
    release(
        &store,
        &b,
        Some(Used {
            tokens: 0,
            nanos: 300,
        }),
        0,
    );
    // The snapshot has ingested a (300) but not b yet: 400 are left, not 700.
    let later = Plan::new(&budget_key(1000, 300), None);
    let c = admit(&store, &later, 0, 350, 0, &mut Vec::new()).expect("c: 400 left");
    release(
        &store,
        &c,
        Some(Used {
            tokens: 0,
            nanos: 350,
        }),
        0,
    );
    let d = admit(&store, &later, 0, 100, 0, &mut Vec::new())
        .expect("d: 50 left, admitted and may overspend");
    release(
        &store,
        &d,
        Some(Used {
            tokens: 0,
            nanos: 100,
        }),
        0,
    );
    assert!(
        admit(&store, &later, 0, 1, 0, &mut Vec::new()).is_err(),
        "1050 of 1000 spent"
    );
    // A worker with the older snapshot sees the same.
    assert!(admit(&store, &plan, 0, 1, 0, &mut Vec::new()).is_err());
    // The budget is raised by the admin: it works again.
    assert!(admit(
        &store,
        &Plan::new(&budget_key(2000, 300), None),
        0,
        1,
        0,
        &mut Vec::new()
    )
    .is_ok());
}

#[test]
fn a_credit_restores_an_account_and_its_balance_is_shared_by_its_keys() {
    let store = Mem::default();
    let broke = Account {
        balance_nanos: Some(0),
        spent_nanos: 500,
        ..account(None, None, None)
    };
    let refused = admit(
        &store,
        &Plan::new(&key(None, None, None), Some(&broke)),
        0,
        10,
        0,
        &mut Vec::new(),
    )
    .expect_err("no balance");
    assert!(String::from_utf8_lossy(&refused.body).contains("account"));
    let credited = Account {
        balance_nanos: Some(100),
        ..broke
    };
    let plan = Plan::new(&key(None, None, None), Some(&credited));
    assert_eq!(
        (0..20)
            .filter(|_| admit(&store, &plan, 0, 10, 0, &mut Vec::new()).is_ok())
            .count(),
        10
    );
}

#[test]
fn a_budget_refusal_takes_no_rate_limit() {
    let store = Mem::default();
    let mut k = budget_key(0, 0);
    k.rpm = Some(5);
    assert!(admit(&store, &Plan::new(&k, None), 0, 1, 0, &mut Vec::new()).is_err());
    assert!(store.get("tollgate:k:k1:rpm").0.is_none());
}

#[test]
fn a_leased_bucket_admits_from_its_lease_and_asks_for_more_when_low() {
    let store = Mem::default();
    let plan = Plan::new(&key(Some(100), None, None), None).leased(Mode::Leased);
    // Never leased: one lease (a tenth of the limit) on credit, and the
    // first ask covers the next lease and the debt.
    let mut wants = Vec::new();
    assert!(admit(&store, &plan, 0, 0, 0, &mut wants).is_ok());
    assert_eq!(
        wants,
        vec![LeaseWant {
            bucket: "k:k1:rpm".into(),
            limit: 100,
            want: 20
        }]
    );
    let admitted = 1
        + (0..20)
            .filter(|_| admit(&store, &plan, 0, 0, 0, &mut Vec::new()).is_ok())
            .count();
    assert_eq!(admitted, 10, "the credit is one lease");
    let mut wants = Vec::new();
    let refused = admit(&store, &plan, 0, 0, 0, &mut wants).expect_err("lease spent");
    assert_eq!(refused.status, 429);
    assert_eq!(wants[0].want, 20, "still owed, still asked for");
    // A grant pays the debt first, the rest is spendable.
    grant(&store, "k:k1:rpm", 20);
    let mut wants = Vec::new();
    let admitted = (0..20)
        .filter(|_| admit(&store, &plan, 0, 0, 0, &mut wants).is_ok())
        .count();
    assert_eq!(admitted, 10);
    assert!(
        wants.iter().all(|w| w.want == 10),
        "nothing owed now: one lease at a time"
    );
    // A grant smaller than the debt pays part of it and leaves nothing to spend.
    let other = Plan::new(&key(None, Some(1000), None), None).leased(Mode::Leased);
    assert!(
        admit(&store, &other, 100, 0, 0, &mut Vec::new()).is_ok(),
        "a whole lease on credit"
    );
    grant(&store, "k:k1:tpm", 40);
    let mut wants = Vec::new();
    assert!(
        admit(&store, &other, 1, 0, 0, &mut wants).is_err(),
        "the 40 went to the debt"
    );
    assert_eq!(wants[0].want, 100 + 60, "a lease plus the 60 still owed");
    grant(&store, "k:k1:tpm", 160);
    assert!(admit(&store, &other, 100, 0, 0, &mut Vec::new()).is_ok());
}

#[test]
fn leased_tokens_are_settled_into_the_lease() {
    let store = Mem::default();
    let plan = Plan::new(&key(None, Some(1000), None), None).leased(Mode::Leased);
    grant(&store, "k:k1:tpm", 500);
    let a = admit(&store, &plan, 300, 0, 0, &mut Vec::new()).expect("300 of 500");
    assert!(
        admit(&store, &plan, 300, 0, 0, &mut Vec::new()).is_err(),
        "200 left"
    );
    release(
        &store,
        &a,
        Some(Used {
            tokens: 50,
            nanos: 0,
        }),
        0,
    );
    assert!(
        admit(&store, &plan, 400, 0, 0, &mut Vec::new()).is_ok(),
        "450 left after the refund"
    );
    // A request that never went out gives back its request too.
    let rpm = Plan::new(&key(Some(10), None, None), None).leased(Mode::Leased);
    grant(&store, "k:k1:rpm", 1);
    let held = admit(&store, &rpm, 0, 0, 0, &mut Vec::new()).expect("the one");
    assert!(admit(&store, &rpm, 0, 0, 0, &mut Vec::new()).is_err());
    release(&store, &held, None, 0);
    assert!(admit(&store, &rpm, 0, 0, 0, &mut Vec::new()).is_ok());
}

#[test]
fn the_keys_own_limits_name_the_headers_and_the_account_fills_in() {
    let store = Mem::default();
    let plan = Plan::new(
        &key(Some(10), None, None),
        Some(&account(Some(100), Some(5000), None)),
    );
    let a = admit(&store, &plan, 40, 0, 0, &mut Vec::new()).expect("admitted");
    let named: Vec<&str> = a.headers.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        named
            .iter()
            .filter(|n| **n == "x-ratelimit-limit-requests")
            .count(),
        1
    );
    assert_eq!(
        header(&a.headers, "x-ratelimit-limit-requests"),
        Some("10"),
        "the key's, not the account's 100"
    );
    assert_eq!(
        header(&a.headers, "x-ratelimit-limit-tokens"),
        Some("5000"),
        "the account's: the key has no tpm"
    );
    assert_eq!(
        header(&a.headers, "x-ratelimit-remaining-tokens"),
        Some("4960")
    );
}

#[test]
fn a_limit_of_zero_refuses_without_promising_a_retry() {
    for (rpm, tpm, concurrent) in [
        (Some(0), None, None),
        (None, Some(0), None),
        (None, None, Some(0)),
    ] {
        let store = Mem::default();
        let plan = Plan::new(&key(rpm, tpm, concurrent), None);
        let refused = admit(&store, &plan, 10, 0, 1_000_000, &mut Vec::new()).expect_err("limit 0");
        assert_eq!(refused.status, 429);
        assert_eq!(header(&refused.headers, "retry-after"), None);
        let text = String::from_utf8_lossy(&refused.body).into_owned();
        assert!(text.contains("limit is 0"), "{text}");
        assert!(!text.contains("Try again"), "{text}");
    }
}

#[test]
fn two_workers_creating_one_counter_both_count() {
    let store = Mem::default();
    let plan = Plan::new(&key(Some(5), None, None), None);
    // This worker sees the counter missing; before it writes, another
    // worker creates the counter with its own admission.
    let this_worker = Interleaved {
        inner: &store,
        between: RefCell::new(Some(Box::new(|| {
            assert!(admit(&store, &plan, 0, 0, 0, &mut Vec::new()).is_ok());
        }))),
    };
    assert!(admit(&this_worker, &plan, 0, 0, 0, &mut Vec::new()).is_ok());
    let more = (0..10)
        .filter(|_| admit(&store, &plan, 0, 0, 0, &mut Vec::new()).is_ok())
        .count();
    assert_eq!(more, 3, "both creating admissions were counted");
}
