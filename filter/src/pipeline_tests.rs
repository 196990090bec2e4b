use super::*;
use crate::channel::{Call, Polled};
use crate::testkit::{self, Mem};
use tollgate_contract::key;
use tollgate_contract::snapshot::{Deployment, Model, Provider, Settings, Snapshot};
use tollgate_contract::usage::UsageBatch;

const NOW: u64 = 1_800_000_000_000;
const SECRET: &str = "0123456789abcdef-filter";

fn secret(seed: u8) -> String {
    let random: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(11).wrapping_add(seed) % 200)
        .collect();
    key::format_key("tg-", &random).expect("key")
}

fn snap_key(id: &str, seed: u8, rpm: Option<u32>) -> Key {
    Key {
        rpm,
        ..testkit::key(id, &secret(seed), "acct1")
    }
}

fn snapshot() -> Compiled {
    Compiled::new(Snapshot {
        version: 7,
        key_pages: 0,
        groups: vec![],
        accounts: vec![],
        keys: vec![
            snap_key("free", 1, None),
            snap_key("one-a-minute", 2, Some(1)),
        ],
        models: vec![Model {
            id: "demo-chat".into(),
            deployments: vec![Deployment {
                provider: "mock".into(),
                upstream_model: "mock-gpt".into(),
                weight: 1,
                priority: 0,
                first_byte_timeout_ms: None,
                idle_timeout_ms: None,
            }],
            input_nanos_per_1m: 2_000_000,
            output_nanos_per_1m: 8_000_000,
            max_attempts: 3,
            strategy: Default::default(),
            routes: Vec::new(),
        }],
        providers: vec![Provider {
            id: "mock".into(),
            kind: "openai".into(),
            base_url: "http://127.0.0.1:9000/v1".into(),
            api_key: "sk-provider".into(),
            credentials: Vec::new(),
        }],
        settings: Settings {
            max_body_bytes: 1024,
            refuse_private_upstreams: false,
        },
    })
    .expect("compiles")
}

fn config(shared_limits: bool, usage_in_access_log: bool) -> PluginConfig {
    PluginConfig::parse(
        format!(
            r#"{{"control_plane_cluster":"cp","filter_secret":"{SECRET}","shared_limits":{shared_limits},"usage_in_access_log":{usage_in_access_log}}}"#
        )
        .as_bytes(),
    )
    .expect("config")
}

fn worker(shared_limits: bool) -> Worker {
    let mut w = Worker::new(42);
    w.config = Some(Arc::new(config(shared_limits, true)));
    w.apply_snapshot(snapshot(), 0);
    w
}

fn headers(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
    ];
    out.extend(
        extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    out
}

fn bearer(seed: u8) -> String {
    format!("Bearer {}", secret(seed))
}

const CHAT: &str = "/v1/chat/completions";
const BODY: &[u8] =
    br#"{"model":"demo-chat","messages":[{"role":"user","content":"hello there"}]}"#;

/// The header writes of an outcome, as (name, value) with `None` removals.
fn writes(o: &Outcome) -> Vec<(String, Option<String>)> {
    o.headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
            )
        })
        .collect()
}

