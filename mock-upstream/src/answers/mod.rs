//! The answers of each API, in OpenAI's shapes (Anthropic's in `anthropic`), built from what the
//! request asked for (`Meta`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub mod anthropic;
mod choices;
mod embeddings;
mod images;
mod responses;

pub use choices::{choice_answer, choice_stream};
pub use embeddings::embeddings_answer;
pub use images::images_answer;
pub use responses::{responses_answer, responses_stream};

/// The `i`-th streamed piece of the output: "tok0", " tok1", " tok2", ...
pub fn piece(i: usize) -> String {
    if i == 0 {
        "tok0".into()
    } else {
        format!(" tok{i}")
    }
}

pub fn output_text(n: usize) -> String {
    (0..n).map(piece).collect()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What an answer needs to know about its request.
pub struct Meta {
    pub n: u64,
    pub created: u64,
    pub model: String,
    pub prompt_tokens: usize,
    pub words: usize,
    pub include_usage: bool,
    pub no_usage: bool,
    pub usage_every_chunk: bool,
    /// `x-mock-tool`: the answer calls this tool.
    pub tool: Option<String>,
    /// `x-mock-cache-read`: prompt tokens read from the cache.
    pub cache_read: usize,
}

impl Meta {
    /// Usage of a chat or completions answer, after `completion` words.
    pub fn usage(&self, completion: usize) -> Value {
        let (prompt, total) = (self.prompt_tokens, self.prompt_tokens + completion);
        json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total})
    }

    /// `usage` unless `x-mock-no-usage` asks to omit it.
    pub fn final_usage(&self, usage: Value) -> Option<Value> {
        (!self.no_usage).then_some(usage)
    }
}

/// Inserts `usage` into an object when there is one.
pub fn with_usage(mut v: Value, usage: Option<Value>) -> Value {
    if let (Some(obj), Some(u)) = (v.as_object_mut(), usage) {
        obj.insert("usage".into(), u);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_text_joins_pieces() {
        assert_eq!(output_text(3), "tok0 tok1 tok2");
        assert_eq!(output_text(0), "");
    }
}
