use super::*;
use crate::testkit::Mem;

/// Shared data with no marks.
struct NoMarks;

impl Store for NoMarks {
    fn get(&self, _: &str) -> (Option<Vec<u8>>, Option<u32>) {
        (None, None)
    }
    fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> bool {
        true
    }
}

fn snapshot(refuse_private: bool) -> Compiled {
    let json = serde_json::json!({
        "version": 1,
        "keys": [],
        "models": [{
            "id": "m",
            "deployments": [
                {"provider": "a", "upstream_model": "gpt-a", "weight": 1, "priority": 0},
                {"provider": "az", "upstream_model": "gpt-az", "weight": 1, "priority": 1},
                {"provider": "b", "upstream_model": "gpt-a", "weight": 1, "priority": 1}
            ],
            "routes": [{"cluster": "tg_x", "attempts": [0, 1, 2]}]
        }],
        "providers": [
            {"id": "a", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "sk-a"},
            {"id": "az", "kind": "azure_openai", "base_url": "https://az.example.com/openai", "api_key": "az-key"},
            {"id": "b", "kind": "openai", "base_url": "http://127.0.0.1:9002/v1", "api_key": ""}
        ],
        "settings": {"max_body_bytes": 1024, "refuse_private_upstreams": refuse_private}
    });
    Compiled::from_json(json.to_string().as_bytes()).expect("compiles")
}

fn attempt<'a>(prepared: &'a [u8], deployment: u32, address: &'a str) -> Attempt<'a> {
    Attempt {
        prepared,
        model: Some("m"),
        deployment: Some(deployment),
        address: Some(address),
        attempt: if deployment == 0 { 1 } else { 2 },
        store: &NoMarks,
        now_ms: 0,
    }
}

/// The last write of `name` (what the upstream sees).
fn header<'h>(hs: &'h [HeaderChange], name: &str) -> Option<&'h Option<Vec<u8>>> {
    hs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[test]
fn the_prepared_deployment_passes_with_only_the_plan_header_removed() {
    let s = snapshot(false);
    let d = on_attempt(
        Some(&s),
        &attempt(b"0:chat_completions", 0, "127.0.0.1:9001"),
    );
    assert_eq!(
        d,
        AttemptDecision::Send {
            headers: vec![],
            body_model: None,
            cross: None,
            served: 0,
            credential: String::new(),
        }
    );
}

#[test]
fn another_deployment_gets_its_own_authority_path_credential_and_model() {
    let s = snapshot(false);
    let AttemptDecision::Send {
        headers,
        body_model,
        served,
        ..
    } = on_attempt(Some(&s), &attempt(b"0:chat_completions", 1, "10.0.0.9:443"))
    else {
        panic!("refused");
    };
    assert_eq!(served, 1);
    assert_eq!(body_model.as_deref(), Some("gpt-az"));
    assert_eq!(
        header(&headers, ":authority"),
        Some(&Some(b"az.example.com".to_vec()))
    );
    assert_eq!(
        header(&headers, ":path"),
        Some(&Some(
            b"/openai/deployments/gpt-az/chat/completions?api-version=2024-10-21".to_vec()
        ))
    );
    assert_eq!(header(&headers, "api-key"), Some(&Some(b"az-key".to_vec())));
    // The prepared deployment's bearer is removed (before the new one is set).
    assert!(headers
        .iter()
        .any(|(n, v)| n == "authorization" && v.is_none()));
    assert!(headers
        .iter()
        .any(|(n, v)| n == "content-length" && v.is_none()));
    // The plan now says what the headers are written for (the next attempt
    // starts from them).
    assert_eq!(
        header(&headers, PREPARED),
        Some(&Some(b"1:chat_completions:".to_vec()))
    );
}

#[test]
fn a_retry_that_lands_where_the_headers_already_point_only_checks_the_body() {
    let s = snapshot(false);
    let mut a = attempt(b"1:chat_completions", 1, "10.0.0.9:443");
    a.attempt = 3;
    let AttemptDecision::Send {
        headers,
        body_model,
        served,
        ..
    } = on_attempt(Some(&s), &a)
    else {
        panic!("refused");
    };
    assert_eq!(served, 1);
    assert_eq!(body_model.as_deref(), Some("gpt-az"));
    assert_eq!(headers, vec![(Cow::Borrowed("content-length"), None)]);
}

#[test]
fn a_provider_without_key_gets_no_credential() {
    let s = snapshot(false);
    let AttemptDecision::Send {
        headers,
        body_model,
        ..
    } = on_attempt(Some(&s), &attempt(b"0:embeddings", 2, "127.0.0.1:9002"))
    else {
        panic!("refused");
    };
    assert_eq!(body_model.as_deref(), Some("gpt-a"));
    assert_eq!(
        header(&headers, ":path"),
        Some(&Some(b"/v1/embeddings".to_vec()))
    );
    assert_eq!(header(&headers, "authorization"), Some(&None));
    assert!(!headers
        .iter()
        .any(|(n, v)| n == "authorization" && v.is_some()));
}

