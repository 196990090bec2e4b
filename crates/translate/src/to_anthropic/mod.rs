//! An OpenAI-shaped client in front of an Anthropic upstream: the Chat
//! Completions request becomes a Messages request, and the Messages answer
//! (or stream) comes back as a chat completion (or chunks).
//!
//! | OpenAI                                    | Anthropic                              |
//! |-------------------------------------------|----------------------------------------|
//! | `system` / `developer` messages           | `system` (text blocks, in order)       |
//! | `user` text and `image_url` parts         | `text` and `image` blocks (base64/url) |
//! | `assistant` content and `tool_calls`      | `text` and `tool_use` blocks           |
//! | `tool` messages                           | `tool_result` blocks in a user turn    |
//! | `max_tokens` / `max_completion_tokens`    | `max_tokens` (a default when absent)   |
//! | `stop` (string or list)                   | `stop_sequences`                       |
//! | `temperature` (0-1), `top_p`, `stream`    | the same                               |
//! | `tools` (functions), `tool_choice`        | `tools` (`input_schema`), `tool_choice`|
//! | `parallel_tool_calls: false`              | `disable_parallel_tool_use`            |
//! | `user`                                    | `metadata.user_id`                     |
//!
//! Refused with the field named: `n` > 1, `logprobs`, penalties, `seed`,
//! `logit_bias`, JSON `response_format`, `audio`, `function_call`, message
//! `name`, non-text non-image parts, temperature above 1 (Anthropic's range
//! is 0-1), and any field this table does not know.

use serde_json::{json, Value};

use crate::json::{self, is_default, str_of, text_of, Object};
use crate::Refusal;

/// `max_tokens` when the client set none: Anthropic requires one.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Fields a chat request may carry that have no Anthropic counterpart but
/// are harmless at their neutral values.
const NEUTRAL: &[(&str, &[Value])] = &[
    ("n", &[]),
    ("logprobs", &[Value::Bool(false)]),
    ("top_logprobs", &[]),
    ("presence_penalty", &[]),
    ("frequency_penalty", &[]),
    ("seed", &[]),
    ("logit_bias", &[]),
    ("store", &[Value::Bool(false)]),
    ("metadata", &[]),
    ("service_tier", &[]),
    ("prediction", &[]),
    ("audio", &[]),
    ("modalities", &[]),
    ("reasoning_effort", &[]),
    ("function_call", &[]),
    ("functions", &[]),
    ("web_search_options", &[]),
];

/// Translates a Chat Completions request body into a Messages body for
/// `model` (the upstream's model id).
pub fn request(body: &[u8], model: &str) -> Result<Vec<u8>, Refusal> {
    let req = json::object(body)?;
    let mut out = Object::new();
    out.insert("model".into(), Value::String(model.into()));
    let mut system: Vec<Value> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let mut tool_choice: Option<Object> = None;
    let mut disable_parallel = false;
    for (field, value) in &req {
        match field.as_str() {
            "model" | "stream_options" => {}
            "messages" => {
                let list = json::list(value, "messages")?;
                for (i, m) in list.iter().enumerate() {
                    message(i, m, &mut system, &mut messages)?;
                }
            }
            "max_tokens" | "max_completion_tokens" => {
                if !value.is_null() {
                    let n = value.as_u64().ok_or_else(|| {
                        Refusal::new(field.as_str(), "Must be a positive whole number.")
                    })?;
                    out.insert("max_tokens".into(), Value::from(n));
                }
            }
            "stop" => match value {
                Value::Null => {}
                Value::String(s) => {
                    out.insert("stop_sequences".into(), json!([s]));
                }
                Value::Array(list) if list.iter().all(Value::is_string) => {
                    out.insert("stop_sequences".into(), value.clone());
                }
                _ => {
                    return Err(Refusal::new(
                        "stop",
                        "Must be a string or a list of strings.",
                    ))
                }
            },
            "temperature" => {
                if let Some(t) = value.as_f64() {
                    if !(0.0..=1.0).contains(&t) {
                        return Err(Refusal::new(
                            "temperature",
                            "This model takes a temperature from 0 to 1.",
                        ));
                    }
                    out.insert("temperature".into(), value.clone());
                } else if !value.is_null() {
                    return Err(Refusal::new("temperature", "Must be a number."));
                }
            }
            "top_p" | "stream" => {
                if !value.is_null() {
                    out.insert(field.clone(), value.clone());
                }
            }
            "user" => {
                if let Some(u) = value.as_str() {
                    out.insert("metadata".into(), json!({ "user_id": u }));
                }
            }
            "tools" => {
                if !value.is_null() {
                    out.insert("tools".into(), Value::Array(tools(value)?));
                }
            }
            "tool_choice" => tool_choice = choice(value)?,
            "parallel_tool_calls" => disable_parallel = value == &Value::Bool(false),
            "response_format" => {
                let kind = value.get("type").and_then(Value::as_str);
                if !(value.is_null() || kind == Some("text")) {
                    return Err(Refusal::new(
                        "response_format",
                        "JSON output formats cannot be translated for this model.",
                    ));
                }
            }
            "n" if value.as_u64() == Some(1) => {}
            other => match NEUTRAL.iter().find(|(name, _)| *name == other) {
                Some((_, neutral)) if is_default(value, neutral) => {}
                Some(_) => {
                    return Err(Refusal::new(
                        other,
                        format!("`{other}` cannot be translated for this model."),
                    ))
                }
                None => {
                    return Err(Refusal::new(other, format!("Unknown field `{other}`.")));
                }
            },
        }
    }
    if !out.contains_key("max_tokens") {
        out.insert("max_tokens".into(), Value::from(DEFAULT_MAX_TOKENS));
    }
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(messages));
    if disable_parallel {
        tool_choice
            .get_or_insert_with(|| {
                let mut auto = Object::new();
                auto.insert("type".into(), json!("auto"));
                auto
            })
            .insert("disable_parallel_tool_use".into(), Value::Bool(true));
    }
    if let Some(choice) = tool_choice {
        out.insert("tool_choice".into(), Value::Object(choice));
    }
    Ok(Value::Object(out).to_string().into_bytes())
}

