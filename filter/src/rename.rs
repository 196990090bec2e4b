//! The answer names the model the client asked for: every `"model": "..."`
//! member in the bytes going back (a JSON answer, each SSE event) gets the
//! public id in place of the provider's (`mock-demo-chat`, a dated snapshot
//! such as `gpt-4o-2024-08-06`), as the seeds' documents show and the
//! OpenAI SDKs echo. Byte by byte, without parsing: chunks pass as they
//! come, and only a tail that may be the start of such a member is held
//! back until the next chunk (at most `HOLD` bytes). Inside a JSON string a
//! quote is escaped, so the text of a message or of tool arguments never
//! matches; a value with an escape in it, or longer than `MAX_VALUE`, is
//! left as it is.

const KEY: &[u8] = b"\"model\"";
/// Whitespace around the colon that is looked through, on each side.
const MAX_SPACE: usize = 16;
/// Longest model id replaced.
pub const MAX_VALUE: usize = 256;
/// The most a member can span: the most ever held back.
pub const HOLD: usize = KEY.len() + 2 * MAX_SPACE + 1 + MAX_VALUE + 2;

#[derive(Debug)]
pub struct Rename {
    /// The public id as a JSON string's inside (escaped).
    to: Vec<u8>,
    held: Vec<u8>,
}

/// What a member starting at a `"model"` key turned out to be.
enum Member {
    /// The value's inside spans these bytes of the buffer.
    Value(usize, usize),
    /// Not a member to rename.
    No,
    /// Cut by the end of the buffer: wait for more.
    Unfinished,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Skips up to `MAX_SPACE` whitespace from `i`: the next index, or `None`
/// when there was more.
fn skip_space(buf: &[u8], i: usize) -> Option<usize> {
    let spaces = buf
        .get(i..)
        .unwrap_or_default()
        .iter()
        .take(MAX_SPACE + 1)
        .take_while(|b| is_space(**b))
        .count();
    (spaces <= MAX_SPACE).then_some(i + spaces)
}

/// The member whose key starts at `at` (where `KEY` is).
fn member(buf: &[u8], at: usize) -> Member {
    let Some(i) = skip_space(buf, at + KEY.len()) else {
        return Member::No;
    };
    match buf.get(i) {
        None => return Member::Unfinished,
        Some(b':') => {}
        Some(_) => return Member::No,
    }
    let Some(i) = skip_space(buf, i + 1) else {
        return Member::No;
    };
    match buf.get(i) {
        None => return Member::Unfinished,
        Some(b'"') => {}
        Some(_) => return Member::No,
    }
    let start = i + 1;
    let value = buf.get(start..).unwrap_or_default();
    match value
        .iter()
        .take(MAX_VALUE + 1)
        .position(|b| matches!(b, b'"' | b'\\'))
    {
        Some(n) if value.get(n) == Some(&b'"') => Member::Value(start, start + n),
        Some(_) => Member::No,
        None if value.len() > MAX_VALUE => Member::No,
        None => Member::Unfinished,
    }
}

impl Rename {
    /// Renames to `public`; `None` when there is nothing to do (the
    /// provider's id is the public one).
    pub fn new(public: &str, upstream: &str) -> Option<Rename> {
        if public == upstream {
            return None;
        }
        let quoted = serde_json::to_vec(public).ok()?;
        let to = quoted.get(1..quoted.len().checked_sub(1)?)?.to_vec();
        Some(Rename {
            to,
            held: Vec::new(),
        })
    }

    /// The bytes to send for `chunk`; at `end`, everything held goes too.
    pub fn push(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(buf.len() + self.to.len());
        // `buf[sent..]` is not yet in `out`; keys are looked for from `i`.
        let mut sent = 0;
        let mut i = 0;
        while let Some(at) = find(&buf, i) {
            match member(&buf, at) {
                Member::Value(start, stop) => {
                    out.extend_from_slice(buf.get(sent..start).unwrap_or_default());
                    out.extend_from_slice(&self.to);
                    sent = stop;
                    i = stop;
                }
                Member::No => i = at + 1,
                Member::Unfinished if end => i = at + 1,
                Member::Unfinished => {
                    out.extend_from_slice(buf.get(sent..at).unwrap_or_default());
                    self.held = buf.split_off(at);
                    return out;
                }
            }
        }
        // A tail that may be the start of the key waits for the next chunk.
        let rest = buf.get(sent..).unwrap_or_default();
        let keep = if end { 0 } else { key_prefix_at_end(rest) };
        let cut = buf.len() - keep;
        out.extend_from_slice(buf.get(sent..cut).unwrap_or_default());
        self.held = buf.split_off(cut);
        out
    }
}

impl Rename {
    /// How many bytes are held back now.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }
}

/// Where `KEY` is in `buf` from `from` on.
fn find(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(KEY.len())
        .position(|w| w == KEY)
        .map(|p| from + p)
}

/// The length of the longest end of `buf` that is a proper start of `KEY`.
fn key_prefix_at_end(buf: &[u8]) -> usize {
    (1..KEY.len())
        .rev()
        .find(|&n| buf.ends_with(KEY.get(..n).unwrap_or_default()))
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "rename_tests.rs"]
mod tests;
