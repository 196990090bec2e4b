//! Golden wire shapes in both directions: requests, answers, every stream
//! event type, errors, and what is refused.

use serde_json::{json, Value};

use crate::{to_anthropic, Event, Usage};

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The events of a translated stream: (event name, data).
fn events(bytes: &[u8]) -> Vec<(Option<String>, String)> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "whole events only: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_string();
                } else {
                    panic!("unexpected line {line:?}");
                }
            }
            (name, data)
        })
        .collect()
}

fn ev<'a>(name: &'a str, data: &'a str) -> Event<'a> {
    Event {
        name: Some(name),
        data,
    }
}

fn data(data: &str) -> Event<'_> {
    Event { name: None, data }
}

// ---------------------------------------------------------------- to Anthropic

#[test]
fn a_chat_request_becomes_a_messages_request() {
    let body = json!({
        "model": "claude",
        "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "developer", "content": [{ "type": "text", "text": "Use tools." }] },
            { "role": "user", "content": [
                { "type": "text", "text": "What is here?" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBOR" } },
                { "type": "image_url", "image_url": { "url": "https://example.com/a.jpg", "detail": "high" } },
            ]},
            { "role": "assistant", "content": "Checking.", "tool_calls": [
                { "id": "call_1", "type": "function", "function": { "name": "look", "arguments": "{\"at\":\"a\"}" } },
                { "id": "call_2", "type": "function", "function": { "name": "look", "arguments": "" } },
            ]},
            { "role": "tool", "tool_call_id": "call_1", "content": "a cat" },
            { "role": "tool", "tool_call_id": "call_2", "content": [{ "type": "text", "text": "a dog" }] },
            { "role": "user", "content": "Thanks" },
        ],
        "max_completion_tokens": 300,
        "stop": "END",
        "temperature": 0.2,
        "top_p": 0.9,
        "stream": true,
        "stream_options": { "include_usage": true },
        "user": "u-42",
        "tools": [{ "type": "function", "function": {
            "name": "look", "description": "Looks.",
            "parameters": { "type": "object", "properties": { "at": { "type": "string" } } },
        }}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "presence_penalty": 0,
        "n": 1,
        "logprobs": false,
    });
    let out = parse(&to_anthropic::request(body.to_string().as_bytes(), "claude-x-1").unwrap());
    assert_eq!(
        out,
        json!({
            "model": "claude-x-1",
            "system": [{ "type": "text", "text": "Be brief." }, { "type": "text", "text": "Use tools." }],
            "messages": [
                { "role": "user", "content": [
                    { "type": "text", "text": "What is here?" },
                    { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "iVBOR" } },
                    { "type": "image", "source": { "type": "url", "url": "https://example.com/a.jpg" } },
                ]},
                { "role": "assistant", "content": [
                    { "type": "text", "text": "Checking." },
                    { "type": "tool_use", "id": "call_1", "name": "look", "input": { "at": "a" } },
                    { "type": "tool_use", "id": "call_2", "name": "look", "input": {} },
                ]},
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "call_1", "content": "a cat" },
                    { "type": "tool_result", "tool_use_id": "call_2", "content": "a dog" },
                    { "type": "text", "text": "Thanks" },
                ]},
            ],
            "max_tokens": 300,
            "stop_sequences": ["END"],
            "temperature": 0.2,
            "top_p": 0.9,
            "stream": true,
            "metadata": { "user_id": "u-42" },
            "tools": [{ "name": "look", "description": "Looks.",
                        "input_schema": { "type": "object", "properties": { "at": { "type": "string" } } } }],
            "tool_choice": { "type": "any", "disable_parallel_tool_use": true },
        })
    );
}

