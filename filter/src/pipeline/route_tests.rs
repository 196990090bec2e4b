use std::rc::Rc;

use super::*;
use crate::decide::{on_body, Admitted, BodyDecision};
use crate::testkit;

fn snapshot() -> Compiled {
    let key = testkit::key("k", "tg-route-test-secret-000000000000000", "acct");
    let json = serde_json::json!({
        "version": 1,
        "keys": [key],
        "models": [{
            "id": "m",
            "deployments": [
                {"provider": "a", "upstream_model": "up-a", "weight": 1, "priority": 0},
                {"provider": "b", "upstream_model": "up-b", "weight": 1, "priority": 1}
            ],
            "routes": [
                {"cluster": "tg_first_a", "attempts": [0, 1]},
                {"cluster": "tg_first_b", "attempts": [1, 0]}
            ]
        }, {
            "id": "single",
            "deployments": [{"provider": "a", "upstream_model": "up-a", "weight": 1, "priority": 0}]
        }],
        "providers": [
            {"id": "a", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "sk-a"},
            {"id": "b", "kind": "openai", "base_url": "https://b.example.com/v1", "api_key": "sk-b"}
        ],
        "settings": {"max_body_bytes": 4096}
    });
    Compiled::from_json(json.to_string().as_bytes()).expect("compiles")
}

fn forward(snap: &Compiled, model: &str) -> Forward {
    let key = snap.keys.values().next().cloned().expect("key");
    let admitted = Admitted {
        key: Rc::clone(&key),
        endpoint: Endpoint::ChatCompletions,
    };
    let body = format!(r#"{{"model":"{model}","messages":[]}}"#);
    match on_body(snap, &admitted, body.as_bytes(), 0) {
        Ok(BodyDecision::Forward(f)) => *f,
        other => panic!("not forwarded: {other:?}"),
    }
}

fn config(failover: bool) -> PluginConfig {
    let raw = format!(
        r#"{{"control_plane_cluster":"cp","filter_secret":"a-filter-secret-of-some-length","failover":{failover}}}"#
    );
    PluginConfig::parse_with_env(raw.as_bytes(), |_| None).expect("config")
}

fn value<'h>(hs: &'h [HeaderChange], name: &str) -> Option<&'h [u8]> {
    hs.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

#[test]
fn a_cluster_is_used_only_once_envoy_has_had_time_to_fetch_it() {
    let mut worker = Worker::new(1);
    worker.apply_snapshot(snapshot(), 10_000);
    let snap = worker.snapshot.clone().expect("snapshot");
    let f = forward(&snap, "m");
    assert_eq!(f.deployment, 0);
    assert_eq!(f.route, Some(("tg_first_a".to_string(), 2)));
    let cfg = config(true);
    // Just seen: the forward proxy, no retry.
    let (hs, routed) = headers(&cfg, &worker, &f, Endpoint::ChatCompletions, 11_000);
    assert_eq!(routed, None);
    assert_eq!(
        value(&hs, "x-tollgate-cluster"),
        Some(&b"tollgate_upstream"[..])
    );
    assert_eq!(value(&hs, "x-envoy-max-retries"), Some(&b"0"[..]));
    assert_eq!(value(&hs, PREPARED), None);
    // Three seconds on: the failover cluster, one retry, and the plan.
    let (hs, routed) = headers(&cfg, &worker, &f, Endpoint::ChatCompletions, 13_000);
    assert_eq!(
        routed,
        Some(Routed {
            model: "m".into(),
            attempts: 2
        })
    );
    assert_eq!(value(&hs, "x-tollgate-cluster"), Some(&b"tg_first_a"[..]));
    assert_eq!(value(&hs, "x-envoy-max-retries"), Some(&b"1"[..]));
    assert_eq!(value(&hs, PREPARED), Some(&b"0:chat_completions"[..]));
    // A new snapshot with the same cluster keeps its first sighting.
    worker.apply_snapshot(snapshot(), 20_000);
    assert!(worker.cluster_ready("tg_first_a", 20_000));
    assert!(!worker.cluster_ready("tg_unknown", 20_000));
}

#[test]
fn without_failover_in_the_configuration_or_a_route_it_is_the_forward_proxy() {
    let mut worker = Worker::new(1);
    worker.apply_snapshot(snapshot(), 0);
    let snap = worker.snapshot.clone().expect("snapshot");
    let (hs, routed) = headers(
        &config(false),
        &worker,
        &forward(&snap, "m"),
        Endpoint::ChatCompletions,
        60_000,
    );
    assert_eq!(routed, None);
    assert_eq!(value(&hs, "x-envoy-max-retries"), Some(&b"0"[..]));
    let single = forward(&snap, "single");
    assert_eq!(single.route, None);
    let (hs, routed) = headers(
        &config(true),
        &worker,
        &single,
        Endpoint::ChatCompletions,
        60_000,
    );
    assert_eq!(routed, None);
    assert_eq!(
        value(&hs, "x-tollgate-cluster"),
        Some(&b"tollgate_upstream"[..])
    );
}

#[test]
fn a_cooling_deployment_is_not_chosen_first_unless_nothing_else_is_usable() {
    let mut worker = Worker::new(1);
    worker.apply_snapshot(snapshot(), 0);
    let snap = worker.snapshot.clone().expect("snapshot");
    let key = snap.keys.values().next().cloned().expect("key");
    let admitted = Admitted {
        key,
        endpoint: Endpoint::ChatCompletions,
    };
    let body = br#"{"model":"m","messages":[]}"#;
    let first = |cooling: &dyn Fn(&str, usize) -> bool| match crate::decide::on_body_with(
        &snap, &admitted, body, 0, cooling,
    ) {
        Ok(BodyDecision::Forward(f)) => f.deployment,
        other => panic!("{other:?}"),
    };
    assert_eq!(first(&|_, _| false), 0);
    // Priority 0 is cooling: priority 1 is the first choice, and its cluster.
    assert_eq!(first(&|m, i| m == "m" && i == 0), 1);
    // Everything cooling: the usual choice rather than none.
    assert_eq!(first(&|_, _| true), 0);
}

#[test]
fn what_is_left_after_the_retries_becomes_the_gateways_own_error() {
    let r = failed(503, 2, true).expect("replaced");
    assert_eq!(r.status, 502);
    assert_eq!(r.code, Some(ErrorCode::UpstreamError));
    assert!(String::from_utf8_lossy(&r.body).contains("each of the 2 deployments tried"));
    let r = failed(500, 1, true).expect("replaced");
    assert!(String::from_utf8_lossy(&r.body).contains("the one deployment tried"));
    let r = failed(502, 2, false).expect("replaced");
    assert!(String::from_utf8_lossy(&r.body).contains("could not be reached (each of the 2"));
    let r = failed(504, 3, false).expect("replaced");
    assert_eq!((r.status, r.code), (504, Some(ErrorCode::UpstreamTimeout)));
    for status in [200, 400, 401, 404, 429] {
        assert_eq!(failed(status, 1, true), None, "{status}");
    }
}

#[test]
fn the_served_header_is_read_or_ignored() {
    assert_eq!(served(b"1;2"), Some((1, 2)));
    for bad in [&b""[..], b"1", b"x;1", b"1;y", b"\xff;1"] {
        assert_eq!(served(bad), None, "{bad:?}");
    }
    assert!(is_router_header("x-envoy-max-retries"));
    assert!(!is_router_header("x-request-id"));
}
