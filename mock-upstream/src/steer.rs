//! Scripting: what a test asks of one request with `x-mock-*` headers.

use std::str::FromStr;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};

use crate::error::ApiError;

const DEFAULT_WORDS: usize = 5;

/// What the `x-mock-*` headers ask for.
pub struct Steer {
    pub status: Option<StatusCode>,
    pub delay_ms: u64,
    pub chunk_delay_ms: u64,
    pub words: usize,
    pub cut_after: Option<usize>,
    pub no_usage: bool,
    pub usage_every_chunk: bool,
    pub split: Option<usize>,
    pub crlf: bool,
    /// `x-mock-tool`: answer with a call to this tool.
    pub tool: Option<String>,
    /// `x-mock-cache-read`: of the prompt tokens, this many were read from
    /// the cache (Anthropic's answers say so apart).
    pub cache_read: usize,
}

pub fn header_num<T: FromStr>(headers: &HeaderMap, name: &str) -> Result<Option<T>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let parsed = value.to_str().ok().and_then(|s| s.trim().parse().ok());
    parsed.map(Some).ok_or_else(|| ApiError::bad_header(name))
}

impl Steer {
    pub fn from_headers(h: &HeaderMap) -> Result<Self, ApiError> {
        let status = match header_num::<u16>(h, "x-mock-status")? {
            Some(code) => Some(
                StatusCode::from_u16(code).map_err(|_| ApiError::bad_header("x-mock-status"))?,
            ),
            None => None,
        };
        let split = header_num::<usize>(h, "x-mock-split")?;
        if split == Some(0) {
            return Err(ApiError::bad_header("x-mock-split"));
        }
        Ok(Steer {
            status,
            delay_ms: header_num(h, "x-mock-delay-ms")?.unwrap_or(0),
            chunk_delay_ms: header_num(h, "x-mock-chunk-delay-ms")?.unwrap_or(0),
            words: header_num(h, "x-mock-words")?.unwrap_or(DEFAULT_WORDS),
            cut_after: header_num(h, "x-mock-cut-after")?,
            no_usage: h.contains_key("x-mock-no-usage"),
            usage_every_chunk: h.contains_key("x-mock-usage-every-chunk"),
            split,
            crlf: h.contains_key("x-mock-crlf"),
            tool: h
                .get("x-mock-tool")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            cache_read: header_num(h, "x-mock-cache-read")?.unwrap_or(0),
        })
    }

    /// Parses the headers, waits `x-mock-delay-ms`, and fails with
    /// `x-mock-status` if asked to.
    pub async fn apply(headers: &HeaderMap) -> Result<Self, ApiError> {
        let steer = Steer::from_headers(headers)?;
        if steer.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(steer.delay_ms)).await;
        }
        match steer.status {
            Some(status) => Err(ApiError::mock(status)),
            None => Ok(steer),
        }
    }
}
