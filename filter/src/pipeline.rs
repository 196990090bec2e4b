//! A request's whole journey through the gateway, in Envoy's order: request
//! headers (route, key, identity for the control plane), request body
//! (model, deployment, limits and budget, the rewrite), response headers
//! (rate-limit headers, status), response body (metering), and the end
//! (release, usage record, outbox).
//!
//! Nothing here names a host. A host (the proxy-wasm glue in `host.rs`, or a
//! native Envoy module) reads bytes from Envoy, calls the step for that
//! callback with them, the shared counters (`Store`) and the time, and
//! applies the `Outcome` it gets back: headers to set and remove, the body to
//! keep, replace or discard, and whether to continue, pause or answer.

use std::borrow::Cow;
use std::sync::Arc;

use tollgate_contract::snapshot::{Account, Key};
use tollgate_contract::{headers, ErrorCode};

use crate::config::PluginConfig;
use crate::decide::{self, Admitted, Forward, Head, HeadDecision};
use crate::limits::{self, Admission, Mode, Plan, Store};
use crate::meter::{self, Meter};
use crate::reply::Reply;
use crate::routing::{self, Wire};
use crate::snapshot::Compiled;
use crate::translate::Translator;
use crate::usage::{self, Tokens};
pub use crate::worker::{Counts, Worker};

/// How much of a refused body is read and discarded before giving up on the
/// client and answering (Envoy then resets the rest).
pub const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
pub use crate::routing::ANTHROPIC_VERSION;

/// A header to write: `None` removes it.
pub type HeaderChange = (Cow<'static, str>, Option<Vec<u8>>);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum BodyChange {
    #[default]
    Keep,
    /// The whole body, in place of what the client sent.
    Replace(Vec<u8>),
    /// Throw this chunk away (a refused request's body being drained).
    Discard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    Continue,
    Pause,
    /// Answer the client with this instead, as `Request::answer` says.
    Reply(Reply),
}

/// What a host does after one callback: the header writes in order, then
/// the body change, then `then`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub headers: Vec<HeaderChange>,
    pub body: BodyChange,
    pub then: Then,
}

impl Outcome {
    fn then(then: Then) -> Outcome {
        Outcome {
            headers: Vec::new(),
            body: BodyChange::Keep,
            then,
        }
    }

    fn after(mut self, mut first: Vec<HeaderChange>) -> Outcome {
        first.append(&mut self.headers);
        self.headers = first;
        self
    }
}

fn set(name: &'static str, value: &[u8]) -> HeaderChange {
    (Cow::Borrowed(name), Some(value.to_vec()))
}

fn remove(name: &'static str) -> HeaderChange {
    (Cow::Borrowed(name), None)
}

/// Where the per-minute buckets are counted: leased from the control plane
/// when the configuration shares limits between Envoys, else here.
pub fn limits_mode(config: &PluginConfig) -> Mode {
    if config.shared_limits {
        Mode::Leased
    } else {
        Mode::Local
    }
}

/// The limits and budgets a request is held to.
pub fn plan(config: &PluginConfig, key: &Key, account: Option<&Account>) -> Plan {
    Plan::new(key, account).leased(limits_mode(config))
}

/// What a request reserves at admission: its prompt's estimated tokens plus
/// its output cap (or a default), and their price.
pub fn estimate(f: &Forward) -> (Tokens, u64) {
    let tokens = Tokens {
        input: usage::estimate_tokens(f.prompt_weight),
        output: f.max_output.unwrap_or(limits::DEFAULT_OUTPUT_RESERVE),
    };
    let nanos = meter::cost(tokens, f.input_nanos_per_1m, f.output_nanos_per_1m);
    (tokens, nanos)
}

/// The headers of a request passed to the control plane: the client's key
/// goes, the caller's identity comes, vouched for by the filter secret.
pub fn identity_headers(config: Option<&PluginConfig>, admitted: &Admitted) -> Vec<HeaderChange> {
    let secret = config
        .map(|c| c.filter_secret.as_bytes())
        .unwrap_or_default();
    vec![
        remove("authorization"),
        remove("api-key"),
        remove("x-api-key"),
        set(headers::FILTER_SECRET, secret),
        set(headers::KEY_ID, admitted.key.id.as_bytes()),
        set(headers::ACCOUNT_ID, admitted.key.account_id.as_bytes()),
    ]
}

