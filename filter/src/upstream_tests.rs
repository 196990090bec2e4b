use super::*;
use crate::credentials::Mark;
use crate::health::{Health, FAILURES_TO_COOL};
use crate::testkit::Mem;
use tollgate_contract::ErrorCode;

/// Model `m`: deployment 0 on a provider with a pool of two credentials,
/// deployment 1 on a provider with one key.
fn snapshot() -> Arc<Compiled> {
    let json = serde_json::json!({
        "version": 1,
        "keys": [],
        "models": [{
            "id": "m",
            "deployments": [
                {"provider": "pool", "upstream_model": "gpt-a", "weight": 1, "priority": 0},
                {"provider": "one", "upstream_model": "gpt-b", "weight": 1, "priority": 1}
            ],
            "routes": [{"cluster": "tg_x", "attempts": [0, 1]}]
        }],
        "providers": [
            {"id": "pool", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "",
             "credentials": [
                {"id": "k1", "key": "sk-1", "generation": 0},
                {"id": "k2", "key": "sk-2", "generation": 0}
             ]},
            {"id": "one", "kind": "openai", "base_url": "http://127.0.0.1:9002/v1", "api_key": "sk-one"}
        ],
        "settings": {"max_body_bytes": 1024}
    });
    Arc::new(Compiled::from_json(json.to_string().as_bytes()).expect("compiles"))
}

fn head<'a>(prepared: &'a [u8], target: &'a [u8], attempt: &'a [u8]) -> Head<'a> {
    Head {
        prepared,
        attempt_count: Some(attempt),
        target: Some(target),
        address: Some("127.0.0.1:9001"),
    }
}

/// An attempt on deployment 0 that sent credential k1.
fn first(store: &Mem) -> Upstream {
    let mut u = Upstream::default();
    let step = u.on_request_headers(
        Some(snapshot()),
        &head(b"0:chat_completions:k1", b"0:m", b"1"),
        store,
        0,
    );
    assert_eq!(step, HeadStep::Send(vec![]));
    u
}

fn served(changes: &[HeaderChange]) -> Option<&[u8]> {
    changes
        .iter()
        .find(|(n, _)| n == SERVED)
        .and_then(|(_, v)| v.as_deref())
}

#[test]
fn the_first_attempt_passes_untouched_and_says_which_deployment_served() {
    let store = Mem::default();
    let mut u = first(&store);
    assert!(!u.reads_body());
    assert_eq!(
        u.on_request_body(true, || panic!("not read")),
        BodyStep::Continue
    );
    let changes = u.on_response_headers(&store, b"200", || panic!("not read"), 5);
    assert_eq!(served(&changes), Some(&b"0;1"[..]));
    u.on_done(&store, 6);
    assert_eq!(health::health(&store, "m", 0, 6), Health::Healthy);
}

#[test]
fn an_attempt_without_a_snapshot_or_a_target_is_refused() {
    let store = Mem::default();
    let mut u = Upstream::default();
    let HeadStep::Refuse(reply) =
        u.on_request_headers(None, &head(b"0:chat_completions:", b"0:m", b"1"), &store, 0)
    else {
        panic!("sent");
    };
    assert_eq!(reply.code, Some(ErrorCode::UpstreamError));
    let HeadStep::Refuse(_) = u.on_request_headers(
        Some(snapshot()),
        &Head {
            prepared: b"0:chat_completions:",
            ..Head::default()
        },
        &store,
        0,
    ) else {
        panic!("sent");
    };
    // A refused attempt never answered but was never sent: no failure.
    u.on_done(&store, 0);
    assert_eq!(health::mark(&store, "m", 0).failures, 0);
}

