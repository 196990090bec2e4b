//! A usage record as both usage lists (`GET /v1/usage`, `GET /admin/usage`)
//! show it, and their cursor.

use serde::Serialize;

use crate::db::usage::Row;
use crate::error::{ApiError, ApiResult};
use crate::money::nanos_to_usd;

/// A usage record as API.md gives it.
#[derive(Debug, Serialize)]
pub struct Record {
    pub id: String,
    pub object: &'static str,
    pub request_id: String,
    pub model: String,
    pub key_id: String,
    pub source: &'static str,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    /// Of `input_tokens`, read from the provider's prompt cache.
    pub cache_read_tokens: i64,
    /// Of `input_tokens`, written to it.
    pub cache_creation_tokens: i64,
    pub cost_usd: f64,
    pub created_at: i64,
    pub status: i64,
    pub stream: bool,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub estimated: bool,
    /// Upstream attempts: 1, or more when a failover happened.
    pub attempts: i64,
    /// The answer stopped before its end (a stream without `[DONE]`).
    pub cut: bool,
}

pub const ID_PREFIX: &str = "usage_";

impl From<Row> for Record {
    fn from(r: Row) -> Record {
        Record {
            id: format!("{ID_PREFIX}{}", r.id),
            object: "usage_record",
            request_id: r.request_id,
            model: r.model,
            key_id: r.key_id,
            source: "api_key",
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            total_tokens: r.input_tokens.saturating_add(r.output_tokens),
            cache_read_tokens: r.cache_read_tokens,
            cache_creation_tokens: r.cache_creation_tokens,
            cost_usd: nanos_to_usd(r.cost_nanos),
            created_at: r.created_at_ms / 1000,
            status: r.status,
            stream: r.stream != 0,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            estimated: r.estimated != 0,
            attempts: r.attempts,
            cut: r.cut != 0,
        }
    }
}

/// `after=usage_<n>` to the row id; anything else is a 400.
pub fn cursor(after: Option<&str>) -> ApiResult<i64> {
    match after {
        None => Ok(i64::MAX),
        Some(s) => s
            .strip_prefix(ID_PREFIX)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::invalid("`after` must be a usage record id", Some("after"))),
    }
}
