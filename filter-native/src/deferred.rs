//! Request-side replies sent one turn of the worker's event loop later, as
//! the wasm host sends them (`filter/src/host/deferred.rs` has why: Envoy
//! 1.40's HTTP/1.1 codec ends a pipelined connection when a second answer is
//! queued inside one parse pass). The module's way is Envoy's filter
//! scheduler: a commit calls `envoy_dynamic_module_on_http_filter_scheduled`
//! on the stream's worker after the pass, and not at all once the stream is
//! gone.

use std::ffi::c_void;
use std::ptr::NonNull;

use tollgate_filter::reply::Reply;

use crate::abi::{self, FilterEnvoyPtr};

/// The scheduled event of a deferred reply.
pub const REPLY_EVENT: u64 = 0;

/// One stream's reply waiting for its turn, and the scheduler that brings it.
#[derive(Default)]
pub struct Deferred {
    scheduler: Option<NonNull<c_void>>,
    reply: Option<Reply>,
}

impl Deferred {
    /// Keeps `reply` for the stream's next scheduled turn; gives it back
    /// when Envoy made no scheduler (the caller then sends it at once).
    pub fn defer(&mut self, filter: FilterEnvoyPtr, reply: Reply) -> Result<(), Reply> {
        let Some(scheduler) = self.scheduler(filter) else {
            return Err(reply);
        };
        self.reply = Some(reply);
        // SAFETY: a scheduler Envoy made for this stream and not yet deleted.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_scheduler_commit(
                scheduler.as_ptr(),
                REPLY_EVENT,
            )
        };
        Ok(())
    }

    /// The stream's scheduler, made at the first call (`None` when Envoy
    /// makes none). The idle watch (`idle.rs`) commits it too, from its
    /// thread, with [`crate::idle::EVENT`].
    pub fn scheduler(&mut self, filter: FilterEnvoyPtr) -> Option<NonNull<c_void>> {
        if self.scheduler.is_none() {
            // SAFETY: the filter pointer is Envoy's for the hook this runs in.
            let made =
                unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_new(filter) };
            self.scheduler = NonNull::new(made);
        }
        self.scheduler
    }

    /// The reply whose turn it is.
    pub fn take(&mut self) -> Option<Reply> {
        self.reply.take()
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            // SAFETY: made by Envoy for this stream, deleted once, here.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler.as_ptr())
            };
        }
    }
}
