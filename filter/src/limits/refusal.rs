//! What a refusal by a limit or a budget says: the OpenAI error and the
//! `x-ratelimit-*` headers.

use super::*;

/// OpenAI's duration format for `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let tenths = ms.div_ceil(100);
        if tenths % 10 == 0 {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else {
        let s = ms.div_ceil(1000);
        format!("{}m{}s", s / 60, s % 60)
    }
}

pub(super) fn headers_for(kind: Kind, limit: u64, bucket: Bucket) -> [(&'static str, String); 3] {
    let reset = duration(bucket.wait_ms(limit, limit));
    let remaining = bucket.remaining().to_string();
    match kind {
        Kind::Tokens => [
            ("x-ratelimit-limit-tokens", limit.to_string()),
            ("x-ratelimit-remaining-tokens", remaining),
            ("x-ratelimit-reset-tokens", reset),
        ],
        _ => [
            ("x-ratelimit-limit-requests", limit.to_string()),
            ("x-ratelimit-remaining-requests", remaining),
            ("x-ratelimit-reset-requests", reset),
        ],
    }
}

pub(super) fn what(scope: Scope, kind: Kind) -> &'static str {
    match (scope, kind) {
        (Scope::Key, Kind::Requests) => "requests per minute of this API key",
        (Scope::Key, Kind::Tokens) => "tokens per minute of this API key",
        (Scope::Key, Kind::Concurrent) => "concurrent requests of this API key",
        (Scope::Account, Kind::Requests) => "requests per minute of this account",
        (Scope::Account, Kind::Tokens) => "tokens per minute of this account",
        (Scope::Account, Kind::Concurrent) => "concurrent requests of this account",
    }
}

pub(super) fn refusal(
    scope: Scope,
    kind: Kind,
    limit: u64,
    retry_ms: u64,
    headers: Vec<(&'static str, String)>,
) -> Reply {
    let param = match kind {
        Kind::Requests => "rpm",
        Kind::Tokens => "tpm",
        Kind::Concurrent => "max_concurrent",
    };
    if limit == 0 {
        // Waiting does not help: no `retry-after`, and the message says so.
        let message = format!(
            "Rate limit reached: the {} limit is 0, so no request is admitted until an administrator raises it.",
            what(scope, kind)
        );
        let mut reply = Reply::with_param(ErrorCode::RateLimitExceeded, &message, param);
        reply.headers.extend(headers);
        return reply;
    }
    let retry_s = retry_ms.div_ceil(1000).max(1);
    let message = format!(
        "Rate limit reached: {} (limit {limit}). Try again in {}.",
        what(scope, kind),
        duration(retry_ms.max(1))
    );
    let mut reply = Reply::with_param(ErrorCode::RateLimitExceeded, &message, param);
    reply.headers.push(("retry-after", retry_s.to_string()));
    reply.headers.extend(headers);
    reply
}

pub(super) fn budget_refusal(scope: Scope) -> Reply {
    let message = match scope {
        Scope::Key => "This API key has used up its budget.",
        Scope::Account => "This account's balance is used up; add credit to continue.",
    };
    Reply::error(ErrorCode::InsufficientBalance, message)
}
