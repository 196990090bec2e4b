//! A token bucket in shared data: its level in units of 1/60000 token and
//! when it was last refilled; refilled continuously on every read.

use super::*;

/// A token bucket: its level in units, and when it was last refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub level: i64,
    pub at_ms: u64,
}

impl Bucket {
    pub(super) fn decode(raw: Option<&[u8]>, limit: u64, now_ms: u64) -> Bucket {
        let full = Bucket {
            level: full_level(limit),
            at_ms: now_ms,
        };
        let Some(raw) = raw else {
            return full;
        };
        let (Ok(level), Ok(at)) = (
            raw.get(..8)
                .unwrap_or_default()
                .try_into()
                .map(i64::from_le_bytes),
            raw.get(8..16)
                .unwrap_or_default()
                .try_into()
                .map(u64::from_le_bytes),
        ) else {
            return full;
        };
        Bucket { level, at_ms: at }.refilled(limit, now_ms)
    }

    pub(super) fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.level.to_le_bytes());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        out
    }

    pub(super) fn refilled(self, limit: u64, now_ms: u64) -> Bucket {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        let add = i64::try_from(elapsed)
            .unwrap_or(i64::MAX)
            .saturating_mul(i64::try_from(limit).unwrap_or(i64::MAX));
        Bucket {
            level: self.level.saturating_add(add).min(full_level(limit)),
            at_ms: now_ms.max(self.at_ms),
        }
    }

    /// Whole tokens available now.
    pub fn remaining(self) -> u64 {
        u64::try_from(self.level.max(0) / UNITS).unwrap_or(0)
    }

    /// Milliseconds until `tokens` are available (0: now).
    pub(super) fn wait_ms(self, tokens: u64, limit: u64) -> u64 {
        let need = units(tokens).saturating_sub(self.level);
        if need <= 0 || limit == 0 {
            return 0;
        }
        let rate = i64::try_from(limit).unwrap_or(i64::MAX);
        u64::try_from((need + rate - 1) / rate).unwrap_or(u64::MAX)
    }
}

pub(super) fn units(tokens: u64) -> i64 {
    i64::try_from(tokens)
        .unwrap_or(i64::MAX)
        .saturating_mul(UNITS)
}

pub(super) fn full_level(limit: u64) -> i64 {
    units(limit)
}
