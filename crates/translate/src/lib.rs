//! Translation between the OpenAI Chat Completions API and Anthropic's
//! Messages API, both ways, as plain functions over bytes and SSE events:
//!
//! - [`to_anthropic`]: an OpenAI-shaped client in front of an Anthropic
//!   upstream (request out, answer and stream back).
//! - [`from_anthropic`]: an Anthropic-shaped client (`/v1/messages`, Claude
//!   Code, the Anthropic SDKs) in front of an OpenAI-compatible upstream.
//! - [`errors`]: each API's error body from the other's, and from a status.
//!
//! Streams are translated event by event as they arrive: the caller frames
//! the bytes into server-sent events (the filter's `sse::Parser`) and hands
//! each event over; a translator keeps only what it needs across events
//! (open content blocks, the usage so far), never the stream. Usage is kept
//! exactly as the upstream reported it, cache tokens included.
//!
//! What cannot be said in the other API is refused with a [`Refusal`] that
//! names the field; nothing is dropped silently. The few fields dropped on
//! purpose are hints that change no answer (Anthropic's `cache_control`),
//! and each is named where it is dropped.

pub mod errors;
pub mod from_anthropic;
mod json;
pub mod to_anthropic;

/// A request that cannot be translated: the field (in the caller's terms,
/// e.g. `messages[2].content[0].type`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub param: String,
    pub message: String,
}

impl Refusal {
    fn new(param: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// Token counts as the upstream reported them. `input` excludes the cached
/// parts (Anthropic's `input_tokens`); OpenAI's `prompt_tokens` is
/// `input + cache_read + cache_creation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
}

impl Usage {
    /// All input tokens, cached or not: OpenAI's `prompt_tokens`.
    pub fn prompt_tokens(&self) -> u64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_creation)
    }

    /// Takes in a `message_delta`'s usage: its output is cumulative, so the
    /// last one counts; newer API versions repeat the input counts there.
    pub fn merge_delta(&mut self, delta: Usage) {
        self.output = delta.output;
        self.input = self.input.max(delta.input);
        self.cache_read = self.cache_read.max(delta.cache_read);
        self.cache_creation = self.cache_creation.max(delta.cache_creation);
    }
}

/// One server-sent event as the caller framed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, if any.
    pub name: Option<&'a str>,
    pub data: &'a str,
}

/// Writes one server-sent event.
fn sse(out: &mut Vec<u8>, name: Option<&str>, data: &str) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests;
