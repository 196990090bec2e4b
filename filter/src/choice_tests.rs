use std::cell::Cell;

use super::*;
use crate::health::{Mark, FAILURES_TO_COOL};
use tollgate_contract::snapshot::{Route, Strategy};

fn model(priorities: &[u32]) -> Model {
    let deployments: Vec<Deployment> = priorities
        .iter()
        .enumerate()
        .map(|(i, p)| Deployment {
            provider: format!("p{i}"),
            upstream_model: format!("u{i}"),
            weight: 1,
            priority: *p,
            first_byte_timeout_ms: None,
            idle_timeout_ms: None,
        })
        .collect();
    let routes = (0..deployments.len())
        .map(|i| Route {
            cluster: format!("c{i}"),
            attempts: vec![i as u32],
        })
        .collect();
    Model {
        id: "m".into(),
        deployments,
        input_nanos_per_1m: 0,
        output_nanos_per_1m: 0,
        max_attempts: 3,
        strategy: Default::default(),
        routes,
    }
}

/// Marks by index; probes granted while `probes` lasts; reads counted.
struct Fake {
    marks: Vec<Mark>,
    latency: Vec<u64>,
    probes: Cell<u32>,
    reads: Cell<u32>,
}

impl View for Fake {
    fn mark(&self, _: &str, index: usize) -> Mark {
        self.reads.set(self.reads.get() + 1);
        self.marks.get(index).copied().unwrap_or_default()
    }
    fn now_ms(&self) -> u64 {
        1_000
    }
    fn latency_us(&self, _: &str, index: usize) -> u64 {
        self.latency.get(index).copied().unwrap_or(0)
    }
    fn claim_probe(&self, _: &str, _: usize) -> bool {
        let left = self.probes.get();
        self.probes.set(left.saturating_sub(1));
        left > 0
    }
}

fn fake(marks: Vec<Mark>, probes: u32) -> Fake {
    Fake {
        marks,
        latency: Vec::new(),
        probes: Cell::new(probes),
        reads: Cell::new(0),
    }
}

const FAILED: Mark = Mark {
    until_ms: 0,
    failures: FAILURES_TO_COOL,
};
const COOLING: Mark = Mark {
    until_ms: 9_000,
    failures: 0,
};

#[test]
fn the_top_priority_is_chosen_and_each_mark_is_read_once() {
    let m = model(&[0, 1, 2]);
    let view = fake(vec![], 0);
    let c = first(&m, |_| true, &view, 7).expect("chosen");
    assert_eq!((c.index, c.marked), (0, vec![]));
    assert_eq!(view.reads.get(), 3, "one read per deployment");
}

#[test]
fn a_probing_deployment_goes_first_for_the_one_request_that_claims_it() {
    let m = model(&[0, 1]);
    let view = fake(vec![FAILED, Mark::default()], 1);
    let c = first(&m, |_| true, &view, 0).expect("chosen");
    assert_eq!((c.index, c.marked), (0, vec![0]), "the probe");
    let c = first(&m, |_| true, &view, 0).expect("chosen");
    assert_eq!(c.index, 1, "the probe is taken: the next priority");
}

#[test]
fn a_cooling_one_is_skipped_unless_nothing_else_is_known() {
    let m = model(&[0, 0, 1]);
    let view = fake(vec![COOLING, COOLING, Mark::default()], 0);
    assert_eq!(first(&m, |_| true, &view, 0).map(|c| c.index), Some(2));
    let only_first = |d: &Deployment| d.provider == "p0";
    assert_eq!(first(&m, only_first, &view, 0).map(|c| c.index), Some(0));
    assert!(first(&m, |_| false, &view, 0).is_none());
}

#[test]
fn a_model_without_routes_reads_no_health() {
    let mut m = model(&[0, 1]);
    m.routes.clear();
    let view = fake(vec![COOLING], 0);
    let c = first(&m, |_| true, &view, 0).expect("chosen");
    assert_eq!((c.index, view.reads.get()), (0, 0));
}

#[test]
fn priority_takes_the_first_usable_of_the_best_priority_whatever_the_weights() {
    let mut m = model(&[1, 0, 0]);
    m.strategy = Strategy::Priority;
    m.deployments[2].weight = 1_000;
    let view = fake(vec![], 0);
    for pick in 0..50 {
        assert_eq!(first(&m, |_| true, &view, pick).map(|c| c.index), Some(1));
    }
    let cooling_first = fake(vec![Mark::default(), COOLING], 0);
    assert_eq!(
        first(&m, |_| true, &cooling_first, 0).map(|c| c.index),
        Some(2)
    );
}

#[test]
fn least_latency_takes_the_fastest_and_one_request_in_ten_by_weight() {
    let mut m = model(&[0, 0, 1]);
    m.strategy = Strategy::LeastLatency;
    let mut view = fake(vec![], 0);
    view.latency = vec![9_000, 2_000, 1];
    let chosen: Vec<usize> = (0..1000u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .map(|pick| {
            first(&m, |_| true, &view, pick)
                .map(|c| c.index)
                .expect("chosen")
        })
        .collect();
    let to = |i| chosen.iter().filter(|c| **c == i).count();
    // The faster of the best priority; the next priority's faster one is
    // not the best priority.
    assert_eq!(to(2), 0);
    assert_eq!(to(1) + to(0), 1000);
    // 100 explored by weight (about half each), the other 900 to the fastest.
    assert!((920..=980).contains(&to(1)), "{}", to(1));
    assert!(to(0) > 20, "the slower one is still measured: {}", to(0));
    // Never measured: tried first.
    view.latency = vec![9_000, 0, 1];
    assert_eq!(
        first(&m, |_| true, &view, 1 << 32).map(|c| c.index),
        Some(1)
    );
    view.latency = vec![0, 5, 1];
    assert_eq!(
        first(&m, |_| true, &view, 1 << 32).map(|c| c.index),
        Some(0)
    );
}
