//! Money: integer nano-dollars inside, USD as a JSON number only at the API
//! edge.

use crate::error::field_error;

const NANOS_PER_USD: f64 = 1e9;
/// The largest amount one field takes: $1e6.
pub const MAX_USD: f64 = 1e6;
/// The largest balance or spend stored: $1e9 in nanos (1e18), with a 9x
/// headroom below `i64::MAX` so that no sum of two stored values overflows.
pub const MAX_BALANCE_NANOS: i64 = 1_000_000_000_000_000_000;

/// An amount of USD as a request gives it: a JSON number from 0 to $1e6,
/// kept as integer nano-dollars. A body field of this type is checked once,
/// when the body is parsed, and a refused value is a 400 naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usd(i64);

impl Usd {
    const RANGE: &'static str = "must be a number of dollars from 0 to 1e6";

    /// Refuses negative, NaN and anything over $1e6.
    pub fn parse(usd: f64) -> Result<Usd, &'static str> {
        if !usd.is_finite() || !(0.0..=MAX_USD).contains(&usd) {
            return Err(Usd::RANGE);
        }
        Ok(Usd((usd * NANOS_PER_USD).round() as i64))
    }

    pub fn nanos(self) -> i64 {
        self.0
    }
}

impl<'de> serde::Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        Usd::parse(f64::deserialize(d)?).map_err(field_error)
    }
}

pub fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_round_trips_and_refuses_nonsense() {
        assert_eq!(Usd::parse(0.15).map(Usd::nanos), Ok(150_000_000));
        assert_eq!(nanos_to_usd(150_000_000), 0.15);
        assert_eq!(nanos_to_usd(600_000_000), 0.6);
        for bad in [-0.01, f64::NAN, f64::INFINITY, 2e9, 1e9, 1_000_000.01] {
            assert!(Usd::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Usd::parse(1e6).map(Usd::nanos), Ok(1_000_000_000_000_000));
        // Two of the largest stored values still add up inside an i64.
        assert!(MAX_BALANCE_NANOS.checked_mul(2).is_some());
    }
}
