//! The upstream role's pipeline: one per attempt, in a failover cluster's
//! upstream filter chain (docs/routing.md). Both hosts (`host_upstream.rs`,
//! proxy-wasm; `filter-native/src/upstream.rs`, the dynamic module) hand it
//! the bytes they read and apply what it returns; every decision of an
//! attempt is here:
//!
//! - request headers: the rewrite for the deployment this attempt got, or a
//!   refusal (`attempt::on_attempt`);
//! - request body: whether to wait for it and what it becomes, its model
//!   and, for a deployment of another API, its translation
//!   ([`Upstream::rewrite`], the one place an attempt's body is decided), or
//!   a refusal when it cannot be translated;
//! - response headers: which pool credential is benched (429) or disabled
//!   (401/403) and until when, whether the deployment cools down (429) or
//!   failed (5xx), and the `x-tollgate-served` header for the listener;
//! - the end: an attempt that got no response headers failed its deployment.

use std::borrow::Cow;
use std::sync::Arc;

use crate::attempt::cross::Cross;
use crate::attempt::{self, Attempt, AttemptDecision, HeaderChange, SERVED};
use crate::credentials;
use crate::health;
use crate::limits::Store;
use crate::reply::Reply;
use crate::snapshot::Compiled;
use tollgate_contract::ErrorCode;

/// What a host read from Envoy for one attempt's request headers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Head<'a> {
    /// The `x-tollgate-prepared` header ("" when absent).
    pub prepared: &'a [u8],
    /// `x-envoy-attempt-count`.
    pub attempt_count: Option<&'a [u8]>,
    /// `filter_metadata.tollgate.target` of the host Envoy chose:
    /// `<deployment>:<model>`.
    pub target: Option<&'a [u8]>,
    /// `upstream.address`: where this attempt connects.
    pub address: Option<&'a str>,
}

/// What the host does with the request headers.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadStep {
    /// Write these headers (`None` removes one), then go on.
    Send(Vec<HeaderChange>),
    /// Answer this attempt here (Envoy may retry on the next deployment).
    Refuse(Reply),
}

/// What the host does with a piece of the request body.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyStep {
    Continue,
    /// Keep buffering: the body is read once it is whole.
    Pause,
    /// The whole body becomes this.
    Replace(Vec<u8>),
    /// Answer this attempt here: the body cannot be sent to this
    /// deployment (its API cannot take it). Not a failure of the deployment.
    Refuse(Reply),
}

/// One attempt.
#[derive(Debug, Default)]
pub struct Upstream {
    attempt: u32,
    /// The deployment this attempt went to, and its model.
    served: Option<u32>,
    model: Option<String>,
    /// The body's `model` must be this (`None`: the body passes as it is).
    body_model: Option<String>,
    /// The body is translated to this attempt's deployment's API.
    cross: Option<Cross>,
    /// Response headers came.
    answered: bool,
    /// The end was seen (a host may report it twice).
    done: bool,
    /// The pool credential this attempt sent ("" without a pool), and the
    /// snapshot it is in.
    credential: String,
    snapshot: Option<Arc<Compiled>>,
}

fn text(bytes: Option<&[u8]>) -> Option<&str> {
    std::str::from_utf8(bytes?).ok()
}

/// `<deployment>:<model>` of a failover cluster's host.
fn parse_target(target: Option<&[u8]>) -> (Option<u32>, Option<&str>) {
    match text(target).and_then(|t| t.split_once(':')) {
        Some((d, m)) => (d.parse().ok(), Some(m)),
        None => (None, None),
    }
}

impl Upstream {
    /// The request headers of this attempt; `snapshot` is the listener's.
    pub fn on_request_headers(
        &mut self,
        snapshot: Option<Arc<Compiled>>,
        head: &Head,
        store: &dyn Store,
        now_ms: u64,
    ) -> HeadStep {
        self.attempt = text(head.attempt_count)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(1);
        let (deployment, model) = parse_target(head.target);
        let decision = attempt::on_attempt(
            snapshot.as_deref(),
            &Attempt {
                prepared: head.prepared,
                model,
                deployment,
                address: head.address,
                attempt: self.attempt,
                store,
                now_ms,
            },
        );
        match decision {
            AttemptDecision::Send {
                headers,
                body_model,
                cross,
                served,
                credential,
            } => {
                if self.attempt > 1 {
                    log::info!(
                        "tollgate: attempt {} of model {} goes to deployment {served}",
                        self.attempt,
                        model.unwrap_or_default()
                    );
                }
                self.body_model = body_model;
                self.cross = cross;
                self.served = Some(served);
                self.model = model.map(str::to_string);
                self.credential = credential;
                self.snapshot = snapshot;
                HeadStep::Send(headers)
            }
            AttemptDecision::Refuse(reply) => {
                log::warn!(
                    "tollgate upstream: attempt {} refused: {}",
                    self.attempt,
                    String::from_utf8_lossy(&reply.body)
                );
                HeadStep::Refuse(reply)
            }
        }
    }

    /// Whether the body is to be looked at at all (else it streams through).
    pub fn reads_body(&self) -> bool {
        self.body_model.is_some()
    }

