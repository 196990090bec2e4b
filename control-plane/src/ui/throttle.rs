//! Wrong operator passwords, counted per name in this process's memory:
//! after [`MAX_FAILURES`] within [`WINDOW_MS`] of the first, the name is
//! refused (429 with `Retry-After`) until that window ends, the right
//! password included; the right password before then clears the count. It
//! bounds guessing at 5 tries per name per 5 minutes per control plane (each
//! try also costs an Argon2id check). The admin token and API keys are not
//! counted: they are random, not chosen by people.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{ApiError, ApiResult};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_MS: i64 = 5 * 60_000;
/// Names tracked at most; past it, the names not refused go first.
const MAX_NAMES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first_ms: i64,
}

#[derive(Default)]
pub struct Throttle {
    by_name: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    /// A 429 while the name is refused.
    pub fn check(&self, name: &str, now_ms: i64) -> ApiResult<()> {
        let Ok(map) = self.by_name.lock() else {
            return Ok(());
        };
        match map.get(name) {
            Some(f) if f.count >= MAX_FAILURES && now_ms < f.first_ms + WINDOW_MS => {
                let left_ms = f.first_ms + WINDOW_MS - now_ms;
                Err(ApiError::TooManySignIns {
                    retry_after_s: u64::try_from(left_ms.div_euclid(1000) + 1).unwrap_or(1),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong password (or an unknown name).
    pub fn failed(&self, name: &str, now_ms: i64) {
        let Ok(mut map) = self.by_name.lock() else {
            return;
        };
        if map.len() >= MAX_NAMES && !map.contains_key(name) {
            map.retain(|_, f| now_ms < f.first_ms + WINDOW_MS);
            if map.len() >= MAX_NAMES {
                map.retain(|_, f| f.count >= MAX_FAILURES);
            }
        }
        let f = map.entry(name.to_string()).or_insert(Failures {
            count: 0,
            first_ms: now_ms,
        });
        if now_ms >= f.first_ms + WINDOW_MS {
            *f = Failures {
                count: 0,
                first_ms: now_ms,
            };
        }
        f.count = f.count.saturating_add(1);
    }

    /// The right password: the count starts again.
    pub fn cleared(&self, name: &str) {
        if let Ok(mut map) = self.by_name.lock() {
            map.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_passwords_refuse_the_name_until_the_window_ends() {
        let t = Throttle::default();
        for i in 0..MAX_FAILURES {
            assert!(t.check("ada", 1000 + i64::from(i)).is_ok());
            t.failed("ada", 1000 + i64::from(i));
        }
        match t.check("ada", 2000) {
            Err(ApiError::TooManySignIns { retry_after_s }) => assert_eq!(retry_after_s, 300),
            other => panic!("{other:?}"),
        }
        assert!(
            t.check("grace", 2000).is_ok(),
            "another name is not refused"
        );
        assert!(t.check("ada", 1000 + WINDOW_MS).is_ok(), "the window ended");
        // A new window: one failure is not a refusal.
        t.failed("ada", 1000 + WINDOW_MS);
        assert!(t.check("ada", 1001 + WINDOW_MS).is_ok());
    }

    #[test]
    fn the_right_password_clears_the_count() {
        let t = Throttle::default();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("ada", 0);
        }
        t.cleared("ada");
        t.failed("ada", 1);
        assert!(t.check("ada", 2).is_ok());
    }
}
