//! The proxy-wasm glue of the upstream role (`attempt.rs`): the same
//! filter in a failover cluster's upstream filter chain, once per attempt.
//! It reads the snapshot of the listener filter on the same worker: Envoy
//! runs both in one VM per worker (same `vm_id`, code and VM config), and
//! the listener filter leaves its worker state in `DOWNSTREAM`.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::attempt::{self, Attempt, AttemptDecision, PREPARED, SERVED};
use crate::credentials;
use crate::health;
use crate::host_env::{now_ms, SharedData};
use crate::snapshot::Compiled;
use crate::worker::Worker;

thread_local! {
    static DOWNSTREAM: RefCell<Weak<RefCell<Worker>>> = const { RefCell::new(Weak::new()) };
}

/// Called by the listener filter's root once it is configured.
pub fn register(worker: &Rc<RefCell<Worker>>) {
    DOWNSTREAM.with(|d| *d.borrow_mut() = Rc::downgrade(worker));
}

fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    String::from_utf8(bytes?).ok()
}

#[derive(Default)]
pub struct UpstreamHttp {
    body_model: Option<String>,
    /// The body is translated to this attempt's deployment's API.
    cross: Option<attempt::cross::Cross>,
    served: Option<u32>,
    model: Option<String>,
    attempt: u32,
    /// Response headers came for this attempt.
    answered: bool,
    /// The pool credential this attempt sent ("" without a pool), and the
    /// snapshot it is in.
    credential: String,
    snapshot: Option<std::sync::Arc<Compiled>>,
}

impl Context for UpstreamHttp {
    /// The attempt ended without response headers (a refused connection, a
    /// reset, no headers within the first-byte timeout): a failure of its
    /// deployment.
    fn on_done(&mut self) -> bool {
        if let (false, Some(served), Some(model)) =
            (self.answered, self.served, self.model.as_deref())
        {
            log::info!("tollgate: deployment {served} of model {model} did not answer");
            health::failed(&SharedData, model, served as usize, now_ms());
        }
        true
    }
}

impl UpstreamHttp {
    /// Benches (429, until `until`) or disables (401/403) the pool
    /// credential this attempt sent; whether its pool still has a usable
    /// one.
    fn mark_credential(&self, model: &str, served: u32, status: u16, until: u64) -> bool {
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
            credentials::bench(&SharedData, &upstream.id, k, until, status);
        } else {
            log::warn!(
                "tollgate: a credential of provider {} answered {status}; disabled",
                upstream.id
            );
            credentials::disable(&SharedData, &upstream.id, k, status);
        }
        credentials::any_usable(&SharedData, upstream, now_ms())
    }
}

impl HttpContext for UpstreamHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let header = |name: &str| {
            hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
                .ok()
                .flatten()
        };
        let prepared = header(PREPARED).unwrap_or_default();
        self.attempt = text(header("x-envoy-attempt-count"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        // `<deployment>:<model>` of the host this attempt got.
        let target = text(property(&[
            "xds",
            "upstream_host_metadata",
            "filter_metadata",
            "tollgate",
            "target",
        ]));
        let (deployment, model) = match target.as_deref().and_then(|t| t.split_once(':')) {
            Some((d, m)) => (d.parse().ok(), Some(m.to_string())),
            None => (None, None),
        };
        let address = text(property(&["upstream", "address"]));
        let snapshot = DOWNSTREAM
            .with(|d| d.borrow().upgrade())
            .and_then(|w| w.borrow().snapshot.clone());
        let decision = attempt::on_attempt(
            snapshot.as_deref(),
            &Attempt {
                prepared: &prepared,
                model: model.as_deref(),
                deployment,
                address: address.as_deref(),
                attempt: self.attempt,
                store: &SharedData,
                now_ms: now_ms(),
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
                for (name, value) in &headers {
                    if let Err(status) = hostcalls::set_map_value_bytes(
                        MapType::HttpRequestHeaders,
                        name,
                        value.as_deref(),
                    ) {
                        log::warn!("tollgate upstream: cannot set header {name}: {status:?}");
                    }
                }
                if self.attempt > 1 {
                    log::info!(
                        "tollgate: attempt {} of model {} goes to deployment {served}",
                        self.attempt,
                        model.as_deref().unwrap_or_default()
                    );
                }
                self.body_model = body_model;
                self.cross = cross;
                self.served = Some(served);
                self.model = model;
                self.credential = credential;
                self.snapshot = snapshot;
                Action::Continue
            }
            AttemptDecision::Refuse(reply) => {
                log::warn!(
                    "tollgate upstream: attempt {} refused: {}",
                    self.attempt,
                    String::from_utf8_lossy(&reply.body)
                );
                let _ = hostcalls::send_http_response(
                    u32::from(reply.status),
                    vec![("content-type", "application/json")],
                    Some(&reply.body),
                );
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(model) = self.body_model.as_deref() else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        match attempt::cross::rebody(&body, model, self.cross) {
            Ok(Some(new)) => {
                if let Err(status) =
                    hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &new)
                {
                    log::error!("tollgate upstream: cannot rewrite the body: {status:?}");
                }
            }
            Ok(None) => {}
            Err(reply) => {
                log::warn!(
                    "tollgate upstream: attempt {} refused: {}",
                    self.attempt,
                    String::from_utf8_lossy(&reply.body)
                );
                // The request's fault, not the deployment's: no failure
                // counted at `on_done`, as for a refusal at the headers.
                self.served = None;
                let _ = hostcalls::send_http_response(
                    u32::from(reply.status),
                    vec![("content-type", "application/json")],
                    Some(&reply.body),
                );
                return Action::Pause;
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let header = |name: &str| {
            hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        self.answered = true;
        if let (Some(served), Some(model)) = (self.served, self.model.as_deref()) {
            let status = crate::pipeline::parse_status(&header(":status")).unwrap_or(0);
            // The Retry-After is read only when there is one to read.
            let mut cooled = (status == 429)
                .then(|| health::until(status, &header("retry-after"), now_ms()))
                .flatten();
            if matches!(status, 401 | 403 | 429) {
                // The credential is benched or disabled; the deployment
                // cools down only when its pool has none left to use.
                let until = cooled.unwrap_or_default();
                if self.mark_credential(model, served, status, until) {
                    cooled = None;
                }
            }
            if let Some(until) = cooled {
                log::info!(
                    "tollgate: deployment {served} of model {model} answered 429; cooling down"
                );
                health::cool(&SharedData, model, served as usize, until);
            } else if status >= 500 {
                health::failed(&SharedData, model, served as usize, now_ms());
            }
        }
        if let Some(served) = self.served {
            let value = format!("{served};{}", self.attempt);
            let _ = hostcalls::set_map_value_bytes(
                MapType::HttpResponseHeaders,
                SERVED,
                Some(value.as_bytes()),
            );
        }
        Action::Continue
    }
}
