//! The request body, read once and strictly. Only the top level is taken
//! apart; every value stays the raw text the client sent. Policy reads
//! `model` and `stream` from it, a duplicate top-level key is refused (so no
//! second `model` can slip past the allowlist by a parser differential), and
//! the body sent upstream is rebuilt from the same entries that were checked.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use tollgate_contract::ErrorCode;

use crate::reply::Reply;

#[derive(Debug)]
pub struct Body<'a> {
    entries: Vec<(String, &'a RawValue)>,
    pub model: String,
    pub stream: bool,
    /// The client's `stream_options.include_usage`.
    pub include_usage: bool,
    /// Characters of prompt text (`messages`, `prompt`, `input`), for an
    /// estimate when the upstream reports no usage.
    pub prompt_weight: u64,
    /// The output cap the client set (`max_tokens`, `max_completion_tokens`
    /// or `max_output_tokens`), for reserving tokens and spend.
    pub max_output: Option<u64>,
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// The weight (`usage::char_weight`) of the characters inside JSON strings
/// of a raw value (keys included, escapes counted as written): a cheap
/// measure of prompt size without building it.
fn string_weight(raw: &str) -> u64 {
    let mut in_string = false;
    let mut escaped = false;
    let mut n = 0u64;
    for c in raw.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
                continue;
            } else if c == '"' {
                in_string = false;
                continue;
            }
            n += crate::usage::char_weight(c);
        } else if c == '"' {
            in_string = true;
        }
    }
    n
}

/// The most top-level keys a body may have. OpenAI's richest endpoint takes
/// about 40; the bound keeps a hostile body's cost small before any lookup.
pub const MAX_TOP_LEVEL_KEYS: usize = 256;

/// The deepest nesting of arrays and objects a body may have, the top-level
/// object counting as 1. Tool schemas nest a few tens deep; providers' own
/// parsers refuse far less than 10^4.
pub const MAX_DEPTH: usize = 128;

struct Entries<'a>(Vec<(String, &'a RawValue)>);

/// What the visitor refuses, told apart from serde's own errors by message.
const TOO_MANY_KEYS: &str = "too many top-level keys";

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Entries<'de>, M::Error> {
        let mut entries: Vec<(String, &'de RawValue)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.len() == MAX_TOP_LEVEL_KEYS {
                return Err(de::Error::custom(TOO_MANY_KEYS));
            }
            let value: &'de RawValue = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Entries(entries))
    }
}

impl<'de> serde::Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntriesVisitor)
    }
}

/// The first key seen twice, in one pass: a hash set, so a body of n keys
/// costs n insertions, not the n^2/2 comparisons of a scan per key.
pub(crate) fn first_duplicate<K: Hash + Eq + Copy>(keys: impl IntoIterator<Item = K>) -> Option<K> {
    let keys = keys.into_iter();
    let mut seen = HashSet::with_capacity(keys.size_hint().0);
    keys.into_iter().find(|&k| !seen.insert(k))
}

/// The deepest nesting of arrays and objects in valid JSON text: one pass
/// over the bytes, brackets inside strings skipped.
pub(crate) fn max_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn invalid(message: &str, param: Option<&str>) -> Reply {
    match param {
        Some(p) => Reply::with_param(ErrorCode::InvalidRequest, message, p),
        None => Reply::error(ErrorCode::InvalidRequest, message),
    }
}

