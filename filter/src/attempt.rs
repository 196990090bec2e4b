//! The filter's upstream role: it runs in a failover cluster's upstream
//! filter chain, once per attempt, after Envoy has chosen the host. The
//! downstream filter prepared the request for one deployment; when this
//! attempt got another (the first one failed), the request is rewritten for
//! the one it got: `:authority`, `:path`, the credential and the body's
//! `model`, and for a deployment of the other API the body translated and
//! that API's headers (`cross.rs`). It also refuses an address a provider must never resolve to,
//! and tells the downstream filter which deployment answered.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use tollgate_contract::ErrorCode;

use crate::credentials;
use crate::limits::Store;
use crate::reply::Reply;
use crate::request::Body;
use crate::routing::{self, Endpoint, Wire};

pub mod cross;
use crate::snapshot::Compiled;
use cross::Cross;

/// Set by the downstream filter on a request it sent to a failover cluster:
/// `<deployment index>:<endpoint name>:<credential ids>:<body API>`, the
/// deployment the request's headers are written for, the ids of its
/// provider's pool credentials tried on it so far (comma-separated, the
/// current one last) and the API the body is written in (`openai` or
/// `anthropic`: the listener's choice's, which no attempt changes). Envoy keeps an upstream filter's header changes
/// for the next attempt, so the upstream role updates it when it rewrites
/// (and cannot remove it: the next attempt needs it). It goes to the
/// provider, and names only an index and an endpoint.
pub const PREPARED: &str = "x-tollgate-prepared";
/// Set on the response by the upstream role: `<deployment index>;<attempt>`.
pub const SERVED: &str = "x-tollgate-served";

/// A header to write: `None` removes it.
pub type HeaderChange = (Cow<'static, str>, Option<Vec<u8>>);

/// What the upstream role read for one attempt.
pub struct Attempt<'a> {
    /// The `x-tollgate-prepared` header.
    pub prepared: &'a [u8],
    /// `filter_metadata.tollgate` of the host this attempt got.
    pub model: Option<&'a str>,
    pub deployment: Option<u32>,
    /// `upstream.address`: where this attempt connects.
    pub address: Option<&'a str>,
    /// `x-envoy-attempt-count`: 1 for the first attempt.
    pub attempt: u32,
    /// Shared data (the credentials' marks) and the time.
    pub store: &'a dyn Store,
    pub now_ms: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AttemptDecision {
    /// Send on; write these headers first. `body_model`: the body's `model`
    /// must be this (the whole body is read to check: whether Envoy replays
    /// an earlier attempt's rewritten body or the original is not assumed).
    Send {
        headers: Vec<HeaderChange>,
        body_model: Option<String>,
        /// The body must also be translated to the deployment's API.
        cross: Option<Cross>,
        served: u32,
        /// The pool credential this attempt sends ("" without a pool).
        credential: String,
    },
    /// Answer this attempt here (Envoy may retry it on the next deployment).
    Refuse(Reply),
}

fn refuse(message: &str) -> AttemptDecision {
    AttemptDecision::Refuse(Reply::error(ErrorCode::UpstreamError, message))
}

/// Link-local (cloud metadata) always; loopback and private when the
/// snapshot says so. Checked on the address Envoy connects to.
pub fn address_refused(address: &str, refuse_private: bool) -> bool {
    let Ok(addr) = address.parse::<SocketAddr>() else {
        return false;
    };
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || (refuse_private && (v4.is_loopback() || v4.is_private() || v4.is_unspecified()))
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments()[0];
            (seg & 0xffc0) == 0xfe80
                || (refuse_private
                    && (v6.is_loopback() || v6.is_unspecified() || (seg & 0xfe00) == 0xfc00))
        }
    }
}

/// What `x-tollgate-prepared` says.
struct Plan<'a> {
    deployment: u32,
    endpoint: Endpoint,
    tried: Vec<&'a str>,
    /// `None`: the API of the deployment the headers are written for.
    body: Option<Wire>,
}

fn parse_prepared(raw: &[u8]) -> Option<Plan<'_>> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts = text.splitn(4, ':');
    let deployment = parts.next()?.parse().ok()?;
    let endpoint = routing::endpoint_named(parts.next()?)?;
    let tried = parts
        .next()
        .map(|t| t.split(',').filter(|id| !id.is_empty()).collect())
        .unwrap_or_default();
    let body = match parts.next() {
        Some(name) => Some(Wire::named(name)?),
        None => None,
    };
    Some(Plan {
        deployment,
        endpoint,
        tried,
        body,
    })
}

