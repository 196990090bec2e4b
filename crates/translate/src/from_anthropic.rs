//! An Anthropic-shaped client (`POST /v1/messages`: Claude Code, the
//! Anthropic SDKs) in front of an OpenAI-compatible upstream: the Messages
//! request becomes a Chat Completions request, and the answer (or stream)
//! comes back as a Message (or Messages events).
//!
//! | Anthropic                                 | OpenAI                                  |
//! |-------------------------------------------|-----------------------------------------|
//! | `system` (string or text blocks)          | a first `system` message                |
//! | `text` / `image` blocks                   | `text` / `image_url` parts (data URLs)  |
//! | `tool_use` blocks (assistant)             | `tool_calls`                            |
//! | `tool_result` blocks (user)               | `tool` messages, before the user's text |
//! | `max_tokens`, `stop_sequences`            | `max_tokens`, `stop`                    |
//! | `temperature`, `top_p`, `stream`          | the same (`stream_options.include_usage`)|
//! | `tools` (`input_schema`), `tool_choice`   | function `tools`, `tool_choice`         |
//! | `disable_parallel_tool_use`               | `parallel_tool_calls: false`            |
//! | `metadata.user_id`                        | `user`                                  |
//!
//! Dropped on purpose: `cache_control` on blocks and tools (a caching hint
//! that changes no answer; Claude Code sets it everywhere). Refused with the
//! field named: `top_k`, enabled `thinking`, server tools (web search, code
//! execution, ...), `document` and other non-text non-image blocks,
//! `thinking` blocks in the history, and any field this table does not know.

use serde_json::{json, Value};

use crate::json::{self, str_of, text_of, u64_of, Object};
use crate::to_anthropic::usage_of;
use crate::{sse, Event, Refusal, Usage};

/// Translates a Messages request body into a Chat Completions body for
/// `model` (the upstream's model id).
pub fn request(body: &[u8], model: &str) -> Result<Vec<u8>, Refusal> {
    let req = json::object(body)?;
    let mut out = Object::new();
    out.insert("model".into(), Value::String(model.into()));
    let mut messages: Vec<Value> = Vec::new();
    if let Some(system) = req.get("system").filter(|s| !s.is_null()) {
        let text = text_of(&strip_cache(system), "system")?;
        messages.push(json!({ "role": "system", "content": text }));
    }
    for (field, value) in &req {
        match field.as_str() {
            "model" | "system" => {}
            "messages" => {
                let list = json::list(value, "messages")?;
                for (i, m) in list.iter().enumerate() {
                    turn(i, m, &mut messages)?;
                }
            }
            "max_tokens" => {
                let n = value.as_u64().ok_or_else(|| {
                    Refusal::new("max_tokens", "Must be a positive whole number.")
                })?;
                out.insert("max_tokens".into(), Value::from(n));
            }
            "stop_sequences" => {
                if !value.is_null() {
                    out.insert("stop".into(), value.clone());
                }
            }
            "temperature" | "top_p" => {
                if !value.is_null() {
                    out.insert(field.clone(), value.clone());
                }
            }
            "stream" => {
                if value == &Value::Bool(true) {
                    out.insert("stream".into(), Value::Bool(true));
                    out.insert("stream_options".into(), json!({ "include_usage": true }));
                }
            }
            "metadata" => {
                if let Some(user) = value.get("user_id").and_then(Value::as_str) {
                    out.insert("user".into(), json!(user));
                }
            }
            "tools" => {
                if !value.is_null() {
                    out.insert("tools".into(), Value::Array(tools(value)?));
                }
            }
            "tool_choice" => {
                if !value.is_null() {
                    choice(value, &mut out)?;
                }
            }
            "thinking" => {
                if value.get("type").and_then(Value::as_str) != Some("disabled") && !value.is_null()
                {
                    return Err(Refusal::new(
                        "thinking",
                        "Extended thinking cannot be translated for this model.",
                    ));
                }
            }
            "top_k" | "service_tier" | "container" | "mcp_servers" | "context_management" => {
                if !value.is_null() {
                    return Err(Refusal::new(
                        field.as_str(),
                        format!("`{field}` cannot be translated for this model."),
                    ));
                }
            }
            other => return Err(Refusal::new(other, format!("Unknown field `{other}`."))),
        }
    }
    if !out.contains_key("max_tokens") {
        return Err(Refusal::new("max_tokens", "max_tokens is required."));
    }
    out.insert("messages".into(), Value::Array(messages));
    Ok(Value::Object(out).to_string().into_bytes())
}

/// A copy without `cache_control` keys (one level of blocks).
fn strip_cache(v: &Value) -> Value {
    match v {
        Value::Array(list) => Value::Array(list.iter().map(strip_cache).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| k.as_str() != "cache_control")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        v => v.clone(),
    }
}

