//! The way back from an Anthropic provider: its answer, and its stream
//! event by event, as OpenAI's.

use serde_json::{json, Value};

use crate::json::{str_of, u64_of, Object};
use crate::{sse, Event, Usage};

/// OpenAI's `finish_reason` for Anthropic's `stop_reason`.
pub fn finish_reason(stop_reason: Option<&str>) -> Option<&'static str> {
    Some(match stop_reason? {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and whatever comes next.
        _ => "stop",
    })
}

/// Usage from an Anthropic `usage` object.
pub fn usage_of(u: Option<&Value>) -> Usage {
    let Some(Value::Object(u)) = u else {
        return Usage::default();
    };
    Usage {
        input: u64_of(u, "input_tokens"),
        output: u64_of(u, "output_tokens"),
        cache_read: u64_of(u, "cache_read_input_tokens"),
        cache_creation: u64_of(u, "cache_creation_input_tokens"),
    }
}

/// OpenAI's `usage` object for these counts.
pub fn openai_usage(u: Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens(),
        "completion_tokens": u.output,
        "total_tokens": u.prompt_tokens().saturating_add(u.output),
        "prompt_tokens_details": { "cached_tokens": u.cache_read },
    })
}

/// Translates a Messages answer into a chat completion. `model` is the name
/// the client asked for; `created` the Unix time to stamp. Returns the body
/// and the usage it reported.
pub fn response(body: &[u8], model: &str, created: u64) -> Option<(Vec<u8>, Usage)> {
    let msg: Object = match serde_json::from_slice(body).ok()? {
        Value::Object(m) => m,
        _ => return None,
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in msg
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => calls.push(json!({
                "id": block.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": block.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                },
            })),
            _ => {}
        }
    }
    let usage = usage_of(msg.get("usage"));
    let mut message = Object::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        crate::json::content(text, !calls.is_empty()),
    );
    message.insert("refusal".into(), Value::Null);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    let out = json!({
        "id": str_of(&msg, "id").unwrap_or(""),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(str_of(&msg, "stop_reason")).unwrap_or("stop"),
            "logprobs": null,
        }],
        "usage": openai_usage(usage),
    });
    Some((out.to_string().into_bytes(), usage))
}

/// An Anthropic stream coming back as OpenAI chunks, event by event.
#[derive(Debug, Default)]
pub struct Stream {
    model: String,
    created: u64,
    id: String,
    usage: Usage,
    /// Anthropic content block index -> OpenAI tool call index.
    tool_of_block: Vec<(u64, u64)>,
    tools: u64,
    finish: Option<&'static str>,
    started: bool,
    done: bool,
}

impl Stream {
    pub fn new(model: &str, created: u64) -> Stream {
        Stream {
            model: model.into(),
            created,
            ..Stream::default()
        }
    }

    /// Usage so far: input from `message_start`, output from the last
    /// `message_delta`.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Whether the message has started (`message_start`, which carries the
    /// input counts).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Whether the upstream ended the message (`message_stop`).
    pub fn done(&self) -> bool {
        self.done
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        let c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }],
        });
        sse(out, None, &c.to_string());
    }

    /// Translates one upstream event; returns the bytes to send on.
    pub fn on_event(&mut self, event: Event<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        let Ok(Value::Object(e)) = serde_json::from_str::<Value>(event.data) else {
            return out;
        };
        let kind = str_of(&e, "type").or(event.name).unwrap_or("");
        match kind {
            "message_start" => {
                let msg = e.get("message");
                self.id = msg
                    .and_then(|m| m.get("id"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.usage = usage_of(msg.and_then(|m| m.get("usage")));
                self.started = true;
                self.chunk(
                    &mut out,
                    json!({ "role": "assistant", "content": "" }),
                    None,
                );
            }
            "content_block_start" => {
                let index = u64_of(&e, "index");
                let block = e.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let tool = self.tools;
                        self.tools += 1;
                        self.tool_of_block.push((index, tool));
                        self.chunk(
                            &mut out,
                            json!({ "tool_calls": [{
                                "index": tool,
                                "id": block.get("id").cloned().unwrap_or(Value::Null),
                                "type": "function",
                                "function": { "name": block.get("name").cloned().unwrap_or(Value::Null), "arguments": "" },
                            }]}),
                            None,
                        );
                    }
                    Some("text") => {
                        let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                        if !text.is_empty() {
                            self.chunk(&mut out, json!({ "content": text }), None);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let index = u64_of(&e, "index");
                let delta = e.get("delta").unwrap_or(&Value::Null);
                let field = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or("");
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        self.chunk(&mut out, json!({ "content": field("text") }), None)
                    }
                    Some("thinking_delta") => self.chunk(
                        &mut out,
                        json!({ "reasoning_content": field("thinking") }),
                        None,
                    ),
                    Some("input_json_delta") => {
                        if let Some(&(_, tool)) =
                            self.tool_of_block.iter().find(|(b, _)| *b == index)
                        {
                            self.chunk(
                                &mut out,
                                json!({ "tool_calls": [{ "index": tool, "function": { "arguments": field("partial_json") } }] }),
                                None,
                            );
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                let stop = e
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str);
                self.finish = finish_reason(stop).or(self.finish);
                // A delta without usage changes no count.
                if e.get("usage").is_some_and(Value::is_object) {
                    self.usage.merge_delta(usage_of(e.get("usage")));
                }
            }
            "message_stop" => {
                self.done = true;
                self.chunk(&mut out, json!({}), Some(self.finish.unwrap_or("stop")));
                let usage = json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": openai_usage(self.usage),
                });
                sse(&mut out, None, &usage.to_string());
                sse(&mut out, None, "[DONE]");
            }
            "error" => {
                let err = e.get("error").unwrap_or(&Value::Null);
                let body = crate::errors::openai_from_anthropic_error(err);
                sse(&mut out, None, &body.to_string());
            }
            // ping, content_block_stop, and events not known yet.
            _ => {}
        }
        out
    }
}
