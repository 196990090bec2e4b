//! A request's way back: the response headers (rate-limit headers, status),
//! the body (metering, translation to the client's API) and the end
//! (release, usage record, outbox).

use crate::decide;
use crate::limits::{self, Store, Used};
use crate::translate::Translator;
use crate::worker::Worker;

use super::{
    header, parse_status, remove, route, set, BodyChange, HeaderChange, Outcome, Request, Then,
};

impl Request {
    /// The response headers: the rate-limit headers of the admission, and,
    /// for a metered request, its status and content type (`read` gives
    /// every response header, read only then).
    pub fn on_response_headers(
        &mut self,
        store: &dyn Store,
        now_ms: impl FnOnce() -> u64,
        read: impl FnOnce() -> Vec<(String, Vec<u8>)>,
    ) -> Outcome {
        let mut changes: Vec<HeaderChange> = self
            .admission
            .iter()
            .flat_map(|a| a.headers.iter())
            .map(|(name, value)| set(name, value.as_bytes()))
            .collect();
        // The response's x-request-id is Envoy's copy of the request's
        // (`always_set_request_id_in_response`), which this filter minted.
        if self.meter.is_some() || self.translator.is_some() {
            let got = read();
            let status = parse_status(header(&got, ":status")).unwrap_or(0);
            let content_type = header(&got, "content-type");
            let served = route::served(header(&got, crate::attempt::SERVED));
            if let Some(routed) = &self.routed {
                changes.push(remove(crate::attempt::SERVED));
                // The deployment that answered, looked up once.
                let answered = served
                    .zip(self.snapshot.as_deref())
                    .and_then(|((index, _), s)| {
                        Some((s, route::served_deployment(s, &routed.model, index)?))
                    });
                if let Some((snapshot, d)) = answered {
                    if let Some(meter) = self.meter.as_mut() {
                        meter.served_by(d.provider.clone(), d.upstream_model.clone());
                    }
                    self.idle_timeout_ms = d.idle_timeout_ms;
                    // A deployment of the other API answered: its answer is
                    // translated back to the client's and metered in its
                    // own shape.
                    if let Some((translation, read_as)) =
                        self.written_for.and_then(|(endpoint, wire)| {
                            route::reshape_for(snapshot, d, endpoint, wire)
                        })
                    {
                        self.translator =
                            Translator::new(translation, &routed.model, self.started_ms / 1000);
                        if let Some(meter) = self.meter.as_mut() {
                            meter.read_as(read_as);
                        }
                    }
                }
            }
            let tried = match (served, &self.routed) {
                (Some((_, attempt)), _) => attempt.max(1),
                (None, Some(routed)) => u32::try_from(routed.attempts).unwrap_or(u32::MAX),
                (None, None) => 1,
            };
            self.attempts = tried;
            // The deployment answered (a 5xx or a 429 is a failure, which
            // the upstream role counts).
            let answered = (200..500).contains(&status) && !matches!(status, 401 | 403 | 429);
            // A least-latency model: the time to these headers is a sample
            // of the deployment that answered.
            if let Some((model, first)) = self.measured.take() {
                if answered {
                    let index = served.map_or(first, |(i, _)| i);
                    let took_us = now_ms()
                        .saturating_sub(self.started_ms)
                        .saturating_mul(1000);
                    crate::latency::record(store, &model, index as usize, took_us);
                }
            }
            // The deployment that answered works: its failures in a row
            // (or its probe) end.
            if let (Some(routed), Some((index, _))) = (&self.routed, served) {
                if answered && routed.marked.contains(&index) {
                    crate::health::recovered(store, &routed.model, index as usize);
                }
            }
            // A provider's 5xx, or Envoy's own after a failover cluster's
            // retries; Envoy's other local replies (an address refused
            // through the forward proxy) are already the client's error.
            let from_upstream = !header(&got, route::FROM_UPSTREAM).is_empty();
            // Through the forward proxy no upstream role saw it: the
            // credential the listener chose is disabled here.
            if matches!(status, 401 | 403) && from_upstream && self.routed.is_none() {
                self.disable_credential(store, status);
            }
            let failed = decide::upstream_status(status).or_else(|| {
                (self.meter.is_some() && (from_upstream || self.routed.is_some()))
                    .then(|| route::failed(status, tried, from_upstream))
                    .flatten()
            });
            if let Some(reply) = failed {
                if let Some(meter) = self.meter.as_mut() {
                    meter.on_headers(reply.status, b"application/json");
                }
                self.translator = None;
                return Outcome {
                    headers: changes,
                    body: BodyChange::Keep,
                    then: Then::Reply(reply),
                };
            }
            let mut rewrites = false;
            if let Some(t) = self.translator.as_mut() {
                t.on_headers(status, content_type);
                rewrites = true;
            }
            if let Some(meter) = self.meter.as_mut() {
                rewrites |= meter.on_headers(status, content_type);
                if (200..300).contains(&status) {
                    let (public, upstream) = meter.models();
                    self.rename = crate::rename::Rename::new(public, upstream);
                    rewrites |= self.rename.is_some();
                }
            }
            if rewrites {
                changes.push(remove("content-length"));
            }
        }
        Outcome {
            headers: changes,
            body: BodyChange::Keep,
            then: Then::Continue,
        }
    }

    /// Once the response headers came: how long the deployment that answered
    /// may stay silent between two pieces of the body (`idle.rs`).
    pub fn idle_timeout_ms(&self) -> Option<u64> {
        self.meter.as_ref()?;
        self.idle_timeout_ms.map(u64::from)
    }

