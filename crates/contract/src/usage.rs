//! A usage record as the filter ships it to `POST /internal/usage`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRecord {
    /// Minted by the filter; the idempotency key of ingestion.
    pub request_id: String,
    pub key_id: String,
    pub account_id: String,
    pub model: String,
    pub upstream_model: String,
    pub provider: String,
    pub status: u16,
    /// Every input token, cached or not (OpenAI's `prompt_tokens`;
    /// Anthropic's `input_tokens` plus its cache reads and writes).
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Of `input_tokens`, those written to it (Anthropic's cache creation).
    #[serde(default)]
    pub cache_creation_tokens: u64,
    pub estimated: bool,
    pub stream: bool,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub cost_nanos: u64,
    /// Unix milliseconds when the request arrived.
    pub created_at_ms: u64,
    /// Upstream attempts this request made: 1, or more after a failover.
    /// Left out when 1, so that a record reads as it did before the field.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub attempts: u32,
    /// The answer stopped before its end: a stream without its last event
    /// (`[DONE]`, `message_stop`), or a body that never reached its end (a
    /// reset, a client gone). Left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// What `POST /internal/usage` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageBatch {
    pub records: Vec<UsageRecord>,
}
