//! The way back from an OpenAI-shaped provider to an Anthropic client: the
//! chat completion and its chunks as a Message and its events; and the
//! usage of an Anthropic stream passed through.

use serde_json::{json, Value};

use crate::json::{str_of, u64_of, Object};
use crate::to_anthropic::usage_of;
use crate::{sse, Event, Usage};

/// Anthropic's `stop_reason` for OpenAI's `finish_reason`.
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Usage from an OpenAI `usage` object.
pub fn usage_of_openai(u: Option<&Value>) -> Usage {
    let Some(Value::Object(u)) = u else {
        return Usage::default();
    };
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let prompt = u64_of(u, "prompt_tokens");
    Usage {
        input: prompt.saturating_sub(cached),
        output: u64_of(u, "completion_tokens"),
        cache_read: cached,
        cache_creation: 0,
    }
}

fn anthropic_usage(u: Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "output_tokens": u.output,
        "cache_read_input_tokens": u.cache_read,
        "cache_creation_input_tokens": u.cache_creation,
    })
}

/// Translates a chat completion into a Message. `model` is the name the
/// client asked for. Returns the body and the usage it reported.
pub fn response(body: &[u8], model: &str) -> Option<(Vec<u8>, Usage)> {
    let c: Object = match serde_json::from_slice(body).ok()? {
        Value::Object(m) => m,
        _ => return None,
    };
    let choice = c
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
        .cloned()
        .unwrap_or(Value::Null);
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    if let Some(text) = message.get("content").and_then(Value::as_str) {
        if !text.is_empty() {
            content.push(json!({ "type": "text", "text": text }));
        }
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = call.get("function").unwrap_or(&Value::Null);
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or(Value::Null),
            "name": f.get("name").cloned().unwrap_or(Value::Null),
            "input": tool_input(f.get("arguments").and_then(Value::as_str).unwrap_or("")),
        }));
    }
    let usage = usage_of_openai(c.get("usage"));
    let out = json!({
        "id": str_of(&c, "id").unwrap_or(""),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": anthropic_usage(usage),
    });
    Some((out.to_string().into_bytes(), usage))
}

/// Tool arguments as an object: an upstream that sent something that does
/// not parse has it kept whole under `arguments` rather than lost.
fn tool_input(args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "arguments": args }),
    }
}

/// What block is open in the translated stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text(u64),
    /// A tool_use block and the OpenAI tool call index it carries.
    Tool(u64, u64),
}

/// An OpenAI stream coming back as Messages events, chunk by chunk.
#[derive(Debug)]
pub struct Stream {
    model: String,
    started: bool,
    open: Open,
    next_block: u64,
    finish: Option<String>,
    usage: Usage,
    reported: bool,
    done: bool,
}

impl Stream {
    pub fn new(model: &str) -> Stream {
        Stream {
            model: model.into(),
            started: false,
            open: Open::None,
            next_block: 0,
            finish: None,
            usage: Usage::default(),
            reported: false,
            done: false,
        }
    }

    /// The usage the upstream reported (its final usage chunk).
    pub fn usage(&self) -> Option<Usage> {
        self.reported.then_some(self.usage)
    }

    /// Whether the upstream finished the stream (`[DONE]`).
    pub fn done(&self) -> bool {
        self.done
    }

    fn event(out: &mut Vec<u8>, name: &str, data: Value) {
        sse(out, Some(name), &data.to_string());
    }

    fn start(&mut self, out: &mut Vec<u8>, id: &str) {
        if self.started {
            return;
        }
        self.started = true;
        Stream::event(
            out,
            "message_start",
            json!({ "type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": 0, "output_tokens": 0 },
            }}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Open::Text(i) | Open::Tool(i, _) = self.open {
            Stream::event(
                out,
                "content_block_stop",
                json!({ "type": "content_block_stop", "index": i }),
            );
        }
        self.open = Open::None;
    }