impl<'a> Body<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Body<'a>, Reply> {
        let text = std::str::from_utf8(raw)
            .map_err(|_| invalid("The request body is not valid UTF-8.", None))?;
        if text.trim().is_empty() {
            return Err(invalid(
                "The request body is empty; a JSON object is required.",
                None,
            ));
        }
        let Entries(entries) = serde_json::from_str::<Entries<'a>>(text).map_err(|e| {
            let msg = e.to_string();
            if msg.starts_with(TOO_MANY_KEYS) {
                invalid(
                    &format!("The request body has more than {MAX_TOP_LEVEL_KEYS} top-level keys."),
                    None,
                )
            } else if e.classify() == serde_json::error::Category::Data {
                invalid("The request body must be a JSON object.", None)
            } else {
                invalid(&format!("The request body is not valid JSON: {msg}."), None)
            }
        })?;
        if let Some(key) = first_duplicate(entries.iter().map(|(k, _)| k.as_str())) {
            return Err(invalid(
                &format!("The request body has the key {key:?} twice."),
                Some(key),
            ));
        }
        if max_depth(raw) > MAX_DEPTH {
            return Err(invalid(
                &format!("The request body nests arrays and objects more than {MAX_DEPTH} deep."),
                None,
            ));
        }
        let find = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let model = match find("model") {
            None => {
                return Err(invalid(
                    "You must provide a model parameter.",
                    Some("model"),
                ))
            }
            Some(raw) => serde_json::from_str::<String>(raw.get())
                .map_err(|_| invalid("The model parameter must be a string.", Some("model")))?,
        };
        if model.is_empty() {
            return Err(invalid(
                "The model parameter must not be empty.",
                Some("model"),
            ));
        }
        let stream = match find("stream") {
            None => false,
            Some(raw) => match raw.get() {
                "true" => true,
                "false" | "null" => false,
                _ => {
                    return Err(invalid(
                        "The stream parameter must be a boolean.",
                        Some("stream"),
                    ))
                }
            },
        };
        let include_usage = match find("stream_options") {
            None => false,
            Some(raw) if raw.get() == "null" => false,
            Some(raw) => serde_json::from_str::<StreamOptions>(raw.get())
                .map_err(|_| {
                    invalid(
                        "The stream_options parameter must be an object with a boolean include_usage.",
                        Some("stream_options"),
                    )
                })?
                .include_usage
                .unwrap_or(false),
        };
        let prompt_weight = ["messages", "prompt", "input", "instructions", "system"]
            .iter()
            .filter_map(|name| find(name))
            .map(|raw| string_weight(raw.get()))
            .sum();
        let mut max_output = None;
        for name in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
            let Some(raw) = find(name) else { continue };
            match serde_json::from_str::<Option<u64>>(raw.get()) {
                Ok(v) => max_output = max_output.or(v),
                Err(_) => {
                    return Err(invalid(
                        &format!("The {name} parameter must be a non-negative integer."),
                        Some(name),
                    ))
                }
            }
        }
        Ok(Body {
            entries,
            model,
            stream,
            include_usage,
            prompt_weight,
            max_output,
        })
    }

    /// The body to send upstream: the same entries, in the same order, with
    /// `model` replaced by the deployment's upstream model. With
    /// `ask_usage`, `stream_options.include_usage` is set to true (other
    /// stream options kept) so that the stream ends with its usage.
    pub fn rewrite(&self, upstream_model: &str, ask_usage: bool) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(size + upstream_model.len() + 2);
        out.push(b'{');
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(&mut out, key);
            out.push(b':');
            if key == "model" {
                write_json_string(&mut out, upstream_model);
            } else if key == "stream_options" && ask_usage {
                write_stream_options(&mut out, value.get());
            } else {
                out.extend_from_slice(value.get().as_bytes());
            }
        }
        if ask_usage && !self.entries.iter().any(|(k, _)| k == "stream_options") {
            if !self.entries.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
        }
        out.push(b'}');
        out
    }
}

/// `stream_options` with `include_usage` forced to true, other fields kept.
fn write_stream_options(out: &mut Vec<u8>, raw: &str) {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw).unwrap_or_default();
    map.insert("include_usage".into(), serde_json::Value::Bool(true));
    if serde_json::to_writer(&mut *out, &map).is_err() {
        out.extend_from_slice(br#"{"include_usage":true}"#);
    }
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Serialising a &str cannot fail; the fallback keeps the output valid JSON.
    match serde_json::to_writer(&mut *out, s) {
        Ok(()) => {}
        Err(_) => out.extend_from_slice(b"\"\""),
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