/// Appends message `i` to the system blocks or to the turns, merging a turn
/// into the previous one of the same role (Anthropic alternates roles, and
/// tool results go in the user turn after the tool calls).
fn message(
    i: usize,
    m: &Value,
    system: &mut Vec<Value>,
    messages: &mut Vec<Value>,
) -> Result<(), Refusal> {
    let p = format!("messages[{i}]");
    let m = m
        .as_object()
        .ok_or_else(|| Refusal::new(p.as_str(), "Must be a message object."))?;
    for key in m.keys() {
        if !matches!(
            key.as_str(),
            "role" | "content" | "tool_calls" | "tool_call_id" | "refusal"
        ) {
            return Err(Refusal::new(
                format!("{p}.{key}"),
                format!("`{key}` on a message cannot be translated for this model."),
            ));
        }
    }
    let content = m.get("content").unwrap_or(&Value::Null);
    let (role, blocks) = match str_of(m, "role") {
        Some("system") | Some("developer") => {
            let text = text_of(content, &format!("{p}.content"))?;
            system.push(json!({ "type": "text", "text": text }));
            return Ok(());
        }
        Some("user") => ("user", user_blocks(content, &p)?),
        Some("assistant") => ("assistant", assistant_blocks(m, &p)?),
        Some("tool") => {
            let id = str_of(m, "tool_call_id").ok_or_else(|| {
                Refusal::new(
                    format!("{p}.tool_call_id"),
                    "A tool message needs its tool_call_id.",
                )
            })?;
            let text = text_of(content, &format!("{p}.content"))?;
            (
                "user",
                vec![json!({ "type": "tool_result", "tool_use_id": id, "content": text })],
            )
        }
        Some(other) => {
            return Err(Refusal::new(
                format!("{p}.role"),
                format!("The role `{other}` cannot be translated for this model."),
            ))
        }
        None => return Err(Refusal::new(format!("{p}.role"), "A message needs a role.")),
    };
    if blocks.is_empty() {
        return Ok(());
    }
    if let Some(last) = messages.last_mut() {
        if last.get("role").and_then(Value::as_str) == Some(role) {
            if let Some(Value::Array(existing)) = last.get_mut("content") {
                existing.extend(blocks);
                return Ok(());
            }
        }
    }
    messages.push(json!({ "role": role, "content": blocks }));
    Ok(())
}

fn user_blocks(content: &Value, p: &str) -> Result<Vec<Value>, Refusal> {
    match content {
        Value::String(s) => Ok(vec![json!({ "type": "text", "text": s })]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| {
                let pp = format!("{p}.content[{j}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => Ok(json!({
                        "type": "text",
                        "text": part.get("text").and_then(Value::as_str).unwrap_or(""),
                    })),
                    Some("image_url") => {
                        let url = part
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                Refusal::new(
                                    format!("{pp}.image_url.url"),
                                    "An image part needs a url.",
                                )
                            })?;
                        Ok(image(url, &pp)?)
                    }
                    other => Err(Refusal::new(
                        format!("{pp}.type"),
                        format!(
                            "A `{}` part cannot be translated for this model; text and images can.",
                            other.unwrap_or("untyped")
                        ),
                    )),
                }
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(Refusal::new(
            format!("{p}.content"),
            "Must be a string or a list of parts.",
        )),
    }
}

/// An image from an `https:` URL or a `data:` URL.
fn image(url: &str, p: &str) -> Result<Value, Refusal> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            Refusal::new(format!("{p}.image_url.url"), "A data URL needs a comma.")
        })?;
        let media_type = meta.strip_suffix(";base64").ok_or_else(|| {
            Refusal::new(
                format!("{p}.image_url.url"),
                "A data URL image must be base64.",
            )
        })?;
        return Ok(json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }));
    }
    Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }))
}

fn assistant_blocks(m: &Object, p: &str) -> Result<Vec<Value>, Refusal> {
    let mut blocks = Vec::new();
    let content = m.get("content").unwrap_or(&Value::Null);
    let text = text_of(content, &format!("{p}.content"))?;
    if !text.is_empty() {
        blocks.push(json!({ "type": "text", "text": text }));
    }
    if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
        let calls = json::list(calls, format!("{p}.tool_calls"))?;
        for (j, call) in calls.iter().enumerate() {
            let pp = format!("{p}.tool_calls[{j}]");
            let id = call.get("id").and_then(Value::as_str).unwrap_or("");
            let f = call.get("function").unwrap_or(&Value::Null);
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                Refusal::new(format!("{pp}.function.name"), "A tool call needs a name.")
            })?;
            let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
            let input: Value = if args.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(args).map_err(|_| {
                    Refusal::new(
                        format!("{pp}.function.arguments"),
                        "Tool call arguments must be a JSON object to translate.",
                    )
                })?
            };
            blocks.push(json!({ "type": "tool_use", "id": id, "name": name, "input": input }));
        }
    }
    Ok(blocks)
}

mod answer;
mod tools;
pub use answer::*;
use tools::{choice, tools};
