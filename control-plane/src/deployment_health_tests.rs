use super::*;
use crate::cds::Member;

fn clusters() -> Vec<ClusterSpec> {
    let member = |d| Member {
        model: "m".into(),
        deployment: d,
        host: "127.0.0.1".into(),
        port: 9000,
        tls: false,
    };
    vec![
        ClusterSpec {
            name: "a".into(),
            members: vec![member(0), member(1)],
        },
        ClusterSpec {
            name: "b".into(),
            members: vec![member(1), member(0)],
        },
    ]
}

fn report(deployment: u32, state: State, until_ms: u64, failures: u32) -> DeploymentHealth {
    DeploymentHealth {
        model: "m".into(),
        deployment,
        state,
        until_ms,
        failures,
    }
}

fn states(book: &Book, now: i64) -> Vec<(u32, State, u64, u32)> {
    book.show(&clusters(), now)
        .into_iter()
        .map(|s| (s.deployment, s.state, s.until_ms, s.failures))
        .collect()
}

#[test]
fn every_deployment_of_the_clusters_is_shown_healthy_until_a_report_says_otherwise() {
    let book = Book::default();
    assert_eq!(
        states(&book, 0),
        vec![(0, State::Healthy, 0, 0), (1, State::Healthy, 0, 0)]
    );
    book.record("w1", vec![report(1, State::Cooling, 40_000, 3)], 10_000);
    assert_eq!(states(&book, 11_000)[1], (1, State::Cooling, 40_000, 3));
    // Stale: no report for 15 s.
    assert_eq!(states(&book, 25_000)[1], (1, State::Healthy, 0, 0));
}

#[test]
fn a_cool_down_that_ended_since_the_report_is_probing_after_failures() {
    let book = Book::default();
    book.record(
        "w1",
        vec![
            report(0, State::Cooling, 12_000, 0),
            report(1, State::Cooling, 12_000, 3),
        ],
        10_000,
    );
    assert_eq!(
        states(&book, 13_000),
        vec![(0, State::Healthy, 0, 0), (1, State::Probing, 0, 3)]
    );
}

#[test]
fn of_two_reporters_the_worse_stands_and_an_empty_report_clears_its_own() {
    let book = Book::default();
    book.record("w1", vec![report(0, State::Cooling, 50_000, 3)], 10_000);
    book.record("w2", vec![report(0, State::Healthy, 0, 1)], 10_500);
    assert_eq!(states(&book, 10_600)[0], (0, State::Cooling, 50_000, 3));
    // w1's next report names nothing: w2's view is what is left.
    book.record("w1", vec![], 12_000);
    assert_eq!(states(&book, 12_100)[0], (0, State::Healthy, 0, 1));
    book.record("w2", vec![], 12_200);
    assert_eq!(states(&book, 12_300)[0], (0, State::Healthy, 0, 0));
}