    /// What the host does to its idle watch for these response headers
    /// (after `on_response_headers` returned `then`).
    pub fn idle_on_response_headers(&mut self, then: &Then) -> crate::idle::Step {
        let idle_ms = self.idle_timeout_ms();
        self.idle
            .on_response_headers(matches!(then, Then::Continue), idle_ms)
    }

    /// The same for a piece of the response body.
    pub fn idle_on_response_body(&mut self, end_of_stream: bool) -> crate::idle::Step {
        self.idle.on_response_body(end_of_stream)
    }

    /// The same at the end of the stream.
    pub fn idle_on_end(&mut self) -> crate::idle::Step {
        self.idle.on_end()
    }

    /// The host ended this response: its deployment was silent past its
    /// idle timeout.
    pub fn cut_by_idle_watch(&mut self) {
        self.idle_cut = true;
    }

    fn disable_credential(&self, store: &dyn Store, status: u16) {
        let (Some((provider, id)), Some(snapshot)) = (&self.credential, self.snapshot.as_deref())
        else {
            return;
        };
        let pool = snapshot.upstreams.get(provider).map(|u| u.pool.as_slice());
        if let Some(k) = pool.unwrap_or_default().iter().find(|k| &k.id == id) {
            log::warn!("tollgate: a credential of provider {provider} answered {status}; disabled");
            crate::credentials::disable(store, provider, k, status);
        }
    }

    /// One chunk of the response body (`read` is called only when the
    /// chunk has bytes): `Some(bytes)` to send in its place.
    pub fn on_response_body(
        &mut self,
        body_size: usize,
        end_of_stream: bool,
        read: impl FnOnce() -> Vec<u8>,
        now_ms: impl FnOnce() -> u64,
    ) -> Option<Vec<u8>> {
        if self.meter.is_none() && self.translator.is_none() {
            return None;
        }
        // Often the last call brings no bytes, only the end: no read then.
        let chunk = if body_size == 0 { Vec::new() } else { read() };
        let out = self.metered_body(&chunk, end_of_stream, now_ms);
        match self.rename.as_mut() {
            Some(rename) => {
                let renamed = rename.push(out.as_deref().unwrap_or(&chunk), end_of_stream);
                // Unchanged bytes are not written back (a host call).
                (out.is_some() || renamed != chunk).then_some(renamed)
            }
            None => out,
        }
    }

    /// A chunk through the meter and the translator: `Some(bytes)` when
    /// they changed it.
    fn metered_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        now_ms: impl FnOnce() -> u64,
    ) -> Option<Vec<u8>> {
        let Some(translator) = self.translator.as_mut() else {
            let meter = self.meter.as_mut()?;
            let replacement = meter.on_chunk(chunk, end_of_stream, now_ms)?;
            return (replacement != chunk).then_some(replacement);
        };
        match self.meter.as_mut() {
            // The meter reads the OpenAI side: what the client gets from an
            // Anthropic provider, what the provider sent to an Anthropic client.
            Some(meter) if translator.reads_translated() => {
                let out = translator.push(chunk, end_of_stream);
                let replacement = meter.on_chunk(&out, end_of_stream, now_ms);
                Some(replacement.unwrap_or(out))
            }
            Some(meter) => {
                meter.on_chunk(chunk, end_of_stream, now_ms);
                Some(translator.push(chunk, end_of_stream))
            }
            None => Some(translator.push(chunk, end_of_stream)),
        }
    }

    /// The end of the request, however it ended: the record is made, the
    /// reservation settled, the record given to `access_log` (when the
    /// configuration says so) and queued for the control plane.
    /// `response_code` is asked only when no response headers came.
    pub fn on_end(
        &mut self,
        worker: &mut Worker,
        store: &dyn Store,
        now_ms: u64,
        response_code: impl FnOnce() -> u16,
        access_log: impl FnOnce(&[u8]),
    ) {
        let Some(mut meter) = self.meter.take() else {
            return;
        };
        let code = meter.status().unwrap_or_else(response_code);
        let mut record = meter.finish(now_ms, code);
        record.attempts = self.attempts.max(1);
        // A translated answer's cache counts are the provider's own (the
        // OpenAI shape the meter read has no field for cache writes).
        if let Some(u) = self.translator.as_ref().and_then(|t| t.usage()) {
            if !record.estimated {
                record.cache_read_tokens = u.cache_read;
                record.cache_creation_tokens = u.cache_creation;
            }
        }
        if let Some(admission) = self.admission.take() {
            let used = Used {
                tokens: record.input_tokens.saturating_add(record.output_tokens),
                nanos: record.cost_nanos,
            };
            limits::release(store, &admission, Some(used), now_ms);
        }
        let json = match serde_json::to_vec(&record) {
            Ok(json) => json,
            Err(e) => {
                log::error!("tollgate {}: usage record not serialised: {e}", self.id);
                return;
            }
        };
        if worker
            .config
            .as_ref()
            .is_some_and(|c| c.usage_in_access_log)
        {
            access_log(&json);
        }
        if let Some(c) = worker.config.clone().filter(|c| c.metrics) {
            worker.metric_updates.extend(crate::metrics::for_record(
                &record,
                self.operation,
                self.attempts,
            ));
            if self.idle_cut {
                worker
                    .metric_updates
                    .push(crate::metrics::for_idle_cut(&record.model));
            }
            if c.metrics_per_key {
                worker
                    .metric_updates
                    .extend(crate::metrics::for_key(&record));
            }
        }
        worker.counts.records += 1;
        worker.counts.estimated += u64::from(record.estimated);
        let dropped = worker.outbox.dropped;
        worker.outbox.push(json, now_ms);
        worker.counts.dropped += worker.outbox.dropped - dropped;
    }
}
