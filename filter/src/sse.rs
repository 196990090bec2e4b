//! Server-sent events, parsed incrementally: bytes in as they come, whole
//! events out, keeping only the unfinished tail. The grammar is the WHATWG
//! HTML standard's (9.2.6 "Interpreting an event stream"): lines end in CRLF,
//! LF or CR; a line starting with `:` is a comment; `field: value` with one
//! optional space after the colon; several `data` lines join with `\n`; an
//! empty line dispatches the event. Unlike a browser, `finish` also dispatches
//! a last event that the upstream did not close with an empty line, because a
//! usage chunk without its final newline still counts.
//!
//! Each event comes with the exact bytes it spanned, so that a caller can pass
//! the stream on byte for byte, or leave one event out.

/// Longest event kept whole; a longer one is passed on but not parsed (a
/// usage event is a few hundred bytes, content events a few kilobytes).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of the event in progress (from its first byte).
    tail: Vec<u8>,
    /// How far `tail` has been scanned for line ends.
    scanned: usize,
    /// Where the current line starts in `tail`.
    line_start: usize,
    /// The last byte scanned was a CR: an LF right after it is part of it.
    after_cr: bool,
    /// The event in progress is too long to keep; its bytes are passed on.
    overflow: bool,
    current: Event,
    has_data: bool,
}

/// One complete event and the raw bytes it spanned in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub bytes: Vec<u8>,
    /// `None` for a block with no data (comments, keep-alives) or an event
    /// too long to parse.
    pub event: Option<Event>,
}

impl Parser {
    /// Feeds bytes; returns the events they completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Raw> {
        let mut out = Vec::new();
        self.tail.extend_from_slice(chunk);
        let mut i = self.scanned;
        while let Some(&b) = self.tail.get(i) {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    self.line_start = i + 1;
                    i += 1;
                    continue;
                }
            }
            if b == b'\r' || b == b'\n' {
                let line_empty = i == self.line_start;
                if line_empty && b == b'\r' && self.tail.get(i + 1).is_none() {
                    // An event ended by CR, and the next chunk may start
                    // with the LF of a CRLF: wait for it, so that the event's
                    // bytes are the same wherever the stream was cut (a
                    // stream of bare CRs waits one byte per event).
                    break;
                }
                if !line_empty {
                    self.take_line(self.line_start, i);
                }
                self.after_cr = b == b'\r';
                self.line_start = i + 1;
                if line_empty {
                    // The event ends with this terminator (and the LF of a
                    // CRLF, when it is already here).
                    let mut end = i + 1;
                    if b == b'\r' && self.tail.get(end) == Some(&b'\n') {
                        end += 1;
                        self.after_cr = false;
                    }
                    out.push(self.dispatch(end));
                    i = 0;
                    continue;
                }
            }
            i += 1;
        }
        self.scanned = i;
        if self.tail.len() > MAX_EVENT_BYTES {
            self.overflow = true;
        }
        out
    }

    /// The stream ended: the unfinished event, if any, with its bytes.
    pub fn finish(&mut self) -> Option<Raw> {
        if self.tail.is_empty() {
            return None;
        }
        if self.line_start < self.tail.len() {
            self.take_line(self.line_start, self.tail.len());
        }
        let end = self.tail.len();
        Some(self.dispatch(end))
    }

    /// Bytes held back: those of the event in progress.
    pub fn pending(&self) -> usize {
        self.tail.len()
    }

    fn take_line(&mut self, start: usize, end: usize) {
        if self.overflow {
            return;
        }
        let Some(line) = self.tail.get(start..end) else {
            return;
        };
        if line.first() == Some(&b':') {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(at) => {
                let (n, v) = line.split_at(at);
                let v = v.get(1..).unwrap_or_default();
                (n, v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.current.event = Some(value.into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, end: usize) -> Raw {
        let rest = self.tail.split_off(end.min(self.tail.len()));
        let bytes = std::mem::replace(&mut self.tail, rest);
        let event = std::mem::take(&mut self.current);
        let keep = self.has_data && !self.overflow;
        self.has_data = false;
        self.overflow = false;
        self.line_start = 0;
        self.scanned = 0;
        Raw {
            bytes,
            event: keep.then_some(event),
        }
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