fn written(o: &Outcome, name: &str) -> Option<Option<String>> {
    writes(o)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Headers then the whole body: the outcome of the body step.
fn send(w: &mut Worker, store: &Mem, req: &mut Request, auth: &str, body: &[u8]) -> Outcome {
    let hs = headers("POST", CHAT, &[("authorization", auth)]);
    let head = req.on_request_headers(w, store, &hs, false, NOW);
    assert_eq!(head.then, Then::Pause, "the body decides");
    req.on_request_body(w, store, body.len(), true, || body.to_vec(), || NOW)
}

fn status_of(o: &Outcome) -> Option<u16> {
    match &o.then {
        Then::Reply(r) => Some(r.status),
        _ => None,
    }
}

#[test]
fn shared_limits_lease_the_per_minute_buckets_and_local_ones_count_them_here() {
    assert_eq!(limits_mode(&config(true, true)), Mode::Leased);
    assert_eq!(limits_mode(&config(false, true)), Mode::Local);
}

#[test]
fn the_reservation_is_the_prompt_estimate_plus_the_output_cap_at_the_models_price() {
    let f = |max_output| Forward {
        authority: String::new(),
        path: String::new(),
        cluster: crate::decide::Cluster::Plain,
        credential: None,
        credential_id: String::new(),
        anthropic_upstream: false,
        translation: crate::decide::Translation::None,
        body: Vec::new(),
        model: "m".into(),
        upstream_model: "u".into(),
        provider: "p".into(),
        stream: false,
        ask_usage: false,
        hide_usage: false,
        meter_endpoint: crate::routing::Endpoint::ChatCompletions,
        metered: true,
        prompt_weight: 401,
        max_output,
        input_nanos_per_1m: 2_000_000,
        output_nanos_per_1m: 8_000_000,
        deployment: 0,
        route: None,
        marked: Vec::new(),
        least_latency: false,
        first_byte_timeout_ms: None,
        idle_timeout_ms: None,
    };
    // 401 weight -> 21 tokens (20 a token, rounded up).
    let (tokens, nanos) = estimate(&f(Some(100)));
    assert_eq!((tokens.input, tokens.output), (21, 100));
    // 21 * 2 + 100 * 8 nano-dollars.
    assert_eq!(nanos, 842);
    let (tokens, nanos) = estimate(&f(None));
    assert_eq!(tokens.output, limits::DEFAULT_OUTPUT_RESERVE);
    assert_eq!(nanos, 42 + 256 * 8);
}

#[test]
fn a_local_plan_counts_the_keys_minute_in_this_envoy_and_refuses_the_second_request() {
    let store = Mem::default();
    let mut w = worker(false);
    let first = send(&mut w, &store, &mut Request::default(), &bearer(2), BODY);
    assert_eq!(first.then, Then::Continue);
    assert!(store
        .map
        .borrow()
        .contains_key("tollgate:k:one-a-minute:rpm"));
    let second = send(&mut w, &store, &mut Request::default(), &bearer(2), BODY);
    assert_eq!(status_of(&second), Some(429));
    assert!(w.lease_call().is_none(), "nothing leased in local mode");
    // A key with no limits has an empty plan: nothing is counted for it.
    let free = send(&mut w, &store, &mut Request::default(), &bearer(1), BODY);
    assert_eq!(free.then, Then::Continue);
    assert!(!store.map.borrow().keys().any(|k| k.contains(":free:")));
}

#[test]
fn a_leased_plan_admits_the_first_request_on_credit_and_asks_the_control_plane() {
    let store = Mem::default();
    let mut w = worker(true);
    let first = send(&mut w, &store, &mut Request::default(), &bearer(2), BODY);
    assert_eq!(first.then, Then::Continue);
    assert!(!store
        .map
        .borrow()
        .contains_key("tollgate:k:one-a-minute:rpm"));
    let call = w.lease_call().expect("a lease request");
    assert_eq!(call.path, "/internal/leases");
    assert_eq!(call.timeout_ms, 5_000);
    let body: serde_json::Value =
        serde_json::from_slice(call.body.as_deref().expect("body")).expect("json");
    assert_eq!(body["leases"][0]["bucket"], "k:one-a-minute:rpm");
    assert_eq!(body["leases"][0]["limit"], 1);
    assert!(w.lease_call().is_none(), "the wants went with that request");
}

#[test]
fn granted_tokens_go_to_the_lease_and_a_refused_answer_grants_nothing() {
    let store = Mem::default();
    let mut w = worker(true);
    let lease = "tollgate:k:one-a-minute:rpm:lease";
    w.lease_answered(
        &store,
        Some(503),
        br#"{"grants":[{"bucket":"k:one-a-minute:rpm","granted":5}]}"#,
    );
    w.lease_answered(&store, Some(200), b"not json");
    assert!(!store.map.borrow().contains_key(lease));
    w.lease_answered(
        &store,
        Some(200),
        br#"{"grants":[{"bucket":"k:one-a-minute:rpm","granted":5}]}"#,
    );
    assert!(store.map.borrow().contains_key(lease));
    // Five granted: five requests admitted from the lease, then the sixth
    // finds it spent.
    for _ in 0..5 {
        let o = send(&mut w, &store, &mut Request::default(), &bearer(2), BODY);
        assert_eq!(o.then, Then::Continue);
    }
    let sixth = send(&mut w, &store, &mut Request::default(), &bearer(2), BODY);
    assert_eq!(status_of(&sixth), Some(429));
}

#[test]
fn a_control_plane_request_carries_the_callers_identity_and_not_its_key() {
    let store = Mem::default();
    let mut w = worker(false);
    let mut req = Request::default();
    let auth = bearer(1);
    let hs = headers(
        "GET",
        "/v1/models",
        &[
            ("authorization", auth.as_str()),
            ("x-tollgate-key-id", "forged"),
        ],
    );
    let o = req.on_request_headers(&mut w, &store, &hs, true, NOW);
    assert_eq!(o.then, Then::Continue);
    assert_eq!(
        writes(&o),
        vec![
            ("x-tollgate-key-id".to_string(), None),
            ("x-request-id".to_string(), Some(req.id.clone())),
            ("authorization".to_string(), None),
            ("api-key".to_string(), None),
            ("x-api-key".to_string(), None),
            (headers::FILTER_SECRET.to_string(), Some(SECRET.to_string())),
            (headers::KEY_ID.to_string(), Some("free".to_string())),
            (headers::ACCOUNT_ID.to_string(), Some("acct1".to_string())),
        ]
    );
}

#[test]
fn a_forwarded_request_is_rewritten_for_its_provider_and_metered_into_one_record() {
    let store = Mem::default();
    let mut w = worker(false);
    let mut req = Request::default();
    let auth = bearer(1);
    let same = secret(1);
    let hs = headers(
        "POST",
        CHAT,
        &[
            ("authorization", auth.as_str()),
            ("x-api-key", same.as_str()),
        ],
    );
    let head = req.on_request_headers(&mut w, &store, &hs, false, NOW);
    assert_eq!(head.then, Then::Pause);
    assert_eq!(
        written(&head, "x-request-id"),
        Some(Some(req.id.clone())),
        "the filter mints the request id"
    );
    let o = req.on_request_body(&mut w, &store, BODY.len(), true, || BODY.to_vec(), || NOW);
    assert_eq!(o.then, Then::Continue);
    assert_eq!(
        written(&o, ":authority"),
        Some(Some("127.0.0.1:9000".into()))
    );
    assert_eq!(
        written(&o, ":path"),
        None,
        "the provider's path is the client's: not written"
    );
    assert_eq!(
        written(&o, headers::CLUSTER),
        Some(Some("tollgate_upstream".into()))
    );
    assert_eq!(
        written(&o, "authorization"),
        Some(Some("Bearer sk-provider".into()))
    );
    assert_eq!(written(&o, "x-api-key"), Some(None));
    let BodyChange::Replace(new) = &o.body else {
        panic!("the model name is rewritten: {:?}", o.body);
    };
    let v: serde_json::Value = serde_json::from_slice(new).expect("json");
    assert_eq!(v["model"], "mock-gpt");
    assert_eq!(
        written(&o, "content-length"),
        Some(Some(new.len().to_string()))
    );

    let answer = br#"{"id":"c1","model":"mock-gpt","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;
    let resp = req.on_response_headers(
        &Mem::default(),
        || NOW,
        || {
            vec![
                (":status".into(), b"200".to_vec()),
                ("content-type".into(), b"application/json".to_vec()),
            ]
        },
    );
    assert_eq!(resp.then, Then::Continue);
    assert_eq!(
        written(&resp, "content-length"),
        Some(None),
        "no rate-limit headers; the answer's model is renamed, so its length may change"
    );
    assert_eq!(resp.headers.len(), 1);
    let renamed = req
        .on_response_body(answer.len(), true, || answer.to_vec(), || NOW + 5)
        .expect("the model renamed");
    assert_eq!(
        renamed,
        String::from_utf8_lossy(answer)
            .replace("mock-gpt", "demo-chat")
            .into_bytes(),
        "only the model changes, to the public id"
    );
    let mut logged = Vec::new();
    req.on_end(&mut w, &store, NOW + 9, || 0, |j| logged = j.to_vec());
    let record: tollgate_contract::usage::UsageRecord =
        serde_json::from_slice(&logged).expect("record in the access log");
    assert_eq!(record.request_id, req.id);
    assert_eq!((record.input_tokens, record.output_tokens), (10, 5));
    assert_eq!(record.cost_nanos, 60, "10 * 2 + 5 * 8");
    assert_eq!((record.status, record.latency_ms), (200, 9));
    assert_eq!(record.upstream_model, "mock-gpt");
    assert_eq!(
        w.take_counts(),
        Counts {
            records: 1,
            estimated: 0,
            dropped: 0
        }
    );
    let call = w.usage_call(NOW + 10_000).expect("a batch is due");
    assert_eq!(call.path, "/internal/usage");
    let batch: UsageBatch =
        serde_json::from_slice(call.body.as_deref().expect("body")).expect("batch");
    assert_eq!(batch.records, vec![record]);
    assert_eq!(w.usage_answered(Some(200), NOW + 10_001), 1);
}

#[test]
fn the_access_log_copy_is_left_out_when_the_configuration_says_so() {
    let store = Mem::default();
    let mut w = worker(false);
    w.config = Some(Arc::new(config(false, false)));
    let mut req = Request::default();
    send(&mut w, &store, &mut req, &bearer(1), BODY);
    let mut copied = false;
    req.on_end(&mut w, &store, NOW, || 499, |_| copied = true);
    assert!(!copied);
    assert_eq!(w.take_counts().records, 1, "the record is still made");
}

#[test]
fn a_refusal_before_the_body_ends_drains_the_body_then_answers() {
    let store = Mem::default();
    let mut w = worker(false);
    let mut req = Request::default();
    let hs = headers("POST", CHAT, &[("authorization", "Bearer nope")]);
    let o = req.on_request_headers(&mut w, &store, &hs, false, NOW);
    assert_eq!(o.then, Then::Pause);
    let o = req.on_request_body(&mut w, &store, 10, false, Vec::new, || NOW);
    assert_eq!((o.body, o.then), (BodyChange::Discard, Then::Pause));
    let o = req.on_request_body(&mut w, &store, 10, true, Vec::new, || NOW);
    assert_eq!(status_of(&o), Some(401));
    // A discard the host could not make: the refusal goes out at once.
    let mut req = Request::default();
    req.on_request_headers(&mut w, &store, &hs, false, NOW);
    req.on_request_body(&mut w, &store, 10, false, Vec::new, || NOW);
    assert_eq!(req.body_not_written(&store, NOW).status, 401);
    let reply = Reply::error(ErrorCode::InvalidApiKey, "x");
    assert_eq!(
        req.answer(&reply).0,
        vec![
            ("content-type", "application/json"),
            ("x-request-id", req.id.as_str())
        ]
    );
}

#[test]
fn a_body_over_the_limit_is_refused_with_413_after_draining() {
    let store = Mem::default();
    let mut w = worker(false);
    let mut req = Request::default();
    let auth = bearer(1);
    let hs = headers("POST", CHAT, &[("authorization", auth.as_str())]);
    req.on_request_headers(&mut w, &store, &hs, false, NOW);
    let o = req.on_request_body(&mut w, &store, 2000, true, || panic!("not read"), || NOW);
    assert_eq!(status_of(&o), Some(413));
}

#[test]
fn a_rewrite_the_host_could_not_write_gives_the_reservation_back_and_bills_nothing() {
    let store = Mem::default();
    let mut w = worker(false);
    let mut req = Request::default();
    let o = send(&mut w, &store, &mut req, &bearer(2), BODY);
    assert!(matches!(o.body, BodyChange::Replace(_)));
    let reply = req.body_not_written(&store, NOW);
    assert_eq!(reply.status, 500);
    req.on_end(&mut w, &store, NOW, || 500, |_| {});
    assert_eq!(w.take_counts().records, 0, "never sent, never billed");
    // The minute's one request was given back.
    let again = send(&mut w, &store, &mut Request::default(), &bearer(2), BODY);
    assert_eq!(again.then, Then::Continue);
}

#[test]
fn the_response_carries_the_rate_limit_headers_and_an_invalid_status_becomes_502() {
    let store = Mem::default();
    let mut w = worker(false);
    let mut req = Request::default();
    send(&mut w, &store, &mut req, &bearer(2), BODY);
    let o = req.on_response_headers(
        &Mem::default(),
        || NOW,
        || vec![(":status".into(), b"999".to_vec())],
    );
    assert_eq!(status_of(&o), Some(502));
    assert_eq!(
        written(&o, "x-ratelimit-limit-requests"),
        Some(Some("1".into()))
    );
    req.on_end(&mut w, &store, NOW, || 0, |_| {});
    assert_eq!(w.take_counts().records, 1);
}

#[test]
fn a_stream_whose_usage_chunk_the_gateway_asked_for_loses_its_length_and_that_chunk() {
    let store = Mem::default();
    let mut w = worker(false);
    let mut req = Request::default();
    let body =
        br#"{"model":"demo-chat","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let o = send(&mut w, &store, &mut req, &bearer(1), body);
    let BodyChange::Replace(new) = &o.body else {
        panic!("include_usage is asked for");
    };
    let v: serde_json::Value = serde_json::from_slice(new).expect("json");
    assert_eq!(v["stream_options"]["include_usage"], true);
    let o = req.on_response_headers(
        &Mem::default(),
        || NOW,
        || {
            vec![
                (":status".into(), b"200".to_vec()),
                ("content-type".into(), b"text/event-stream".to_vec()),
            ]
        },
    );
    assert_eq!(written(&o, "content-length"), Some(None));
    let chunk = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
    let out = req
        .on_response_body(chunk.len(), true, || chunk.to_vec(), || NOW)
        .expect("rewritten");
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.contains("\"hi\"") && text.contains("[DONE]"));
    assert!(!text.contains("usage"), "{text}");
}

