//! The buckets behind leases of per-minute limits for several Envoys
//! (`POST /internal/leases`, `internal/leases.rs`).
//!
//! With `shared_limits` on, an Envoy does not count `rpm`/`tpm` itself: it
//! holds a lease, tokens granted from one bucket that every Envoy shares, and
//! asks for more in the background when it runs low (filter `limits.rs`). The
//! bucket lives in Redis when `TOLLGATE_REDIS_URL` is set, so that several
//! control planes share it; otherwise in this process (exact for one control
//! plane). Either way a grant takes tokens out of the bucket at once, so
//! tokens leased and not yet spent are never granted twice.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{ApiError, ApiResult};

/// Units of a bucket per token (a bucket of `limit` a minute refills by
/// `limit` units a millisecond), as in the filter.
const UNITS: i64 = 60_000;
/// A bucket unused this long is dropped (it would be full again anyway).
const IDLE_MS: i64 = 120_000;

pub enum Broker {
    Memory(Mutex<HashMap<String, (i64, i64)>>),
    Redis {
        conn: redis::aio::ConnectionManager,
        fail_open: bool,
        /// Whether the last call reached Redis, for `/api/status`.
        healthy: std::sync::atomic::AtomicBool,
    },
}

/// The global bucket in Redis: refilled with Redis' own clock, so that
/// control planes with skewed clocks agree. Returns the tokens granted.
const SCRIPT: &str = r"
local limit = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local units = 60000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(b[1])
local at = tonumber(b[2])
local full = limit * units
if level == nil or at == nil then
  level = full
  at = now
end
if now > at then
  level = math.min(full, level + (now - at) * limit)
  at = now
end
local grant = math.floor(level / units)
if grant > want then grant = want end
if grant < 0 then grant = 0 end
level = level - grant * units
redis.call('HSET', KEYS[1], 'level', level, 'at', at)
redis.call('PEXPIRE', KEYS[1], 120000)
return grant
";

impl Broker {
    pub async fn connect(url: Option<&str>, fail_open: bool) -> anyhow::Result<Broker> {
        match url {
            None => Ok(Broker::Memory(Mutex::new(HashMap::new()))),
            Some(url) => {
                let client = redis::Client::open(url)?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(std::time::Duration::from_secs(1))
                    .set_response_timeout(std::time::Duration::from_secs(1))
                    .set_number_of_retries(1);
                let conn = redis::aio::ConnectionManager::new_with_config(client, config).await?;
                Ok(Broker::Redis {
                    conn,
                    fail_open,
                    healthy: std::sync::atomic::AtomicBool::new(true),
                })
            }
        }
    }

    /// `(backend, status)` for `/api/status` and `/metrics`. Redis is asked
    /// now (a `PING`, within the connection's 1 s response timeout), not
    /// judged by the last lease call: an Envoy that spent its leases and
    /// refuses locally may not have called since Redis went away.
    pub async fn status(&self) -> (&'static str, &'static str) {
        match self {
            Broker::Memory(_) => ("memory", "ok"),
            Broker::Redis {
                conn,
                healthy,
                fail_open,
            } => {
                let mut conn = conn.clone();
                let ok = redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok();
                healthy.store(ok, std::sync::atomic::Ordering::Relaxed);
                if ok {
                    ("redis", "ok")
                } else if *fail_open {
                    (
                        "redis",
                        "unavailable: failing open, shared limits not enforced",
                    )
                } else {
                    (
                        "redis",
                        "unavailable: failing closed, Envoys refuse once their leases are spent",
                    )
                }
            }
        }
    }

