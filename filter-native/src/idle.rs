//! The native host's idle watch (`tollgate_filter::idle`): one `Watch` for
//! the whole process, applied as the pipeline decides (`idle::Step`), and
//! a thread of its own that looks at it every tick. A stream silent past
//! its deployment's idle timeout gets [`EVENT`] through its own scheduler,
//! so that its reset runs on its worker (`filter.rs`, `scheduled`).

use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use tollgate_filter::idle::{Step, Watch};

use crate::abi;

/// The scheduled event that ends a stalled response.
pub const EVENT: u64 = 1;

/// A stream's scheduler, committed from the watch's thread.
struct Scheduler(NonNull<c_void>);

// SAFETY: Envoy's filter scheduler may be committed from any thread; the
// pointer is removed from the watch (under its lock) before the stream
// deletes it (`forget`, called when the filter is dropped).
unsafe impl Send for Scheduler {}

#[derive(Default)]
struct Streams {
    watch: Watch,
    schedulers: HashMap<u32, Scheduler>,
}

static STREAMS: Mutex<Option<Streams>> = Mutex::new(None);
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

fn streams() -> MutexGuard<'static, Option<Streams>> {
    STREAMS.lock().unwrap_or_else(|e| e.into_inner())
}

/// An id for a new stream's filter.
pub fn next_id() -> u32 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Applies the pipeline's step for stream `id`; an arm needs the stream's
/// scheduler (`scheduler`, called only then). Whether the watch ended the
/// stream (`Watch::apply`).
pub fn apply(
    id: u32,
    step: Step,
    scheduler: impl FnOnce() -> Option<NonNull<c_void>>,
    now_ms: u64,
) -> bool {
    if step == Step::Nothing {
        return false;
    }
    let mut guard = streams();
    let s = guard.get_or_insert_with(Streams::default);
    match step {
        Step::Arm(_) => {
            let Some(scheduler) = scheduler() else {
                log::warn!("tollgate native: no scheduler for the idle watch of a stream");
                return false;
            };
            s.schedulers.insert(id, Scheduler(scheduler));
        }
        Step::Forget => {
            s.schedulers.remove(&id);
        }
        Step::Nothing | Step::Touch => {}
    }
    s.watch.apply(id, step, now_ms)
}

/// The stream is going: its scheduler is no longer committed.
pub fn forget(id: u32) {
    let _ = apply(id, Step::Forget, || None, 0);
}

/// Every stream silent past its timeout gets its [`EVENT`], once.
pub fn tick(now_ms: u64) {
    let mut guard = streams();
    let Some(s) = guard.as_mut() else {
        return;
    };
    if s.watch.is_empty() {
        return;
    }
    for id in s.watch.expired(now_ms) {
        if let Some(Scheduler(scheduler)) = s.schedulers.remove(&id) {
            // SAFETY: the stream has not deleted it: it would have been
            // forgotten first, under this lock.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_scheduler_commit(
                    scheduler.as_ptr(),
                    EVENT,
                )
            };
        }
    }
}
