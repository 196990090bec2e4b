//! Property tests for every parser that sees client or upstream bytes: the
//! request body, SSE, usage extraction, key checks and snapshot decoding.
//! Each runs `PROPTEST_CASES` cases (256 by default, in CI);
//! `tools/fuzz` runs them longer. A failing case is kept by proptest under
//! `proptest-regressions/` and replayed first on every later run.

use proptest::prelude::*;
use tollgate_contract::key;

use crate::meter::{Meter, Request};
use crate::rename::Rename;
use crate::request::Body;
use crate::routing::{parse_base_url, Endpoint};
use crate::snapshot::Compiled;
use crate::sse::Parser;
use crate::usage;

/// JSON-ish bytes: mostly the characters JSON is made of, so that the
/// parsers get past their first byte more often than random bytes would.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b"\"".to_vec()),
        Just(b":".to_vec()),
        Just(b",".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\"model\"".to_vec()),
        Just(b"\"stream\"".to_vec()),
        Just(b"\"usage\"".to_vec()),
        Just(b"\"prompt_tokens\"".to_vec()),
        Just(b"true".to_vec()),
        Just(b"null".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"-0".to_vec()),
        Just(b"\\ud800".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(piece, 0..64).prop_map(|v| v.concat())
}

/// A valid request body: an object of distinct keys, `model` among them.
fn valid_body() -> impl Strategy<Value = (String, serde_json::Map<String, serde_json::Value>)> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    let value = leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    (
        ".{1,20}",
        prop::collection::btree_map("[a-z_]{1,10}", value, 0..8),
    )
        .prop_map(|(model, rest)| {
            let mut map: serde_json::Map<String, serde_json::Value> = rest
                .into_iter()
                .filter(|(k, _)| k != "model" && k != "stream" && k != "stream_options")
                .filter(|(k, _)| !k.starts_with("max_"))
                .collect();
            map.insert("model".into(), serde_json::Value::String(model.clone()));
            (model, map)
        })
}

/// What `rename.rs` promises: every `model` member holding a string that
/// needs no escape, at any depth, names the public id.
fn renamed_as_documented(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let plain = v.as_str().is_some_and(|s| {
                    s.len() <= crate::rename::MAX_VALUE
                        && serde_json::to_string(s).is_ok_and(|q| !q.contains('\\'))
                });
                if k == "model" && plain {
                    *v = serde_json::json!("pub/lic-1");
                } else {
                    renamed_as_documented(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(renamed_as_documented),
        _ => {}
    }
}

/// Cuts `bytes` at the given fractions into chunks (some of them empty).
fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for to in at {
        chunks.push(bytes.get(from..to).unwrap_or_default());
        from = to;
    }
    chunks.push(bytes.get(from..).unwrap_or_default());
    chunks
}

fn meter(hide_usage: bool) -> Meter {
    Meter::new(Request {
        request_id: "req_1".into(),
        key_id: "key_1".into(),
        account_id: "acct_1".into(),
        endpoint: Endpoint::ChatCompletions,
        model: "m".into(),
        upstream_model: "u".into(),
        provider: "p".into(),
        stream: true,
        hide_usage,
        prompt_weight: 10,
        input_nanos_per_1m: 150_000_000,
        output_nanos_per_1m: 600_000_000,
        started_ms: 1_000,
    })
}

/// A stream of plausible and implausible SSE events.
fn sse_stream() -> impl Strategy<Value = Vec<u8>> {
    let event = prop_oneof![
        ".{0,8}".prop_map(|w| format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":{}}}}}]}}\n\n",
            serde_json::Value::String(w)
        )),
        (0u32..5000, 0u32..5000).prop_map(|(p, c)| format!(
            "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{c}}}}}\r\n\r\n"
        )),
        Just(": keep-alive\n\n".to_string()),
        Just("data: [DONE]\n\n".to_string()),
        Just("data: {\"usage\":null}\n\n".to_string()),
        Just("event: x\ndata: a\ndata: b\n\n".to_string()),
        ".{0,16}".prop_map(|s| s),
    ];
    prop::collection::vec(event, 0..12).prop_map(|v| v.concat().into_bytes())
}

