//! Server-sent events: framing, splitting into body chunks, and the
//! stream that paces them, cuts them on purpose and settles the ledger.

use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::ledger::{LedgerGuard, Shared};
use crate::steer::Steer;

/// One SSE event: optional `event:` line, one `data:` line, blank line.
pub fn sse_event(event: Option<&str>, data: &str, crlf: bool) -> Bytes {
    let nl = if crlf { "\r\n" } else { "\n" };
    let event_line = event
        .map(|name| format!("event: {name}{nl}"))
        .unwrap_or_default();
    Bytes::from(format!("{event_line}data: {data}{nl}{nl}"))
}

/// Splits an event's bytes into frames of at most `n` bytes.
pub fn split_frames(bytes: Bytes, n: Option<usize>) -> Vec<Bytes> {
    match n {
        Some(n) if n > 0 && bytes.len() > n => (0..bytes.len())
            .step_by(n)
            .map(|start| bytes.slice(start..(start + n).min(bytes.len())))
            .collect(),
        _ => vec![bytes],
    }
}

/// An event to stream: its SSE name (responses API only), its data, and the
/// number of words sent once it has gone out.
pub struct SseEv {
    pub name: Option<&'static str>,
    pub data: String,
    pub words: usize,
}

pub fn ev(data: impl ToString, words: usize) -> SseEv {
    SseEv {
        name: None,
        data: data.to_string(),
        words,
    }
}

/// One body chunk of a stream, and where it sits among the events.
#[derive(Clone)]
pub struct Frame {
    pub bytes: Bytes,
    pub event: usize,
    pub first: bool,
    pub last: bool,
    pub words: usize,
}

pub struct StreamRun {
    pub frames: Vec<Frame>,
    pub next: usize,
    pub chunk_delay: Duration,
    pub cut_after: Option<usize>,
    pub guard: LedgerGuard,
}

pub async fn stream_step(mut run: StreamRun) -> Option<(std::io::Result<Bytes>, StreamRun)> {
    let frame = run.frames.get(run.next)?.clone();
    if frame.first {
        if run.cut_after == Some(frame.event) {
            run.next = usize::MAX;
            // Let hyper flush what was sent so far: an error aborts the
            // connection without flushing its buffer.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let err = std::io::Error::other("x-mock-cut-after: stream cut on purpose");
            return Some((Err(err), run));
        }
        if frame.event > 0 && !run.chunk_delay.is_zero() {
            tokio::time::sleep(run.chunk_delay).await;
        }
    }
    run.next += 1;
    if frame.last && frame.words != run.guard.words {
        run.guard.words = frame.words;
        run.guard
            .state
            .update(run.guard.id, &[("completion_tokens", frame.words.into())]);
    }
    run.guard.completed = run.next == run.frames.len();
    Some((Ok(frame.bytes), run))
}

pub fn sse_response(state: &Shared, id: u64, steer: &Steer, events: Vec<SseEv>) -> Response {
    let mut frames = Vec::new();
    for (event, e) in events.into_iter().enumerate() {
        let parts = split_frames(sse_event(e.name, &e.data, steer.crlf), steer.split);
        let count = parts.len();
        frames.extend(parts.into_iter().enumerate().map(|(i, bytes)| Frame {
            bytes,
            event,
            first: i == 0,
            last: i + 1 == count,
            words: e.words,
        }));
    }
    let run = StreamRun {
        frames,
        next: 0,
        chunk_delay: Duration::from_millis(steer.chunk_delay_ms),
        cut_after: steer.cut_after,
        guard: LedgerGuard {
            state: state.clone(),
            id,
            words: 0,
            completed: false,
        },
    };
    let body = Body::from_stream(futures_util::stream::unfold(run, stream_step));
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_framed() {
        assert_eq!(sse_event(None, "{}", false), Bytes::from("data: {}\n\n"));
        let crlf = sse_event(Some("x"), "1", true);
        assert_eq!(crlf, Bytes::from("event: x\r\ndata: 1\r\n\r\n"));
    }

    #[test]
    fn split_frames_reassemble() {
        let event = sse_event(Some("response.created"), r#"{"a":1,"b":"two"}"#, false);
        for n in 1..=event.len() + 2 {
            let frames = split_frames(event.clone(), Some(n));
            assert!(frames.iter().all(|f| f.len() <= n && !f.is_empty()));
            assert_eq!(frames.concat(), event.to_vec());
        }
        assert_eq!(split_frames(event.clone(), None), vec![event]);
    }
}
