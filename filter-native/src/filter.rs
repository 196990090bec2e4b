//! The HTTP filter hooks: each gathers bytes from Envoy, calls the same
//! pipeline step as the proxy-wasm host (`tollgate_filter::pipeline`) with
//! the process's one `Worker` and store, and applies the `Outcome`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use tollgate_contract::ErrorCode;
use tollgate_filter::pipeline::{BodyChange, Outcome, Request, Then};
use tollgate_filter::reply::Reply;

use crate::abi;
use crate::deferred::Deferred;
use crate::envoy::Stream;
use crate::idle;
use crate::metrics::{self, Ids};
use crate::state::{self, now_ms, Shared};

/// The filter-state key of the usage record, for the access log
/// (`%FILTER_STATE(tollgate_usage:PLAIN)%`).
pub const USAGE_FILTER_STATE: &str = "tollgate_usage";

/// One stream's filter.
pub struct Http {
    request: Request,
    /// A local reply was sent: nothing more to do for this stream.
    answered: bool,
    /// The stats of the configuration that made this filter (Envoy keeps
    /// a configuration alive while its filters live).
    ids: Option<std::ptr::NonNull<Ids>>,
    /// A request-side reply waiting for the next turn of the event loop.
    deferred: Deferred,
    /// The stream's id in the idle watch (`idle.rs`).
    id: u32,
}

/// Runs a hook; a panic does not unwind into Envoy: it is counted, logged,
/// and the stream gets an OpenAI-format 500 when it can still be answered.
pub fn guard<T>(
    stream: Stream,
    http: &mut Http,
    fallback: T,
    hook: impl FnOnce(&mut Http) -> T,
) -> T {
    match catch_unwind(AssertUnwindSafe(|| hook(http))) {
        Ok(out) => out,
        Err(_) => {
            state::PANICS.fetch_add(1, Ordering::Relaxed);
            log::error!("tollgate native: a hook panicked; the request fails closed");
            if !http.answered {
                http.answered = true;
                let reply =
                    Reply::error(ErrorCode::Internal, "The gateway failed on this request.");
                let _ = catch_unwind(AssertUnwindSafe(|| send(stream, &http.request, &reply)));
            }
            fallback
        }
    }
}

fn send(stream: Stream, request: &Request, reply: &Reply) {
    let (headers, body) = request.answer(reply);
    stream.send(reply.status, &headers, &body);
}

impl Http {
    fn apply_headers(stream: Stream, kind: abi::HeaderType, outcome: &Outcome) {
        for (name, value) in &outcome.headers {
            if !stream.set_header(kind, name, value.as_deref()) {
                log::warn!("tollgate native: cannot set header {name}");
            }
        }
        // As the wasm host does on every request header write: the route
        // follows the headers the pipeline set.
        if kind == abi::REQUEST_HEADER && !outcome.headers.is_empty() {
            stream.clear_route_cache();
        }
    }

    /// Answers the request on the next turn of the event loop (or now,
    /// when Envoy gives no scheduler): see `deferred.rs`.
    fn reply_later(&mut self, stream: Stream, shared: &Shared, reply: Reply) {
        self.count(stream, shared, &reply);
        self.answered = true;
        if let Err(reply) = self.deferred.defer(stream.0, reply) {
            send(stream, &self.request, &reply);
        }
    }

    /// The stream's scheduled turn: the deferred reply goes out, or (from
    /// the idle watch) the stalled response is ended.
    pub fn scheduled(&mut self, stream: Stream, event: u64) {
        if event == idle::EVENT {
            log::warn!(
                "tollgate: the upstream was silent past its idle timeout; the response is ended"
            );
            stream.reset("tollgate_idle_timeout");
            return;
        }
        if let Some(reply) = self.deferred.take() {
            send(stream, &self.request, &reply);
        }
    }

    fn idle(&mut self, stream: Stream, step: tollgate_filter::idle::Step) {
        let deferred = &mut self.deferred;
        if crate::idle::apply(self.id, step, || deferred.scheduler(stream.0), now_ms()) {
            self.request.cut_by_idle_watch();
        }
    }

    fn count(&mut self, stream: Stream, shared: &Shared, reply: &Reply) {
        if reply.code.is_some() {
            let updates = {
                let mut worker = shared.worker();
                worker.count_reply(reply);
                Http::take_metrics(&mut worker)
            };
            self.record_histograms(stream, &updates);
        }
    }

    fn reply(&mut self, stream: Stream, shared: &Shared, reply: &Reply) {
        self.count(stream, shared, reply);
        self.answered = true;
        send(stream, &self.request, reply);
    }

    pub fn request_headers(&mut self, stream: Stream, shared: &Shared, end: bool) -> u32 {
        let headers = stream.headers(abi::REQUEST_HEADER);
        let outcome = {
            let mut worker = shared.worker();
            let out = self.request.on_request_headers(
                &mut worker,
                &shared.store,
                &headers,
                end,
                now_ms(),
            );
            (out, Http::take_metrics(&mut worker))
        };
        let (outcome, updates) = outcome;
        self.record_histograms(stream, &updates);
        Http::apply_headers(stream, abi::REQUEST_HEADER, &outcome);
        match outcome.then {
            Then::Continue => abi::HEADERS_CONTINUE,
            Then::Pause => abi::HEADERS_STOP_ITERATION,
            Then::Reply(reply) => {
                self.reply_later(stream, shared, reply);
                abi::HEADERS_STOP_ITERATION
            }
        }
    }

