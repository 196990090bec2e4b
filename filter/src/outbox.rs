//! Usage records waiting to be shipped to the control plane. Batched by count
//! and by age, one batch in flight at a time, kept until the control plane
//! acknowledges them (it inserts idempotently by request id, so a batch sent
//! again after a lost answer never counts twice), with exponential backoff
//! while it is away. Bounded: past `capacity`, new records are dropped and
//! counted, so that an outage can never exhaust the VM's memory. Records are
//! kept as the JSON the filter already made for the access log, so each is
//! serialised once.

use std::collections::VecDeque;

const BACKOFF_MIN_MS: u64 = 200;
const BACKOFF_MAX_MS: u64 = 10_000;

#[derive(Debug)]
pub struct Outbox {
    /// Each record as JSON (a `UsageRecord`).
    queue: VecDeque<Vec<u8>>,
    /// Records at the front of the queue that are in the batch in flight.
    in_flight: usize,
    /// When the oldest waiting record arrived.
    oldest_ms: Option<u64>,
    next_at_ms: u64,
    failures: u32,
    pub dropped: u64,
    pub shipped: u64,
    capacity: usize,
    batch_max: usize,
    max_age_ms: u64,
}

impl Outbox {
    pub fn new(capacity: usize, batch_max: usize, max_age_ms: u64) -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            in_flight: 0,
            oldest_ms: None,
            next_at_ms: 0,
            failures: 0,
            dropped: 0,
            shipped: 0,
            capacity,
            batch_max: batch_max.max(1),
            max_age_ms,
        }
    }

    /// Queues one record, given as its JSON.
    pub fn push(&mut self, record: Vec<u8>, now_ms: u64) {
        if self.queue.len() >= self.capacity {
            self.dropped += 1;
            return;
        }
        if self.queue.len() == self.in_flight {
            self.oldest_ms = Some(now_ms);
        }
        self.queue.push_back(record);
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a batch should go now.
    pub fn due(&self, now_ms: u64) -> bool {
        if self.in_flight > 0 || self.queue.is_empty() || now_ms < self.next_at_ms {
            return false;
        }
        self.queue.len() >= self.batch_max
            || self
                .oldest_ms
                .is_some_and(|t| now_ms.saturating_sub(t) >= self.max_age_ms)
    }

    /// The next batch as JSON (a `UsageBatch`); its records stay queued
    /// until `on_result`.
    pub fn take_batch(&mut self) -> Vec<u8> {
        let n = self.queue.len().min(self.batch_max);
        let records = self.queue.iter().take(n);
        let size: usize = records.clone().map(|r| r.len() + 1).sum();
        let mut batch = Vec::with_capacity(size + 14);
        batch.extend_from_slice(b"{\"records\":[");
        for (i, record) in records.enumerate() {
            if i > 0 {
                batch.push(b',');
            }
            batch.extend_from_slice(record);
        }
        batch.extend_from_slice(b"]}");
        self.in_flight = n;
        batch
    }

    pub fn on_result(&mut self, acknowledged: bool, now_ms: u64) {
        if acknowledged {
            let n = self.in_flight.min(self.queue.len());
            self.queue.drain(..n);
            self.shipped += n as u64;
            self.failures = 0;
            self.next_at_ms = now_ms;
            // Records that arrived while the batch was out go at once.
            self.oldest_ms = (!self.queue.is_empty()).then_some(0);
        } else {
            let shift = self.failures.min(8);
            self.failures = self.failures.saturating_add(1);
            self.next_at_ms = now_ms.saturating_add(
                BACKOFF_MIN_MS
                    .saturating_mul(1 << shift)
                    .min(BACKOFF_MAX_MS),
            );
            self.oldest_ms = Some(0);
        }
        self.in_flight = 0;
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
