//! Checks of the fields people type: slugs, free text, limits. Each error
//! names the field.

use crate::error::{ApiError, ApiResult};

/// Ids chosen by people (models, providers): 1 to 128 of letters, digits and
/// `-_.:/@`, starting with a letter or digit.
pub fn check_slug(id: &str, param: &str) -> ApiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("`{param}` must be 1 to 128 letters, digits or -_.:/@, starting with a letter or digit"),
            Some(param),
        ))
    }
}

/// Free text such as names: at most `max` characters, no control characters.
pub fn check_text(value: &str, param: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::invalid(
            format!("`{param}` must be at most {max} characters without control characters"),
            Some(param),
        ));
    }
    Ok(())
}

/// A name: [`check_text`] of at most 200 characters, the value kept.
pub fn name(value: String, param: &str) -> ApiResult<String> {
    check_text(&value, param, 200)?;
    Ok(value)
}

/// The largest rate or concurrency limit taken (the filter keeps buckets in
/// integer units of these).
pub const MAX_LIMIT: u32 = 1_000_000_000;

/// A limit (`rpm`, `tpm`, `max_concurrent`) from 0 to `MAX_LIMIT`. Zero
/// pauses a key or an account: the filter answers 429 saying that waiting
/// will not help.
pub fn check_limit(value: Option<u32>, param: &str) -> ApiResult<Option<i64>> {
    match value {
        Some(v) if v > MAX_LIMIT => Err(ApiError::invalid(
            format!("`{param}` must be an integer from 0 to {MAX_LIMIT}"),
            Some(param),
        )),
        v => Ok(v.map(i64::from)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(check_limit(None, "rpm").unwrap(), None);
        assert_eq!(check_limit(Some(60), "rpm").unwrap(), Some(60));
        // Zero pauses: taken, and published as 0.
        assert_eq!(check_limit(Some(0), "rpm").unwrap(), Some(0));
        for bad in [MAX_LIMIT + 1, u32::MAX] {
            assert!(check_limit(Some(bad), "rpm").is_err(), "{bad}");
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
