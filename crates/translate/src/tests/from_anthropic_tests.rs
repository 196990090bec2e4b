//! The Anthropic client's direction, and errors.

use serde_json::{json, Value};

use super::{anthropic_stream, data, ev, events, parse};
use crate::{errors, from_anthropic, to_anthropic, Usage};

// -------------------------------------------------------------- from Anthropic

#[test]
fn a_messages_request_becomes_a_chat_request() {
    let body = json!({
        "model": "claude-sonnet",
        "max_tokens": 1024,
        "system": [{ "type": "text", "text": "You are Claude Code.", "cache_control": { "type": "ephemeral" } }],
        "messages": [
            { "role": "user", "content": [
                { "type": "text", "text": "Look at this", "cache_control": { "type": "ephemeral" } },
                { "type": "image", "source": { "type": "base64", "media_type": "image/jpeg", "data": "/9j/" } },
            ]},
            { "role": "assistant", "content": [
                { "type": "text", "text": "Let me look." },
                { "type": "tool_use", "id": "toolu_1", "name": "read", "input": { "path": "a.rs" } },
            ]},
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_1", "content": [{ "type": "text", "text": "fn main() {}" }] },
                { "type": "tool_result", "tool_use_id": "toolu_2", "content": "denied", "is_error": true },
                { "type": "text", "text": "Go on" },
            ]},
            { "role": "user", "content": "plain" },
        ],
        "stop_sequences": ["STOP"],
        "temperature": 0.5,
        "top_p": 1,
        "stream": true,
        "metadata": { "user_id": "dev-1" },
        "tools": [{ "name": "read", "description": "Reads a file.", "input_schema": { "type": "object" },
                    "cache_control": { "type": "ephemeral" } }],
        "tool_choice": { "type": "any", "disable_parallel_tool_use": true },
        "thinking": { "type": "disabled" },
    });
    let out = parse(&from_anthropic::request(body.to_string().as_bytes(), "gpt-x").unwrap());
    assert_eq!(
        out,
        json!({
            "model": "gpt-x",
            "max_tokens": 1024,
            "messages": [
                { "role": "system", "content": "You are Claude Code." },
                { "role": "user", "content": [
                    { "type": "text", "text": "Look at this" },
                    { "type": "image_url", "image_url": { "url": "data:image/jpeg;base64,/9j/" } },
                ]},
                { "role": "assistant", "content": "Let me look.", "tool_calls": [
                    { "id": "toolu_1", "type": "function", "function": { "name": "read", "arguments": "{\"path\":\"a.rs\"}" } },
                ]},
                { "role": "tool", "tool_call_id": "toolu_1", "content": "fn main() {}" },
                { "role": "tool", "tool_call_id": "toolu_2", "content": "Error: denied" },
                { "role": "user", "content": [{ "type": "text", "text": "Go on" }] },
                { "role": "user", "content": [{ "type": "text", "text": "plain" }] },
            ],
            "stop": ["STOP"],
            "temperature": 0.5,
            "top_p": 1,
            "stream": true,
            "stream_options": { "include_usage": true },
            "user": "dev-1",
            "tools": [{ "type": "function", "function": { "name": "read", "description": "Reads a file.",
                                                          "parameters": { "type": "object" } } }],
            "tool_choice": "required",
            "parallel_tool_calls": false,
        })
    );
}

