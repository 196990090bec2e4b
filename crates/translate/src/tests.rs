//! Golden wire shapes in both directions: requests, answers, every stream
//! event type, errors, and what is refused.

use serde_json::{json, Value};

use crate::{errors, from_anthropic, to_anthropic, Event, Usage};

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
    assert_eq!(
        observer.usage(),
        Some(Usage {
            input: 25,
            output: 42,
            cache_read: 5,
            cache_creation: 0
        })
    );
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