#[test]
fn a_retry_on_the_next_deployment_rewrites_the_body_once_it_is_whole() {
    let store = Mem::default();
    let mut u = Upstream::default();
    let HeadStep::Send(headers) = u.on_request_headers(
        Some(snapshot()),
        &head(b"0:chat_completions:k1", b"1:m", b"2"),
        &store,
        0,
    ) else {
        panic!("refused");
    };
    assert!(headers
        .iter()
        .any(|(n, v)| n == "authorization" && v.as_deref() == Some(&b"Bearer sk-one"[..])));
    assert!(u.reads_body());
    assert_eq!(
        u.on_request_body(false, || panic!("not yet")),
        BodyStep::Pause
    );
    let BodyStep::Replace(new) =
        u.on_request_body(true, || br#"{"model":"gpt-a","messages":[]}"#.to_vec())
    else {
        panic!("kept");
    };
    assert!(String::from_utf8(new)
        .expect("utf-8")
        .contains(r#""model":"gpt-b""#));
    // A body that has the model already passes.
    assert_eq!(
        u.on_request_body(true, || br#"{"model":"gpt-b"}"#.to_vec()),
        BodyStep::Continue
    );
    let changes = u.on_response_headers(&store, b"200", Vec::new, 0);
    assert_eq!(served(&changes), Some(&b"1;2"[..]));
}

#[test]
fn a_429_benches_the_credential_until_retry_after_and_the_deployment_stays_in() {
    let store = Mem::default();
    let mut u = first(&store);
    // A Retry-After longer than the default cool-down (30 s).
    u.on_response_headers(&store, b"429", || b"40".to_vec(), 1_000);
    let k1 = &snapshot().upstreams["pool"].pool[0].clone();
    assert_eq!(
        credentials::mark(&store, "pool", k1),
        Mark::Benched {
            until_ms: 41_000,
            status: 429
        }
    );
    // k2 is left: the deployment does not cool down.
    assert_eq!(health::health(&store, "m", 0, 1_000), Health::Healthy);
}

#[test]
fn a_401_disables_the_credential_and_the_last_one_cools_the_deployment_on_429() {
    let store = Mem::default();
    let pool = snapshot().upstreams["pool"].pool.clone();
    let mut u = first(&store);
    u.on_response_headers(&store, b"401", || panic!("not read on a 401"), 0);
    assert_eq!(
        credentials::mark(&store, "pool", &pool[0]),
        Mark::Disabled { status: 401 }
    );
    // The other credential answers 429 too: none is left, the deployment
    // cools down for the Retry-After.
    let mut u = Upstream::default();
    u.on_request_headers(
        Some(snapshot()),
        &head(b"0:chat_completions:k2", b"0:m", b"1"),
        &store,
        0,
    );
    u.on_response_headers(&store, b"429", || b"60".to_vec(), 1_000);
    assert_eq!(
        health::health(&store, "m", 0, 1_000),
        Health::Cooling { until_ms: 61_000 }
    );
}

#[test]
fn five_hundreds_and_attempts_without_headers_fail_the_deployment_once_each() {
    let store = Mem::default();
    let mut u = first(&store);
    u.on_response_headers(&store, b"503", Vec::new, 0);
    u.on_done(&store, 0);
    assert_eq!(
        health::mark(&store, "m", 0).failures,
        1,
        "answered: not again at the end"
    );
    for _ in 1..FAILURES_TO_COOL {
        let mut u = first(&store);
        u.on_done(&store, 0);
        u.on_done(&store, 0);
    }
    assert!(matches!(
        health::health(&store, "m", 0, 1),
        Health::Cooling { .. }
    ));
}

#[test]
fn a_client_error_is_neither_a_failure_nor_a_credential_mark() {
    let store = Mem::default();
    let pool = snapshot().upstreams["pool"].pool.clone();
    let mut u = first(&store);
    u.on_response_headers(&store, b"400", || panic!("not read"), 0);
    assert_eq!(credentials::mark(&store, "pool", &pool[0]), Mark::Usable);
    assert_eq!(health::mark(&store, "m", 0).failures, 0);
}

#[test]
fn a_body_the_next_apis_deployment_cannot_take_refuses_the_attempt_and_is_no_failure() {
    let json = serde_json::json!({
        "version": 1, "keys": [],
        "models": [{"id": "m", "deployments": [
            {"provider": "o", "upstream_model": "gpt-o", "weight": 1, "priority": 0},
            {"provider": "an", "upstream_model": "claude-x", "weight": 1, "priority": 1}
        ], "routes": [{"cluster": "tg_x", "attempts": [0, 1]}]}],
        "providers": [
            {"id": "o", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "sk-o"},
            {"id": "an", "kind": "anthropic", "base_url": "http://127.0.0.1:9002/v1", "api_key": "sk-ant"}
        ],
        "settings": {"max_body_bytes": 4096}
    });
    let s = Arc::new(Compiled::from_json(json.to_string().as_bytes()).expect("compiles"));
    let store = Mem::default();
    let mut u = Upstream::default();
    let HeadStep::Send(_) = u.on_request_headers(
        Some(s),
        &head(b"0:chat_completions::openai", b"1:m", b"2"),
        &store,
        0,
    ) else {
        panic!("refused at the headers");
    };
    assert!(u.reads_body());
    let BodyStep::Refuse(reply) = u.on_request_body(true, || b"not json".to_vec()) else {
        panic!("sent");
    };
    assert_eq!(reply.status, 502);
    u.on_done(&store, 0);
    assert_eq!(health::mark(&store, "m", 1).failures, 0);
    // A body it can take is translated for the Anthropic deployment.
    let BodyStep::Replace(new) = u.on_request_body(true, || {
        br#"{"model":"gpt-o","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#.to_vec()
    }) else {
        panic!("not translated");
    };
    let new = String::from_utf8(new).expect("utf-8");
    assert!(new.contains(r#""model":"claude-x""#), "{new}");
}

#[test]
fn an_attempt_whose_headers_cannot_be_written_is_refused_with_a_500_and_is_no_failure() {
    let store = Mem::default();
    let mut u = first(&store);
    let reply = u.not_written("header authorization");
    assert_eq!(reply.status, 500);
    assert!(String::from_utf8_lossy(&reply.body).contains("\"type\""));
    u.on_done(&store, 0);
    assert_eq!(health::mark(&store, "m", 0).failures, 0);
}