/// A status as Envoy gives it (`:status`), or `None`.
pub fn parse_status(raw: &[u8]) -> Option<u16> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

fn header<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> &'h [u8] {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
        .unwrap_or_default()
}

/// One request's state, from its headers to its usage record.
#[derive(Default)]
pub struct Request {
    /// Minted by the filter; the dedup key of the usage record.
    pub id: String,
    started_ms: u64,
    snapshot: Option<Arc<Compiled>>,
    admitted: Option<Admitted>,
    /// Set once the request is forwarded to a provider: it will be billed.
    meter: Option<Meter>,
    /// An error decided before the client finished sending its body: the rest
    /// of the body is read and thrown away first, so that an HTTP/1.1 client
    /// that sends everything before it reads (most SDKs) gets the error
    /// instead of a reset connection.
    draining: Option<(Reply, u64)>,
    /// What the request holds of its limits and budgets until it ends.
    admission: Option<Admission>,
    /// The client sent its key in `api-key` or `x-api-key` (removed before
    /// forwarding; one host call each, so only when present).
    other_key_headers: bool,
    /// The client's `:path`, so that it is rewritten only when it changes.
    client_path: Vec<u8>,
    /// The API the client speaks (by its path): the shape of its errors.
    wire: Wire,
    /// The client sent `anthropic-version` (else one is set for an Anthropic
    /// provider).
    anthropic_version: bool,
    /// The answer's way back, when the provider speaks another API.
    translator: Option<Translator>,
    /// Sent to a failover cluster.
    routed: Option<route::Routed>,
    /// The client's endpoint, for the metrics.
    operation: &'static str,
    /// How many deployments the request was sent to (from the answer).
    attempts: u32,
    /// A `least_latency` model and the deployment first chosen: the answer's
    /// time to headers is a sample of the deployment that served it.
    measured: Option<(String, u32)>,
    /// A successful answer from a provider that names the model otherwise:
    /// its `model` becomes the public id on the way back (`rename.rs`).
    rename: Option<crate::rename::Rename>,
    /// The provider and the id of the pool credential the listener chose
    /// (a 401/403 through the forward proxy disables it).
    credential: Option<(String, String)>,
    /// A request sent to a failover cluster: the client's endpoint and the
    /// API the request was written for, so that an answer from a deployment
    /// of the other API is translated back (`route::reshape`).
    written_for: Option<(routing::Endpoint, Wire)>,
    /// The idle timeout between body pieces of the chosen deployment, then
    /// (from the response headers) of the one that answered.
    idle_timeout_ms: Option<u32>,
    /// Its response is in the host's idle watch (`idle.rs`).
    idle: crate::idle::Armed,
    /// Ended by the idle watch (`idle.rs`): counted in its own metric.
    idle_cut: bool,
}

