//! Which endpoint a request is for, where a provider lives, and which
//! deployment of a model serves a request.

use tollgate_contract::snapshot::Deployment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Responses,
    Embeddings,
    Images,
    /// `POST /v1/messages`: Anthropic's Messages API.
    Messages,
    /// `POST /v1/messages/count_tokens`: answered by the gateway (estimated).
    CountTokens,
    /// `GET /v1/models`, `/v1/models/{id}`, `/v1/models/catalog`: the control plane answers.
    Models,
    /// `GET /v1/usage`: the control plane answers.
    Usage,
    /// `GET /v1/me` and the legacy billing routes
    /// (`/v1/dashboard/billing/subscription`, `/usage`): the control plane
    /// answers with the caller's balance, spend and limits.
    Account,
    /// `GET /api/status`: no key needed.
    Status,
}

impl Endpoint {
    /// The path below the provider's base URL (which ends in `/v1` for OpenAI).
    pub fn upstream_suffix(self) -> Option<&'static str> {
        match self {
            Endpoint::ChatCompletions => Some("/chat/completions"),
            Endpoint::Completions => Some("/completions"),
            Endpoint::Responses => Some("/responses"),
            Endpoint::Embeddings => Some("/embeddings"),
            Endpoint::Images => Some("/images/generations"),
            Endpoint::Messages => Some("/messages"),
            Endpoint::CountTokens => Some("/messages/count_tokens"),
            Endpoint::Models | Endpoint::Usage | Endpoint::Account | Endpoint::Status => None,
        }
    }

    pub fn has_body(self) -> bool {
        self.upstream_suffix().is_some()
    }

    /// The API the client speaks on this endpoint: its errors take that shape.
    pub fn wire(self) -> Wire {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Wire::Anthropic,
            _ => Wire::OpenAi,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Completions => "completions",
            Endpoint::Responses => "responses",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Images => "images",
            Endpoint::Messages => "messages",
            Endpoint::CountTokens => "count_tokens",
            Endpoint::Models => "models",
            Endpoint::Usage => "usage",
            Endpoint::Account => "account",
            Endpoint::Status => "status",
        }
    }
}

/// The endpoint of `Endpoint::name`.
pub fn endpoint_named(name: &str) -> Option<Endpoint> {
    use Endpoint::*;
    [
        ChatCompletions,
        Completions,
        Responses,
        Embeddings,
        Images,
        Messages,
        CountTokens,
        Models,
        Usage,
        Status,
    ]
    .into_iter()
    .find(|e| e.name() == name)
}

/// An API's wire shape: of a client (by endpoint) or of a provider (by kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wire {
    #[default]
    OpenAi,
    Anthropic,
}

impl Wire {
    /// Its name in `x-tollgate-prepared`.
    pub fn name(self) -> &'static str {
        match self {
            Wire::OpenAi => "openai",
            Wire::Anthropic => "anthropic",
        }
    }

    pub fn named(name: &str) -> Option<Wire> {
        match name {
            "openai" => Some(Wire::OpenAi),
            "anthropic" => Some(Wire::Anthropic),
            _ => None,
        }
    }
}

/// What a provider speaks and how it takes its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI and every OpenAI-compatible API: `Authorization: Bearer`.
    OpenAi,
    /// Anthropic's Messages API: `x-api-key` and `anthropic-version`.
    Anthropic,
    /// Azure OpenAI: `api-key`, and per-deployment paths with `api-version`
    /// (or the `/openai/v1` API, which is OpenAI's paths).
    AzureOpenAi,
}