pub fn on_attempt(snapshot: Option<&Compiled>, a: &Attempt) -> AttemptDecision {
    let Some(snapshot) = snapshot else {
        return refuse("The gateway has no configuration for this attempt yet.");
    };
    if let Some(address) = a.address {
        if address_refused(address, snapshot.settings.refuse_private_upstreams) {
            return refuse("The provider's address is not one this gateway connects to.");
        }
    }
    let Some(Plan {
        deployment: prepared,
        endpoint,
        mut tried,
        body,
    }) = parse_prepared(a.prepared)
    else {
        return refuse("The request reached a failover cluster without its plan.");
    };
    let (Some(model_id), Some(got)) = (a.model, a.deployment) else {
        return refuse("The failover cluster's host carries no deployment.");
    };
    let mut headers: Vec<HeaderChange> = Vec::new();
    if got == prepared && a.attempt <= 1 {
        return AttemptDecision::Send {
            headers,
            body_model: None,
            cross: None,
            served: got,
            credential: tried.last().copied().unwrap_or_default().to_string(),
        };
    }
    let model = snapshot.models.get(model_id);
    let pair = |i: u32| {
        let d = model?.deployments.get(i as usize)?;
        Some((d, snapshot.upstreams.get(&d.provider)?))
    };
    let (Some((_, written)), Some((d, upstream))) = (pair(prepared), pair(got)) else {
        return refuse("The deployment this attempt got is no longer configured.");
    };
    // The headers are written for `written`'s API, the body for `body`'s.
    let (headers_wire, wire) = (written.kind.wire(), upstream.kind.wire());
    let cross = Cross::between(body.unwrap_or(headers_wire), wire);
    if cross.is_some() && !cross::translatable(endpoint) {
        return refuse("The deployment this attempt got speaks another API, which has no counterpart of this endpoint.");
    }
    // The same deployment again without a pool to rotate: only the body's
    // model is checked.
    if got == prepared && upstream.pool.len() <= 1 {
        return AttemptDecision::Send {
            headers: vec![(Cow::Borrowed("content-length"), None)],
            body_model: Some(d.upstream_model.clone()),
            cross,
            served: got,
            credential: tried.last().copied().unwrap_or_default().to_string(),
        };
    }
    // Another deployment: its own credentials, none tried yet. The same
    // one again (its next level in the cluster): another of its pool.
    if got != prepared {
        tried.clear();
    }
    let credential = if upstream.pool.is_empty() {
        None
    } else {
        let Some(k) = credentials::choose(
            a.store,
            upstream,
            credentials::next_start(&upstream.id),
            &tried,
            a.now_ms,
        ) else {
            return refuse("No credential of this deployment's provider is left to try.");
        };
        Some(k)
    };
    // The body is read and its model checked once it is whole; Envoy must
    // not send the old length with a new body.
    headers.push((Cow::Borrowed("content-length"), None));
    for name in ["authorization", "api-key", "x-api-key"] {
        headers.push((Cow::Borrowed(name), None));
    }
    let header = credential
        .map(|k| &k.header)
        .or(upstream.credential.as_ref());
    if let Some((name, value)) = header {
        headers.push((Cow::Borrowed(*name), Some(value.clone().into_bytes())));
    }
    let id = credential.map(|k| k.id.as_str()).unwrap_or_default();
    tried.push(id);
    let plan = match body {
        Some(w) => format!("{got}:{}:{}:{}", endpoint.name(), tried.join(","), w.name()),
        None => format!("{got}:{}:{}", endpoint.name(), tried.join(",")),
    };
    headers.push((Cow::Borrowed(PREPARED), Some(plan.into_bytes())));
    if got == prepared {
        return AttemptDecision::Send {
            headers,
            body_model: Some(d.upstream_model.clone()),
            cross,
            served: got,
            credential: id.to_string(),
        };
    }
    let Some(path) = routing::upstream_path(
        upstream.kind,
        &upstream.base.path,
        endpoint,
        &d.upstream_model,
    ) else {
        return refuse("The deployment this attempt got does not offer this endpoint.");
    };
    headers.push((
        Cow::Borrowed(":authority"),
        Some(upstream.base.authority.clone().into_bytes()),
    ));
    headers.push((Cow::Borrowed(":path"), Some(path.into_bytes())));
    headers.extend(cross::headers(headers_wire, wire));
    AttemptDecision::Send {
        headers,
        body_model: Some(d.upstream_model.clone()),
        cross,
        served: got,
        credential: id.to_string(),
    }
}

/// The body with its `model` set to `upstream_model`; `None` when it has
/// that model already (or cannot be read as the object the downstream
/// filter wrote).
pub fn rebody(body: &[u8], upstream_model: &str) -> Option<Vec<u8>> {
    let parsed = Body::parse(body).ok()?;
    (parsed.model != upstream_model).then(|| parsed.rewrite(upstream_model, false))
}

#[cfg(test)]
#[path = "attempt_tests.rs"]
mod tests;