    /// Takes up to `want` tokens from a bucket of `limit` a minute; the
    /// tokens granted. `now_ms` is the caller's clock for the in-process
    /// bucket; Redis refills with its own (see `SCRIPT`).
    pub async fn take(&self, bucket: &str, limit: u64, want: u64, now_ms: i64) -> ApiResult<u64> {
        match self {
            Broker::Memory(buckets) => {
                let mut buckets = buckets
                    .lock()
                    .map_err(|_| ApiError::Internal(anyhow::anyhow!("lease table poisoned")))?;
                let now = now_ms;
                buckets.retain(|_, (_, at)| now - *at < IDLE_MS);
                let full = i64::try_from(limit)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(UNITS);
                let (level, at) = buckets.entry(bucket.to_string()).or_insert((full, now));
                let elapsed = (now - *at).max(0);
                *level = level
                    .saturating_add(
                        elapsed.saturating_mul(i64::try_from(limit).unwrap_or(i64::MAX)),
                    )
                    .min(full);
                *at = (*at).max(now);
                let grant = (*level / UNITS).clamp(0, i64::try_from(want).unwrap_or(i64::MAX));
                *level -= grant * UNITS;
                Ok(u64::try_from(grant).unwrap_or(0))
            }
            Broker::Redis {
                conn,
                fail_open,
                healthy,
            } => {
                let mut conn = conn.clone();
                let result: Result<i64, _> = redis::Script::new(SCRIPT)
                    .key(format!("tollgate:bucket:{bucket}"))
                    .arg(limit)
                    .arg(want)
                    .invoke_async(&mut conn)
                    .await;
                let ok = result.is_ok();
                if healthy.swap(ok, std::sync::atomic::Ordering::Relaxed) != ok {
                    match &result {
                        Ok(_) => tracing::info!("redis is back: shared limits enforced again"),
                        Err(e) => {
                            tracing::warn!(error = %e, fail_open, "redis unavailable for shared limits")
                        }
                    }
                }
                match result {
                    Ok(granted) => Ok(u64::try_from(granted).unwrap_or(0)),
                    Err(_) if *fail_open => Ok(want),
                    Err(e) => Err(ApiError::LimitsUnavailable(format!(
                        "The limits backend is unavailable: {e}"
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_bucket_grants_what_it_has_and_refills() {
        let broker = Broker::Memory(Mutex::new(HashMap::new()));
        let t0 = 1_700_000_000_000;
        assert_eq!(broker.take("k:a:rpm", 10, 4, t0).await.unwrap(), 4);
        assert_eq!(broker.take("k:a:rpm", 10, 10, t0).await.unwrap(), 6);
        assert_eq!(broker.take("k:a:rpm", 10, 10, t0).await.unwrap(), 0);
        assert_eq!(
            broker.take("k:b:rpm", 10, 3, t0).await.unwrap(),
            3,
            "buckets are separate"
        );
        // 10 a minute: one token back every 6 s, none for less.
        assert_eq!(broker.take("k:a:rpm", 10, 10, t0 + 5_999).await.unwrap(), 0);
        assert_eq!(broker.take("k:a:rpm", 10, 10, t0 + 6_000).await.unwrap(), 1);
        assert_eq!(
            broker.take("k:a:rpm", 10, 10, t0 + 18_000).await.unwrap(),
            2
        );
        // A clock that steps back refills nothing.
        assert_eq!(broker.take("k:a:rpm", 10, 10, t0).await.unwrap(), 0);
        // A minute is a full bucket again, and never more than full.
        assert_eq!(
            broker
                .take("k:a:rpm", 10, 10, t0 + 18_000 + 600_000)
                .await
                .unwrap(),
            10
        );
        assert_eq!(
            broker
                .take("k:a:rpm", 10, 10, t0 + 18_000 + 600_000)
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn an_idle_bucket_is_dropped_and_comes_back_full() {
        let broker = Broker::Memory(Mutex::new(HashMap::new()));
        let t0 = 1_700_000_000_000;
        assert_eq!(broker.take("a:x:tpm", 100, 100, t0).await.unwrap(), 100);
        assert_eq!(broker.take("k:y:rpm", 5, 1, t0 + IDLE_MS).await.unwrap(), 1);
        let Broker::Memory(buckets) = &broker else {
            unreachable!("a memory broker")
        };
        assert!(
            !buckets.lock().unwrap().contains_key("a:x:tpm"),
            "unused for IDLE_MS: dropped"
        );
        assert_eq!(
            broker
                .take("a:x:tpm", 100, 100, t0 + IDLE_MS)
                .await
                .unwrap(),
            100
        );
    }
}
