use super::*;
use crate::attempt::{on_attempt, Attempt, AttemptDecision, PREPARED};
use crate::limits::Store;
use crate::snapshot::Compiled;

struct NoMarks;

impl Store for NoMarks {
    fn get(&self, _: &str) -> (Option<Vec<u8>>, Option<u32>) {
        (None, None)
    }
    fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> bool {
        true
    }
}

/// A model of an OpenAI deployment, an Anthropic one and an Azure one.
fn snapshot() -> Compiled {
    let json = serde_json::json!({
        "version": 1,
        "keys": [],
        "models": [{
            "id": "m",
            "deployments": [
                {"provider": "o", "upstream_model": "gpt-o", "weight": 1, "priority": 0},
                {"provider": "an", "upstream_model": "claude-x", "weight": 1, "priority": 1},
                {"provider": "az", "upstream_model": "gpt-az", "weight": 1, "priority": 2}
            ],
            "routes": [{"cluster": "tg_x", "attempts": [0, 1, 2]}]
        }],
        "providers": [
            {"id": "o", "kind": "openai", "base_url": "http://127.0.0.1:9001/v1", "api_key": "sk-o"},
            {"id": "an", "kind": "anthropic", "base_url": "http://127.0.0.1:9002/v1", "api_key": "sk-ant"},
            {"id": "az", "kind": "azure_openai", "base_url": "https://az.example.com/openai", "api_key": "az-key"}
        ],
        "settings": {"max_body_bytes": 4096, "refuse_private_upstreams": false}
    });
    Compiled::from_json(json.to_string().as_bytes()).expect("compiles")
}

fn send(prepared: &[u8], deployment: u32) -> (Vec<HeaderChange>, Option<String>, Option<Cross>) {
    let s = snapshot();
    let a = Attempt {
        prepared,
        model: Some("m"),
        deployment: Some(deployment),
        address: Some("127.0.0.1:9"),
        attempt: 2,
        store: &NoMarks,
        now_ms: 0,
    };
    match on_attempt(Some(&s), &a) {
        AttemptDecision::Send {
            headers,
            body_model,
            cross,
            ..
        } => (headers, body_model, cross),
        AttemptDecision::Refuse(r) => panic!("refused: {}", String::from_utf8_lossy(&r.body)),
    }
}

fn last<'h>(hs: &'h [HeaderChange], name: &str) -> Option<&'h Option<Vec<u8>>> {
    hs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[test]
fn an_openai_request_on_the_anthropic_deployment_is_translated_with_its_headers() {
    let (hs, model, cross) = send(b"0:chat_completions::openai", 1);
    assert_eq!(model.as_deref(), Some("claude-x"));
    assert_eq!(
        cross,
        Some(Cross {
            from: Wire::OpenAi,
            to: Wire::Anthropic
        })
    );
    assert_eq!(last(&hs, ":path"), Some(&Some(b"/v1/messages".to_vec())));
    assert_eq!(last(&hs, "x-api-key"), Some(&Some(b"sk-ant".to_vec())));
    assert_eq!(last(&hs, "authorization"), Some(&None));
    assert_eq!(
        last(&hs, "anthropic-version"),
        Some(&Some(ANTHROPIC_VERSION.as_bytes().to_vec()))
    );
    // The body's API stays in the plan for the next attempt.
    assert_eq!(
        last(&hs, PREPARED),
        Some(&Some(b"1:chat_completions::openai".to_vec()))
    );
}

#[test]
fn an_anthropic_request_on_an_openai_shaped_deployment_drops_anthropic_headers() {
    let (hs, model, cross) = send(b"1:messages::anthropic", 2);
    assert_eq!(model.as_deref(), Some("gpt-az"));
    assert_eq!(
        cross,
        Some(Cross {
            from: Wire::Anthropic,
            to: Wire::OpenAi
        })
    );
    assert_eq!(
        last(&hs, ":path"),
        Some(&Some(
            b"/openai/deployments/gpt-az/chat/completions?api-version=2024-10-21".to_vec()
        ))
    );
    assert_eq!(last(&hs, "api-key"), Some(&Some(b"az-key".to_vec())));
    assert_eq!(last(&hs, "x-api-key"), Some(&None));
    assert_eq!(last(&hs, "anthropic-version"), Some(&None));
    assert_eq!(last(&hs, "anthropic-beta"), Some(&None));
}