    /// Translates one upstream event; returns the bytes to send on.
    pub fn on_event(&mut self, event: Event<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finish_message(&mut out);
            return out;
        }
        let Ok(Value::Object(c)) = serde_json::from_str::<Value>(data) else {
            return out;
        };
        if let Some(err) = c.get("error") {
            let message = err.get("message").and_then(Value::as_str).unwrap_or("");
            Stream::event(
                &mut out,
                "error",
                json!({ "type": "error", "error": { "type": "api_error", "message": message } }),
            );
            return out;
        }
        self.start(&mut out, str_of(&c, "id").unwrap_or(""));
        if c.get("usage").is_some_and(Value::is_object) {
            self.usage = usage_of_openai(c.get("usage"));
            self.reported = true;
        }
        let Some(choice) = c
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|l| l.first())
        else {
            return out;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            if !text.is_empty() {
                if !matches!(self.open, Open::Text(_)) {
                    self.close(&mut out);
                    let i = self.next_block;
                    self.next_block += 1;
                    self.open = Open::Text(i);
                    Stream::event(
                        &mut out,
                        "content_block_start",
                        json!({ "type": "content_block_start", "index": i, "content_block": { "type": "text", "text": "" } }),
                    );
                }
                if let Open::Text(i) = self.open {
                    Stream::event(
                        &mut out,
                        "content_block_delta",
                        json!({ "type": "content_block_delta", "index": i, "delta": { "type": "text_delta", "text": text } }),
                    );
                }
            }
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let tool = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let f = call.get("function").unwrap_or(&Value::Null);
            let same = matches!(self.open, Open::Tool(_, t) if t == tool);
            if !same {
                self.close(&mut out);
                let i = self.next_block;
                self.next_block += 1;
                self.open = Open::Tool(i, tool);
                Stream::event(
                    &mut out,
                    "content_block_start",
                    json!({ "type": "content_block_start", "index": i, "content_block": {
                        "type": "tool_use",
                        "id": call.get("id").cloned().unwrap_or(Value::Null),
                        "name": f.get("name").cloned().unwrap_or(Value::Null),
                        "input": {},
                    }}),
                );
            }
            if let (Open::Tool(i, _), Some(args)) =
                (self.open, f.get("arguments").and_then(Value::as_str))
            {
                if !args.is_empty() {
                    Stream::event(
                        &mut out,
                        "content_block_delta",
                        json!({ "type": "content_block_delta", "index": i, "delta": { "type": "input_json_delta", "partial_json": args } }),
                    );
                }
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
            self.close(&mut out);
        }
        out
    }

    /// The upstream's `[DONE]`: the closing events, with the usage.
    fn finish_message(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.done = true;
        self.start(out, "");
        self.close(out);
        let usage = anthropic_usage(self.usage);
        Stream::event(
            out,
            "message_delta",
            json!({ "type": "message_delta",
                "delta": { "stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null },
                "usage": usage }),
        );
        Stream::event(out, "message_stop", json!({ "type": "message_stop" }));
    }
}

/// Usage of an Anthropic stream observed as it passes (a Messages client on
/// an Anthropic upstream): input from `message_start`, output from the last
/// `message_delta`.
#[derive(Debug, Default)]
pub struct Observer {
    usage: Usage,
    seen: bool,
}

impl Observer {
    pub fn observe(&mut self, event: Event<'_>) {
        let Ok(Value::Object(e)) = serde_json::from_str::<Value>(event.data) else {
            return;
        };
        match str_of(&e, "type").or(event.name) {
            Some("message_start") => {
                self.usage = usage_of(e.get("message").and_then(|m| m.get("usage")));
                self.seen = true;
            }
            Some("message_delta") => {
                // A delta without usage changes no count.
                if e.get("usage").is_some_and(Value::is_object) {
                    self.usage.merge_delta(usage_of(e.get("usage")));
                }
                self.seen = true;
            }
            _ => {}
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.seen.then_some(self.usage)
    }
}
