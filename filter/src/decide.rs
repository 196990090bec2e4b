//! The request pipeline: headers (route, key) then body (model, allowlist,
//! deployment, rewrite). Each step returns what to do; the glue applies it.

use std::sync::Arc;

use tollgate_contract::headers::OWN_PREFIX;
use tollgate_contract::snapshot::Key;
use tollgate_contract::{key, ErrorCode};

use crate::reply::Reply;
use crate::routing::{self, Endpoint, RouteError};
use crate::snapshot::Compiled;

/// The one answer for every key that is wrong in any way, so that a caller
/// learns nothing about which check failed.
const BAD_KEY: &str = "Incorrect API key provided.";

pub struct Head<'a> {
    pub method: &'a [u8],
    pub path: &'a [u8],
    /// Every request header as Envoy has it: lower-case names, raw values.
    pub headers: &'a [(String, Vec<u8>)],
    pub now_s: i64,
}

#[derive(Debug, Clone)]
pub struct Admitted {
    pub key: Arc<Key>,
    pub endpoint: Endpoint,
}

#[derive(Debug)]
pub enum HeadDecision {
    /// No key needed (`/api/status`): forward as it is.
    Open,
    Reply(Reply),
    /// A valid key for an endpoint the control plane answers.
    ToControlPlane(Admitted),
    /// A valid key for a model endpoint: the body decides the rest.
    ReadBody(Admitted),
}

/// Which request headers to remove before anything else reads them.
pub fn spoofed(headers: &[(String, Vec<u8>)]) -> Vec<&str> {
    headers
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.starts_with(OWN_PREFIX))
        .collect()
}

pub fn on_head(snapshot: Option<&Compiled>, head: &Head) -> HeadDecision {
    let endpoint = match routing::classify(head.method, head.path) {
        Ok(e) => e,
        Err(RouteError::NotFound) => {
            return HeadDecision::Reply(Reply::error(ErrorCode::NotFound, "Unknown request URL."))
        }
        Err(RouteError::MethodNotAllowed) => {
            return HeadDecision::Reply(Reply::error(
                ErrorCode::MethodNotAllowed,
                "This method is not allowed on this URL.",
            ))
        }
    };
    if endpoint == Endpoint::Status {
        return HeadDecision::Open;
    }
    let Some(snapshot) = snapshot else {
        return HeadDecision::Reply(Reply::error(
            ErrorCode::GatewayNotReady,
            "The gateway has not received its configuration yet; retry shortly.",
        ));
    };
    if let Some(q) = routing::query(head.path) {
        if q.split(|&b| b == b'&').any(|pair| {
            let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
            name.eq_ignore_ascii_case(b"api_key") || name.eq_ignore_ascii_case(b"key")
        }) {
            return HeadDecision::Reply(Reply::with_param(
                ErrorCode::InvalidRequest,
                "API keys are not accepted in the URL; send them in the Authorization header.",
                "api_key",
            ));
        }
    }
    let key = match authenticate(snapshot, head) {
        Ok(k) => k,
        Err(reply) => return HeadDecision::Reply(reply),
    };
    if endpoint.has_body() {
        if let Some(len) = content_length(head.headers) {
            if len > snapshot.settings.max_body_bytes {
                return HeadDecision::Reply(too_large(snapshot.settings.max_body_bytes));
            }
        }
        HeadDecision::ReadBody(Admitted { key, endpoint })
    } else {
        HeadDecision::ToControlPlane(Admitted { key, endpoint })
    }
}

pub fn too_large(limit: u64) -> Reply {
    Reply::error(
        ErrorCode::RequestTooLarge,
        &format!("The request body is larger than the limit of {limit} bytes."),
    )
}

/// The answer instead of an upstream response whose status is not an HTTP
/// status (HTTP/1.1's codec passes any three digits, 600 and 999 included):
/// `None` for a status a client can act on.
pub fn upstream_status(status: u16) -> Option<Reply> {
    if (100..=599).contains(&status) {
        return None;
    }
    Some(Reply::error(
        ErrorCode::UpstreamError,
        &format!("The upstream answered with an invalid HTTP status ({status})."),
    ))
}

fn content_length(headers: &[(String, Vec<u8>)]) -> Option<u64> {
    let (_, v) = headers.iter().find(|(n, _)| n == "content-length")?;
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

fn header_key(name: &str, value: &[u8]) -> Option<Result<Vec<u8>, ()>> {
    match name {
        "authorization" => {
            let v = value.trim_ascii();
            let scheme = v.get(..7)?;
            if !scheme.eq_ignore_ascii_case(b"bearer ") {
                return Some(Err(()));
            }
            Some(Ok(v.get(7..).unwrap_or_default().trim_ascii().to_vec()))
        }
        "api-key" | "x-api-key" => Some(Ok(value.trim_ascii().to_vec())),
        _ => None,
    }
}

/// Finds the one key the request presents and checks it against the snapshot.
fn authenticate(snapshot: &Compiled, head: &Head) -> Result<Arc<Key>, Reply> {
    let unauthorized = |m: &str| Reply::error(ErrorCode::InvalidApiKey, m);
    let mut presented: Option<Vec<u8>> = None;
    let mut authorization_headers = 0;
    for (name, value) in head.headers {
        if name == "authorization" {
            authorization_headers += 1;
        }
        match header_key(name, value) {
            None => {}
            Some(Err(())) => return Err(unauthorized(BAD_KEY)),
            Some(Ok(k)) => match &presented {
                Some(seen) if *seen != k => {
                    return Err(unauthorized("The request carries more than one API key."))
                }
                _ => presented = Some(k),
            },
        }
    }
    if authorization_headers > 1 {
        return Err(unauthorized(
            "The request carries more than one Authorization header.",
        ));
    }
    let Some(presented) = presented else {
        return Err(unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
        ));
    };
    let secret = key::check(&presented).map_err(|_| unauthorized(BAD_KEY))?;
    let found = snapshot
        .keys
        .get(&key::KeyHash::of(secret))
        .ok_or_else(|| unauthorized(BAD_KEY))?;
    if found.expires_at.is_some_and(|t| t <= head.now_s) {
        return Err(unauthorized(BAD_KEY));
    }
    Ok(Arc::clone(found))
}

mod body;
pub use body::{answer_shape, on_body, on_body_with, BodyDecision, Cluster, Forward, Translation};

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
