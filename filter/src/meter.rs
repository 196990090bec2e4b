//! Measures one response as it passes: status, time to first byte, and the
//! tokens, from the JSON answer or the SSE stream. For a stream whose usage
//! chunk the gateway asked for on the client's behalf, it returns the bytes to
//! send in place of each chunk: the upstream's bytes with that one event left
//! out, and only an unfinished event held back. Everything else passes
//! untouched. `finish` makes the usage record on every ending.

use tollgate_contract::usage::UsageRecord;

use crate::routing::Endpoint;
use crate::sse::Parser;
use crate::usage::{self, Cache, Pass, StreamCounter, Tokens};

/// Longest JSON answer kept to read its usage; a longer one is estimated.
pub const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub request_id: String,
    pub key_id: String,
    pub account_id: String,
    pub endpoint: Endpoint,
    pub model: String,
    pub upstream_model: String,
    pub provider: String,
    pub stream: bool,
    pub hide_usage: bool,
    pub prompt_weight: u64,
    pub input_nanos_per_1m: u64,
    pub output_nanos_per_1m: u64,
    pub started_ms: u64,
}

#[derive(Debug)]
pub struct Meter {
    req: Request,
    status: Option<u16>,
    first_byte_ms: Option<u64>,
    event_stream: bool,
    parser: Parser,
    counter: StreamCounter,
    json: Vec<u8>,
    json_too_long: bool,
    ended: bool,
}

impl Meter {
    pub fn new(req: Request) -> Meter {
        Meter {
            req,
            status: None,
            first_byte_ms: None,
            event_stream: false,
            parser: Parser::default(),
            counter: StreamCounter::default(),
            json: Vec::new(),
            json_too_long: false,
            ended: false,
        }
    }

    /// The deployment that answered, when a failover cluster tried another
    /// than the one the request was prepared for.
    pub fn served_by(&mut self, provider: String, upstream_model: String) {
        self.req.provider = provider;
        self.req.upstream_model = upstream_model;
    }

    /// The deployment that answered speaks another API than the one the
    /// request was written for: the answer is read in `endpoint`'s shape.
    pub fn read_as(&mut self, endpoint: Endpoint) {
        self.req.endpoint = endpoint;
    }

    /// The public model id and the provider's (of the deployment that
    /// answered).
    pub fn models(&self) -> (&str, &str) {
        (&self.req.model, &self.req.upstream_model)
    }

    /// The status of the response headers, once they came.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Returns true when the body may change, so `content-length` must go.
    pub fn on_headers(&mut self, status: u16, content_type: &[u8]) -> bool {
        self.status = Some(status);
        self.event_stream = content_type
            .get(..17)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"text/event-stream"));
        self.rewrites()
    }

    fn rewrites(&self) -> bool {
        self.event_stream && self.req.hide_usage
    }

    /// One chunk of the response body. `Some(bytes)` means: send these
    /// instead of the chunk. The clock is read only for the first bytes
    /// (each read is a host call).
    pub fn on_chunk(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        now_ms: impl FnOnce() -> u64,
    ) -> Option<Vec<u8>> {
        if !chunk.is_empty() && self.first_byte_ms.is_none() {
            self.first_byte_ms = Some(now_ms());
        }
        if !self.event_stream {
            if !self.json_too_long {
                if self.json.len() + chunk.len() > MAX_JSON_BYTES {
                    self.json_too_long = true;
                    self.json = Vec::new();
                } else {
                    self.json.extend_from_slice(chunk);
                }
            }
            if end_of_stream {
                self.ended = true;
            }
            return None;
        }
        let mut raws = self.parser.push(chunk);
        if end_of_stream {
            self.ended = true;
            raws.extend(self.parser.finish());
        }
        let rewrite = self.rewrites();
        let mut out = Vec::new();
        for raw in raws {
            let pass = match &raw.event {
                Some(event) => self
                    .counter
                    .observe(self.req.endpoint, event, self.req.hide_usage),
                None => Pass::Forward,
            };
            if rewrite && pass == Pass::Forward {
                out.extend_from_slice(&raw.bytes);
            }
        }
        rewrite.then_some(out)
    }

    /// The record of this request, however it ended. `status` is what the
    /// client got when the meter saw no response headers (an abort, a local
    /// reply), and `now_ms` the end time.
    pub fn finish(&mut self, now_ms: u64, status_if_unknown: u16) -> UsageRecord {
        if self.event_stream && !self.ended {
            // Cut short: count what had arrived, the unfinished event too.
            if let Some(raw) = self.parser.finish() {
                if let Some(event) = &raw.event {
                    self.counter.observe(self.req.endpoint, event, false);
                }
            }
        }
        let (reported, cache) = if self.event_stream {
            (self.counter.reported(), self.counter.cache())
        } else if self.ended && !self.json_too_long {
            match usage::usage_of_body(&self.json) {
                Some((t, c)) => (Some(t), c),
                None => (None, Cache::default()),
            }
        } else {
            (None, Cache::default())
        };
        let status = self.status.unwrap_or(status_if_unknown);
        let succeeded = (200..300).contains(&status);
        let (tokens, estimated) = match reported {
            Some(t) => (t, false),
            // An error is never billed an estimate: the client got an error
            // body (the provider's, or Envoy's for a reset or a timeout),
            // not an answer.
            None if !succeeded => (Tokens::default(), false),
            None => (
                Tokens {
                    input: usage::estimate_tokens(self.req.prompt_weight),
                    output: if self.event_stream {
                        self.counter.estimated_output()
                    } else {
                        usage::estimate_tokens(usage::output_weight(&self.json))
                    },
                },
                true,
            ),
        };
        // A successful answer that stopped short: a stream without its last
        // event (even one closed cleanly), a body begun and never ended.
        let cut = succeeded
            && if self.event_stream {
                !self.counter.done
            } else {
                self.first_byte_ms.is_some() && !self.ended
            };
        let req = &self.req;
        UsageRecord {
            request_id: req.request_id.clone(),
            key_id: req.key_id.clone(),
            account_id: req.account_id.clone(),
            model: req.model.clone(),
            upstream_model: req.upstream_model.clone(),
            provider: req.provider.clone(),
            status,
            input_tokens: tokens.input,
            output_tokens: tokens.output,
            // Only what the provider reported: an estimate knows no cache.
            cache_read_tokens: if estimated { 0 } else { cache.read },
            cache_creation_tokens: if estimated { 0 } else { cache.creation },
            estimated,
            stream: req.stream,
            latency_ms: now_ms.saturating_sub(req.started_ms),
            ttft_ms: if req.stream {
                self.first_byte_ms.map(|t| t.saturating_sub(req.started_ms))
            } else {
                None
            },
            cost_nanos: cost(tokens, req.input_nanos_per_1m, req.output_nanos_per_1m),
            created_at_ms: req.started_ms,
            attempts: 1,
            cut,
        }
    }
}

/// Nano-dollars for `tokens` at prices in nano-dollars per million tokens,
/// rounded to the nearest nano-dollar.
pub fn cost(tokens: Tokens, input_per_1m: u64, output_per_1m: u64) -> u64 {
    let total = (u128::from(tokens.input) * u128::from(input_per_1m))
        .saturating_add(u128::from(tokens.output) * u128::from(output_per_1m));
    u64::try_from(total.saturating_add(500_000) / 1_000_000).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "meter_tests.rs"]
mod tests;
