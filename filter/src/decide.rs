//! The request pipeline: headers (route, key) then body (model, allowlist,
//! deployment, rewrite). Each step returns what to do; the glue applies it.

use std::rc::Rc;

use tollgate_contract::headers::OWN_PREFIX;
use tollgate_contract::snapshot::{Deployment, Key};
use tollgate_contract::{key, ErrorCode};

use crate::reply::Reply;
use crate::request::Body;
use crate::routing::{self, Endpoint, RouteError, Wire};
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
    pub key: Rc<Key>,
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
fn authenticate(snapshot: &Compiled, head: &Head) -> Result<Rc<Key>, Reply> {
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
    Ok(Rc::clone(found))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    Plain,
    Tls,
}

/// How a request's body and answer cross between the client's API and the
/// provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// Both speak the same API.
    None,
    /// An OpenAI client on an Anthropic provider.
    ToAnthropic,
    /// An Anthropic (Messages) client on an OpenAI-shaped provider.
    FromAnthropic,
}

/// Everything the glue needs to send a request to its provider.
#[derive(Debug, PartialEq, Eq)]
pub struct Forward {
    pub authority: String,
    pub path: String,
    pub cluster: Cluster,
    /// The provider's credential header and value; `None`: no credential
    /// (the client's `authorization` is removed either way).
    pub credential: Option<(&'static str, String)>,
    /// The provider speaks Anthropic's API (it needs `anthropic-version`).
    pub anthropic_upstream: bool,
    pub translation: Translation,
    pub body: Vec<u8>,
    pub model: String,
    pub upstream_model: String,
    pub provider: String,
    pub stream: bool,
    /// The gateway asked the upstream for the stream's usage chunk ...
    pub ask_usage: bool,
    /// ... and the client did not, so that chunk must not reach it.
    pub hide_usage: bool,
    /// The shape of the answer the meter reads (after translation to the
    /// client, or before translation from the upstream: always the one that
    /// carries the usage in OpenAI's or Anthropic's own form).
    pub meter_endpoint: Endpoint,
    /// Billed and limited (a token count is neither).
    pub metered: bool,
    /// Prompt text characters, for an estimate when no usage is reported.
    pub prompt_weight: u64,
    /// The client's output cap, if it set one.
    pub max_output: Option<u64>,
    pub input_nanos_per_1m: u64,
    pub output_nanos_per_1m: u64,
    /// The index of the chosen deployment in the model's list.
    pub deployment: u32,
    /// The failover cluster that starts at this deployment, and how many
    /// deployments it tries; `None`: the forward proxy, one deployment.
    pub route: Option<(String, usize)>,
    /// Deployments with a health mark when this one was chosen.
    pub marked: Vec<u32>,
    /// The chosen deployment's first-byte timeout (Envoy's per-try timeout:
    /// it applies to each attempt of the request).
    pub first_byte_timeout_ms: Option<u32>,
}

/// What the body decides: send it on, or answer it here.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyDecision {
    Forward(Box<Forward>),
    /// `POST /v1/messages/count_tokens` for a model whose provider cannot
    /// count: the gateway's estimate of the input tokens.
    Estimated(u64),
}

fn refused(r: tollgate_translate::Refusal) -> Reply {
    let message = format!(
        "{} This model's provider speaks another API, and this request cannot be translated to it.",
        r.message
    );
    if r.param.is_empty() {
        Reply::error(ErrorCode::InvalidRequest, &message)
    } else {
        Reply::with_param(ErrorCode::InvalidRequest, &message, &r.param)
    }
}

pub fn on_body(
    snapshot: &Compiled,
    admitted: &Admitted,
    raw: &[u8],
    pick: u64,
) -> Result<BodyDecision, Reply> {
    on_body_with(snapshot, admitted, raw, pick, &crate::health::AllHealthy)
}

