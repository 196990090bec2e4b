//! Where a forwarded request goes: the forward proxy to its one deployment,
//! or the failover cluster that starts at it (docs/routing.md); and, on the
//! way back, which deployment answered and what a failed one turns into.

use tollgate_contract::ErrorCode;

use crate::attempt::PREPARED;
use crate::config::PluginConfig;
use crate::decide::{Cluster, Forward, Translation};
use crate::reply::Reply;
use crate::routing::{Endpoint, Wire};
use crate::snapshot::Compiled;
use crate::worker::Worker;
use tollgate_contract::snapshot::Deployment;

use super::{set, HeaderChange};

/// The failover a request was sent on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub model: String,
    /// How many deployments the cluster may try.
    pub attempts: usize,
    /// Deployments with a health mark at the choice (`Forward::marked`).
    pub marked: Vec<u32>,
}

/// Envoy's router headers a client could send to steer retries and
/// timeouts: removed (with the gateway's own) before anything reads them.
pub fn is_router_header(name: &str) -> bool {
    name.starts_with("x-envoy-")
}

/// The cluster header, the retry bound and (for a failover cluster) the
/// plan the upstream role reads on each attempt.
pub fn headers(
    config: &PluginConfig,
    worker: &Worker,
    f: &Forward,
    endpoint: Endpoint,
    now_ms: u64,
) -> (Vec<HeaderChange>, Option<Routed>) {
    let failover = f
        .route
        .as_ref()
        .filter(|(name, _)| config.failover && worker.cluster_ready(name, now_ms));
    let mut out = Vec::with_capacity(4);
    if let Some(ms) = f.first_byte_timeout_ms {
        out.push(set(PER_TRY_TIMEOUT, ms.to_string().as_bytes()));
    }
    let Some((cluster, attempts)) = failover else {
        let cluster = match f.cluster {
            Cluster::Plain => config.upstream_cluster.as_str(),
            Cluster::Tls => config.upstream_tls_cluster.as_str(),
        };
        // One deployment: Envoy must not send it the request twice.
        out.push(set(tollgate_contract::headers::CLUSTER, cluster.as_bytes()));
        out.push(set("x-envoy-max-retries", b"0"));
        return (out, None);
    };
    let retries = attempts.saturating_sub(1).to_string();
    // The body's API goes last: an attempt on a deployment of the other API
    // translates it (`attempt/cross.rs`).
    let body_wire = if f.anthropic_upstream {
        Wire::Anthropic
    } else {
        Wire::OpenAi
    };
    let plan = format!(
        "{}:{}:{}:{}",
        f.deployment,
        endpoint.name(),
        f.credential_id,
        body_wire.name()
    );
    out.push(set(tollgate_contract::headers::CLUSTER, cluster.as_bytes()));
    out.push(set("x-envoy-max-retries", retries.as_bytes()));
    out.push(set(PREPARED, plan.as_bytes()));
    (
        out,
        Some(Routed {
            model: f.model.clone(),
            attempts: *attempts,
            marked: f.marked.clone(),
        }),
    )
}

/// Envoy's per-attempt timeout until the response headers (the router
/// retries an attempt that times out, on the next deployment).
pub const PER_TRY_TIMEOUT: &str = "x-envoy-upstream-rq-per-try-timeout-ms";

/// `x-tollgate-served: <deployment>;<attempt>` from the upstream role.
pub fn served(raw: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(raw).ok()?;
    let (d, n) = text.split_once(';')?;
    Some((d.parse().ok()?, n.parse().ok()?))
}

/// Deployment `index` of `model`: the one that answered (`served`).
pub fn served_deployment<'a>(
    snapshot: &'a Compiled,
    model: &str,
    index: u32,
) -> Option<&'a Deployment> {
    snapshot.models.get(model)?.deployments.get(index as usize)
}

/// When deployment `d` answered a client of `endpoint` and speaks another
/// API than `prepared` (the one the request was written for): the
/// translation of its answer to the client's API and the shape the meter
/// reads (`decide::answer_shape`). `None`: the answer is of the API the
/// request was written for.
pub fn reshape_for(
    snapshot: &Compiled,
    d: &Deployment,
    endpoint: Endpoint,
    prepared: Wire,
) -> Option<(Translation, Endpoint)> {
    let wire = snapshot.upstreams.get(&d.provider)?.kind.wire();
    (wire != prepared).then(|| crate::decide::answer_shape(endpoint, wire))
}

/// What a client gets instead of a 5xx left after every retry Envoy made:
/// the gateway's own error, which names how many deployments were tried and
/// never a provider's address. `from_upstream`: a provider's answer (else
/// Envoy's own, as when no deployment could be reached).
pub fn failed(status: u16, tried: u32, from_upstream: bool) -> Option<Reply> {
    let what = if tried == 1 {
        "the one deployment tried".to_string()
    } else {
        format!("each of the {tried} deployments tried")
    };
    // The provider refused the gateway's own credential (a key pool's
    // credentials are disabled by it): the client's request is not at fault.
    if matches!(status, 401 | 403) && from_upstream {
        let what = if tried == 1 {
            "the one attempt".to_string()
        } else {
            format!("each of the {tried} attempts (deployment and credential)")
        };
        return Some(Reply::error(
            ErrorCode::UpstreamError,
            &format!("The upstream refused the gateway's credential on {what}."),
        ));
    }
    if !(500..=599).contains(&status) {
        return None;
    }
    Some(if status == 504 {
        Reply::error(
            ErrorCode::UpstreamTimeout,
            &format!("The upstream did not answer in time ({what})."),
        )
    } else if from_upstream {
        Reply::error(
            ErrorCode::UpstreamError,
            &format!("The upstream failed with HTTP {status} ({what})."),
        )
    } else {
        Reply::error(
            ErrorCode::UpstreamError,
            &format!("The upstream could not be reached ({what})."),
        )
    })
}

/// Set by Envoy's router on a response that came from an upstream (not on
/// Envoy's own local replies).
pub const FROM_UPSTREAM: &str = "x-envoy-upstream-service-time";

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