#[test]
fn filter_channel_calls_carry_the_secret_and_a_poll_waits_longer_than_the_control_plane() {
    let mut w = worker(false);
    let config = config(false, true);
    let poll = w.poll_call(NOW).expect("a poll is due");
    assert_eq!(poll.body, None);
    assert_eq!(poll.timeout_ms, config.poll_wait_ms + 5_000);
    assert_eq!(
        poll.headers(&config),
        vec![
            (":method", "GET"),
            (":path", poll.path.as_str()),
            (":authority", "tollgate-control-plane"),
            (headers::FILTER_SECRET, SECRET),
        ]
    );
    let post = Call {
        path: "/internal/usage".into(),
        body: Some(b"{}".to_vec()),
        timeout_ms: 1,
    };
    assert_eq!(
        post.headers(&config),
        vec![
            (":method", "POST"),
            (":path", "/internal/usage"),
            (":authority", "tollgate-control-plane"),
            ("content-type", "application/json"),
            (headers::FILTER_SECRET, SECRET),
        ]
    );
    w.poll_sent();
    let body = serde_json::to_vec(&Snapshot {
        version: 8,
        ..Snapshot::default()
    })
    .expect("json");
    assert_eq!(
        w.poll_answered(NOW, Some(200), &body),
        Polled::Applied {
            version: 8,
            keys: 0,
            models: 0
        }
    );
    assert_eq!(w.snapshot.as_ref().map(|s| s.version), Some(8));
}