fn turn(i: usize, m: &Value, messages: &mut Vec<Value>) -> Result<(), Refusal> {
    let p = format!("messages[{i}]");
    let role = m.get("role").and_then(Value::as_str);
    let content = m.get("content").unwrap_or(&Value::Null);
    let blocks: Vec<Value> = match content {
        Value::String(s) => vec![json!({ "type": "text", "text": s })],
        Value::Array(list) => list.clone(),
        _ => {
            return Err(Refusal::new(
                format!("{p}.content"),
                "Must be a string or a list of blocks.",
            ))
        }
    };
    match role {
        Some("user") => {
            let mut parts = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                let pp = format!("{p}.content[{j}]");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(json!({
                        "type": "text",
                        "text": b.get("text").and_then(Value::as_str).unwrap_or(""),
                    })),
                    Some("image") => parts.push(image(b, &pp)?),
                    Some("tool_result") => {
                        let id = b
                            .get("tool_use_id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| Refusal::new(format!("{pp}.tool_use_id"), "A tool result needs its tool_use_id."))?;
                        let inner = strip_cache(b.get("content").unwrap_or(&Value::Null));
                        let mut text = text_of(&inner, &format!("{pp}.content"))?;
                        if b.get("is_error") == Some(&Value::Bool(true)) {
                            text = format!("Error: {text}");
                        }
                        messages.push(json!({ "role": "tool", "tool_call_id": id, "content": text }));
                    }
                    other => {
                        return Err(Refusal::new(
                            format!("{pp}.type"),
                            format!(
                                "A `{}` block cannot be translated for this model; text, images and tool results can.",
                                other.unwrap_or("untyped")
                            ),
                        ))
                    }
                }
            }
            if !parts.is_empty() {
                messages.push(json!({ "role": "user", "content": parts }));
            }
        }
        Some("assistant") => {
            let mut text = String::new();
            let mut calls = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                let pp = format!("{p}.content[{j}]");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
                    Some("tool_use") => calls.push(json!({
                        "id": b.get("id").cloned().unwrap_or(Value::Null),
                        "type": "function",
                        "function": {
                            "name": b.get("name").cloned().unwrap_or(Value::Null),
                            "arguments": b.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                        },
                    })),
                    other => {
                        return Err(Refusal::new(
                            format!("{pp}.type"),
                            format!(
                                "A `{}` block cannot be translated for this model; text and tool use can.",
                                other.unwrap_or("untyped")
                            ),
                        ))
                    }
                }
            }
            let mut msg = Object::new();
            msg.insert("role".into(), json!("assistant"));
            msg.insert(
                "content".into(),
                crate::json::content(text, !calls.is_empty()),
            );
            if !calls.is_empty() {
                msg.insert("tool_calls".into(), Value::Array(calls));
            }
            messages.push(Value::Object(msg));
        }
        Some(other) => {
            return Err(Refusal::new(
                format!("{p}.role"),
                format!("The role `{other}` is not a Messages role (user or assistant)."),
            ))
        }
        None => return Err(Refusal::new(format!("{p}.role"), "A message needs a role.")),
    }
    Ok(())
}

fn image(b: &Value, p: &str) -> Result<Value, Refusal> {
    let source = b.get("source").unwrap_or(&Value::Null);
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("image/png"),
            source.get("data").and_then(Value::as_str).unwrap_or("")
        ),
        Some("url") => source
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => {
            return Err(Refusal::new(
                format!("{p}.source.type"),
                "An image source must be base64 or url.",
            ))
        }
    };
    Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
}

fn tools(value: &Value) -> Result<Vec<Value>, Refusal> {
    let list = json::list(value, "tools")?;
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let p = format!("tools[{i}]");
            if let Some(kind) = t.get("type").and_then(Value::as_str) {
                if kind != "custom" {
                    return Err(Refusal::new(
                        format!("{p}.type"),
                        format!("The server tool `{kind}` cannot be translated for this model."),
                    ));
                }
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Refusal::new(format!("{p}.name"), "A tool needs a name."))?;
            let mut f = Object::new();
            f.insert("name".into(), json!(name));
            if let Some(d) = t.get("description").filter(|d| !d.is_null()) {
                f.insert("description".into(), d.clone());
            }
            f.insert(
                "parameters".into(),
                t.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
            );
            Ok(json!({ "type": "function", "function": f }))
        })
        .collect()
}

fn choice(value: &Value, out: &mut Object) -> Result<(), Refusal> {
    let choice = match value.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = value
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Refusal::new("tool_choice.name", "Name the tool."))?;
            json!({ "type": "function", "function": { "name": name } })
        }
        _ => {
            return Err(Refusal::new(
                "tool_choice.type",
                "Must be auto, any, tool or none.",
            ))
        }
    };
    out.insert("tool_choice".into(), choice);
    if value.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
        out.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    Ok(())
}

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
                self.usage.merge_delta(usage_of(e.get("usage")));
                self.seen = true;
            }
            _ => {}
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.seen.then_some(self.usage)
    }
}
