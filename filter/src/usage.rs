//! Token counts from what the upstream sent: the `usage` of a JSON answer, or
//! of a stream's final usage chunk (`response.completed` for the Responses
//! API). The last reported value counts, never a sum. When nothing is
//! reported, the output is estimated from the text actually delivered.

use serde::Deserialize;

use crate::routing::Endpoint;
use crate::sse::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// Of a request's input tokens, those the provider's prompt cache served
/// (`read`) or took in (`creation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cache {
    pub read: u64,
    pub creation: u64,
}

#[derive(Deserialize, Default)]
struct Details {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct UsageShape {
    /// OpenAI's `prompt_tokens_details.cached_tokens`.
    prompt_tokens_details: Option<Details>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    /// Anthropic counts cached input apart from `input_tokens`; OpenAI's
    /// `prompt_tokens` includes it.
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl UsageShape {
    fn cache(&self) -> Cache {
        let openai = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens);
        Cache {
            read: self.cache_read_input_tokens.or(openai).unwrap_or(0),
            creation: self.cache_creation_input_tokens.unwrap_or(0),
        }
    }

    fn tokens(&self) -> Tokens {
        let anthropic_input = self.input_tokens.map(|i| {
            i.saturating_add(self.cache_read_input_tokens.unwrap_or(0))
                .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
        });
        Tokens {
            input: self.prompt_tokens.or(anthropic_input).unwrap_or(0),
            output: self.completion_tokens.or(self.output_tokens).unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<Delta>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct ResponseObject {
    usage: Option<UsageShape>,
}

/// The few fields of a chunk or answer that counting needs; the rest is skipped.
#[derive(Deserialize)]
struct Chunk {
    usage: Option<UsageShape>,
    choices: Option<Vec<Choice>>,
    #[serde(rename = "type")]
    kind: Option<String>,
    response: Option<ResponseObject>,
    delta: Option<serde_json::Value>,
}

/// The usage of a whole (non-streamed) JSON answer.
pub fn from_body(body: &[u8]) -> Option<Tokens> {
    usage_of_body(body).map(|(t, _)| t)
}

/// The usage of a whole JSON answer and its cached part.
pub fn usage_of_body(body: &[u8]) -> Option<(Tokens, Cache)> {
    let answer: BodyUsage = serde_json::from_slice(body).ok()?;
    answer.usage.map(|u| (u.tokens(), u.cache()))
}

/// A whole answer's `usage`; the rest (`choices` and their text) is
/// skipped, not built.
#[derive(Deserialize)]
struct BodyUsage {
    usage: Option<UsageShape>,
}

#[derive(Deserialize)]
struct Answer {
    choices: Option<Vec<AnswerChoice>>,
    output: Option<Vec<OutputItem>>,
    /// Anthropic's content blocks.
    content: Option<Vec<OutputPart>>,
}

#[derive(Deserialize)]
struct AnswerChoice {
    message: Option<Message>,
    text: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OutputItem {
    content: Option<Vec<OutputPart>>,
}

#[derive(Deserialize)]
struct OutputPart {
    text: Option<serde_json::Value>,
}

fn text_chars(v: Option<&serde_json::Value>) -> u64 {
    match v {
        Some(serde_json::Value::String(s)) => text_weight(s),
        _ => 0,
    }
}

/// Characters of generated text in a whole JSON answer (chat, completions,
/// responses), to estimate its output when it reports no usage.
pub fn output_weight(body: &[u8]) -> u64 {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return 0;
    };
    let choices: u64 = answer
        .choices
        .iter()
        .flatten()
        .map(|c| {
            text_chars(c.message.as_ref().and_then(|m| m.content.as_ref()))
                + text_chars(c.text.as_ref())
        })
        .sum();
    let blocks: u64 = answer
        .content
        .iter()
        .flatten()
        .map(|part| text_chars(part.text.as_ref()))
        .sum();
    let output: u64 = answer
        .output
        .iter()
        .flatten()
        .flat_map(|item| item.content.iter().flatten())
        .map(|part| text_chars(part.text.as_ref()))
        .sum();
    choices + output + blocks
}

/// Counts a stream as its events pass.
#[derive(Debug, Default)]
pub struct StreamCounter {
    reported: Option<Tokens>,
    cache: Cache,
    /// An Anthropic stream's usage, as `message_start` and the deltas give it.
    anthropic: tollgate_translate::from_anthropic::Observer,
    delivered_weight: u64,
    pub done: bool,
}

/// What to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Forward,
    /// The usage-only chunk the gateway asked for on the client's behalf.
    Hide,
}

impl StreamCounter {
    /// Observes one event. `hide_usage` says the client did not ask for the
    /// usage chunk, so the one the gateway asked for must not reach it.
    pub fn observe(&mut self, endpoint: Endpoint, event: &Event, hide_usage: bool) -> Pass {
        if event.data == "[DONE]" {
            self.done = true;
            return Pass::Forward;
        }
        let Ok(chunk) = serde_json::from_str::<Chunk>(&event.data) else {
            return Pass::Forward;
        };
        if endpoint == Endpoint::Messages {
            self.observe_anthropic(event, &chunk);
            return Pass::Forward;
        }
        if endpoint == Endpoint::Responses {
            let kind = event.event.as_deref().or(chunk.kind.as_deref());
            if kind == Some("response.output_text.delta") {
                if let Some(serde_json::Value::String(s)) = &chunk.delta {
                    self.delivered_weight += text_weight(s);
                }
            }
            if kind == Some("response.completed") {
                self.done = true;
                if let Some(u) = chunk.response.as_ref().and_then(|r| r.usage.as_ref()) {
                    self.reported = Some(u.tokens());
                    self.cache = u.cache();
                }
            }
            return Pass::Forward;
        }
        for choice in chunk.choices.iter().flatten() {
            let text = choice
                .delta
                .as_ref()
                .and_then(|d| d.content.as_deref())
                .or(choice.text.as_deref());
            if let Some(t) = text {
                self.delivered_weight += text_weight(t);
            }
        }
        if let Some(u) = &chunk.usage {
            self.reported = Some(u.tokens());
            self.cache = u.cache();
            let usage_only = chunk.choices.as_ref().is_some_and(|c| c.is_empty());
            if usage_only && hide_usage {
                return Pass::Hide;
            }
        }
        Pass::Forward
    }

    /// An Anthropic stream: input from `message_start`, output from the
    /// last `message_delta` (cumulative), text from the content deltas.
    fn observe_anthropic(&mut self, event: &Event, chunk: &Chunk) {
        match event.event.as_deref().or(chunk.kind.as_deref()) {
            // The counting is the translator's, so that a translated and a
            // passed-through Anthropic stream are counted alike.
            Some("message_start") | Some("message_delta") => {
                self.anthropic.observe(tollgate_translate::Event {
                    name: event.event.as_deref(),
                    data: &event.data,
                });
                if let Some(u) = self.anthropic.usage() {
                    self.reported = Some(Tokens {
                        input: u.prompt_tokens(),
                        output: u.output,
                    });
                    self.cache = Cache {
                        read: u.cache_read,
                        creation: u.cache_creation,
                    };
                }
            }
            Some("content_block_delta") => {
                if let Some(d) = chunk.delta.as_ref() {
                    for field in ["text", "partial_json", "thinking"] {
                        if let Some(serde_json::Value::String(t)) = d.get(field) {
                            self.delivered_weight += text_weight(t);
                        }
                    }
                }
            }
            Some("message_stop") => self.done = true,
            _ => {}
        }
    }

    /// The cached part of the reported input.
    pub fn cache(&self) -> Cache {
        self.cache
    }

    pub fn reported(&self) -> Option<Tokens> {
        self.reported
    }

    /// Output tokens estimated from the text delivered so far.
    pub fn estimated_output(&self) -> u64 {
        estimate_tokens(self.delivered_weight)
    }
}

/// What a character weighs in the estimate, in twentieths of a token:
/// ASCII 4 characters a token (5), other scripts below U+2E80 (accented
/// Latin, Cyrillic, Greek, Arabic, ...) 0.3 of a token (6), CJK and beyond
/// 0.8 (16). Measured against OpenAI's tokenizers by tools/estimate/.
pub fn char_weight(c: char) -> u64 {
    if c.is_ascii() {
        5
    } else if u32::from(c) < 0x2E80 {
        6
    } else {
        16
    }
}

pub fn text_weight(s: &str) -> u64 {
    s.chars().map(char_weight).sum()
}

/// Tokens for a text weight, rounded up.
pub fn estimate_tokens(weight: u64) -> u64 {
    weight.div_ceil(20)
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
