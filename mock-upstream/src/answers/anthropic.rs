//! Anthropic's Messages API as the mock serves it (`POST /v1/messages`), and
//! tool calls in both APIs (`x-mock-tool: <name>` answers with a call to that
//! tool, arguments `{"q":"mock"}`). Usage is Anthropic's: `input_tokens`
//! without the cached part, `cache_read_input_tokens` from
//! `x-mock-cache-read`, output in the last `message_delta`.

use serde_json::{json, Value};

use super::{output_text, piece, Meta};
use crate::sse::{ev, SseEv};

/// The tool call's arguments, whole and in the two pieces a stream sends.
pub const TOOL_ARGS: &str = r#"{"q":"mock"}"#;
const TOOL_ARG_PIECES: [&str; 2] = [r#"{"q":"#, r#""mock"}"#];
/// Output tokens of a tool call.
pub const TOOL_TOKENS: usize = 3;

fn usage(m: &Meta, output: usize) -> Value {
    json!({
        "input_tokens": m.prompt_tokens.saturating_sub(m.cache_read),
        "output_tokens": output,
        "cache_read_input_tokens": m.cache_read,
        "cache_creation_input_tokens": 0,
    })
}

fn message(m: &Meta, content: Value, stop: Value, usage: Value) -> Value {
    json!({
        "id": format!("msg_mock_{}", m.n), "type": "message", "role": "assistant",
        "model": m.model, "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": usage,
    })
}

pub fn answer(m: &Meta) -> Value {
    match &m.tool {
        Some(name) => message(
            m,
            json!([{"type": "tool_use", "id": format!("toolu_mock_{}", m.n), "name": name,
                    "input": {"q": "mock"}}]),
            json!("tool_use"),
            usage(m, TOOL_TOKENS),
        ),
        None => message(
            m,
            json!([{"type": "text", "text": output_text(m.words)}]),
            json!("end_turn"),
            usage(m, m.words),
        ),
    }
}

fn named(name: &'static str, data: Value, words: usize) -> SseEv {
    SseEv {
        name: Some(name),
        data: data.to_string(),
        words,
    }
}

pub fn stream(m: &Meta) -> Vec<SseEv> {
    let start = message(m, json!([]), Value::Null, usage(m, 1));
    let mut events = vec![
        named(
            "message_start",
            json!({"type": "message_start", "message": start}),
            0,
        ),
        named("ping", json!({"type": "ping"}), 0),
    ];
    let (block, deltas, stop, output): (Value, Vec<Value>, &str, usize) = match &m.tool {
        Some(name) => (
            json!({"type": "tool_use", "id": format!("toolu_mock_{}", m.n), "name": name, "input": {}}),
            TOOL_ARG_PIECES
                .iter()
                .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                .collect(),
            "tool_use",
            TOOL_TOKENS,
        ),
        None => (
            json!({"type": "text", "text": ""}),
            (0..m.words)
                .map(|i| json!({"type": "text_delta", "text": piece(i)}))
                .collect(),
            "end_turn",
            m.words,
        ),
    };
    events.push(named(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": block}),
        0,
    ));
    for (i, delta) in deltas.into_iter().enumerate() {
        let words = if m.tool.is_some() { 0 } else { i + 1 };
        events.push(named(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            words,
        ));
    }
    events.push(named(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
        output,
    ));
    events.push(named(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": output}}),
        output,
    ));
    events.push(named(
        "message_stop",
        json!({"type": "message_stop"}),
        output,
    ));
    events
}

/// A chat completion that calls the tool.
pub fn chat_tool_answer(m: &Meta) -> Value {
    let call = json!({"id": format!("call_mock_{}", m.n), "type": "function",
                      "function": {"name": m.tool, "arguments": TOOL_ARGS}});
    json!({
        "id": format!("chatcmpl-mock-{}", m.n), "object": "chat.completion", "created": m.created,
        "model": m.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [call]},
                     "logprobs": null, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": m.prompt_tokens, "completion_tokens": TOOL_TOKENS,
                  "total_tokens": m.prompt_tokens + TOOL_TOKENS},
    })
}

/// A chat stream that calls the tool.
pub fn chat_tool_stream(m: &Meta) -> Vec<SseEv> {
    let id = format!("chatcmpl-mock-{}", m.n);
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": m.created, "model": m.model,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let mut events = vec![ev(
        chunk(json!({"role": "assistant", "content": null}), Value::Null),
        0,
    )];
    events.push(ev(
        chunk(
            json!({"tool_calls": [{"index": 0, "id": format!("call_mock_{}", m.n), "type": "function",
                                   "function": {"name": m.tool, "arguments": ""}}]}),
            Value::Null,
        ),
        0,
    ));
    for p in TOOL_ARG_PIECES {
        events.push(ev(
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                Value::Null,
            ),
            0,
        ));
    }
    events.push(ev(chunk(json!({}), json!("tool_calls")), TOOL_TOKENS));
    if m.include_usage && !m.no_usage {
        let usage = json!({"prompt_tokens": m.prompt_tokens, "completion_tokens": TOOL_TOKENS,
                           "total_tokens": m.prompt_tokens + TOOL_TOKENS});
        events.push(ev(
            json!({"id": id, "object": "chat.completion.chunk", "created": m.created, "model": m.model,
                   "choices": [], "usage": usage}),
            TOOL_TOKENS,
        ));
    }
    events.push(ev("[DONE]", TOOL_TOKENS));
    events
}

/// An OpenAI-shaped error body as Anthropic sends its errors.
pub fn error_body(status: u16, openai: &Value) -> Value {
    let message = openai
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("mock error");
    let kind = match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
