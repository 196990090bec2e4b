//! Budget periods: `daily`, `weekly` (from Monday) and `monthly` (from the
//! 1st), each starting at 00:00 UTC, as LiteLLM's `budget_duration` resets.

use crate::error::{ApiError, ApiResult};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Daily, Period::Weekly, Period::Monthly];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
        }
    }

    /// The stored or typed name; a 400 naming `param` otherwise.
    pub fn parse(s: &str, param: &str) -> ApiResult<Period> {
        Period::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("`{param}` must be daily, weekly, monthly or null"),
                    Some(param),
                )
            })
    }

    /// The start (unix ms, UTC) of the period `at_ms` is in.
    pub fn start(self, at_ms: i64) -> i64 {
        let day = at_ms.div_euclid(DAY_MS);
        let first = match self {
            Period::Daily => day,
            // 1970-01-01 was a Thursday: Monday is 3 days before.
            Period::Weekly => day - (day + 3).rem_euclid(7),
            Period::Monthly => {
                let (y, m, _) = civil(day);
                days_from_civil(y, m, 1)
            }
        };
        first * DAY_MS
    }

    /// The start of the next period (when the spend resets next).
    pub fn next(self, at_ms: i64) -> i64 {
        let start = self.start(at_ms);
        match self {
            Period::Daily => start + DAY_MS,
            Period::Weekly => start + 7 * DAY_MS,
            Period::Monthly => {
                let (y, m, _) = civil(start / DAY_MS);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1) * DAY_MS
            }
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, m: i64, d: i64, h: i64) -> i64 {
        days_from_civil(y, m, d) * DAY_MS + h * 3_600_000
    }

    #[test]
    fn periods_start_at_midnight_utc_on_the_day_monday_and_first() {
        // Thursday 2026-12-03 10:00 UTC.
        let now = ms(2026, 12, 3, 10);
        assert_eq!(Period::Daily.start(now), ms(2026, 12, 3, 0));
        assert_eq!(Period::Daily.next(now), ms(2026, 12, 4, 0));
        assert_eq!(Period::Weekly.start(now), ms(2026, 11, 30, 0));
        assert_eq!(Period::Weekly.next(now), ms(2026, 12, 7, 0));
        assert_eq!(Period::Monthly.start(now), ms(2026, 12, 1, 0));
        assert_eq!(Period::Monthly.next(now), ms(2027, 1, 1, 0));
        // A leap February, and the last millisecond of a period.
        assert_eq!(Period::Monthly.next(ms(2028, 2, 10, 0)), ms(2028, 3, 1, 0));
        assert_eq!(
            Period::Daily.start(ms(2026, 12, 4, 0) - 1),
            ms(2026, 12, 3, 0)
        );
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }

    #[test]
    fn every_day_of_four_years_is_in_its_periods() {
        for day in days_from_civil(2025, 1, 1)..days_from_civil(2029, 1, 1) {
            let at = day * DAY_MS + 12 * 3_600_000;
            for p in Period::ALL {
                let (s, n) = (p.start(at), p.next(at));
                assert!(s <= at && at < n, "{p:?} {day}");
                assert_eq!(p.start(n), n, "{p:?}: the next period starts at its start");
                assert_eq!(p.start(n - 1), s, "{p:?}: no gap between periods");
            }
        }
    }

    #[test]
    fn names_parse_and_others_are_400s() {
        for p in Period::ALL {
            assert_eq!(Period::parse(p.as_str(), "x").ok(), Some(p));
        }
        assert!(Period::parse("hourly", "budget_period").is_err());
    }
}
