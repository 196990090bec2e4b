use super::*;
use tollgate_contract::snapshot::{
    Deployment, Key as SnapKey, Model, Provider, Settings, Snapshot,
};

fn secret(seed: u8) -> String {
    let random: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed) % 200)
        .collect();
    key::format_key("tg-", &random).expect("key")
}

fn key(id: &str, seed: u8, models: Option<Vec<&str>>, expires_at: Option<i64>) -> SnapKey {
    SnapKey {
        models: models.map(|m| m.into_iter().map(String::from).collect()),
        expires_at,
        ..crate::testkit::key(id, &secret(seed), "acct")
    }
}

fn snapshot() -> Compiled {
    Compiled::new(Snapshot {
        version: 1,
        key_pages: 0,
        groups: vec![
            tollgate_contract::snapshot::Group {
                id: "ga".into(),
                models: vec!["model-a".into()],
            },
            tollgate_contract::snapshot::Group {
                id: "gab".into(),
                models: vec!["model-a".into(), "model-b".into()],
            },
        ],
        accounts: vec![],
        keys: vec![
            key("all", 1, None, None),
            key("only-a", 2, Some(vec!["model-a"]), None),
            key("expired", 3, None, Some(1_000)),
            SnapKey {
                group: Some("ga".into()),
                ..key("group-a", 4, Some(vec!["model-a"]), None)
            },
            SnapKey {
                group: Some("gab".into()),
                ..key("group-ab-own-a", 5, Some(vec!["model-a"]), None)
            },
        ],
        models: vec![
            Model {
                id: "model-a".into(),
                deployments: vec![Deployment {
                    provider: "mock".into(),
                    upstream_model: "upstream-a".into(),
                    weight: 1,
                    priority: 0,
                    first_byte_timeout_ms: None,
                    idle_timeout_ms: None,
                }],
                input_nanos_per_1m: 0,
                output_nanos_per_1m: 0,
                max_attempts: 3,
                strategy: Default::default(),
                routes: Vec::new(),
            },
            Model {
                id: "model-b".into(),
                deployments: vec![Deployment {
                    provider: "tls".into(),
                    upstream_model: "upstream-b".into(),
                    weight: 1,
                    priority: 0,
                    first_byte_timeout_ms: None,
                    idle_timeout_ms: None,
                }],
                input_nanos_per_1m: 0,
                output_nanos_per_1m: 0,
                max_attempts: 3,
                strategy: Default::default(),
                routes: Vec::new(),
            },
            Model {
                id: "orphan".into(),
                deployments: vec![],
                input_nanos_per_1m: 0,
                output_nanos_per_1m: 0,
                max_attempts: 3,
                strategy: Default::default(),
                routes: Vec::new(),
            },
        ],
        providers: vec![
            Provider {
                id: "mock".into(),
                kind: "openai".into(),
                base_url: "http://127.0.0.1:9000/v1".into(),
                api_key: "sk-provider".into(),
                credentials: Vec::new(),
            },
            Provider {
                id: "tls".into(),
                kind: "openai".into(),
                base_url: "https://api.example.com/v1".into(),
                api_key: String::new(),
                credentials: Vec::new(),
            },
        ],
        settings: Settings {
            max_body_bytes: 1024,
            refuse_private_upstreams: false,
        },
    })
    .expect("compiles")
}

fn headers(pairs: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect()
}

fn head_outcome(
    snap: Option<&Compiled>,
    method: &str,
    path: &str,
    hs: &[(&str, &[u8])],
) -> Result<(String, Endpoint, bool), u16> {
    let hs = headers(hs);
    let head = Head {
        method: method.as_bytes(),
        path: path.as_bytes(),
        headers: &hs,
        now_s: 2_000,
    };
    match on_head(snap, &head) {
        HeadDecision::Open => Ok(("-".into(), Endpoint::Status, false)),
        HeadDecision::Reply(r) => Err(r.status),
        HeadDecision::ToControlPlane(a) => Ok((a.key.id.clone(), a.endpoint, false)),
        HeadDecision::ReadBody(a) => Ok((a.key.id.clone(), a.endpoint, true)),
    }
}