#[test]
fn the_body_api_not_the_headers_decides_the_translation() {
    // The headers were last written for the Anthropic deployment, but the
    // body is still the listener's OpenAI one: the OpenAI deployment takes
    // it as it is, with OpenAI's headers back.
    let (hs, _, cross) = send(b"1:chat_completions::openai", 2);
    assert_eq!(cross, None);
    assert_eq!(last(&hs, "anthropic-version"), Some(&None));
    // The other way: headers written for OpenAI (the first attempt's), the
    // body Anthropic's.
    let (_, _, cross) = send(b"2:chat_completions::anthropic", 0);
    assert_eq!(
        cross,
        Some(Cross {
            from: Wire::Anthropic,
            to: Wire::OpenAi
        })
    );
    // A plan without the body's API (an older listener): the headers' API.
    let (_, _, cross) = send(b"0:chat_completions:", 1);
    assert_eq!(cross.map(|c| c.from), Some(Wire::OpenAi));
}

#[test]
fn an_endpoint_without_a_counterpart_or_a_bad_body_api_is_refused() {
    let s = snapshot();
    for prepared in [&b"0:embeddings::openai"[..], b"0:chat_completions::klingon"] {
        let a = Attempt {
            prepared,
            model: Some("m"),
            deployment: Some(1),
            address: None,
            attempt: 2,
            store: &NoMarks,
            now_ms: 0,
        };
        assert!(
            matches!(on_attempt(Some(&s), &a), AttemptDecision::Refuse(_)),
            "{prepared:?}"
        );
    }
}

#[test]
fn the_body_is_translated_each_way_and_an_untranslatable_one_refused() {
    let openai = br#"{"model":"gpt-o","max_tokens":9,"stream":true,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#;
    let to = Cross::between(Wire::OpenAi, Wire::Anthropic);
    let out = rebody(openai, "claude-x", to)
        .expect("ok")
        .expect("changed");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["model"], "claude-x");
    assert_eq!(v["system"][0]["text"], "be brief");
    assert_eq!(v["messages"][0]["role"], "user");
    assert_eq!(v["stream"], true);

    let anthropic = br#"{"model":"claude-x","max_tokens":9,"stream":true,"system":"be brief","messages":[{"role":"user","content":"hi"}]}"#;
    let back = Cross::between(Wire::Anthropic, Wire::OpenAi);
    let out = rebody(anthropic, "gpt-az", back)
        .expect("ok")
        .expect("changed");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["model"], "gpt-az");
    assert_eq!(v["messages"][0]["role"], "system");
    // The stream's usage chunk is asked for, as the listener does.
    assert_eq!(v["stream_options"]["include_usage"], true);

    // Same API: only the model.
    let same = rebody(openai, "gpt-az", None)
        .expect("ok")
        .expect("changed");
    assert!(String::from_utf8_lossy(&same).contains("\"gpt-az\""));
    assert_eq!(rebody(openai, "gpt-o", None), Ok(None));

    let refused = rebody(b"not json", "claude-x", to).expect_err("refused");
    assert_eq!(refused.status, 502);
    assert!(String::from_utf8_lossy(&refused.body).contains("another API"));
}

#[test]
fn headers_cross_only_between_different_apis() {
    assert!(headers(Wire::OpenAi, Wire::OpenAi).is_empty());
    assert!(headers(Wire::Anthropic, Wire::Anthropic).is_empty());
    assert!(translatable(Endpoint::Messages) && translatable(Endpoint::ChatCompletions));
    assert!(!translatable(Endpoint::CountTokens) && !translatable(Endpoint::Embeddings));
}