#[test]
fn link_local_is_refused_always_and_private_when_the_snapshot_says() {
    for address in [
        "169.254.169.254:80",
        "[fe80::1]:80",
        "[::ffff:169.254.169.254]:80",
    ] {
        assert!(address_refused(address, false), "{address}");
    }
    for address in ["127.0.0.1:9001", "10.1.2.3:443", "[::1]:80", "[fd00::1]:80"] {
        assert!(!address_refused(address, false), "{address}");
        assert!(address_refused(address, true), "{address}");
    }
    assert!(!address_refused("93.184.216.34:443", true));
    let s = snapshot(true);
    let d = on_attempt(
        Some(&s),
        &attempt(b"0:chat_completions", 0, "127.0.0.1:9001"),
    );
    assert!(matches!(d, AttemptDecision::Refuse(r) if r.status == 502));
    let s = snapshot(false);
    let d = on_attempt(
        Some(&s),
        &attempt(b"0:chat_completions", 0, "169.254.169.254:80"),
    );
    assert!(matches!(d, AttemptDecision::Refuse(r) if r.status == 502));
}

#[test]
fn a_missing_plan_or_host_metadata_or_gone_deployment_is_refused_not_sent_as_it_is() {
    let s = snapshot(false);
    for prepared in [&b""[..], b"x:chat_completions", b"0:nope", b"0"] {
        let d = on_attempt(Some(&s), &attempt(prepared, 1, "127.0.0.1:1"));
        assert!(matches!(d, AttemptDecision::Refuse(_)), "{prepared:?}");
    }
    let d = on_attempt(Some(&s), &attempt(b"0:chat_completions", 7, "127.0.0.1:1"));
    assert!(matches!(d, AttemptDecision::Refuse(_)));
    let no_meta = Attempt {
        prepared: b"0:chat_completions",
        model: None,
        deployment: None,
        address: None,
        attempt: 2,
        store: &NoMarks,
        now_ms: 0,
    };
    assert!(matches!(
        on_attempt(Some(&s), &no_meta),
        AttemptDecision::Refuse(_)
    ));
    assert!(matches!(
        on_attempt(None, &no_meta),
        AttemptDecision::Refuse(_)
    ));
}

#[test]
fn the_body_gets_the_new_model_and_keeps_everything_else() {
    let body = br#"{"model":"gpt-a","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
    let out = rebody(body, "gpt-az").expect("rewritten");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["model"], "gpt-az");
    assert_eq!(v["messages"][0]["content"], "hi");
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(rebody(&out, "gpt-az"), None, "already that model");
    assert_eq!(rebody(b"not json", "x"), None);
}

fn pooled() -> Compiled {
    let json = serde_json::json!({
        "version": 1, "keys": [],
        "models": [{"id": "m", "deployments": [
            {"provider": "p", "upstream_model": "gpt-p", "weight": 1, "priority": 0},
            {"provider": "q", "upstream_model": "gpt-q", "weight": 1, "priority": 1}],
            "routes": [{"cluster": "tg_x", "attempts": [0, 0, 1]}]}],
        "providers": [
            {"id": "p", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "",
             "credentials": [{"id": "k1", "key": "sk-1", "generation": 0}, {"id": "k2", "key": "sk-2", "generation": 0}]},
            {"id": "q", "kind": "openai", "base_url": "http://127.0.0.1:9002/v1", "api_key": "",
             "credentials": [{"id": "j1", "key": "sk-j", "generation": 0}]}
        ]
    });
    Compiled::from_json(json.to_string().as_bytes()).expect("compiles")
}

/// The attempt is sent with `credential`, its `authorization` and the
/// `PREPARED` header that lists the credentials tried.
fn assert_sent(
    s: &Compiled,
    a: &Attempt<'_>,
    credential: &str,
    authorization: &[u8],
    prepared: &[u8],
) {
    let AttemptDecision::Send {
        headers,
        credential: sent,
        ..
    } = on_attempt(Some(s), a)
    else {
        panic!("refused");
    };
    assert_eq!(sent, credential);
    assert_eq!(
        header(&headers, "authorization"),
        Some(&Some(authorization.to_vec()))
    );
    assert_eq!(header(&headers, PREPARED), Some(&Some(prepared.to_vec())));
}

#[test]
fn a_retry_on_the_same_deployment_sends_another_credential_of_its_pool_and_never_one_tried() {
    let s = pooled();
    let store = Mem::default();
    let mut a = attempt(b"0:chat_completions:k1", 0, "127.0.0.1:9001");
    a.attempt = 2;
    a.store = &store;
    assert_sent(&s, &a, "k2", b"Bearer sk-2", b"0:chat_completions:k1,k2");
    // Both tried: this attempt is refused (Envoy goes on to the next level).
    let mut a = attempt(b"0:chat_completions:k1,k2", 0, "127.0.0.1:9001");
    a.attempt = 3;
    assert!(matches!(
        on_attempt(Some(&s), &a),
        AttemptDecision::Refuse(_)
    ));
    // A benched one is not sent either.
    let k2 = s.upstreams["p"].pool[1].clone();
    credentials::bench(&store, "p", &k2, 10_000, 429);
    let mut a = attempt(b"0:chat_completions:k1", 0, "127.0.0.1:9001");
    a.attempt = 2;
    a.store = &store;
    assert!(matches!(
        on_attempt(Some(&s), &a),
        AttemptDecision::Refuse(_)
    ));
}

#[test]
fn the_next_deployment_starts_its_own_list_of_tried_credentials() {
    let s = pooled();
    let a = attempt(b"0:chat_completions:k1,k2", 1, "127.0.0.1:9002");
    assert_sent(&s, &a, "j1", b"Bearer sk-j", b"1:chat_completions:j1");
}
