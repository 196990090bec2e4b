//! The native glue of the upstream role (`tollgate_filter::upstream`): the
//! same module in a failover cluster's upstream filter chain, once per
//! attempt. It reads the process's one snapshot (`state.rs`) and marks
//! health and credentials in the process's one store, so every worker sees
//! them at once. It only moves bytes: every decision is the pipeline's.

use tollgate_filter::attempt::PREPARED;
use tollgate_filter::reply::Reply;
use tollgate_filter::upstream::{BodyStep, Head, HeadStep, Upstream};

use crate::abi;
use crate::envoy::Stream;
use crate::state::{now_ms, Shared};

/// One attempt's filter.
#[derive(Default)]
pub struct UpstreamHttp {
    upstream: Upstream,
}

fn header(headers: &[(String, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// Answers the attempt here (Envoy may retry it on the next deployment).
fn refuse(stream: Stream, reply: &Reply) {
    stream.send(
        reply.status,
        &[("content-type", "application/json")],
        &reply.body,
    );
}

impl UpstreamHttp {
    pub fn request_headers(&mut self, stream: Stream, shared: &Shared) -> u32 {
        let headers = stream.headers(abi::REQUEST_HEADER);
        let prepared = header(&headers, PREPARED).unwrap_or_default();
        let attempt_count = header(&headers, "x-envoy-attempt-count");
        let target = stream.host_metadata("tollgate", "target");
        let address = stream
            .attribute(abi::ATTRIBUTE_UPSTREAM_ADDRESS)
            .and_then(|a| String::from_utf8(a).ok());
        let snapshot = shared.worker().snapshot.clone();
        let head = Head {
            prepared: &prepared,
            attempt_count: attempt_count.as_deref(),
            target: target.as_deref(),
            address: address.as_deref(),
        };
        match self
            .upstream
            .on_request_headers(snapshot, &head, &shared.store, now_ms())
        {
            HeadStep::Send(changes) => {
                for (name, value) in &changes {
                    if !stream.set_header(abi::REQUEST_HEADER, name, value.as_deref()) {
                        refuse(
                            stream,
                            &self.upstream.not_written(&format!("header {name}")),
                        );
                        return abi::HEADERS_STOP_ITERATION;
                    }
                }
                abi::HEADERS_CONTINUE
            }
            HeadStep::Refuse(reply) => {
                refuse(stream, &reply);
                abi::HEADERS_STOP_ITERATION
            }
        }
    }

    pub fn request_body(&mut self, stream: Stream, end: bool) -> u32 {
        match self.upstream.on_request_body(end, || stream.request_body()) {
            BodyStep::Continue => abi::BODY_CONTINUE,
            BodyStep::Pause => abi::BODY_STOP_AND_BUFFER,
            BodyStep::Replace(new) => {
                if !stream.replace_request_body(&new) {
                    refuse(stream, &self.upstream.not_written("the body"));
                    return abi::BODY_STOP_NO_BUFFER;
                }
                abi::BODY_CONTINUE
            }
            BodyStep::Refuse(reply) => {
                refuse(stream, &reply);
                abi::BODY_STOP_NO_BUFFER
            }
        }
    }

    pub fn response_headers(&mut self, stream: Stream, shared: &Shared) -> u32 {
        let headers = stream.headers(abi::RESPONSE_HEADER);
        let status = header(&headers, ":status").unwrap_or_default();
        let retry_after = || header(&headers, "retry-after").unwrap_or_default();
        let changes =
            self.upstream
                .on_response_headers(&shared.store, &status, retry_after, now_ms());
        for (name, value) in &changes {
            let _ = stream.set_header(abi::RESPONSE_HEADER, name, value.as_deref());
        }
        abi::HEADERS_CONTINUE
    }

    /// The attempt ended (Envoy's stream complete, or the filter's end).
    pub fn done(&mut self, shared: &Shared) {
        self.upstream.on_done(&shared.store, now_ms());
    }
}
