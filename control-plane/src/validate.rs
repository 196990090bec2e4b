//! Checks of the fields people type: slugs, free text, limits. Each error
//! names the field.

use serde::{Deserialize, Deserializer};

use crate::error::{field_error, ApiError, ApiResult};

/// The 400 for a value `param` refuses, from the complaint its check gives.
fn refused(param: &str, complaint: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("`{param}` {complaint}"), Some(param))
}

/// Ids chosen by people (models, providers): 1 to 128 of letters, digits and
/// `-_.:/@`, starting with a letter or digit. As a body field it is checked
/// when the body is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    const SHAPE: &'static str =
        "must be 1 to 128 letters, digits or -_.:/@, starting with a letter or digit";

    pub fn parse(id: String) -> Result<Slug, &'static str> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id.as_bytes()[0].is_ascii_alphanumeric()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b));
        ok.then_some(Slug(id)).ok_or(Slug::SHAPE)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// [`Slug::parse`] of a value already held, with the 400 naming `param`.
pub fn check_slug(id: &str, param: &str) -> ApiResult<()> {
    Slug::parse(id.to_string())
        .map(drop)
        .map_err(|complaint| refused(param, complaint))
}

/// Free text: at most `max` characters, no control characters.
fn text_complaint(value: &str, max: usize) -> Option<String> {
    (value.chars().count() > max || value.chars().any(|c| c.is_control() && c != '\n'))
        .then(|| format!("must be at most {max} characters without control characters"))
}

/// Free text such as names: at most `max` characters, no control characters.
pub fn check_text(value: &str, param: &str, max: usize) -> ApiResult<()> {
    text_complaint(value, max).map_or(Ok(()), |complaint| Err(refused(param, complaint)))
}

/// A name: at most 200 characters, no control characters. As a body field it
/// is checked when the body is parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(value: String) -> Result<Name, String> {
        text_complaint(&value, Name::MAX_CHARS).map_or(Ok(Name(value)), Err)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A rate or concurrency limit (`rpm`, `tpm`, `max_concurrent`) from 0 to
/// [`MAX_LIMIT`]. Zero pauses a key or an account: the filter answers 429
/// saying that waiting will not help. As a body field it is checked when the
/// body is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub fn parse(value: i64) -> Result<Limit, String> {
        u32::try_from(value)
            .ok()
            .filter(|v| *v <= MAX_LIMIT)
            .map(Limit)
            .ok_or_else(|| format!("must be an integer from 0 to {MAX_LIMIT}"))
    }

    /// As the database stores it.
    pub fn get(self) -> i64 {
        i64::from(self.0)
    }
}

/// The three limits (`rpm`, `tpm`, `max_concurrent`) of a PATCH: each left
/// as stored when absent, cleared by `null`, else set.
pub fn patch_limits(stored: [&mut Option<i64>; 3], given: [Option<Option<Limit>>; 3]) {
    for (field, value) in stored.into_iter().zip(given) {
        if let Some(v) = value {
            *field = v.map(Limit::get);
        }
    }
}

/// A time in unix seconds, from 1970 to the end of year 9999 (`expires_at`).
/// As a body field it is checked when the body is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixSeconds(i64);

impl UnixSeconds {
    pub const MAX: i64 = 253_402_300_799;

    pub fn parse(value: i64) -> Result<UnixSeconds, &'static str> {
        (0..=UnixSeconds::MAX)
            .contains(&value)
            .then_some(UnixSeconds(value))
            .ok_or("must be unix seconds")
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for UnixSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<UnixSeconds, D::Error> {
        UnixSeconds::parse(i64::deserialize(d)?).map_err(field_error)
    }
}

/// An optional limit as the database stores it.
pub fn stored(limit: Option<Limit>) -> Option<i64> {
    limit.map(Limit::get)
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Slug, D::Error> {
        Slug::parse(String::deserialize(d)?).map_err(field_error)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        Name::parse(String::deserialize(d)?).map_err(field_error)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Limit, D::Error> {
        Limit::parse(i64::deserialize(d)?).map_err(field_error)
    }
}

/// A list of at most `max` items, else a 400 naming `param`.
pub fn at_most(len: usize, max: usize, what: &str, param: &str) -> ApiResult<()> {
    if len > max {
        return Err(ApiError::invalid(
            format!("at most {max} {what}"),
            Some(param),
        ));
    }
    Ok(())
}

/// The largest rate or concurrency limit taken (the filter keeps buckets in
/// integer units of these).
pub const MAX_LIMIT: u32 = 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(stored(None), None);
        assert_eq!(Limit::parse(60).map(Limit::get), Ok(60));
        // Zero pauses: taken, and published as 0.
        assert_eq!(stored(Limit::parse(0).ok()), Some(0));
        for bad in [i64::from(MAX_LIMIT) + 1, i64::from(u32::MAX), -1, i64::MAX] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(Name::parse("a\nb".repeat(66)).is_ok());
        for bad in ["a\u{7}".to_string(), "x".repeat(201)] {
            assert!(Name::parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        for ok in ["gpt-4o", "openai/gpt-4o", "claude-3.5@2024", "m1"] {
            assert!(check_slug(ok, "id").is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a b", "<script>", &"a".repeat(129)] {
            assert!(check_slug(bad, "id").is_err(), "{bad}");
        }
    }
}
