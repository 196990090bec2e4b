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

use crate::json::{self, text_of, Object};
use crate::Refusal;

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

mod answer;
pub use answer::*;
