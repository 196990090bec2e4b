//! What the mock reads of a request: which API it is for, and its
//! prompt tokens (one per word, plus one per chat message).

use serde_json::Value;

use crate::error::ApiError;

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Chat,
    /// Azure OpenAI's chat completions of a deployment.
    AzureChat,
    /// Anthropic's Messages API.
    Messages,
    /// Anthropic's token count.
    CountTokens,
    Completions,
    Responses,
    Embeddings,
    Images,
}

impl Kind {
    pub fn path(self) -> &'static str {
        match self {
            Kind::Chat => "/v1/chat/completions",
            Kind::AzureChat => "/openai/deployments/{deployment}/chat/completions",
            Kind::Messages => "/v1/messages",
            Kind::CountTokens => "/v1/messages/count_tokens",
            Kind::Completions => "/v1/completions",
            Kind::Responses => "/v1/responses",
            Kind::Embeddings => "/v1/embeddings",
            Kind::Images => "/v1/images/generations",
        }
    }

    pub fn generates_text(self) -> bool {
        matches!(
            self,
            Kind::Chat | Kind::AzureChat | Kind::Messages | Kind::Completions | Kind::Responses
        )
    }
}

pub fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Words in a message `content`: a string or an array of parts with `text`.
pub fn content_words(content: &Value) -> usize {
    match content {
        Value::String(s) => words(s),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => words(s),
                _ => p.get("text").and_then(Value::as_str).map_or(0, words),
            })
            .sum(),
        _ => 0,
    }
}

/// Chat prompt tokens: words across all message contents, plus one per message.
pub fn chat_prompt_tokens(messages: &[Value]) -> usize {
    messages
        .iter()
        .map(|m| 1 + m.get("content").map_or(0, content_words))
        .sum()
}

/// Responses input tokens: a string, or items with `content` (string or parts).
pub fn responses_input_tokens(input: &Value) -> usize {
    match input {
        Value::String(s) => words(s),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => words(s),
                _ => item.get("content").map_or(0, content_words),
            })
            .sum(),
        _ => 0,
    }
}

/// Token counts of each input of a completions prompt or an embeddings input:
/// a string, an array of strings, a token array, or an array of token arrays.
pub fn input_token_counts(input: &Value) -> Option<Vec<usize>> {
    match input {
        Value::String(s) => Some(vec![words(s)]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            Some(vec![items.len()])
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(words(s)),
                Value::Array(tokens) => Some(tokens.len()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Prompt tokens of each input of the request (one entry for most endpoints).
pub fn prompt_token_counts(kind: Kind, body: &Value) -> Result<Vec<usize>, ApiError> {
    let counts = match kind {
        Kind::Messages | Kind::CountTokens => {
            let messages = body.get("messages").and_then(Value::as_array);
            let messages = messages
                .ok_or_else(|| ApiError::invalid("messages: Field required", Some("messages")))?;
            let system = body.get("system").map_or(0, content_words);
            vec![chat_prompt_tokens(messages) + system]
        }
        Kind::Chat | Kind::AzureChat => {
            let messages = body.get("messages").and_then(Value::as_array);
            let messages = messages.ok_or_else(|| {
                ApiError::invalid("'messages' must be an array", Some("messages"))
            })?;
            vec![chat_prompt_tokens(messages)]
        }
        Kind::Completions => match body.get("prompt") {
            None | Some(Value::Null) => vec![0],
            Some(prompt) => input_token_counts(prompt).ok_or_else(|| {
                ApiError::invalid("'prompt' must be a string or an array", Some("prompt"))
            })?,
        },
        Kind::Responses => vec![body.get("input").map_or(0, responses_input_tokens)],
        Kind::Embeddings => body
            .get("input")
            .and_then(input_token_counts)
            .ok_or_else(|| {
                ApiError::invalid("'input' must be a string or an array", Some("input"))
            })?,
        Kind::Images => vec![body.get("prompt").and_then(Value::as_str).map_or(0, words)],
    };
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn chat_tokens_count_words_plus_one_per_message() {
        let messages = json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there world"}]},
            {"role": "assistant", "content": null},
        ]);
        assert_eq!(chat_prompt_tokens(messages.as_array().unwrap()), 2 + 3 + 3);
    }

    #[test]
    fn responses_tokens_count_strings_and_items() {
        assert_eq!(responses_input_tokens(&json!("one  two\tthree")), 3);
        let items = json!([
            {"role": "user", "content": "a b"},
            {"role": "user", "content": [{"type": "input_text", "text": "c d e"}]},
        ]);
        assert_eq!(responses_input_tokens(&items), 5);
    }

    #[test]
    fn embedding_inputs_are_counted() {
        assert_eq!(
            input_token_counts(&json!(["one two", "three"])),
            Some(vec![2, 1])
        );
        assert_eq!(input_token_counts(&json!([1, 2, 3])), Some(vec![3]));
        assert_eq!(input_token_counts(&json!([[1, 2], [3]])), Some(vec![2, 1]));
        assert_eq!(input_token_counts(&json!(5)), None);
    }
}