#[test]
fn what_openai_cannot_say_is_refused_with_the_field_named() {
    let base = || json!({ "max_tokens": 10, "messages": [] });
    let with = |k: &str, v: Value| {
        let mut b = base();
        b[k] = v;
        b
    };
    let cases = [
        (with("top_k", json!(5)), "top_k"),
        (
            with(
                "thinking",
                json!({ "type": "enabled", "budget_tokens": 1000 }),
            ),
            "thinking",
        ),
        (
            with(
                "tools",
                json!([{ "type": "web_search_20250305", "name": "web_search" }]),
            ),
            "tools[0].type",
        ),
        (
            with("tool_choice", json!({ "type": "sometimes" })),
            "tool_choice.type",
        ),
        (
            with(
                "messages",
                json!([{ "role": "user", "content": [{ "type": "document", "source": {} }] }]),
            ),
            "messages[0].content[0].type",
        ),
        (
            with(
                "messages",
                json!([{ "role": "assistant", "content": [{ "type": "thinking", "thinking": "x" }] }]),
            ),
            "messages[0].content[0].type",
        ),
        (
            with("messages", json!([{ "role": "system", "content": "x" }])),
            "messages[0].role",
        ),
        (
            with(
                "messages",
                json!([{ "role": "user", "content": [{ "type": "image", "source": { "type": "file" } }] }]),
            ),
            "messages[0].content[0].source.type",
        ),
        (with("surprise", json!(1)), "surprise"),
        (json!({ "messages": [] }), "max_tokens"),
    ];
    for (body, param) in cases {
        let refusal = from_anthropic::request(body.to_string().as_bytes(), "m").unwrap_err();
        assert_eq!(refusal.param, param, "{body}");
    }
}

#[test]
fn a_chat_completion_becomes_a_message_with_exact_usage() {
    let completion = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
        "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Reading.",
            "tool_calls": [
                { "id": "call_a", "type": "function", "function": { "name": "read", "arguments": "{\"path\":\"b\"}" } },
                { "id": "call_b", "type": "function", "function": { "name": "read", "arguments": "oops" } },
            ],
        }}],
        "usage": { "prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128, "prompt_tokens_details": { "cached_tokens": 100 } },
    });
    let (body, usage) =
        from_anthropic::response(completion.to_string().as_bytes(), "claude-sonnet").unwrap();
    assert_eq!(
        usage,
        Usage {
            input: 20,
            output: 8,
            cache_read: 100,
            cache_creation: 0
        }
    );
    assert_eq!(
        parse(&body),
        json!({
            "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "claude-sonnet",
            "content": [
                { "type": "text", "text": "Reading." },
                { "type": "tool_use", "id": "call_a", "name": "read", "input": { "path": "b" } },
                { "type": "tool_use", "id": "call_b", "name": "read", "input": { "arguments": "oops" } },
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": { "input_tokens": 20, "output_tokens": 8, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0 },
        })
    );
}