#[test]
fn request_heads_are_decided_as_the_contract_says() {
    let snap = snapshot();
    let good = format!("Bearer {}", secret(1));
    let good_raw = secret(1);
    let lower_scheme = format!("bearer {good_raw}");
    let expired = format!("Bearer {}", secret(3));
    let mut wrong_sum = secret(1).into_bytes();
    let n = wrong_sum.len();
    wrong_sum[n - 1] = if wrong_sum[n - 1] == b'A' { b'B' } else { b'A' };
    let wrong_sum = [b"Bearer ".as_slice(), &wrong_sum].concat();
    let unknown = format!("Bearer {}", secret(9));
    let big = vec![b'a'; 65_536];
    let chat = "/v1/chat/completions";
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Vec<(&'a str, &'a [u8])>,
        Result<(&'a str, bool), u16>,
    );
    let cases: Vec<Case> = vec![
        (
            "bearer key",
            "POST",
            chat,
            vec![("authorization", good.as_bytes())],
            Ok(("all", true)),
        ),
        (
            "lower-case scheme",
            "POST",
            chat,
            vec![("authorization", lower_scheme.as_bytes())],
            Ok(("all", true)),
        ),
        (
            "api-key header",
            "POST",
            chat,
            vec![("api-key", good_raw.as_bytes())],
            Ok(("all", true)),
        ),
        (
            "x-api-key header",
            "POST",
            chat,
            vec![("x-api-key", good_raw.as_bytes())],
            Ok(("all", true)),
        ),
        (
            "same key twice in two headers",
            "POST",
            chat,
            vec![
                ("authorization", good.as_bytes()),
                ("api-key", good_raw.as_bytes()),
            ],
            Ok(("all", true)),
        ),
        (
            "models list",
            "GET",
            "/v1/models",
            vec![("authorization", good.as_bytes())],
            Ok(("all", false)),
        ),
        (
            "status needs no key",
            "GET",
            "/api/status",
            vec![],
            Ok(("-", false)),
        ),
        ("no key", "POST", chat, vec![], Err(401)),
        (
            "empty authorization",
            "POST",
            chat,
            vec![("authorization", b"")],
            Err(401),
        ),
        (
            "basic scheme",
            "POST",
            chat,
            vec![("authorization", b"Basic dXNlcjpwYXNz")],
            Err(401),
        ),
        (
            "garbage",
            "POST",
            chat,
            vec![("authorization", b"Bearer \xff\xfe garbage")],
            Err(401),
        ),
        (
            "sql injection",
            "POST",
            chat,
            vec![("authorization", b"Bearer ' OR 1=1 --")],
            Err(401),
        ),
        (
            "64 KiB value",
            "POST",
            chat,
            vec![("authorization", big.as_slice())],
            Err(401),
        ),
        (
            "wrong checksum",
            "POST",
            chat,
            vec![("authorization", wrong_sum.as_slice())],
            Err(401),
        ),
        (
            "well-formed unknown key",
            "POST",
            chat,
            vec![("authorization", unknown.as_bytes())],
            Err(401),
        ),
        (
            "expired key",
            "POST",
            chat,
            vec![("authorization", expired.as_bytes())],
            Err(401),
        ),
        (
            "two different keys",
            "POST",
            chat,
            vec![
                ("authorization", good.as_bytes()),
                ("x-api-key", unknown.as_bytes()),
            ],
            Err(401),
        ),
        (
            "two authorization headers",
            "POST",
            chat,
            vec![
                ("authorization", good.as_bytes()),
                ("authorization", good.as_bytes()),
            ],
            Err(401),
        ),
        (
            "key in the query",
            "POST",
            "/v1/chat/completions?api_key=x",
            vec![("authorization", good.as_bytes())],
            Err(400),
        ),
        (
            "internal path",
            "GET",
            "/internal/config",
            vec![("authorization", good.as_bytes())],
            Err(404),
        ),
        ("unknown path", "POST", "/v2/chat", vec![], Err(404)),
        (
            "wrong method",
            "GET",
            chat,
            vec![("authorization", good.as_bytes())],
            Err(405),
        ),
        (
            "declared body over the limit",
            "POST",
            chat,
            vec![
                ("authorization", good.as_bytes()),
                ("content-length", b"1025"),
            ],
            Err(413),
        ),
        (
            "declared body at the limit",
            "POST",
            chat,
            vec![
                ("authorization", good.as_bytes()),
                ("content-length", b"1024"),
            ],
            Ok(("all", true)),
        ),
    ];
    for (name, method, path, hs, want) in cases {
        let got = head_outcome(Some(&snap), method, path, &hs).map(|(id, _, body)| (id, body));
        let want = want.map(|(id, body)| (id.to_string(), body));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn without_a_snapshot_every_keyed_request_is_503_and_status_still_answers() {
    let good = format!("Bearer {}", secret(1));
    assert_eq!(
        head_outcome(
            None,
            "POST",
            "/v1/chat/completions",
            &[("authorization", good.as_bytes())]
        ),
        Err(503)
    );
    assert_eq!(head_outcome(None, "GET", "/v1/models", &[]), Err(503));
    assert!(head_outcome(None, "GET", "/api/status", &[]).is_ok());
}

#[test]
fn every_wrong_key_gets_the_same_body() {
    let snap = snapshot();
    let bodies: Vec<Vec<u8>> = [
        b"Bearer x".as_slice(),
        b"Bearer ' OR 1=1",
        format!("Bearer {}", secret(9)).as_bytes(),
        format!("Bearer {}", secret(3)).as_bytes(),
    ]
    .iter()
    .map(|v| {
        let hs = headers(&[("authorization", v)]);
        let head = Head {
            method: b"POST",
            path: b"/v1/chat/completions",
            headers: &hs,
            now_s: 2_000,
        };
        match on_head(Some(&snap), &head) {
            HeadDecision::Reply(r) => r.body,
            other => panic!("not refused: {other:?}"),
        }
    })
    .collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn own_namespace_headers_are_listed_for_removal() {
    let hs = headers(&[
        ("x-tollgate-key-id", b"k"),
        ("x-tollgate-filter-secret", b"s"),
        ("x-request-id", b"r"),
        ("authorization", b"a"),
    ]);
    assert_eq!(
        spoofed(&hs),
        vec!["x-tollgate-key-id", "x-tollgate-filter-secret"]
    );
}

fn admitted(snap: &Compiled, id: &str) -> Admitted {
    let key = snap
        .keys
        .values()
        .find(|k| k.id == id)
        .cloned()
        .expect("key");
    Admitted {
        key,
        endpoint: Endpoint::ChatCompletions,
    }
}

#[test]
fn bodies_are_decided_as_the_contract_says() {
    let snap = snapshot();
    let over = format!("{{\"model\":\"model-a\",\"pad\":\"{}\"}}", "x".repeat(1024));
    type Case<'a> = (&'a str, &'a str, &'a [u8], Result<&'a str, u16>);
    let cases: Vec<Case> = vec![
        (
            "allowed model",
            "all",
            br#"{"model":"model-a","messages":[]}"#,
            Ok("upstream-a"),
        ),
        (
            "allowlisted model",
            "only-a",
            br#"{"model":"model-a"}"#,
            Ok("upstream-a"),
        ),
        (
            "model outside the allowlist",
            "only-a",
            br#"{"model":"model-b"}"#,
            Err(403),
        ),
        ("unknown model", "all", br#"{"model":"nope"}"#, Err(404)),
        (
            "a model of the key's group",
            "group-a",
            br#"{"model":"model-a"}"#,
            Ok("upstream-a"),
        ),
        (
            "a model outside the key's group: as if it did not exist",
            "group-a",
            br#"{"model":"model-b"}"#,
            Err(404),
        ),
        (
            "a model of the group outside the key's own list",
            "group-ab-own-a",
            br#"{"model":"model-b"}"#,
            Err(403),
        ),
        (
            "model with no deployment",
            "all",
            br#"{"model":"orphan"}"#,
            Err(502),
        ),
        (
            "duplicate model key",
            "only-a",
            br#"{"model":"model-a","model":"model-b"}"#,
            Err(400),
        ),
        ("bad json", "all", b"{", Err(400)),
        ("body over the limit", "all", over.as_bytes(), Err(413)),
    ];
    for (name, key_id, body, want) in cases {
        let got = forward(on_body(&snap, &admitted(&snap, key_id), body, 0))
            .map(|f| f.upstream_model)
            .map_err(|r| r.status);
        assert_eq!(got, want.map(String::from), "{name}");
    }
}

#[test]
fn a_forward_carries_the_provider_address_credential_and_rewritten_body() {
    let snap = snapshot();
    let f = forward(on_body(
        &snap,
        &admitted(&snap, "all"),
        br#"{"model":"model-a","stream":true}"#,
        3,
    ))
    .expect("forward");
    assert_eq!(
        f,
        Forward {
            authority: "127.0.0.1:9000".into(),
            path: "/v1/chat/completions".into(),
            cluster: Cluster::Plain,
            credential: Some(("authorization", "Bearer sk-provider".into())),
            credential_id: String::new(),
            anthropic_upstream: false,
            translation: Translation::None,
            body:
                br#"{"model":"upstream-a","stream":true,"stream_options":{"include_usage":true}}"#
                    .to_vec(),
            model: "model-a".into(),
            upstream_model: "upstream-a".into(),
            provider: "mock".into(),
            stream: true,
            ask_usage: true,
            hide_usage: true,
            meter_endpoint: Endpoint::ChatCompletions,
            metered: true,
            prompt_weight: 0,
            max_output: None,
            input_nanos_per_1m: 0,
            output_nanos_per_1m: 0,
            deployment: 0,
            route: None,
            marked: Vec::new(),
            least_latency: false,
            first_byte_timeout_ms: None,
            idle_timeout_ms: None,
        }
    );
    let f = forward(on_body(
        &snap,
        &admitted(&snap, "all"),
        br#"{"model":"model-b"}"#,
        0,
    ))
    .expect("forward");
    assert_eq!(
        (f.cluster, f.credential, f.authority.as_str()),
        (Cluster::Tls, None, "api.example.com")
    );
}

#[test]
fn an_upstream_status_outside_http_becomes_a_502() {
    for status in [0u16, 99, 600, 999, 1000] {
        let reply = upstream_status(status).expect("refused");
        assert_eq!(reply.status, 502, "{status}");
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        assert!(text.contains("upstream_error") && text.contains(&status.to_string()));
    }
    for status in [100u16, 200, 404, 429, 500, 599] {
        assert!(upstream_status(status).is_none(), "{status}");
    }
}

/// The forward of a body decision (a token count estimated here is none).
fn forward(d: Result<BodyDecision, Reply>) -> Result<Forward, Reply> {
    d.map(|d| match d {
        BodyDecision::Forward(f) => *f,
        BodyDecision::Estimated(_) => panic!("a forward, not an estimate"),
    })
}

/// Providers of every kind, one model on each.
fn kinds_snapshot() -> Compiled {
    let model = |id: &str, provider: &str| Model {
        id: id.into(),
        deployments: vec![Deployment {
            provider: provider.into(),
            upstream_model: format!("up-{id}"),
            weight: 1,
            priority: 0,
            first_byte_timeout_ms: None,
            idle_timeout_ms: None,
        }],
        input_nanos_per_1m: 0,
        output_nanos_per_1m: 0,
        max_attempts: 3,
        strategy: Default::default(),
        routes: Vec::new(),
    };
    let provider = |id: &str, kind: &str, base_url: &str| Provider {
        id: id.into(),
        kind: kind.into(),
        base_url: base_url.into(),
        api_key: format!("sk-{id}"),
        credentials: Vec::new(),
    };
    Compiled::new(Snapshot {
        version: 1,
        key_pages: 0,
        groups: vec![],
        accounts: vec![],
        keys: vec![key("all", 1, None, None)],
        models: vec![
            model("gpt", "oai"),
            model("claude", "anth"),
            model("azure", "az"),
            model("azure-v1", "az1"),
            model("future", "newer"),
        ],
        providers: vec![
            provider("oai", "openai", "http://127.0.0.1:9000/v1"),
            provider("anth", "anthropic", "https://api.anthropic.com/v1"),
            provider("az", "azure_openai", "https://r.openai.azure.com/openai"),
            provider(
                "az1",
                "azure_openai",
                "https://r.openai.azure.com/openai/v1",
            ),
            provider("newer", "bedrock_someday", "https://x.example"),
        ],
        settings: Settings {
            max_body_bytes: 1 << 20,
            refuse_private_upstreams: false,
        },
    })
    .expect("a kind it does not know leaves that provider out, not the snapshot")
}

fn on(snap: &Compiled, endpoint: Endpoint, body: &[u8]) -> Result<BodyDecision, Reply> {
    let mut a = admitted(snap, "all");
    a.endpoint = endpoint;
    on_body(snap, &a, body, 0)
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("json")
}

#[test]
fn an_openai_client_on_an_anthropic_provider_is_translated_to_messages() {
    let snap = kinds_snapshot();
    let f = forward(on(
        &snap,
        Endpoint::ChatCompletions,
        br#"{"model":"claude","stream":true,"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}"#,
    ))
    .expect("forward");
    assert_eq!(f.path, "/v1/messages");
    assert_eq!(f.authority, "api.anthropic.com");
    assert_eq!(f.credential, Some(("x-api-key", "sk-anth".to_string())));
    assert!(f.anthropic_upstream);
    assert_eq!(f.translation, Translation::ToAnthropic);
    assert_eq!(f.meter_endpoint, Endpoint::ChatCompletions);
    // The translated stream ends with a usage chunk the client did not ask for.
    assert!(!f.ask_usage && f.hide_usage);
    assert_eq!(
        json(&f.body),
        serde_json::json!({"model":"up-claude","stream":true,"max_tokens":4096,
            "system":[{"type":"text","text":"s"}],
            "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})
    );
}

#[test]
fn a_messages_client_on_an_openai_provider_is_translated_to_chat_completions() {
    let snap = kinds_snapshot();
    let f = forward(on(
        &snap,
        Endpoint::Messages,
        br#"{"model":"gpt","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    ))
    .expect("forward");
    assert_eq!(f.path, "/v1/chat/completions");
    assert_eq!(
        f.credential,
        Some(("authorization", "Bearer sk-oai".to_string()))
    );
    assert_eq!(f.translation, Translation::FromAnthropic);
    assert_eq!(f.meter_endpoint, Endpoint::ChatCompletions);
    assert!(f.ask_usage && !f.hide_usage && f.metered);
    assert_eq!(f.max_output, Some(9));
    assert_eq!(
        json(&f.body)["stream_options"],
        serde_json::json!({"include_usage": true})
    );
    // On an Anthropic provider a Messages request only has its model renamed.
    let f = forward(on(
        &snap,
        Endpoint::Messages,
        br#"{"model":"claude","max_tokens":9,"messages":[]}"#,
    ))
    .expect("forward");
    assert_eq!(
        (f.path.as_str(), f.translation),
        ("/v1/messages", Translation::None)
    );
    assert_eq!(
        f.body,
        br#"{"model":"up-claude","max_tokens":9,"messages":[]}"#.to_vec()
    );
    assert_eq!(f.meter_endpoint, Endpoint::Messages);
}

#[test]
fn what_cannot_be_translated_is_a_400_naming_the_field() {
    let snap = kinds_snapshot();
    let r = on(
        &snap,
        Endpoint::ChatCompletions,
        br#"{"model":"claude","n":3,"messages":[]}"#,
    )
    .expect_err("refused");
    assert_eq!((r.status, r.code), (400, Some(ErrorCode::InvalidRequest)));
    assert_eq!(json(&r.body)["error"]["param"], "n");
    let r = on(
        &snap,
        Endpoint::Messages,
        br#"{"model":"gpt","max_tokens":5,"top_k":3,"messages":[]}"#,
    )
    .expect_err("refused");
    assert_eq!(json(&r.body)["error"]["param"], "top_k");
    // An endpoint Anthropic does not have.
    let r = on(
        &snap,
        Endpoint::Embeddings,
        br#"{"model":"claude","input":"x"}"#,
    )
    .expect_err("refused");
    assert_eq!(
        (r.status, json(&r.body)["error"]["param"].as_str()),
        (400, Some("model"))
    );
}

#[test]
fn azure_takes_deployment_paths_with_an_api_version_and_an_api_key_header() {
    let snap = kinds_snapshot();
    let f = forward(on(
        &snap,
        Endpoint::ChatCompletions,
        br#"{"model":"azure"}"#,
    ))
    .expect("forward");
    assert_eq!(
        f.path,
        format!(
            "/openai/deployments/up-azure/chat/completions?api-version={}",
            routing::AZURE_API_VERSION
        )
    );
    assert_eq!(f.credential, Some(("api-key", "sk-az".to_string())));
    assert_eq!(f.translation, Translation::None);
    let f = forward(on(
        &snap,
        Endpoint::Embeddings,
        br#"{"model":"azure-v1","input":"x"}"#,
    ))
    .expect("forward");
    assert_eq!(f.path, "/openai/v1/embeddings");
}

#[test]
fn a_token_count_is_estimated_unless_the_provider_can_count() {
    let snap = kinds_snapshot();
    let body =
        br#"{"model":"gpt","messages":[{"role":"user","content":"hello there, how are you"}]}"#;
    match on(&snap, Endpoint::CountTokens, body).expect("decided") {
        BodyDecision::Estimated(n) => assert!(n > 0),
        other => panic!("{other:?}"),
    }
    let f = forward(on(
        &snap,
        Endpoint::CountTokens,
        br#"{"model":"claude","messages":[]}"#,
    ))
    .expect("forward");
    assert_eq!(f.path, "/v1/messages/count_tokens");
    assert!(!f.metered, "a count is neither billed nor limited");
}

#[test]
fn a_provider_of_a_kind_this_filter_does_not_know_is_left_out() {
    let snap = kinds_snapshot();
    assert!(!snap.upstreams.contains_key("newer"));
    let r =
        on(&snap, Endpoint::ChatCompletions, br#"{"model":"future"}"#).expect_err("no provider");
    assert_eq!(r.status, 502);
}