    pub fn request_body(&mut self, stream: Stream, shared: &Shared, end: bool) -> u32 {
        if self.answered {
            return abi::BODY_STOP_NO_BUFFER;
        }
        let same = stream.same_body(abi::RECEIVED_REQUEST_BODY, abi::BUFFERED_REQUEST_BODY);
        let received = stream.body_size(abi::RECEIVED_REQUEST_BODY);
        let buffered = if same {
            0
        } else {
            stream.body_size(abi::BUFFERED_REQUEST_BODY)
        };
        let read = || {
            let mut body = if same {
                Vec::new()
            } else {
                stream.body(abi::BUFFERED_REQUEST_BODY)
            };
            body.extend(stream.body(abi::RECEIVED_REQUEST_BODY));
            body
        };
        let outcome = {
            let mut worker = shared.worker();
            let out = self.request.on_request_body(
                &mut worker,
                &shared.store,
                received + buffered,
                end,
                read,
                now_ms,
            );
            (out, Http::take_metrics(&mut worker))
        };
        let (outcome, updates) = outcome;
        self.record_histograms(stream, &updates);
        Http::apply_headers(stream, abi::REQUEST_HEADER, &outcome);
        let written = match &outcome.body {
            BodyChange::Keep => true,
            BodyChange::Replace(new) => {
                (same || stream.drain(abi::BUFFERED_REQUEST_BODY, buffered))
                    && stream.drain(abi::RECEIVED_REQUEST_BODY, received)
                    && stream.append(abi::RECEIVED_REQUEST_BODY, new)
            }
            BodyChange::Discard => stream.drain(abi::RECEIVED_REQUEST_BODY, received),
        };
        if !written {
            log::error!("tollgate native: cannot write the request body");
            let reply = self.request.body_not_written(&shared.store, now_ms());
            self.reply_later(stream, shared, reply);
            return abi::BODY_STOP_NO_BUFFER;
        }
        match outcome.then {
            Then::Continue => abi::BODY_CONTINUE,
            Then::Pause => abi::BODY_STOP_AND_BUFFER,
            Then::Reply(reply) => {
                self.reply_later(stream, shared, reply);
                abi::BODY_STOP_NO_BUFFER
            }
        }
    }

    pub fn response_headers(&mut self, stream: Stream, shared: &Shared) -> u32 {
        let outcome = self.request.on_response_headers(&shared.store, now_ms, || {
            stream.headers(abi::RESPONSE_HEADER)
        });
        Http::apply_headers(stream, abi::RESPONSE_HEADER, &outcome);
        let step = self.request.idle_on_response_headers(&outcome.then);
        self.idle(stream, step);
        match outcome.then {
            Then::Continue | Then::Pause => abi::HEADERS_CONTINUE,
            Then::Reply(reply) => {
                self.reply(stream, shared, &reply);
                abi::HEADERS_STOP_ITERATION
            }
        }
    }

    pub fn response_body(&mut self, stream: Stream, end: bool) -> u32 {
        let size = stream.body_size(abi::RECEIVED_RESPONSE_BODY);
        let replacement = self.request.on_response_body(
            size,
            end,
            || stream.body(abi::RECEIVED_RESPONSE_BODY),
            now_ms,
        );
        let step = self.request.idle_on_response_body(end);
        self.idle(stream, step);
        if let Some(new) = replacement {
            if !(stream.drain(abi::RECEIVED_RESPONSE_BODY, size)
                && stream.append(abi::RECEIVED_RESPONSE_BODY, &new))
            {
                log::error!("tollgate native: cannot rewrite a response chunk");
            }
        }
        abi::BODY_CONTINUE
    }

    pub fn complete(&mut self, stream: Stream, shared: &Shared) {
        let step = self.request.idle_on_end();
        self.idle(stream, step);
        let updates = {
            let mut worker = shared.worker();
            self.end(&mut worker, stream, shared);
            Http::take_metrics(&mut worker)
        };
        self.record_histograms(stream, &updates);
    }

    fn end(
        &mut self,
        worker: &mut tollgate_filter::pipeline::Worker,
        stream: Stream,
        shared: &Shared,
    ) {
        self.request.on_end(
            worker,
            &shared.store,
            now_ms(),
            || stream.response_code(),
            |json| {
                let _ = stream.set_filter_state(USAGE_FILTER_STATE, json);
            },
        );
    }

    /// The metric updates the pipeline left in the worker (taken while it
    /// is locked): the counters go to the batch flushed once a tick, the
    /// histograms are returned for `record_histograms`.
    fn take_metrics(worker: &mut tollgate_filter::pipeline::Worker) -> Vec<metrics::Update> {
        let updates = std::mem::take(&mut worker.metric_updates);
        if updates.is_empty() {
            return updates;
        }
        metrics::take(updates, &mut worker.metric_ids)
    }

    fn record_histograms(&self, stream: Stream, histograms: &[metrics::Update]) {
        if let (Some(ids), false) = (self.ids, histograms.is_empty()) {
            // SAFETY: the configuration outlives its filters (see `ids`).
            metrics::record(stream.0, unsafe { ids.as_ref() }, histograms);
        }
    }
}

impl Http {
    pub fn new(ids: Option<std::ptr::NonNull<Ids>>) -> Http {
        Http {
            request: Request::default(),
            answered: false,
            ids,
            deferred: Deferred::default(),
            id: crate::idle::next_id(),
        }
    }

    /// No reply may be sent on this stream any more.
    pub fn mark_answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for Http {
    /// Out of the idle watch before its scheduler is deleted (`deferred`,
    /// dropped after this).
    fn drop(&mut self) {
        if self.request.idle_on_end() != tollgate_filter::idle::Step::Nothing {
            idle::forget(self.id);
        }
    }
}