proptest! {
    #[test]
    fn the_body_parser_never_panics(raw in jsonish()) {
        if let Ok(body) = Body::parse(&raw) {
            // What parses rewrites to valid JSON with the model replaced.
            let out = body.rewrite("upstream", false);
            let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
            prop_assert_eq!(&v["model"], "upstream");
        }
    }

    #[test]
    fn a_valid_body_rewrites_to_the_same_entries_with_only_the_model_changed(
        (model, map) in valid_body(),
        ask_usage in any::<bool>(),
    ) {
        let raw = serde_json::to_vec(&map).expect("serialise");
        let body = Body::parse(&raw).expect("a valid body parses");
        prop_assert_eq!(&body.model, &model);
        let out: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&body.rewrite("up/\"x\"", ask_usage)).expect("valid JSON");
        for (k, v) in &map {
            if k == "model" {
                prop_assert_eq!(&out[k], "up/\"x\"");
            } else {
                prop_assert_eq!(&out[k], v);
            }
        }
        prop_assert_eq!(out.len(), map.len() + usize::from(ask_usage));
    }

    #[test]
    fn sse_bytes_and_events_do_not_depend_on_where_the_stream_is_cut(
        stream in sse_stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = {
            let mut p = Parser::default();
            let mut out = p.push(&stream);
            out.extend(p.finish());
            out
        };
        let mut p = Parser::default();
        let mut pieces = Vec::new();
        for chunk in split(&stream, &cuts) {
            pieces.extend(p.push(chunk));
        }
        pieces.extend(p.finish());
        prop_assert_eq!(&pieces, &whole);
        let bytes: Vec<u8> = pieces.iter().flat_map(|r| r.bytes.clone()).collect();
        prop_assert_eq!(bytes, stream);
    }

    #[test]
    fn a_metered_stream_reaches_the_client_unchanged_and_counts_the_same_at_every_cut(
        stream in sse_stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let run = |chunks: &[&[u8]]| {
            let mut m = meter(false);
            m.on_headers(200, b"text/event-stream");
            let mut client = Vec::new();
            for (i, c) in chunks.iter().enumerate() {
                match m.on_chunk(c, i + 1 == chunks.len(), || 1_100) {
                    Some(replacement) => client.extend(replacement),
                    None => client.extend_from_slice(c),
                }
            }
            let r = m.finish(2_000, 0);
            (client, r.input_tokens, r.output_tokens, r.cost_nanos, r.estimated)
        };
        let whole = run(&[&stream]);
        prop_assert_eq!(&whole.0, &stream);
        prop_assert_eq!(run(&split(&stream, &cuts)), whole);
    }

    #[test]
    fn usage_extraction_never_panics(raw in jsonish()) {
        let _ = usage::from_body(&raw);
        let _ = usage::output_weight(&raw);
    }

    #[test]
    fn key_checks_never_panic_and_issued_keys_pass(
        raw in prop::collection::vec(any::<u8>(), 0..80),
        random in prop::collection::vec(any::<u8>(), 16..40),
        prefix in "[a-z]{1,8}",
    ) {
        let _ = key::check(&raw);
        if let Some(issued) = key::format_key(&prefix, &random) {
            prop_assert!(key::check(issued.as_bytes()).is_ok());
            // One changed character is caught by the checksum or the shape.
            let mut typo = issued.clone().into_bytes();
            if let Some(last) = typo.last_mut() {
                *last = if *last == b'A' { b'B' } else { b'A' };
            }
            prop_assert!(key::check(&typo).is_err());
        }
    }

    #[test]
    fn snapshot_decoding_never_panics(raw in jsonish()) {
        let _ = Compiled::from_json(&raw);
    }

    #[test]
    fn base_url_parsing_never_panics(url in ".{0,40}", tail in "[a-z0-9:/.\\[\\]@%-]{0,30}") {
        let _ = parse_base_url(&url);
        let _ = parse_base_url(&format!("http://{tail}"));
        let _ = parse_base_url(&format!("https://{tail}"));
    }

    /// The answer's rename gives the same bytes however the answer is cut,
    /// and holds back no more than `HOLD`; a valid JSON answer stays valid
    /// with only its `model` members changed.
    #[test]
    fn the_rename_is_the_same_wherever_the_answer_is_cut(raw in jsonish(), cuts in prop::collection::vec(0usize..512, 0..6)) {
        let whole = Rename::new("demo-chat", "x").map(|mut r| r.push(&raw, true));
        let mut r = Rename::new("demo-chat", "x").expect("a rename");
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(raw.len())).collect();
        cuts.sort_unstable();
        let (mut out, mut from) = (Vec::new(), 0);
        for cut in cuts {
            out.extend(r.push(raw.get(from..cut).unwrap_or_default(), false));
            prop_assert!(r.held_len() <= crate::rename::HOLD);
            from = cut;
        }
        out.extend(r.push(raw.get(from..).unwrap_or_default(), true));
        prop_assert_eq!(Some(out), whole);
    }

    #[test]
    fn a_renamed_json_answer_is_the_same_json_but_its_model((_, body) in valid_body()) {
        let raw = serde_json::to_vec(&body).expect("json");
        let mut r = Rename::new("pub/lic-1", "x").expect("a rename");
        let renamed: serde_json::Value = serde_json::from_slice(&r.push(&raw, true)).expect("still JSON");
        let mut want = serde_json::Value::Object(body);
        renamed_as_documented(&mut want);
        prop_assert_eq!(renamed, want);
    }
}
