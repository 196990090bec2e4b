//! The request body, read once and strictly. Only the top level is taken
//! apart; every value stays the raw text the client sent. Policy reads
//! `model` and `stream` from it, a duplicate top-level key is refused (so no
//! second `model` can slip past the allowlist by a parser differential), and
//! the body sent upstream is rebuilt from the same entries that were checked.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use tollgate_contract::ErrorCode;

use crate::reply::Reply;

#[derive(Debug)]
pub struct Body<'a> {
    entries: Vec<(String, &'a RawValue)>,
    pub model: String,
    pub stream: bool,
}

struct Entries<'a>(Vec<(String, &'a RawValue)>);

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Entries<'de>, M::Error> {
        let mut entries: Vec<(String, &'de RawValue)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
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
            if let Some(key) = msg
                .strip_prefix("duplicate key \"")
                .and_then(|rest| rest.split('"').next())
            {
                invalid(
                    &format!("The request body has the key {key:?} twice."),
                    Some(key),
                )
            } else if e.classify() == serde_json::error::Category::Data {
                invalid("The request body must be a JSON object.", None)
            } else {
                invalid(&format!("The request body is not valid JSON: {msg}."), None)
            }
        })?;
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
        Ok(Body {
            entries,
            model,
            stream,
        })
    }

    /// The body to send upstream: the same entries, in the same order, with
    /// `model` replaced by the deployment's upstream model.
    pub fn rewrite(&self, upstream_model: &str) -> Vec<u8> {
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
            } else {
                out.extend_from_slice(value.get().as_bytes());
            }
        }
        out.push(b'}');
        out
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