#[test]
fn a_worker_with_no_snapshot_answers_503_and_status_is_open() {
    let store = Mem::default();
    let mut w = Worker::new(1);
    w.config = Some(Arc::new(config(false, true)));
    let mut req = Request::default();
    let o = req.on_request_headers(
        &mut w,
        &store,
        &headers("GET", "/v1/models", &[]),
        true,
        NOW,
    );
    assert_eq!(status_of(&o), Some(503));
    let o = req.on_request_headers(
        &mut w,
        &store,
        &headers("GET", "/api/status", &[]),
        true,
        NOW,
    );
    assert_eq!(o.then, Then::Continue);
}

/// The test snapshot plus an Anthropic provider and a model on it.
fn with_anthropic() -> Worker {
    let mut w = worker(false);
    w.apply_snapshot(anthropic_snapshot(), 0);
    w
}

fn anthropic_snapshot() -> Compiled {
    let mut snap = snapshot();
    let mut claude = snap.models.get("demo-chat").expect("model").clone();
    claude.id = "claude".into();
    claude.deployments[0].provider = "anth".into();
    claude.deployments[0].upstream_model = "claude-up".into();
    snap.models.insert("claude".into(), claude);
    snap.upstreams.insert(
        "anth".into(),
        crate::snapshot::Upstream {
            id: "anth".into(),
            kind: crate::routing::ProviderKind::Anthropic,
            base: crate::routing::parse_base_url("http://127.0.0.1:9001/v1").expect("url"),
            credential: Some(("x-api-key", "sk-anth".into())),
            pool: Vec::new(),
            exhausted: false,
        },
    );
    snap
}

