//! The proxy-wasm glue: one struct per context, callbacks in Envoy's order,
//! each gathering bytes from the host, calling the pipeline and applying
//! the `Outcome` it returns. Host calls go through `hostcalls` (which return
//! errors) rather than the SDK's trait helpers (which unwrap and would trap
//! the VM).

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};

use crate::host_env::{now_ms, SharedData};
use crate::idle::Step;
use crate::pipeline::{BodyChange, Outcome, Request, Then, Worker};
use crate::reply::Reply;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::Root::new()) });
}}

mod deferred;
mod root;

fn buffer(kind: BufferType, size: usize) -> Vec<u8> {
    hostcalls::get_buffer(kind, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

struct Http {
    id: u32,
    worker: Rc<RefCell<Worker>>,
    request: Request,
    replies: Rc<deferred::Deferred>,
}

/// When a local reply goes: request-side ones on the event loop's next turn
/// (`deferred.rs`: so that a pipelined connection is not ended), response-side
/// ones at once.
#[derive(Clone, Copy)]
enum Side {
    Request,
    Response,
}

fn set_header(map: MapType, name: &str, value: Option<&[u8]>) {
    if let Err(status) = hostcalls::set_map_value_bytes(map, name, value) {
        log::warn!("tollgate: cannot set header {name}: {status:?}");
    }
}

impl Http {
    /// Applies a request-side outcome: headers, then the body, then the step.
    fn apply(&mut self, outcome: Outcome, body_size: usize) -> Action {
        for (name, value) in &outcome.headers {
            set_header(MapType::HttpRequestHeaders, name, value.as_deref());
        }
        let written = match &outcome.body {
            BodyChange::Keep => Ok(()),
            BodyChange::Replace(new) => {
                hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, new)
            }
            BodyChange::Discard => {
                hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &[])
            }
        };
        if let Err(status) = written {
            log::error!(
                "#{} tollgate: cannot write the request body: {status:?}",
                self.id
            );
            let reply = self.request.body_not_written(&SharedData, now_ms());
            return self.send(&reply, Side::Request);
        }
        self.step(outcome.then, Side::Request)
    }

    fn step(&self, then: Then, side: Side) -> Action {
        match then {
            Then::Continue => Action::Continue,
            Then::Pause => Action::Pause,
            Then::Reply(reply) => self.send(&reply, side),
        }
    }

    fn send(&self, reply: &Reply, side: Side) -> Action {
        if reply.code.is_some() {
            let mut worker = self.worker.borrow_mut();
            worker.count_reply(reply);
            crate::host_metrics::write(&mut worker);
        }
        let (headers, body) = self.request.answer(reply);
        let status = u32::from(reply.status);
        match side {
            Side::Request => self.replies.send(self.id, status, &headers, &body),
            Side::Response => deferred::send_now(self.id, status, &headers, &body),
        }
        Action::Pause
    }
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let outcome = self.request.on_request_headers(
            &mut self.worker.borrow_mut(),
            &SharedData,
            &headers,
            end_of_stream,
            now_ms(),
        );
        self.apply(outcome, 0)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let outcome = self.request.on_request_body(
            &mut self.worker.borrow_mut(),
            &SharedData,
            body_size,
            end_of_stream,
            || buffer(BufferType::HttpRequestBody, body_size),
            now_ms,
        );
        self.apply(outcome, body_size)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // One host call for every header the pipeline reads: each call that
        // returns bytes also calls back into the VM to allocate them.
        let outcome = self.request.on_response_headers(&SharedData, now_ms, || {
            hostcalls::get_map_bytes(MapType::HttpResponseHeaders).unwrap_or_default()
        });
        for (name, value) in &outcome.headers {
            let _ = hostcalls::set_map_value_bytes(
                MapType::HttpResponseHeaders,
                name,
                value.as_deref(),
            );
        }
        let idle = self.request.idle_on_response_headers(&outcome.then);
        if idle != Step::Nothing {
            self.worker.borrow_mut().idle.apply(self.id, idle, now_ms());
        }
        self.step(outcome.then, Side::Response)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let replacement = self.request.on_response_body(
            body_size,
            end_of_stream,
            || buffer(BufferType::HttpResponseBody, body_size),
            now_ms,
        );
        let idle = self.request.idle_on_response_body(end_of_stream);
        if idle != Step::Nothing && self.worker.borrow_mut().idle.apply(self.id, idle, now_ms()) {
            self.request.cut_by_idle_watch();
        }
        if let Some(replacement) = replacement {
            if let Err(status) =
                hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &replacement)
            {
                log::error!(
                    "#{} tollgate: cannot rewrite a response chunk: {status:?}",
                    self.id
                );
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // The status seen in the response headers; the property lookup (a
        // costlier host call) only when none came (the client left first).
        let response_code = || {
            hostcalls::get_property(vec!["response", "code"])
                .ok()
                .flatten()
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map(u64::from_le_bytes)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0)
        };
        // The whole record in one filter-state entry for the access log
        // (each entry is a costly host call; the tokens are in the record).
        let access_log = |json: &[u8]| {
            let _ = hostcalls::set_property(vec!["tollgate_usage"], Some(json));
        };
        let mut worker = self.worker.borrow_mut();
        let idle = self.request.idle_on_end();
        if worker.idle.apply(self.id, idle, 0) {
            self.request.cut_by_idle_watch();
        }
        self.request.on_end(
            &mut worker,
            &SharedData,
            now_ms(),
            response_code,
            access_log,
        );
        crate::host_metrics::write(&mut worker);
    }
}