    /// A piece of the request body; `read` gives the whole body so far,
    /// called only once it is whole.
    pub fn on_request_body(
        &mut self,
        end_of_stream: bool,
        read: impl FnOnce() -> Vec<u8>,
    ) -> BodyStep {
        if !self.reads_body() {
            return BodyStep::Continue;
        }
        if !end_of_stream {
            return BodyStep::Pause;
        }
        match self.rewrite(&read()) {
            Ok(Some(new)) => BodyStep::Replace(new),
            Ok(None) => BodyStep::Continue,
            Err(reply) => {
                log::warn!(
                    "tollgate upstream: attempt {} refused: {}",
                    self.attempt,
                    String::from_utf8_lossy(&reply.body)
                );
                // The request's fault, not the deployment's: no failure
                // counted at the end, as for a refusal at the headers.
                self.served = None;
                BodyStep::Refuse(reply)
            }
        }
    }

    /// The host could not write one of this attempt's headers or its body:
    /// the attempt is refused, never sent on (its headers may still carry
    /// the previous attempt's credential). The gateway's failure, not the
    /// deployment's.
    pub fn not_written(&mut self, what: &str) -> Reply {
        log::error!(
            "tollgate upstream: attempt {}: cannot write {what}; refused",
            self.attempt
        );
        self.served = None;
        Reply::error(
            ErrorCode::Internal,
            "The gateway could not prepare this attempt.",
        )
    }

    /// The body this attempt sends, when it differs from `body` (its
    /// `model`, and its API when the deployment speaks another one): the one
    /// place an attempt's body is decided. An error refuses the attempt.
    pub fn rewrite(&self, body: &[u8]) -> Result<Option<Vec<u8>>, Reply> {
        let Some(model) = self.body_model.as_deref() else {
            return Ok(None);
        };
        attempt::cross::rebody(body, model, self.cross)
    }

    /// The response headers of this attempt (`:status` and, for a 429,
    /// `Retry-After`, read only then): the marks of its credential and
    /// deployment, and the headers to set on the response.
    pub fn on_response_headers(
        &mut self,
        store: &dyn Store,
        status: &[u8],
        retry_after: impl FnOnce() -> Vec<u8>,
        now_ms: u64,
    ) -> Vec<HeaderChange> {
        self.answered = true;
        let Some(served) = self.served else {
            return Vec::new();
        };
        if let Some(model) = self.model.as_deref() {
            let status = crate::pipeline::parse_status(status).unwrap_or(0);
            let mut cooled = (status == 429)
                .then(|| health::until(status, &retry_after(), now_ms))
                .flatten();
            if matches!(status, 401 | 403 | 429) {
                // The credential is benched or disabled; the deployment
                // cools down only when its pool has none left to use.
                let until = cooled.unwrap_or_default();
                if self.mark_credential(store, model, served, status, until, now_ms) {
                    cooled = None;
                }
            }
            if let Some(until) = cooled {
                log::info!(
                    "tollgate: deployment {served} of model {model} answered 429; cooling down"
                );
                health::cool(store, model, served as usize, until);
            } else if status >= 500 {
                health::failed(store, model, served as usize, now_ms);
            }
        }
        let value = format!("{served};{}", self.attempt);
        vec![(Cow::Borrowed(SERVED), Some(value.into_bytes()))]
    }

    /// The attempt ended. Without response headers (a refused connection, a
    /// reset, no headers within the first-byte timeout) it is a failure of
    /// its deployment. Only the first call counts.
    pub fn on_done(&mut self, store: &dyn Store, now_ms: u64) {
        if std::mem::replace(&mut self.done, true) || self.answered {
            return;
        }
        if let (Some(served), Some(model)) = (self.served, self.model.as_deref()) {
            log::info!("tollgate: deployment {served} of model {model} did not answer");
            health::failed(store, model, served as usize, now_ms);
        }
    }

    /// Benches (429, until `until`) or disables (401/403) the pool
    /// credential this attempt sent; whether its pool still has a usable
    /// one.
    fn mark_credential(
        &self,
        store: &dyn Store,
        model: &str,
        served: u32,
        status: u16,
        until: u64,
        now_ms: u64,
    ) -> bool {
        let Some(snapshot) = self.snapshot.as_deref() else {
            return false;
        };
        let Some(upstream) = snapshot
            .models
            .get(model)
            .and_then(|m| m.deployments.get(served as usize))
            .and_then(|d| snapshot.upstreams.get(&d.provider))
        else {
            return false;
        };
        let Some(k) = upstream.pool.iter().find(|k| k.id == self.credential) else {
            return false;
        };
        if status == 429 {
            log::info!(
                "tollgate: a credential of provider {} answered 429; benched",
                upstream.id
            );
            credentials::bench(store, &upstream.id, k, until, status);
        } else {
            log::warn!(
                "tollgate: a credential of provider {} answered {status}; disabled",
                upstream.id
            );
            credentials::disable(store, &upstream.id, k, status);
        }
        credentials::any_usable(store, upstream, now_ms)
    }
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
