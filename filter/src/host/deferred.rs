//! Request-side local replies sent one turn of Envoy's event loop later
//! (issue 10, finding 7: pipelining).
//!
//! Envoy 1.40's HTTP/1.1 codec parses the pipelined requests of one read in
//! one pass, and before each new request it checks that fewer than two
//! answers wait to be written (2, "which functionally disables pipelining"
//! in Envoy's words; no longer configurable in 1.40); past that it ends the
//! connection, `codec_error:Too_many_responses_queued`, with the next
//! request unanswered. A local
//! reply sent from inside that pass is queued at once: after a proxied
//! answer (whose end-of-stream marker waits in the codec until the next
//! write) or after another local reply, that makes two. A reply sent from a
//! shared queue's callback, which Envoy posts to the worker's dispatcher,
//! comes after the pass: the connection's parsing is paused while the stream
//! is open, the replies are written, then the next request is parsed.
//!
//! Each worker's VM registers a queue of its own name (two VMs under one
//! name would take each other's callbacks); the queue carries only a wake-up,
//! the replies wait here with the id of the HTTP context they answer.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use proxy_wasm::hostcalls;

struct Pending {
    context_id: u32,
    status: u32,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Default)]
pub(super) struct Deferred {
    queue: Cell<Option<u32>>,
    pending: RefCell<VecDeque<Pending>>,
}

impl Deferred {
    /// Registers this VM's queue, named after its request-id seed. Without
    /// one, replies are sent at once (as before: pipelining then stops at
    /// Envoy's bound).
    pub(super) fn register(&self, vm: &str) {
        match hostcalls::register_shared_queue(&format!("tollgate-replies-{vm}")) {
            Ok(token) => self.queue.set(Some(token)),
            Err(status) => log::warn!("tollgate: no reply queue, replies sent at once: {status:?}"),
        }
    }

    /// Sends the reply on the next turn of the event loop, or now when it
    /// cannot be queued.
    pub(super) fn send(&self, context_id: u32, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        if let Some(token) = self.queue.get() {
            if hostcalls::enqueue_shared_queue(token, Some(b"r")).is_ok() {
                self.pending.borrow_mut().push_back(Pending {
                    context_id,
                    status,
                    headers: headers
                        .iter()
                        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                        .collect(),
                    body: body.to_vec(),
                });
                return;
            }
        }
        send_now(context_id, status, headers, body);
    }

    /// The queue's callback: every waiting reply to its context (one whose
    /// client has gone meanwhile is no longer there, and is dropped).
    pub(super) fn ready(&self, queue_id: u32) {
        if self.queue.get() != Some(queue_id) {
            return;
        }
        while let Ok(Some(_)) = hostcalls::dequeue_shared_queue(queue_id) {}
        loop {
            let Some(p) = self.pending.borrow_mut().pop_front() else {
                return;
            };
            if hostcalls::set_effective_context(p.context_id).is_err() {
                log::debug!("tollgate: a deferred reply's stream is gone");
                continue;
            }
            let headers: Vec<(&str, &str)> = p
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            send_now(p.context_id, p.status, &headers, &p.body);
        }
    }
}

pub(super) fn send_now(context_id: u32, status: u32, headers: &[(&str, &str)], body: &[u8]) {
    if let Err(e) = hostcalls::send_http_response(status, headers.to_vec(), Some(body)) {
        log::error!("#{context_id} tollgate: cannot send a local reply: {e:?}");
    }
}