/// An Anthropic client's request (its key in `x-api-key`): headers, then
/// the whole body; the outcome of the body step.
fn send_messages(
    w: &mut Worker,
    store: &Mem,
    req: &mut Request,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Outcome {
    let key = secret(1);
    let mut all = vec![("x-api-key", key.as_str())];
    all.extend_from_slice(extra);
    let hs = headers("POST", path, &all);
    let head = req.on_request_headers(w, store, &hs, false, NOW);
    assert_eq!(head.then, Then::Pause, "the body decides");
    req.on_request_body(w, store, body.len(), true, || body.to_vec(), || NOW)
}

fn respond(req: &mut Request, status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let resp = req.on_response_headers(
        &Mem::default(),
        || NOW,
        || {
            vec![
                (":status".into(), status.as_bytes().to_vec()),
                ("content-type".into(), content_type.as_bytes().to_vec()),
            ]
        },
    );
    assert_eq!(
        written(&resp, "content-length"),
        Some(None),
        "a translated answer changes length"
    );
    let (a, b) = body.split_at(body.len() / 2);
    let mut out = req
        .on_response_body(a.len(), false, || a.to_vec(), || NOW + 1)
        .unwrap_or_else(|| a.to_vec());
    out.extend(
        req.on_response_body(b.len(), true, || b.to_vec(), || NOW + 2)
            .unwrap_or_else(|| b.to_vec()),
    );
    out
}

fn record_of(
    w: &mut Worker,
    store: &Mem,
    req: &mut Request,
) -> tollgate_contract::usage::UsageRecord {
    let mut logged = Vec::new();
    req.on_end(w, store, NOW + 3, || 0, |j| logged = j.to_vec());
    serde_json::from_slice(&logged).expect("record")
}

#[test]
fn an_openai_stream_from_an_anthropic_provider_is_translated_and_billed_exactly() {
    let store = Mem::default();
    let mut w = with_anthropic();
    let mut req = Request::default();
    let body = br#"{"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let o = send(&mut w, &store, &mut req, &bearer(1), body);
    assert_eq!(o.then, Then::Continue);
    assert_eq!(written(&o, ":path"), Some(Some("/v1/messages".into())));
    assert_eq!(
        written(&o, "authorization"),
        Some(None),
        "the client's key never goes on"
    );
    assert_eq!(written(&o, "x-api-key"), Some(Some("sk-anth".into())));
    assert_eq!(
        written(&o, "anthropic-version"),
        Some(Some(ANTHROPIC_VERSION.into()))
    );
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":2,\"output_tokens\":1}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi!\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let out = String::from_utf8(respond(
        &mut req,
        "200",
        "text/event-stream",
        stream.as_bytes(),
    ))
    .expect("utf-8");
    assert!(out.contains(r#""content":"Hi!""#), "{out}");
    assert!(
        out.contains(r#""model":"claude""#),
        "the client's model name: {out}"
    );
    assert!(
        !out.contains("prompt_tokens"),
        "the client did not ask for the usage chunk: {out}"
    );
    assert!(out.ends_with("data: [DONE]\n\n"));
    let record = record_of(&mut w, &store, &mut req);
    assert_eq!(
        (record.input_tokens, record.output_tokens, record.estimated),
        (22, 3, false)
    );
    assert_eq!(
        (record.cache_read_tokens, record.cache_creation_tokens),
        (0, 2),
        "the cache writes are counted in the input and kept apart"
    );
    assert_eq!(
        (record.model.as_str(), record.upstream_model.as_str()),
        ("claude", "claude-up")
    );
}

#[test]
fn a_messages_client_on_an_openai_provider_gets_messages_back_and_one_exact_record() {
    let store = Mem::default();
    let mut w = with_anthropic();
    let mut req = Request::default();
    let body =
        br#"{"model":"demo-chat","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#;
    let o = send_messages(
        &mut w,
        &store,
        &mut req,
        "/v1/messages",
        &[("anthropic-version", "2023-06-01")],
        body,
    );
    assert_eq!(o.then, Then::Continue);
    assert_eq!(written(&o, ":path"), Some(Some(CHAT.into())));
    assert_eq!(
        written(&o, "authorization"),
        Some(Some("Bearer sk-provider".into()))
    );
    assert_eq!(written(&o, "x-api-key"), Some(None));
    assert_eq!(
        written(&o, "anthropic-version"),
        Some(None),
        "not for an OpenAI provider"
    );
    let answer = br#"{"id":"c9","choices":[{"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":2}}"#;
    let out: serde_json::Value =
        serde_json::from_slice(&respond(&mut req, "200", "application/json", answer))
            .expect("json");
    assert_eq!(out["type"], "message");
    assert_eq!(
        out["content"],
        serde_json::json!([{"type":"text","text":"Hello"}])
    );
    assert_eq!(out["usage"]["output_tokens"], 2);
    let record = record_of(&mut w, &store, &mut req);
    assert_eq!(
        (record.input_tokens, record.output_tokens, record.estimated),
        (8, 2, false)
    );
}

#[test]
fn a_messages_client_gets_the_gateways_own_errors_in_anthropics_shape() {
    let store = Mem::default();
    let mut w = with_anthropic();
    let mut req = Request::default();
    let hs = headers("POST", "/v1/messages", &[("x-api-key", "nope")]);
    let o = req.on_request_headers(&mut w, &store, &hs, true, NOW);
    let Then::Reply(reply) = o.then else {
        panic!("{o:?}")
    };
    assert_eq!(reply.status, 401);
    let v: serde_json::Value = serde_json::from_slice(&req.answer(&reply).1).expect("json");
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(v["error"]["message"], "Incorrect API key provided.");
    // A request that cannot be translated names the field, in that shape too.
    let mut req = Request::default();
    let body = br#"{"model":"demo-chat","max_tokens":5,"top_k":2,"messages":[]}"#;
    let o = send_messages(&mut w, &store, &mut req, "/v1/messages", &[], body);
    let Then::Reply(reply) = o.then else {
        panic!("{o:?}")
    };
    let v: serde_json::Value = serde_json::from_slice(&req.answer(&reply).1).expect("json");
    assert_eq!(
        (reply.status, v["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("top_k")),
        "{v}"
    );
}

#[test]
fn a_token_count_for_a_provider_that_cannot_count_is_estimated_and_says_so() {
    let store = Mem::default();
    let mut w = with_anthropic();
    let mut req = Request::default();
    let body = br#"{"model":"demo-chat","messages":[{"role":"user","content":"count these words please"}]}"#;
    let o = send_messages(
        &mut w,
        &store,
        &mut req,
        "/v1/messages/count_tokens",
        &[],
        body,
    );
    let Then::Reply(reply) = o.then else {
        panic!("{o:?}")
    };
    assert_eq!(reply.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
    assert!(v["input_tokens"].as_u64().is_some_and(|n| n > 0), "{v}");
    assert!(reply
        .headers
        .contains(&(headers::ESTIMATED, "true".to_string())));
    let mut logged = false;
    req.on_end(&mut w, &store, NOW, || 200, |_| logged = true);
    assert!(!logged, "a count is not a billed request");
}

#[test]
fn an_answer_from_the_anthropic_deployment_after_a_failover_is_translated_back_and_billed_as_its() {
    let store = Mem::default();
    let mut w = worker(false);
    let mut failover = config(false, true);
    failover.failover = true;
    w.config = Some(Arc::new(failover));
    let mut snap = anthropic_snapshot();
    let mut mixed = snap.models.get("demo-chat").expect("model").clone();
    mixed.id = "mixed".into();
    let mut second = mixed.deployments[0].clone();
    second.provider = "anth".into();
    second.upstream_model = "claude-up".into();
    second.priority = 1;
    mixed.deployments.push(second);
    mixed.routes = vec![
        tollgate_contract::snapshot::Route {
            cluster: "tg_mixed_a".into(),
            attempts: vec![0, 1],
        },
        tollgate_contract::snapshot::Route {
            cluster: "tg_mixed_b".into(),
            attempts: vec![1, 0],
        },
    ];
    snap.models.insert("mixed".into(), mixed);
    w.apply_snapshot(snap, 0);
    let mut req = Request::default();
    let body = br#"{"model":"mixed","messages":[{"role":"user","content":"hi"}]}"#;
    let o = send(&mut w, &store, &mut req, &bearer(1), body);
    assert_eq!(o.then, Then::Continue);
    // Written for the OpenAI deployment; the plan names the body's API.
    assert_eq!(
        written(&o, crate::attempt::PREPARED),
        Some(Some("0:chat_completions::openai".into()))
    );
    // The Anthropic deployment answered the second attempt.
    let resp = req.on_response_headers(
        &Mem::default(),
        || NOW,
        || {
            vec![
                (":status".into(), b"200".to_vec()),
                ("content-type".into(), b"application/json".to_vec()),
                (crate::attempt::SERVED.into(), b"1;2".to_vec()),
                ("x-envoy-upstream-service-time".into(), b"3".to_vec()),
            ]
        },
    );
    assert_eq!(resp.then, Then::Continue);
    assert_eq!(written(&resp, "content-length"), Some(None));
    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-up","content":[{"type":"text","text":"Hi!"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":4}}"#;
    let out = req
        .on_response_body(answer.len(), true, || answer.to_vec(), || NOW + 1)
        .expect("translated");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "mixed");
    assert_eq!(v["choices"][0]["message"]["content"], "Hi!");
    assert_eq!(v["usage"]["prompt_tokens"], 12);
    let record = record_of(&mut w, &store, &mut req);
    assert_eq!(
        (record.input_tokens, record.output_tokens, record.estimated),
        (12, 4, false)
    );
    assert_eq!(
        (record.provider.as_str(), record.upstream_model.as_str()),
        ("anth", "claude-up")
    );
    assert_eq!(record.attempts, 2);
    assert_eq!(
        record.cost_nanos,
        crate::meter::cost(
            crate::usage::Tokens {
                input: 12,
                output: 4
            },
            2_000_000,
            8_000_000
        )
    );
}