/// `on_body`, with the deployments' health as `view` gives it
/// (`choice.rs`).
pub fn on_body_with(
    snapshot: &Compiled,
    admitted: &Admitted,
    raw: &[u8],
    pick: u64,
    view: &dyn crate::health::View,
) -> Result<BodyDecision, Reply> {
    let limit = snapshot.settings.max_body_bytes;
    if raw.len() as u64 > limit {
        return Err(too_large(limit));
    }
    let body = Body::parse(raw)?;
    let Some(model) = snapshot.models.get(&body.model) else {
        return Err(Reply::with_param(
            ErrorCode::ModelNotFound,
            &format!("The model '{}' does not exist.", truncate(&body.model)),
            "model",
        ));
    };
    if let Some(allowed) = &admitted.key.models {
        if !allowed.contains(&model.id) {
            // Outside the key's group, the model is not there at all for
            // its holder (as `/v1/models` shows): 404, as for an unknown one.
            let in_group = admitted.key.group.as_ref().is_none_or(|g| {
                snapshot
                    .groups
                    .get(g)
                    .is_some_and(|models| models.contains(&model.id))
            });
            if !in_group {
                return Err(Reply::with_param(
                    ErrorCode::ModelNotFound,
                    &format!(
                        "The model '{}' does not exist or is not enabled for your group.",
                        model.id
                    ),
                    "model",
                ));
            }
            return Err(Reply::with_param(
                ErrorCode::ModelNotAllowed,
                &format!("This API key may not use the model '{}'.", model.id),
                "model",
            ));
        }
    }
    let known = |d: &Deployment| snapshot.upstreams.contains_key(&d.provider);
    let Some(crate::choice::Choice {
        deployment,
        index,
        marked,
    }) = crate::choice::first(model, known, view, pick)
    else {
        return Err(Reply::error(
            ErrorCode::UpstreamError,
            &format!("The model '{}' has no provider configured.", model.id),
        ));
    };
    let route = model
        .routes
        .get(index)
        .filter(|r| !r.cluster.is_empty() && r.attempts.first() == Some(&(index as u32)))
        .map(|r| (r.cluster.clone(), r.attempts.len()));
    let upstream = snapshot
        .upstreams
        .get(&deployment.provider)
        .ok_or_else(|| Reply::error(ErrorCode::UpstreamError, "The provider is gone."))?;
    let endpoint = admitted.endpoint;
    let um = deployment.upstream_model.as_str();
    if endpoint == Endpoint::CountTokens && upstream.kind.wire() != Wire::Anthropic {
        return Ok(BodyDecision::Estimated(crate::usage::estimate_tokens(
            body.prompt_weight,
        )));
    }
    let Some(path) = routing::upstream_path(upstream.kind, &upstream.base.path, endpoint, um)
    else {
        return Err(Reply::with_param(
            ErrorCode::InvalidRequest,
            &format!(
                "The model '{}' is served by a provider that does not offer this endpoint.",
                model.id
            ),
            "model",
        ));
    };
    let openai_usage = matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Completions);
    let (new_body, translation, ask_usage, hide_usage, meter_endpoint) =
        match (endpoint.wire(), upstream.kind.wire()) {
            (Wire::OpenAi, Wire::OpenAi) => {
                let ask = body.stream && openai_usage;
                (
                    body.rewrite(um, ask),
                    Translation::None,
                    ask,
                    ask && !body.include_usage,
                    endpoint,
                )
            }
            // The translated stream always ends with a usage chunk; the
            // meter hides it from a client that did not ask.
            (Wire::OpenAi, Wire::Anthropic) => (
                tollgate_translate::to_anthropic::request(raw, um).map_err(refused)?,
                Translation::ToAnthropic,
                false,
                body.stream && !body.include_usage,
                Endpoint::ChatCompletions,
            ),
            (Wire::Anthropic, Wire::OpenAi) => (
                tollgate_translate::from_anthropic::request(raw, um).map_err(refused)?,
                Translation::FromAnthropic,
                body.stream,
                false,
                Endpoint::ChatCompletions,
            ),
            (Wire::Anthropic, Wire::Anthropic) => (
                body.rewrite(um, false),
                Translation::None,
                false,
                false,
                endpoint,
            ),
        };
    Ok(BodyDecision::Forward(Box::new(Forward {
        authority: upstream.base.authority.clone(),
        path,
        cluster: if upstream.base.tls {
            Cluster::Tls
        } else {
            Cluster::Plain
        },
        credential: upstream.credential.clone(),
        anthropic_upstream: upstream.kind.wire() == Wire::Anthropic,
        translation,
        body: new_body,
        model: model.id.clone(),
        upstream_model: deployment.upstream_model.clone(),
        provider: upstream.id.clone(),
        stream: body.stream,
        ask_usage,
        hide_usage,
        meter_endpoint,
        metered: endpoint != Endpoint::CountTokens,
        prompt_weight: body.prompt_weight,
        max_output: body.max_output,
        input_nanos_per_1m: model.input_nanos_per_1m,
        output_nanos_per_1m: model.output_nanos_per_1m,
        deployment: index as u32,
        route,
        marked,
        first_byte_timeout_ms: deployment.first_byte_timeout_ms,
    })))
}

/// Client text echoed in an error, cut short.
fn truncate(s: &str) -> String {
    s.chars().take(128).collect()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
