//! Cross-API failover, per attempt (docs/routing.md): a failover cluster
//! may hold OpenAI-shaped and Anthropic deployments. The listener filter
//! wrote the request (body, path, headers) for its first choice; an attempt
//! that got a deployment of the other API needs the body translated
//! (`tollgate_translate`, as the listener does for a single deployment) and
//! the headers of that API. The body Envoy gives each attempt is the one the
//! listener filter wrote (its API is in the plan), while the headers are the
//! last attempt's (Envoy keeps an upstream filter's header changes), so the
//! two are compared each on its own.

use std::borrow::Cow;

use tollgate_contract::ErrorCode;
use tollgate_translate::{from_anthropic, to_anthropic, Refusal};

use super::HeaderChange;
use crate::reply::Reply;
use crate::routing::{Endpoint, Wire, ANTHROPIC_VERSION};

/// The body is written in `from`'s API and this attempt's deployment
/// speaks `to`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cross {
    pub from: Wire,
    pub to: Wire,
}

impl Cross {
    /// `None` when the body is already in the deployment's API.
    pub fn between(from: Wire, to: Wire) -> Option<Cross> {
        (from != to).then_some(Cross { from, to })
    }
}

/// Whether a client's endpoint crosses between the APIs: a chat completion
/// and a Messages request do; nothing else has a counterpart.
pub fn translatable(endpoint: Endpoint) -> bool {
    matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Messages)
}

/// The headers of `to`'s API when the request's headers are written for
/// `from`'s (the credential and path are the caller's): Anthropic's
/// `anthropic-version`, none of it for an OpenAI-shaped provider.
pub fn headers(from: Wire, to: Wire) -> Vec<HeaderChange> {
    match (from, to) {
        (Wire::OpenAi, Wire::Anthropic) => vec![(
            Cow::Borrowed("anthropic-version"),
            Some(ANTHROPIC_VERSION.as_bytes().to_vec()),
        )],
        (Wire::Anthropic, Wire::OpenAi) => vec![
            (Cow::Borrowed("anthropic-version"), None),
            (Cow::Borrowed("anthropic-beta"), None),
        ],
        _ => Vec::new(),
    }
}

/// The body for this attempt: with its `model` set to `upstream_model`,
/// translated when `cross` says so; `Ok(None)` when it is right as it is.
/// A body that cannot be translated refuses the attempt (Envoy then tries
/// the next deployment).
pub fn rebody(
    body: &[u8],
    upstream_model: &str,
    cross: Option<Cross>,
) -> Result<Option<Vec<u8>>, Reply> {
    let translated = match cross {
        None => return Ok(super::rebody(body, upstream_model)),
        Some(Cross {
            from: Wire::OpenAi,
            to: Wire::Anthropic,
        }) => to_anthropic::request(body, upstream_model),
        Some(Cross {
            from: Wire::Anthropic,
            to: Wire::OpenAi,
        }) => from_anthropic::request(body, upstream_model),
        Some(_) => return Ok(super::rebody(body, upstream_model)),
    };
    translated.map(Some).map_err(refused)
}

fn refused(r: Refusal) -> Reply {
    Reply::error(
        ErrorCode::UpstreamError,
        &format!(
            "The next deployment speaks another API, and this request cannot be translated to it: {}",
            r.message
        ),
    )
}

#[cfg(test)]
#[path = "cross_tests.rs"]
mod tests;
