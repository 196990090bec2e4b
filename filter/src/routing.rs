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
    /// `GET /v1/models`, `/v1/models/{id}`, `/v1/models/catalog`: the control plane answers.
    Models,
    /// `GET /v1/usage`: the control plane answers.
    Usage,
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
            Endpoint::Models | Endpoint::Usage | Endpoint::Status => None,
        }
    }

    pub fn has_body(self) -> bool {
        self.upstream_suffix().is_some()
    }

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Completions => "completions",
            Endpoint::Responses => "responses",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Images => "images",
            Endpoint::Models => "models",
            Endpoint::Usage => "usage",
            Endpoint::Status => "status",
        }
    }
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
        b"/v1/models" => (Endpoint::Models, b"GET"),
        b"/v1/usage" => (Endpoint::Usage, b"GET"),
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

/// Picks a deployment: the lowest priority among those whose provider is
/// known, then by weight within it. `pick` is any number (a fresh one per
/// request spreads traffic by weight).
pub fn choose(
    deployments: &[Deployment],
    provider_known: impl Fn(&str) -> bool,
    pick: u64,
) -> Option<&Deployment> {
    let usable = || deployments.iter().filter(|d| provider_known(&d.provider));
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
