//! Small helpers over `serde_json::Value` for the translators.

use serde_json::{Map, Value};

use crate::Refusal;

pub type Object = Map<String, Value>;

/// The body as a JSON object, or a refusal.
pub fn object(body: &[u8]) -> Result<Object, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Refusal::new("", "The request body must be a JSON object.")),
        Err(e) => Err(Refusal::new(
            "",
            format!("The request body is not valid JSON: {e}."),
        )),
    }
}

pub fn str_of<'a>(map: &'a Object, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

pub fn u64_of(map: &Object, key: &str) -> u64 {
    map.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Whether a field carries a do-nothing value: `null`, zero, an empty
/// object or list, or one of `neutral`.
pub fn is_default(value: &Value, neutral: &[Value]) -> bool {
    match value {
        Value::Null => true,
        Value::Number(n) if n.as_f64() == Some(0.0) => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        v => neutral.contains(v),
    }
}

/// The text of a content that is a string or a list of `{type:"text"}`
/// parts (OpenAI's system and tool messages, Anthropic's system).
pub fn text_of(content: &Value, param: &str) -> Result<String, Refusal> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut text = String::new();
            for (i, part) in parts.iter().enumerate() {
                let p = format!("{param}[{i}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    other => {
                        return Err(Refusal::new(
                            format!("{p}.type"),
                            format!(
                                "Only text can go here, not {}.",
                                other.unwrap_or("an untyped part")
                            ),
                        ))
                    }
                }
            }
            Ok(text)
        }
        _ => Err(Refusal::new(
            param,
            "Must be a string or a list of text parts.",
        )),
    }
}

/// An assistant message's `content`: `null` when it only calls tools (as
/// OpenAI sends it), else the text.
pub fn content(text: String, has_tool_calls: bool) -> Value {
    if text.is_empty() && has_tool_calls {
        Value::Null
    } else {
        Value::String(text)
    }
}

/// The list a field must be, or a refusal naming it.
pub fn list(value: &Value, param: impl Into<String>) -> Result<&Vec<Value>, Refusal> {
    value
        .as_array()
        .ok_or_else(|| Refusal::new(param, "Must be a list."))
}
