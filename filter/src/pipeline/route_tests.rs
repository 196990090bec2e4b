use std::sync::Arc;

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
        key: Arc::clone(&key),
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
            attempts: 2,
            marked: Vec::new(),
        })
    );
    assert_eq!(value(&hs, "x-tollgate-cluster"), Some(&b"tg_first_a"[..]));
    assert_eq!(value(&hs, "x-envoy-max-retries"), Some(&b"1"[..]));
    // No pool credential: the list of those tried is empty; the body is
    // OpenAI's.
    assert_eq!(
        value(&hs, PREPARED),
        Some(&b"0:chat_completions::openai"[..])
    );
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
    let store = crate::testkit::Mem::default();
    let first = |now_ms: u64| {
        let view = crate::health::Shared {
            store: &store,
            now_ms,
        };
        match crate::decide::on_body_with(&snap, &admitted, body, 0, &view) {
            Ok(BodyDecision::Forward(f)) => (f.deployment, f.marked),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(first(0), (0, vec![]));
    // Priority 0 is cooling: priority 1 is the first choice, and its cluster.
    crate::health::cool(&store, "m", 0, 50_000);
    assert_eq!(first(1_000), (1, vec![0]));
    // Everything cooling: the usual choice rather than none.
    crate::health::cool(&store, "m", 1, 50_000);
    assert_eq!(first(1_000), (0, vec![0, 1]));
    assert_eq!(first(50_000), (0, vec![0, 1]), "over: chosen, still marked");
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
    for status in [200, 400, 404, 429] {
        assert_eq!(failed(status, 1, true), None, "{status}");
    }
    // The provider refused the gateway's credential: a 502 that names the
    // attempts, never the credential.
    for status in [401, 403] {
        let r = failed(status, 3, true).expect("replaced");
        assert_eq!((r.status, r.code), (502, Some(ErrorCode::UpstreamError)));
        assert!(String::from_utf8_lossy(&r.body).contains("each of the 3 attempts"));
        assert_eq!(failed(status, 1, false), None, "Envoy's own {status}");
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

#[test]
fn a_worker_reports_the_marked_deployments_every_5_s_and_once_more_when_none_are_left() {
    let mut worker = Worker::new(1);
    worker.config = Some(Arc::new(config(true)));
    worker.apply_snapshot(snapshot(), 0);
    let store = crate::testkit::Mem::default();
    assert_eq!(worker.health_call(&store, 0), None, "nothing marked");
    crate::health::failed(&store, "m", 1, 1_000);
    crate::health::cool(&store, "m", 0, 60_000);
    assert_eq!(worker.health_call(&store, 4_000), None, "not due yet");
    let call = worker.health_call(&store, 5_000).expect("due");
    assert_eq!(call.path, "/internal/health");
    let report: tollgate_contract::health::HealthReport =
        serde_json::from_slice(call.body.as_deref().expect("a body")).expect("a report");
    let got: Vec<_> = report
        .deployments
        .iter()
        .map(|d| {
            (
                d.model.as_str(),
                d.deployment,
                d.state,
                d.until_ms,
                d.failures,
            )
        })
        .collect();
    use tollgate_contract::health::State;
    assert_eq!(
        got,
        vec![
            ("m", 0, State::Cooling, 60_000, 0),
            ("m", 1, State::Healthy, 0, 1)
        ]
    );
    // Cleared: one empty report, then none.
    crate::health::recovered(&store, "m", 1);
    crate::limits::Store::set(&store, &crate::health::key("m", 0), b"0,0", None);
    let call = worker
        .health_call(&store, 10_000)
        .expect("the clearing report");
    let report: tollgate_contract::health::HealthReport =
        serde_json::from_slice(call.body.as_deref().expect("a body")).expect("a report");
    assert!(report.deployments.is_empty());
    assert_eq!(report.reporter.len(), 16);
    assert_eq!(worker.health_call(&store, 15_000), None);
}

/// `reshape_for` on deployment `index` of `model`, as `on_response_headers` calls it.
fn reshape(
    s: &Compiled,
    model: &str,
    index: u32,
    endpoint: Endpoint,
    prepared: Wire,
) -> Option<(Translation, Endpoint)> {
    reshape_for(s, served_deployment(s, model, index)?, endpoint, prepared)
}

#[test]
fn an_answer_from_a_deployment_of_the_other_api_is_translated_back_and_read_in_its_shape() {
    let json = serde_json::json!({
        "version": 1,
        "keys": [],
        "models": [{
            "id": "m",
            "deployments": [
                {"provider": "a", "upstream_model": "up-a", "weight": 1, "priority": 0},
                {"provider": "x", "upstream_model": "claude", "weight": 1, "priority": 1}
            ],
            "routes": [{"cluster": "tg_a", "attempts": [0, 1]}, {"cluster": "tg_x", "attempts": [1, 0]}]
        }],
        "providers": [
            {"id": "a", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "sk-a"},
            {"id": "x", "kind": "anthropic", "base_url": "http://127.0.0.1:9002/v1", "api_key": "sk-x"}
        ],
        "settings": {"max_body_bytes": 4096}
    });
    let s = Compiled::from_json(json.to_string().as_bytes()).expect("compiles");
    let chat = Endpoint::ChatCompletions;
    // Answered by the deployment the request was written for: nothing.
    assert_eq!(reshape(&s, "m", 0, chat, Wire::OpenAi), None);
    assert_eq!(reshape(&s, "m", 1, chat, Wire::Anthropic), None);
    // An OpenAI client answered by the Anthropic deployment.
    assert_eq!(
        reshape(&s, "m", 1, chat, Wire::OpenAi),
        Some((Translation::ToAnthropic, Endpoint::ChatCompletions))
    );
    // An OpenAI client first sent to Anthropic, answered by OpenAI: its own API.
    assert_eq!(
        reshape(&s, "m", 0, chat, Wire::Anthropic),
        Some((Translation::None, Endpoint::ChatCompletions))
    );
    // A Messages client: translated from OpenAI's, or its own again.
    assert_eq!(
        reshape(&s, "m", 0, Endpoint::Messages, Wire::Anthropic),
        Some((Translation::FromAnthropic, Endpoint::ChatCompletions))
    );
    assert_eq!(
        reshape(&s, "m", 1, Endpoint::Messages, Wire::OpenAi),
        Some((Translation::None, Endpoint::Messages))
    );
    assert_eq!(reshape(&s, "m", 7, chat, Wire::OpenAi), None);
}
