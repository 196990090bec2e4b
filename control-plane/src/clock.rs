//! The wall clock, read at the edges (handlers, ingest) and passed in from
//! there; and [`Clock`], the state's clock for what follows the calendar
//! (budget periods), which tests move (`TOLLGATE_CLOCK_OFFSET_MS`, or
//! [`Clock::set_offset_ms`] in router tests) to cross a period's start
//! without waiting for it.

use std::sync::atomic::{AtomicI64, Ordering};

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The wall clock plus an offset (0 in production).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn new(offset_ms: i64) -> Clock {
        Clock {
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    pub fn now_ms(&self) -> i64 {
        now_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }
}
