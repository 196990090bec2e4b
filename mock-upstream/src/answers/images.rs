//! Image generations: `n` URLs that go nowhere.

use serde_json::{json, Value};

use super::{with_usage, Meta};
use crate::error::ApiError;

pub fn images_answer(m: &Meta, body: &Value) -> Result<Value, ApiError> {
    let n = match body.get("n") {
        None | Some(Value::Null) => 1,
        Some(n) => n
            .as_u64()
            .ok_or_else(|| ApiError::invalid("'n' must be an integer", Some("n")))?,
    };
    let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or("");
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"url": format!("https://mock.invalid/img/{i}.png"), "revised_prompt": prompt}))
        .collect();
    let tokens = m.prompt_tokens;
    let usage = json!({"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens});
    Ok(with_usage(
        json!({"created": m.created, "data": data}),
        m.final_usage(usage),
    ))
}