impl ProviderKind {
    pub fn parse(kind: &str) -> Option<ProviderKind> {
        match kind {
            "openai" => Some(ProviderKind::OpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            "azure_openai" => Some(ProviderKind::AzureOpenAi),
            _ => None,
        }
    }

    pub fn wire(self) -> Wire {
        match self {
            ProviderKind::Anthropic => Wire::Anthropic,
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi => Wire::OpenAi,
        }
    }

    /// The header the provider's credential goes in, and its value.
    pub fn credential(self, api_key: &str) -> (&'static str, String) {
        match self {
            ProviderKind::OpenAi => ("authorization", format!("Bearer {api_key}")),
            ProviderKind::Anthropic => ("x-api-key", api_key.to_string()),
            ProviderKind::AzureOpenAi => ("api-key", api_key.to_string()),
        }
    }
}

/// The `api-version` of Azure OpenAI's deployment paths (the latest GA).
pub const AZURE_API_VERSION: &str = "2024-10-21";
/// The `anthropic-version` sent to an Anthropic provider for a client that
/// sent none (an OpenAI client); an Anthropic client's own goes on as it is.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The upstream path of `endpoint` at a provider whose base URL path is
/// `base` (no trailing `/`), for `upstream_model`.
pub fn upstream_path(
    kind: ProviderKind,
    base: &str,
    endpoint: Endpoint,
    upstream_model: &str,
) -> Option<String> {
    // The provider's own endpoint for what the client asked: a Messages
    // client on an OpenAI-shaped provider is translated to chat completions.
    let suffix = match (kind.wire(), endpoint) {
        (Wire::OpenAi, Endpoint::Messages) => "/chat/completions",
        (Wire::Anthropic, Endpoint::ChatCompletions) => "/messages",
        (Wire::Anthropic, Endpoint::Messages) => "/messages",
        (Wire::Anthropic, Endpoint::CountTokens) => "/messages/count_tokens",
        (Wire::Anthropic, _) | (Wire::OpenAi, Endpoint::CountTokens) => return None,
        (Wire::OpenAi, e) => e.upstream_suffix()?,
    };
    if kind == ProviderKind::AzureOpenAi && !base.ends_with("/v1") {
        return Some(format!(
            "{base}/deployments/{upstream_model}{suffix}?api-version={AZURE_API_VERSION}"
        ));
    }
    Some(format!("{base}{suffix}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed,
}

/// Splits `/path?query` and classifies the path; the method must fit it.
pub fn classify(method: &[u8], path: &[u8]) -> Result<Endpoint, RouteError> {
    let path_only = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (endpoint, want): (Endpoint, &[u8]) = match path_only {
        b"/v1/chat/completions" => (Endpoint::ChatCompletions, b"POST"),
        b"/v1/completions" => (Endpoint::Completions, b"POST"),
        b"/v1/responses" => (Endpoint::Responses, b"POST"),
        b"/v1/embeddings" => (Endpoint::Embeddings, b"POST"),
        b"/v1/images/generations" => (Endpoint::Images, b"POST"),
        b"/v1/messages" => (Endpoint::Messages, b"POST"),
        b"/v1/messages/count_tokens" => (Endpoint::CountTokens, b"POST"),
        b"/v1/models" => (Endpoint::Models, b"GET"),
        b"/v1/usage" | b"/v1/usage/summary" => (Endpoint::Usage, b"GET"),
        b"/v1/me" | b"/v1/dashboard/billing/subscription" | b"/v1/dashboard/billing/usage" => {
            (Endpoint::Account, b"GET")
        }
        b"/api/status" => (Endpoint::Status, b"GET"),
        p if p.starts_with(b"/v1/models/") => (Endpoint::Models, b"GET"),
        _ => return Err(RouteError::NotFound),
    };
    if method == want || (want == b"GET" && method == b"HEAD") {
        Ok(endpoint)
    } else {
        Err(RouteError::MethodNotAllowed)
    }
}

/// The query string of a request path, if any.
pub fn query(path: &[u8]) -> Option<&[u8]> {
    let at = path.iter().position(|&b| b == b'?')?;
    path.get(at + 1..)
}

pub use tollgate_contract::url::{parse_base_url, BaseUrl};

/// Picks a deployment: the lowest priority among the usable ones (a
/// provider that is known, not cooling down), then by weight within it.
/// `pick` is any number (a fresh one per request spreads traffic by weight).
pub fn choose(
    deployments: &[Deployment],
    usable: impl Fn(&Deployment) -> bool,
    pick: u64,
) -> Option<&Deployment> {
    let usable = || deployments.iter().filter(|d| usable(d));
    let best = usable().map(|d| d.priority).min()?;
    let group = || usable().filter(move |d| d.priority == best);
    let total: u64 = group().map(|d| u64::from(d.weight)).sum();
    if total == 0 {
        return group().next();
    }
    let mut point = pick % total;
    for d in group() {
        let w = u64::from(d.weight);
        if point < w {
            return Some(d);
        }
        point -= w;
    }
    group().next()
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