#[test]
fn max_tokens_has_a_default_and_tool_choice_maps_each_form() {
    let out = parse(
        &to_anthropic::request(br#"{"messages":[{"role":"user","content":"hi"}]}"#, "m").unwrap(),
    );
    assert_eq!(out["max_tokens"], json!(to_anthropic::DEFAULT_MAX_TOKENS));
    assert_eq!(
        out["messages"],
        json!([{ "role": "user", "content": [{ "type": "text", "text": "hi" }] }])
    );
    assert!(out.get("system").is_none() && out.get("tool_choice").is_none());
    for (choice, expected) in [
        (json!("auto"), json!({ "type": "auto" })),
        (json!("none"), json!({ "type": "none" })),
        (
            json!({ "type": "function", "function": { "name": "f" } }),
            json!({ "type": "tool", "name": "f" }),
        ),
    ] {
        let body = json!({ "messages": [], "tool_choice": choice, "max_tokens": 5 });
        let out = parse(&to_anthropic::request(body.to_string().as_bytes(), "m").unwrap());
        assert_eq!(out["tool_choice"], expected);
    }
    let body = json!({ "messages": [], "parallel_tool_calls": false });
    let out = parse(&to_anthropic::request(body.to_string().as_bytes(), "m").unwrap());
    assert_eq!(
        out["tool_choice"],
        json!({ "type": "auto", "disable_parallel_tool_use": true })
    );
}

#[test]
fn what_anthropic_cannot_say_is_refused_with_the_field_named() {
    let cases = [
        (json!({ "n": 2 }), "n"),
        (json!({ "logprobs": true }), "logprobs"),
        (json!({ "frequency_penalty": 0.5 }), "frequency_penalty"),
        (json!({ "seed": 7 }), "seed"),
        (json!({ "temperature": 1.5 }), "temperature"),
        (
            json!({ "response_format": { "type": "json_object" } }),
            "response_format",
        ),
        (json!({ "frobnicate": true }), "frobnicate"),
        (json!({ "stop": 5 }), "stop"),
        (
            json!({ "tools": [{ "type": "function", "function": { "name": "f", "strict": true } }] }),
            "tools[0].function.strict",
        ),
        (
            json!({ "tools": [{ "type": "web_search" }] }),
            "tools[0].type",
        ),
        (
            json!({ "messages": [{ "role": "user", "name": "bob", "content": "x" }] }),
            "messages[0].name",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": [{ "type": "input_audio" }] }] }),
            "messages[0].content[0].type",
        ),
        (
            json!({ "messages": [{ "role": "function", "content": "x" }] }),
            "messages[0].role",
        ),
        (
            json!({ "messages": [{ "role": "tool", "content": "x" }] }),
            "messages[0].tool_call_id",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": "x" }, { "role": "assistant", "tool_calls": [
            { "id": "c", "type": "function", "function": { "name": "f", "arguments": "{not json" } }] }] }),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": [{ "type": "image_url", "image_url": { "url": "data:image/png,raw" } }] }] }),
            "messages[0].content[0].image_url.url",
        ),
    ];
    for (body, param) in cases {
        let refusal = to_anthropic::request(body.to_string().as_bytes(), "m").unwrap_err();
        assert_eq!(refusal.param, param, "{body}");
        assert!(!refusal.message.is_empty());
    }
    assert_eq!(to_anthropic::request(b"[1]", "m").unwrap_err().param, "");
    assert_eq!(to_anthropic::request(b"{", "m").unwrap_err().param, "");
}

#[test]
fn an_anthropic_answer_becomes_a_chat_completion_with_exact_usage() {
    let answer = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x-1",
        "content": [
            { "type": "thinking", "thinking": "hmm", "signature": "s" },
            { "type": "text", "text": "Here " },
            { "type": "text", "text": "it is." },
            { "type": "tool_use", "id": "toolu_1", "name": "look", "input": { "at": "b" } },
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": { "input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5 },
    });
    let (body, usage) =
        to_anthropic::response(answer.to_string().as_bytes(), "my-claude", 1_700_000_000).unwrap();
    assert_eq!(
        usage,
        Usage {
            input: 10,
            output: 20,
            cache_read: 100,
            cache_creation: 5
        }
    );
    assert_eq!(
        parse(&body),
        json!({
            "id": "msg_1", "object": "chat.completion", "created": 1_700_000_000u64, "model": "my-claude",
            "choices": [{ "index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {
                "role": "assistant", "content": "Here it is.", "refusal": null, "reasoning_content": "hmm",
                "tool_calls": [{ "id": "toolu_1", "type": "function", "function": { "name": "look", "arguments": "{\"at\":\"b\"}" } }],
            }}],
            "usage": { "prompt_tokens": 115, "completion_tokens": 20, "total_tokens": 135,
                       "prompt_tokens_details": { "cached_tokens": 100 } },
        })
    );
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
    ] {
        let a = json!({ "id": "m", "content": [], "stop_reason": stop, "usage": {} });
        let (b, _) = to_anthropic::response(a.to_string().as_bytes(), "m", 0).unwrap();
        assert_eq!(parse(&b)["choices"][0]["finish_reason"], finish);
    }
    assert!(to_anthropic::response(b"not json", "m", 0).is_none());
}