fn chunk(delta: Value, finish: Value) -> String {
    json!({ "id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    .to_string()
}

#[test]
fn an_openai_stream_becomes_messages_events_with_exact_usage() {
    let upstream = [
        chunk(json!({ "role": "assistant", "content": "" }), Value::Null),
        chunk(json!({ "content": "Hel" }), Value::Null),
        chunk(json!({ "content": "lo" }), Value::Null),
        chunk(json!({ "tool_calls": [{ "index": 0, "id": "call_1", "type": "function", "function": { "name": "read", "arguments": "" } }] }), Value::Null),
        chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"path\":" } }] }), Value::Null),
        chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "\"x\"}" } }] }), Value::Null),
        chunk(json!({ "tool_calls": [{ "index": 1, "id": "call_2", "type": "function", "function": { "name": "ls", "arguments": "{}" } }] }), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        json!({ "id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x", "choices": [],
                "usage": { "prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62, "prompt_tokens_details": { "cached_tokens": 10 } } }).to_string(),
        "[DONE]".to_string(),
    ];
    let mut stream = from_anthropic::Stream::new("claude-sonnet");
    let mut out = Vec::new();
    for d in &upstream {
        out.extend(stream.on_event(data(d)));
    }
    assert!(stream.done());
    assert_eq!(
        stream.usage(),
        Some(Usage {
            input: 40,
            output: 12,
            cache_read: 10,
            cache_creation: 0
        })
    );
    let evs = events(&out);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let datas: Vec<Value> = evs
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for (name, d) in names.iter().zip(&datas) {
        assert_eq!(d["type"], *name, "each event's data names its type");
    }
    assert_eq!(datas[0]["message"]["id"], "chatcmpl-s");
    assert_eq!(datas[0]["message"]["model"], "claude-sonnet");
    assert_eq!(
        datas[1]["content_block"],
        json!({ "type": "text", "text": "" })
    );
    assert_eq!(
        datas[2]["delta"],
        json!({ "type": "text_delta", "text": "Hel" })
    );
    assert_eq!(
        datas[5],
        json!({ "type": "content_block_start", "index": 1,
        "content_block": { "type": "tool_use", "id": "call_1", "name": "read", "input": {} } })
    );
    let args: String = [&datas[6], &datas[7]]
        .iter()
        .map(|d| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(args, "{\"path\":\"x\"}");
    assert_eq!(datas[9]["content_block"]["id"], "call_2");
    assert_eq!(datas[9]["index"], 2);
    assert_eq!(datas[12]["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        datas[12]["usage"],
        json!({ "input_tokens": 40, "output_tokens": 12,
        "cache_read_input_tokens": 10, "cache_creation_input_tokens": 0 })
    );
    // Once done, a stray second [DONE] adds nothing.
    assert!(stream.on_event(data("[DONE]")).is_empty());
}

#[test]
fn a_cut_openai_stream_sends_no_message_stop_and_reports_no_usage() {
    let mut stream = from_anthropic::Stream::new("m");
    let mut out = stream.on_event(data(&chunk(json!({ "content": "Hi" }), Value::Null)));
    out.extend(stream.on_event(data(r#"{"error":{"message":"upstream died"}}"#)));
    assert!(!stream.done() && stream.usage().is_none());
    let names: Vec<String> = events(&out).into_iter().map(|(n, _)| n.unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "error"
        ]
    );
}

#[test]
fn an_anthropic_stream_passed_through_is_metered_from_start_and_last_delta() {
    let mut observer = from_anthropic::Observer::default();
    assert_eq!(observer.usage(), None);
    for (name, d) in anthropic_stream() {
        observer.observe(ev(name, &d));
    }
    let whole = Some(Usage {
        input: 25,
        output: 42,
        cache_read: 5,
        cache_creation: 0,
    });
    assert_eq!(observer.usage(), whole);
    // A delta without usage changes no count.
    observer.observe(ev(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#,
    ));
    assert_eq!(observer.usage(), whole);
}

// --------------------------------------------------------------------- errors

#[test]
fn errors_take_the_callers_shape() {
    assert_eq!(
        errors::anthropic_from_openai(
            429,
            br#"{"error":{"message":"Slow down.","type":"rate_limit_error"}}"#
        ),
        json!({ "type": "error", "error": { "type": "rate_limit_error", "message": "Slow down." } })
    );
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (529, "overloaded_error"),
    ] {
        assert_eq!(errors::anthropic_type(status), kind, "{status}");
    }
    assert_eq!(
        errors::openai_from_anthropic(400, br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}}"#),
        json!({ "error": { "message": "max_tokens: required", "type": "invalid_request_error", "param": null, "code": "invalid_request_error" } })
    );
    assert_eq!(
        errors::openai_from_anthropic(502, b"<html>bad gateway</html>"),
        json!({ "error": { "message": "<html>bad gateway</html>", "type": "server_error", "param": null, "code": null } })
    );
}

#[test]
fn a_chat_request_survives_the_round_trip_through_messages() {
    let original = json!({
        "model": "m",
        "max_tokens": 50,
        "messages": [
            { "role": "system", "content": "sys" },
            { "role": "user", "content": [{ "type": "text", "text": "hi" }] },
            { "role": "assistant", "content": null, "tool_calls": [
                { "id": "c1", "type": "function", "function": { "name": "f", "arguments": "{\"a\":1}" } }] },
            { "role": "tool", "tool_call_id": "c1", "content": "done" },
        ],
        "stop": ["x"],
        "tools": [{ "type": "function", "function": { "name": "f", "parameters": { "type": "object" } } }],
        "tool_choice": "auto",
    });
    let messages = to_anthropic::request(original.to_string().as_bytes(), "m").unwrap();
    let back = parse(&from_anthropic::request(&messages, "m").unwrap());
    assert_eq!(back, original);
}
