//! Error bodies in each API's shape. OpenAI:
//! `{"error":{"message","type","param","code"}}`; Anthropic:
//! `{"type":"error","error":{"type","message"}}`, with a type per status
//! that the Anthropic SDKs turn into their exception classes.

use serde_json::{json, Value};

/// Anthropic's error type for an HTTP status.
pub fn anthropic_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 408 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        503 => "overloaded_error",
        504 => "timeout_error",
        s if (400..500).contains(&s) => "invalid_request_error",
        _ => "api_error",
    }
}

/// OpenAI's error type for an HTTP status.
pub fn openai_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if (400..500).contains(&s) => "invalid_request_error",
        _ => "server_error",
    }
}

/// An Anthropic error body.
pub fn anthropic(status: u16, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": anthropic_type(status), "message": message } })
}

/// The message of an error body in either shape (or the body's text).
pub fn message_of(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => v
            .get("error")
            .and_then(|e| e.get("message").or(Some(e)))
            .and_then(Value::as_str)
            .or_else(|| v.get("message").and_then(Value::as_str))
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        Err(_) => String::from_utf8_lossy(body).chars().take(500).collect(),
    }
}

/// An upstream's OpenAI-shaped (or any) error, as an Anthropic client
/// expects it.
pub fn anthropic_from_openai(status: u16, body: &[u8]) -> Value {
    anthropic(status, &message_of(body))
}

/// An Anthropic `error` object (`{"type","message"}`), as an OpenAI error
/// body whose `code` keeps Anthropic's type.
pub fn openai_from_anthropic_error(error: &Value) -> Value {
    let kind = error
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    let openai = match kind {
        "invalid_request_error" | "request_too_large" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" => "not_found_error",
        "rate_limit_error" => "rate_limit_error",
        _ => "server_error",
    };
    json!({ "error": { "message": message, "type": openai, "param": null, "code": kind } })
}

/// An upstream's Anthropic-shaped error, as an OpenAI client expects it.
pub fn openai_from_anthropic(status: u16, body: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("error").is_some_and(Value::is_object) => v
            .get("error")
            .map(openai_from_anthropic_error)
            .unwrap_or(Value::Null),
        _ => json!({ "error": {
            "message": message_of(body),
            "type": openai_type(status),
            "param": null,
            "code": null,
        }}),
    }
}
