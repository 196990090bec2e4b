//! Small shared pieces: ids, time, money and list pages.

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ApiError, ApiResult};

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `<prefix>_<11 base36 time ms><10 random base36>`: ids that sort by creation
/// time, so that listing by id lists oldest first and cursors stay stable.
pub fn new_id(prefix: &str) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(prefix.len() + 22);
    out.push_str(prefix);
    out.push('_');
    let mut t = now_ms().max(0) as u64;
    let mut time = [b'0'; 11];
    for slot in time.iter_mut().rev() {
        *slot = DIGITS[(t % 36) as usize];
        t /= 36;
    }
    out.extend(time.iter().map(|&b| char::from(b)));
    let mut rng = rand::thread_rng();
    for _ in 0..10 {
        out.push(char::from(DIGITS[rng.gen_range(0..36)]));
    }
    out
}

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

const NANOS_PER_USD: f64 = 1e9;
/// The largest amount one field takes: $1e6.
const MAX_USD: f64 = 1e6;
/// The largest balance or spend stored: $1e9 in nanos (1e18), with a 9x
/// headroom below `i64::MAX` so that no sum of two stored values overflows.
pub const MAX_BALANCE_NANOS: i64 = 1_000_000_000_000_000_000;

/// USD as given in JSON to integer nano-dollars; refuses negative, NaN and
/// anything over $1e6.
pub fn usd_to_nanos(usd: f64, param: &str) -> ApiResult<i64> {
    if !usd.is_finite() || !(0.0..=MAX_USD).contains(&usd) {
        return Err(ApiError::invalid(
            format!("`{param}` must be a number of dollars from 0 to 1e6"),
            Some(param),
        ));
    }
    Ok((usd * NANOS_PER_USD).round() as i64)
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

pub fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

/// For PATCH bodies: tells a field that is absent (`None`) from one set to
/// `null` (`Some(None)`).
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `?limit=&after=` on every list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub after: Option<String>,
}

impl PageQuery {
    /// The page size (default 20, at most 100).
    pub fn limit(&self) -> ApiResult<i64> {
        match self.limit.as_deref() {
            None => Ok(20),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid(
                    "`limit` must be an integer from 1 to 100",
                    Some("limit"),
                )),
            },
        }
    }
}

/// `{"object":"list","data":[...],"has_more":bool}`; the caller fetched
/// `limit + 1` rows so that `has_more` needs no second query.
#[derive(Debug, Serialize)]
pub struct List<T> {
    pub object: &'static str,
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> List<T> {
    pub fn page(mut rows: Vec<T>, limit: i64) -> List<T> {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        List {
            object: "list",
            data: rows,
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time() {
        let a = new_id("key");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("key");
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), "key_".len() + 21);
    }

    #[test]
    fn money_round_trips_and_refuses_nonsense() {
        assert_eq!(usd_to_nanos(0.15, "x").unwrap(), 150_000_000);
        assert_eq!(nanos_to_usd(150_000_000), 0.15);
        assert_eq!(nanos_to_usd(600_000_000), 0.6);
        for bad in [-0.01, f64::NAN, f64::INFINITY, 2e9, 1e9, 1_000_000.01] {
            assert!(usd_to_nanos(bad, "x").is_err(), "{bad}");
        }
        assert_eq!(usd_to_nanos(1e6, "x").unwrap(), 1_000_000_000_000_000);
        // Two of the largest stored values still add up inside an i64.
        assert!(MAX_BALANCE_NANOS.checked_mul(2).is_some());
    }

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