impl Request {
    /// The request headers, as Envoy has them (lower-case names, raw values).
    pub fn on_request_headers(
        &mut self,
        worker: &mut Worker,
        store: &dyn Store,
        headers: &[(String, Vec<u8>)],
        end_of_stream: bool,
        now_ms: u64,
    ) -> Outcome {
        self.id = worker.ids.next_id();
        self.started_ms = now_ms;
        self.snapshot = worker.snapshot.clone();
        self.other_key_headers = headers
            .iter()
            .any(|(n, _)| n == "api-key" || n == "x-api-key");
        self.anthropic_version = headers.iter().any(|(n, _)| n == "anthropic-version");
        self.wire = routing::classify(header(headers, ":method"), header(headers, ":path"))
            .map(|e| e.wire())
            .unwrap_or_default();
        let mut first: Vec<HeaderChange> = decide::spoofed(headers)
            .into_iter()
            .chain(
                headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| route::is_router_header(n)),
            )
            .map(|name| (Cow::Owned(name.to_string()), None))
            .collect();
        first.push(set("x-request-id", self.id.as_bytes()));
        let head = Head {
            method: header(headers, ":method"),
            path: header(headers, ":path"),
            headers,
            now_s: i64::try_from(now_ms / 1000).unwrap_or(i64::MAX),
        };
        let outcome = match decide::on_head(self.snapshot.as_deref(), &head) {
            HeadDecision::Open => Outcome::then(Then::Continue),
            HeadDecision::Reply(reply) if !end_of_stream => {
                self.draining = Some((reply, 0));
                Outcome::then(Then::Pause)
            }
            HeadDecision::Reply(reply) => Outcome::then(Then::Reply(reply)),
            HeadDecision::ToControlPlane(admitted) => Outcome {
                headers: identity_headers(worker.config.as_deref(), &admitted),
                body: BodyChange::Keep,
                then: Then::Continue,
            },
            HeadDecision::ReadBody(admitted) => {
                self.admitted = Some(admitted);
                self.client_path = head.path.to_vec();
                if end_of_stream {
                    self.forward(worker, store, &[], now_ms)
                } else {
                    Outcome::then(Then::Pause)
                }
            }
        };
        outcome.after(first)
    }

    /// A part of the request body (`body_size` bytes buffered so far). The
    /// body is read (`read`) only once it has ended.
    pub fn on_request_body(
        &mut self,
        worker: &mut Worker,
        store: &dyn Store,
        body_size: usize,
        end_of_stream: bool,
        read: impl FnOnce() -> Vec<u8>,
        now_ms: impl FnOnce() -> u64,
    ) -> Outcome {
        if let Some((reply, drained)) = self.draining.take() {
            return self.drain(reply, drained, body_size, end_of_stream);
        }
        let Some(limit) = self.snapshot.as_ref().map(|s| s.settings.max_body_bytes) else {
            return Outcome::then(Then::Continue);
        };
        if self.admitted.is_none() {
            return Outcome::then(Then::Continue);
        }
        if body_size as u64 > limit {
            self.admitted = None;
            return self.drain(decide::too_large(limit), 0, body_size, end_of_stream);
        }
        if !end_of_stream {
            return Outcome::then(Then::Pause);
        }
        let body = read();
        let outcome = self.forward(worker, store, &body, now_ms());
        self.admitted = None;
        outcome
    }

    /// The host could not apply an outcome's `BodyChange`: the answer to
    /// send instead (a drained refusal at once; a rewrite gives back what
    /// the request took and is a 500).
    pub fn body_not_written(&mut self, store: &dyn Store, now_ms: u64) -> Reply {
        if let Some((reply, _)) = self.draining.take() {
            return reply;
        }
        self.meter = None;
        if let Some(admission) = self.admission.take() {
            limits::release(store, &admission, None, now_ms);
        }
        Reply::error(
            ErrorCode::Internal,
            "The gateway could not forward the request.",
        )
    }

    /// A local reply as the client gets it: its headers, and its body in
    /// the client's shape (Anthropic's error body on Anthropic's API).
    pub fn answer<'a>(&'a self, reply: &'a Reply) -> (Vec<(&'a str, &'a str)>, Cow<'a, [u8]>) {
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/json"),
            ("x-request-id", self.id.as_str()),
        ];
        headers.extend(reply.headers.iter().map(|(n, v)| (*n, v.as_str())));
        let body = if self.wire == Wire::Anthropic {
            Cow::Owned(reply.anthropic_body())
        } else {
            Cow::Borrowed(reply.body.as_slice())
        };
        (headers, body)
    }

    /// Answers `reply` once the request body has ended, discarding what
    /// arrives until then (up to `DRAIN_LIMIT_BYTES`).
    fn drain(&mut self, reply: Reply, drained: u64, body_size: usize, end: bool) -> Outcome {
        let drained = drained.saturating_add(body_size as u64);
        if end || drained > DRAIN_LIMIT_BYTES {
            return Outcome::then(Then::Reply(reply));
        }
        self.draining = Some((reply, drained));
        Outcome {
            headers: Vec::new(),
            body: if body_size > 0 {
                BodyChange::Discard
            } else {
                BodyChange::Keep
            },
            then: Then::Pause,
        }
    }
}

mod forward;
mod response;
mod route;

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
