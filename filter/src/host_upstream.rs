//! The proxy-wasm glue of the upstream role (`upstream.rs`): the same
//! filter in a failover cluster's upstream filter chain, once per attempt.
//! It reads the snapshot of the listener filter on the same worker: Envoy
//! runs both in one VM per worker (same `vm_id`, code and VM config), and
//! the listener filter leaves its worker state in `DOWNSTREAM`. It only
//! moves bytes: every decision is the pipeline's.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::attempt::PREPARED;
use crate::host_env::{now_ms, SharedData};
use crate::reply::Reply;
use crate::upstream::{BodyStep, Head, HeadStep, Upstream};
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

fn header(map: MapType, name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(map, name).ok().flatten()
}

/// Answers the attempt here (Envoy may retry it on the next deployment).
fn refuse(reply: &Reply) {
    let _ = hostcalls::send_http_response(
        u32::from(reply.status),
        vec![("content-type", "application/json")],
        Some(&reply.body),
    );
}

#[derive(Default)]
pub struct UpstreamHttp {
    upstream: Upstream,
}

impl Context for UpstreamHttp {
    fn on_done(&mut self) -> bool {
        self.upstream.on_done(&SharedData, now_ms());
        true
    }
}

impl HttpContext for UpstreamHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let prepared = header(MapType::HttpRequestHeaders, PREPARED).unwrap_or_default();
        let attempt_count = header(MapType::HttpRequestHeaders, "x-envoy-attempt-count");
        let target = property(&[
            "xds",
            "upstream_host_metadata",
            "filter_metadata",
            "tollgate",
            "target",
        ]);
        let address = property(&["upstream", "address"]).and_then(|a| String::from_utf8(a).ok());
        let snapshot = DOWNSTREAM
            .with(|d| d.borrow().upgrade())
            .and_then(|w| w.borrow().snapshot.clone());
        let head = Head {
            prepared: &prepared,
            attempt_count: attempt_count.as_deref(),
            target: target.as_deref(),
            address: address.as_deref(),
        };
        match self
            .upstream
            .on_request_headers(snapshot, &head, &SharedData, now_ms())
        {
            HeadStep::Send(headers) => {
                for (name, value) in &headers {
                    if let Err(status) = hostcalls::set_map_value_bytes(
                        MapType::HttpRequestHeaders,
                        name,
                        value.as_deref(),
                    ) {
                        log::warn!("tollgate upstream: cannot set header {name}: {status:?}");
                        refuse(&self.upstream.not_written(&format!("header {name}")));
                        return Action::Pause;
                    }
                }
                Action::Continue
            }
            HeadStep::Refuse(reply) => {
                refuse(&reply);
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let read = || {
            hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        match self.upstream.on_request_body(end_of_stream, read) {
            BodyStep::Continue => Action::Continue,
            BodyStep::Pause => Action::Pause,
            BodyStep::Replace(new) => {
                if let Err(status) =
                    hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &new)
                {
                    log::error!("tollgate upstream: cannot rewrite the body: {status:?}");
                    refuse(&self.upstream.not_written("the body"));
                    return Action::Pause;
                }
                Action::Continue
            }
            BodyStep::Refuse(reply) => {
                refuse(&reply);
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let status = header(MapType::HttpResponseHeaders, ":status").unwrap_or_default();
        let retry_after =
            || header(MapType::HttpResponseHeaders, "retry-after").unwrap_or_default();
        let changes =
            self.upstream
                .on_response_headers(&SharedData, &status, retry_after, now_ms());
        for (name, value) in &changes {
            let _ = hostcalls::set_map_value_bytes(
                MapType::HttpResponseHeaders,
                name,
                value.as_deref(),
            );
        }
        Action::Continue
    }
}
