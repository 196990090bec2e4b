//! What the body decides: the model, its deployment and the request
//! rewritten for that deployment's provider, or the answer given here.

use tollgate_contract::snapshot::Deployment;
use tollgate_contract::ErrorCode;

use super::{too_large, Admitted};
use crate::reply::Reply;
use crate::request::Body;
use crate::routing::{self, Endpoint, Wire};
use crate::snapshot::Compiled;

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

/// How the answer of a provider speaking `upstream`'s API reaches a client
/// of `endpoint`: the translation, and the endpoint whose shape the meter
/// reads (after translation to the client, or before translation from the
/// upstream: always the one that carries the usage in OpenAI's or
/// Anthropic's own form). The same for the listener's choice and for the
/// deployment that answered after a failover (`pipeline/route.rs`).
pub fn answer_shape(endpoint: Endpoint, upstream: Wire) -> (Translation, Endpoint) {
    match (endpoint.wire(), upstream) {
        (Wire::OpenAi, Wire::Anthropic) => (Translation::ToAnthropic, Endpoint::ChatCompletions),
        (Wire::Anthropic, Wire::OpenAi) => (Translation::FromAnthropic, Endpoint::ChatCompletions),
        _ => (Translation::None, endpoint),
    }
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
    /// The id of that credential in the provider's key pool ("" without one).
    pub credential_id: String,
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
    /// The model chooses by latency: its answers' times are measured.
    pub least_latency: bool,
    /// The chosen deployment's first-byte timeout (Envoy's per-try timeout:
    /// it applies to each attempt of the request).
    pub first_byte_timeout_ms: Option<u32>,
    /// The chosen deployment's idle timeout between body pieces (the
    /// deployment that answers decides, `pipeline/response.rs`).
    pub idle_timeout_ms: Option<u32>,
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
    // A provider whose key pool is all disabled serves nothing.
    let known = |d: &Deployment| {
        snapshot
            .upstreams
            .get(&d.provider)
            .is_some_and(|u| !u.exhausted)
    };
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
    let (translation, meter_endpoint) = answer_shape(endpoint, upstream.kind.wire());
    // `hide_usage` is the same whichever API answers a client (an answer
    // from another deployment after a failover keeps it).
    let (new_body, ask_usage, hide_usage) = match (endpoint.wire(), upstream.kind.wire()) {
        (Wire::OpenAi, Wire::OpenAi) => {
            let ask = body.stream && openai_usage;
            (body.rewrite(um, ask), ask, ask && !body.include_usage)
        }
        // The translated stream always ends with a usage chunk; the
        // meter hides it from a client that did not ask.
        (Wire::OpenAi, Wire::Anthropic) => (
            tollgate_translate::to_anthropic::request(raw, um).map_err(refused)?,
            false,
            body.stream && !body.include_usage,
        ),
        (Wire::Anthropic, Wire::OpenAi) => (
            tollgate_translate::from_anthropic::request(raw, um).map_err(refused)?,
            body.stream,
            false,
        ),
        (Wire::Anthropic, Wire::Anthropic) => (body.rewrite(um, false), false, false),
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
        credential_id: upstream
            .pool
            .first()
            .map(|k| k.id.clone())
            .unwrap_or_default(),
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
        least_latency: model.strategy == tollgate_contract::snapshot::Strategy::LeastLatency,
        first_byte_timeout_ms: deployment.first_byte_timeout_ms,
        idle_timeout_ms: deployment.idle_timeout_ms,
    })))
}

/// Client text echoed in an error, cut short.
fn truncate(s: &str) -> String {
    s.chars().take(128).collect()
}