/// An Anthropic stream with every event type, as the API sends it.
fn anthropic_stream() -> Vec<(&'static str, String)> {
    vec![
        ("message_start", json!({ "type": "message_start", "message": { "id": "msg_s", "type": "message", "role": "assistant",
            "content": [], "model": "claude-x-1", "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": 25, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 0, "output_tokens": 1 } } }).to_string()),
        ("ping", json!({ "type": "ping" }).to_string()),
        ("content_block_start", json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "thinking", "thinking": "" } }).to_string()),
        ("content_block_delta", json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "thinking_delta", "thinking": "Let me see." } }).to_string()),
        ("content_block_delta", json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "signature_delta", "signature": "sig" } }).to_string()),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 0 }).to_string()),
        ("content_block_start", json!({ "type": "content_block_start", "index": 1, "content_block": { "type": "text", "text": "" } }).to_string()),
        ("content_block_delta", json!({ "type": "content_block_delta", "index": 1, "delta": { "type": "text_delta", "text": "Hel" } }).to_string()),
        ("content_block_delta", json!({ "type": "content_block_delta", "index": 1, "delta": { "type": "text_delta", "text": "lo" } }).to_string()),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 1 }).to_string()),
        ("content_block_start", json!({ "type": "content_block_start", "index": 2, "content_block": { "type": "tool_use", "id": "toolu_9", "name": "look", "input": {} } }).to_string()),
        ("content_block_delta", json!({ "type": "content_block_delta", "index": 2, "delta": { "type": "input_json_delta", "partial_json": "{\"at\":" } }).to_string()),
        ("content_block_delta", json!({ "type": "content_block_delta", "index": 2, "delta": { "type": "input_json_delta", "partial_json": "\"c\"}" } }).to_string()),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 2 }).to_string()),
        ("message_delta", json!({ "type": "message_delta", "delta": { "stop_reason": "tool_use", "stop_sequence": null }, "usage": { "output_tokens": 30 } }).to_string()),
        ("message_delta", json!({ "type": "message_delta", "delta": {}, "usage": { "output_tokens": 42 } }).to_string()),
        ("message_stop", json!({ "type": "message_stop" }).to_string()),
    ]
}

#[test]
fn an_anthropic_stream_becomes_chunks_event_by_event_with_exact_usage() {
    let mut stream = to_anthropic::Stream::new("my-claude", 7);
    let mut out = Vec::new();
    for (name, d) in anthropic_stream() {
        let piece = stream.on_event(ev(name, &d));
        // Nothing is held back: each event's translation is whole events.
        let _ = events(&piece);
        out.extend(piece);
    }
    assert!(stream.done());
    assert_eq!(
        stream.usage(),
        Usage {
            input: 25,
            output: 42,
            cache_read: 5,
            cache_creation: 0
        }
    );
    let evs = events(&out);
    assert!(
        evs.iter().all(|(name, _)| name.is_none()),
        "OpenAI chunks carry no event names"
    );
    assert_eq!(evs.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = evs[..evs.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for c in &chunks {
        assert_eq!(c["id"], "msg_s");
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "my-claude");
        assert_eq!(c["created"], 7);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({ "role": "assistant", "content": "" })
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello");
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me see.");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(
        calls[0],
        &json!([{ "index": 0, "id": "toolu_9", "type": "function", "function": { "name": "look", "arguments": "" } }])
    );
    let args: String = calls
        .iter()
        .filter_map(|c| c[0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"at\":\"c\"}");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({ "prompt_tokens": 30, "completion_tokens": 42, "total_tokens": 72,
                                        "prompt_tokens_details": { "cached_tokens": 5 } })
    );
}

#[test]
fn a_cut_anthropic_stream_ends_without_done_and_keeps_the_usage_so_far() {
    let mut stream = to_anthropic::Stream::new("m", 0);
    let mut out = Vec::new();
    for (name, d) in anthropic_stream().into_iter().take(15) {
        out.extend(stream.on_event(ev(name, &d)));
    }
    assert!(!stream.done());
    assert_eq!(stream.usage().output, 30);
    assert!(events(&out).iter().all(|(_, d)| d != "[DONE]"));
}

#[test]
fn an_anthropic_error_event_becomes_an_openai_error_chunk() {
    let mut stream = to_anthropic::Stream::new("m", 0);
    let out = stream.on_event(ev(
        "error",
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ));
    let evs = events(&out);
    assert_eq!(
        parse(evs[0].1.as_bytes()),
        json!({ "error": { "message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded_error" } })
    );
    // Unknown events and junk pass as nothing, not as a failure.
    assert!(stream
        .on_event(ev("future_event", r#"{"type":"future_event"}"#))
        .is_empty());
    assert!(stream.on_event(data("not json")).is_empty());
}

mod from_anthropic_tests;
