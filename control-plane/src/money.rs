//! Money: integer nano-dollars inside, USD as a JSON number only at the API
//! edge.

use crate::error::{ApiError, ApiResult};

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

/// An optional amount (`null` for none or unlimited).
pub fn optional_usd_to_nanos(usd: Option<f64>, param: &str) -> ApiResult<Option<i64>> {
    usd.map(|v| usd_to_nanos(v, param)).transpose()
}

pub fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
